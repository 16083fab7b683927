"""TensorBoard images during training: an ECG strip, then evaluation figures per epoch."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tf_ecg.evaluation.metrics import evaluation_report
from tf_ecg.evaluation.plots import ecg_strip, figure_to_png, report_figures


def png_summary(writer, name: str, png: bytes, step: int) -> None:
    """One PNG image (e.g. a matplotlib figure) into a TensorBoard event file."""
    with writer.as_default():
        tf.summary.image(name, tf.image.decode_png(png, channels=4)[None], step=step)
    writer.flush()


def dataset_targets(dataset) -> np.ndarray:
    """The targets of a finite, deterministic (x, y) dataset, in order."""
    return np.concatenate([np.asarray(y) for _, y in dataset])


class EvaluationImages(keras.callbacks.Callback):
    """Writes an example input strip once and the validation figures every ``every`` epochs."""

    def __init__(self, log_dir: Path, example_input, val_data, task: str, names, to_outputs, input_spec,
                 every: int = 1):
        super().__init__()
        self.writer = tf.summary.create_file_writer(str(Path(log_dir) / "images"))
        self.example_input, self.val_data, self.task, self.names = example_input, val_data, task, names
        self.y_val = dataset_targets(val_data)
        self.to_outputs, self.input_spec, self.every = to_outputs, input_spec, every

    def on_train_begin(self, logs=None):
        strip = ecg_strip(self.example_input, self.input_spec.sampling_rate, self.input_spec.leads,
                          "example validation input (as fed to the model)")
        png_summary(self.writer, "input/example_ecg", figure_to_png(strip), 0)

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        outputs = self.to_outputs(self.model.predict(self.val_data, verbose=0))
        report = evaluation_report(self.task, self.y_val, outputs, self.names)
        for name, figure in report_figures(report, self.y_val, outputs).items():
            png_summary(self.writer, f"validation/{name}", figure_to_png(figure), epoch)


def epoch_schedule(schedule: dict | None, learning_rate: float):
    """Per-epoch learning-rate schedule from a recipe's ``schedule`` table."""
    if not schedule:
        return None
    kind = schedule["name"]
    if kind == "exponential":  # PyTorch ExponentialLR stepped once per epoch
        rate = schedule["decay_rate"]
        return keras.callbacks.LearningRateScheduler(lambda epoch: learning_rate * rate ** epoch)
    if kind == "cosine":  # PyTorch CosineAnnealingLR(T_max, eta_min) stepped per epoch
        period, floor = schedule["period"], schedule.get("min_learning_rate", 0.0)
        return keras.callbacks.LearningRateScheduler(
            lambda epoch: floor + (learning_rate - floor) * 0.5 * (1 + np.cos(np.pi * epoch / period)))
    if kind == "step_after":  # constant for `hold` epochs, then x decay_rate per epoch (autoECG)
        hold, rate = schedule["hold"], schedule["decay_rate"]
        return keras.callbacks.LearningRateScheduler(
            lambda epoch: learning_rate * rate ** max(0, epoch - hold))
    raise ValueError(f"unknown schedule {kind!r}")


class ValidationMacroAUC(keras.callbacks.Callback):
    """Adds ``val_macro_auc`` (one-vs-rest, on softmax probabilities, over the classes
    present) to the epoch logs, so EarlyStopping / ModelCheckpoint can monitor it as the
    e18 original monitors its validation AUROC. Must run before those callbacks."""

    def __init__(self, val_data, names, to_outputs):
        super().__init__()
        self.val_data, self.names, self.to_outputs = val_data, names, to_outputs
        self.y_val = dataset_targets(val_data)

    def on_epoch_end(self, epoch, logs=None):
        outputs = self.to_outputs(self.model.predict(self.val_data, verbose=0))
        logs["val_macro_auc"] = evaluation_report("multiclass", self.y_val, outputs, self.names)["macro_auc"]
