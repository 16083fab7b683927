"""Callbacks and TensorBoard summaries: validation task metrics and figures per epoch, the
resolved recipe, hyper-parameters and test metrics of a run, learning-rate schedules.
TensorBoard's event files are TensorFlow's: where it is not installed (JAX or PyTorch alone)
the metrics are still computed and recorded (history.csv), and no event file is written."""

from __future__ import annotations

import time
from pathlib import Path

import keras
import numpy as np

from tf_ecg.errors import RecipeError
from tf_ecg.evaluation.metrics import evaluation_report
from tf_ecg.evaluation.plots import ecg_strip, figure_to_png, report_figures
from tf_ecg.runtime import optional_tensorflow


def summary_writer(log_dir: Path, name: str):
    """A TensorBoard event-file writer for ``log_dir/name``; None without TensorFlow."""
    tf = optional_tensorflow()
    return None if tf is None else tf.summary.create_file_writer(str(Path(log_dir) / name))


def tensorboard_callbacks(log_dir: Path) -> list:
    """Keras' TensorBoard callback (scalars per epoch), where TensorFlow is installed."""
    return [] if optional_tensorflow() is None else [keras.callbacks.TensorBoard(str(log_dir), write_graph=False)]


def png_summary(writer, name: str, png: bytes, step: int) -> None:
    """One PNG image (e.g. a matplotlib figure) into a TensorBoard event file (``writer``
    from :func:`summary_writer`; None: nothing is written)."""
    if writer is None:
        return
    import tensorflow as tf

    with writer.as_default():
        tf.summary.image(name, tf.image.decode_png(png, channels=4)[None], step=step)
    writer.flush()


def dataset_targets(dataset) -> np.ndarray:
    """The targets of a finite, deterministic (x, y) dataset, in order."""
    return np.concatenate([np.asarray(y) for _, y in dataset])


class ValidationReport(keras.callbacks.Callback):
    """Scores the whole validation set after every epoch and adds the task metrics to the
    epoch logs (so TensorBoard, history.csv, checkpoints and early stopping see them):
    ``val_macro_f1`` and ``val_macro_auc`` for classification, ``val_rmse`` and ``val_r2``
    per target for regression. Writes an example input strip once and the validation
    figures every ``every`` epochs. Must come before the callbacks that read the logs."""

    def __init__(self, log_dir: Path, example_input, val_data, task: str, names, to_outputs, input_spec,
                 pairs: bool = False, every: int = 1, skip=()):
        super().__init__()
        self.writer = summary_writer(log_dir, "images")
        self.example_input, self.val_data, self.names = example_input, val_data, names
        # the comparator is scored on (reference, query) pairs: same / different class
        self.task = "binary" if pairs else task
        self.names = ["same", "different"] if pairs else names
        self.y_val = dataset_targets(val_data)
        self.to_outputs, self.input_spec, self.every = to_outputs, input_spec, every
        self.skip = {f"val_{name}" for name in skip}  # what the loss already is (an L1 loss is the MAE)

    def on_train_begin(self, logs=None):
        if self.writer is None:
            return
        strip = ecg_strip(self.example_input, self.input_spec.sampling_rate, self.input_spec.display_leads(),
                          "example validation input (as fed to the model)", units=self.input_spec.units_label())
        png_summary(self.writer, "input/example_ecg", figure_to_png(strip), 0)

    def on_epoch_end(self, epoch, logs=None):
        outputs = self.to_outputs(self.model.predict(self.val_data, verbose=0))
        report = evaluation_report(self.task, self.y_val, outputs, self.names)
        if logs is not None:
            logs.update({key: value for key, value in task_metrics(report, prefix="val_").items()
                         if key not in logs and not any(key == s or key.startswith(f"{s}_") for s in self.skip)})
        if self.writer is not None and (epoch + 1) % self.every == 0:
            for name, figure in report_figures(report, self.y_val, outputs).items():
                png_summary(self.writer, f"validation/{name}", figure_to_png(figure), epoch)


class HistoryCSV(keras.callbacks.Callback):
    """``history.csv``: one row per finished epoch, columns ``epoch`` and the logs' keys in
    sorted order. A resumed run appends; when its logs hold keys the file does not (metrics a
    newer tf_ecg adds), the file is rewritten with every column, earlier rows empty there:
    Keras' CSVLogger would append rows longer than the header (a file no reader parses)."""

    def __init__(self, path: Path):
        super().__init__()
        self.path = Path(path)

    def on_epoch_end(self, epoch, logs=None):
        import os

        import pandas as pd

        earlier = pd.read_csv(self.path) if self.path.is_file() and self.path.stat().st_size else pd.DataFrame()
        table = pd.concat([earlier, pd.DataFrame([{"epoch": epoch, **{k: float(v) for k, v in (logs or {}).items()}}])],
                          ignore_index=True)
        columns = ["epoch", *sorted(c for c in table.columns if c != "epoch")]
        partial = self.path.with_name(self.path.name + ".partial")
        table[columns].to_csv(partial, index=False)
        os.replace(partial, self.path)  # a crash leaves the previous file whole


class TimeBudgetSpent(Exception):
    """Raised by :class:`TimeBudget` after the epoch that used up the budget (``epochs_done``)."""

    def __init__(self, epochs_done: int):
        super().__init__(f"time budget spent after {epochs_done} epoch(s)")
        self.epochs_done = epochs_done


class TimeBudget(keras.callbacks.Callback):
    """Starts no epoch after ``seconds`` of wall time: ends ``fit`` by raising
    :class:`TimeBudgetSpent` at the end of the epoch that crossed the budget. Raising, not
    ``stop_training``: a normal end of ``fit`` deletes BackupAndRestore's state, and the run
    must resume from it. Must be the last callback (the others record the epoch first)."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds

    def on_train_begin(self, logs=None):
        self.started = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        if time.monotonic() - self.started >= self.seconds:
            raise TimeBudgetSpent(epoch + 1)


class PatienceSpent(Exception):
    """Raised by :class:`ResumedMonitors` when the epochs an interrupted run had already
    finished used up its early stopping's patience: the run ended there."""


class ResumedMonitors(keras.callbacks.Callback):
    """A resumed run's early stopping, best-model checkpoint and learning-rate reduction go on
    from the epochs it had finished (``history``: the monitored value per epoch), as if it had
    never stopped. Keras keeps none of their state across ``fit`` calls: BackupAndRestore
    restores the weights and the optimizer, while a fresh ModelCheckpoint would overwrite the
    best model with the first epoch after resuming and a fresh EarlyStopping would wait its
    whole patience again. Placed after them (their ``on_train_begin`` resets them)."""

    def __init__(self, history: list[float], monitors: list):
        super().__init__()
        self.history, self.monitors = history, monitors

    def on_train_begin(self, logs=None):
        for monitor in self.monitors:
            if monitor.monitor_op is None:
                try:
                    monitor._set_monitor_op()
                except ValueError:  # "auto" on a metric Keras has not built before the first step
                    raise RecipeError(None, f"training.monitor = {monitor.monitor!r}: set training.monitor_mode "
                                            "(\"min\" or \"max\") to resume this run") from None
            best, wait, best_epoch, cooldown = None, 0, 0, 0
            for epoch, value in enumerate(self.history):
                if cooldown > 0:  # ReduceLROnPlateau waits out its cooldown after a reduction
                    cooldown, wait = cooldown - 1, 0
                if best is None or monitor._is_improvement(value, best):
                    best, wait, best_epoch = value, 0, epoch
                elif cooldown == 0:
                    wait += 1
                    if isinstance(monitor, keras.callbacks.ReduceLROnPlateau) and wait >= monitor.patience:
                        cooldown, wait = monitor.cooldown, 0
            monitor.best = best
            if isinstance(monitor, keras.callbacks.EarlyStopping):
                monitor.wait, monitor.best_epoch = wait, best_epoch
                if monitor.restore_best_weights:  # the best epoch's weights, as the checkpoint kept them
                    monitor.best_weights = self._best_weights(monitor.monitor)
                if wait >= monitor.patience:
                    if monitor.best_weights is not None:  # what EarlyStopping does when it stops
                        self.model.set_weights(monitor.best_weights)
                    raise PatienceSpent(f"no gain in {monitor.monitor} for {wait} epochs after "
                                        f"epoch {best_epoch} (history.csv's numbering)")
            elif isinstance(monitor, keras.callbacks.ReduceLROnPlateau):
                monitor.wait, monitor.cooldown_counter = wait, cooldown

    def _best_weights(self, monitored: str) -> list | None:
        for checkpoint in self.monitors:
            if (isinstance(checkpoint, keras.callbacks.ModelCheckpoint) and checkpoint.save_best_only
                    and checkpoint.monitor == monitored and Path(checkpoint.filepath).is_file()):
                return keras.models.load_model(checkpoint.filepath, compile=False).get_weights()
        return None


class BatchNormStatistics(keras.callbacks.Callback):
    """Recomputes every BatchNormalization layer's moving mean and variance after the last
    training step of each epoch, from ``samples`` training examples passed through the
    network with the epoch's final weights (dropout off), before validation and
    checkpointing see the model ("precise BN", Wu & Johnson 2021).

    Why: with Adam at a high learning rate (e18's 0.01) and few steps per epoch, the weights
    move a lot within the ~10 steps a momentum-0.9 moving average remembers, so the
    inference-mode statistics describe a network that no longer exists: validation scores
    swing while the training loss falls (tf_ecg issue: the quickstart kept a constant
    predictor). Averaging over fixed weights removes that lag; training itself is unchanged.
    """

    def __init__(self, x_train: np.ndarray, samples: int = 256, chunk: int = 64, seed: int = 0):
        super().__init__()
        order = np.random.default_rng(seed).permutation(len(x_train))[:samples]
        self.x = x_train[np.sort(order)]
        self.chunk = chunk

    def on_train_batch_end(self, batch, logs=None):
        if self.params.get("steps") is not None and batch + 1 == self.params["steps"]:
            recompute_batch_norm_statistics(self.model, self.x, self.chunk)


def recompute_batch_norm_statistics(model: keras.Model, x: np.ndarray, chunk: int = 64) -> None:
    """Moving statistics of every trainable BatchNormalization in ``model`` set to the mean,
    over chunks of ``x``, of the batch statistics with the current weights (dropout off)."""
    layers = list(model._flatten_layers(include_self=False))
    norms = [layer for layer in layers if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable]
    dropouts = [layer for layer in layers if isinstance(layer, keras.layers.Dropout)]
    if not norms:
        return
    momenta, rates = [n.momentum for n in norms], [d.rate for d in dropouts]
    try:
        for layer in dropouts:
            layer.rate = 0.0
        for index, start in enumerate(range(0, len(x), chunk)):
            for layer in norms:
                layer.momentum = index / (index + 1)  # a running mean over the chunks
            model(x[start:start + chunk], training=True)
    finally:
        for layer, momentum in zip(norms, momenta):
            layer.momentum = momentum
        for layer, rate in zip(dropouts, rates):
            layer.rate = rate


def task_metrics(report: dict, prefix: str = "") -> dict[str, float]:
    """The headline numbers of an evaluation report, flat: macro-F1 / macro-AUC (and
    accuracy), ECE and Brier score for classification, MAE / RMSE / R2 per target for regression."""
    if report["task"] == "regression":
        single = len(report["per_target"]) == 1
        return {f"{prefix}{metric}" + ("" if single else f"_{name}"): scores[metric]
                for name, scores in report["per_target"].items() for metric in ("mae", "rmse", "r2")}
    metrics = {f"{prefix}{metric}": report[metric] for metric in ("accuracy", "macro_f1", "macro_auc") if metric in report}
    if "calibration" in report:  # expected calibration error (15 bins) and Brier score
        metrics.update({f"{prefix}{metric}": report["calibration"][metric] for metric in ("ece", "brier")})
    return metrics


def _flat_hparams(recipe) -> dict:
    """Scalar settings of a resolved recipe, dotted (``training.optimizer.learning_rate``)."""
    flat = {}

    def visit(prefix, value):
        if isinstance(value, dict):
            for key, inner in value.items():
                visit(f"{prefix}.{key}" if prefix else key, inner)
        elif isinstance(value, (bool, int, float, str)):
            flat[prefix] = value
        elif isinstance(value, (list, tuple)):
            flat[prefix] = str(list(value))

    visit("", {k: v for k, v in recipe.to_dict().items() if k != "runtime"})
    return flat


def write_attribution_summaries(log_dir: Path, model: keras.Model, val_data, spec, names, recipe, count: int = 3,
                                steps: int = 16) -> None:
    """Where the kept model looked, in TensorBoard (``validation/attributions_<i>``): integrated
    gradients (0 mV baseline) of the predicted class (or the target) on the first ``count``
    validation examples, as ECG strips in mV with the attribution band."""
    writer = summary_writer(log_dir, "images")
    if writer is None:
        return
    from tf_ecg.explain import EXPLAINED_TASKS, explained_outputs, integrated_gradients
    from tf_ecg.serving import serving_model, serving_windows

    if recipe.task not in EXPLAINED_TASKS or recipe.training.pairs:
        return
    windows = serving_windows(np.asarray(next(iter(val_data))[0])[:count], spec)
    serving = serving_model(model, spec, recipe.task, recipe.training.outputs)
    outputs = keras.ops.convert_to_numpy(serving(windows)).reshape(len(windows), -1)
    index, sign, explained = explained_outputs(outputs, {"output_names": names,
                                                         "task": recipe.task,
                                                         "thresholds": recipe.training.thresholds}, None)
    attributions = integrated_gradients(serving, windows, index, steps, sign)
    samples = -1 if spec.kind == "glucose_beat" else None  # a glucose beat's last value is its RR interval
    for i, window in enumerate(windows):
        strip = ecg_strip(window[:samples], spec.sampling_rate, spec.display_leads(),
                          f"validation example {i}: {explained[i]} (integrated gradients, {steps} steps)",
                          attribution=attributions[i][:samples])
        png_summary(writer, f"validation/attributions_{i}", figure_to_png(strip), 0)


def write_run_summaries(log_dir: Path, recipe, test_report: dict | None) -> None:
    """The run as a whole in TensorBoard: the resolved recipe as text and its settings in
    the HParams dashboard (at the start), the test metrics as scalars and as the HParams
    metrics (at the end, ``test_report`` given)."""
    writer = summary_writer(log_dir, "run")
    if writer is None:
        return
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hparams_api

    with writer.as_default():
        if test_report is None:
            tf.summary.text("recipe", "```\n" + recipe.to_toml() + "\n```", step=0)
        else:
            metrics = {f"test/{k}": v for k, v in task_metrics(test_report).items()
                       if v is not None and np.isfinite(v)}
            hparams_api.hparams(_flat_hparams(recipe), trial_id=recipe.name)
            for name, value in metrics.items():
                tf.summary.scalar(name, value, step=0)
            tf.summary.text("test_metrics", "\n".join(f"* {k}: {v:.4g}" for k, v in metrics.items()), step=0)
    writer.flush()


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
    raise RecipeError(None, f"training.schedule: unknown schedule {kind!r} (known: exponential, cosine, step_after)")
