"""Recipe -> data -> compiled model -> fit (TensorBoard, checkpoints, resume) -> test report."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from tf_ecg.data.pipelines import array_dataset, pairs_from_halves
from tf_ecg.errors import ECGDataError
from tf_ecg.evaluation.metrics import evaluation_report
from tf_ecg.evaluation.plots import figure_to_png, report_figures
from tf_ecg.registry import build_model
from tf_ecg.training.callbacks import EvaluationImages, ValidationMacroAUC, dataset_targets, epoch_schedule
from tf_ecg.training.losses import FocalLoss
from tf_ecg.training.optimizers import AdaBound
from tf_ecg.training.recipe import Recipe
from tf_ecg.training.sources import Splits, load_source

BEST, FINAL = "best.keras", "final.keras"
CUSTOM_OBJECTS = {"FocalLoss": FocalLoss, "AdaBound": AdaBound}  # recipe names of tf_ecg's own


@dataclass
class TrainingResult:
    run_dir: Path
    model: keras.Model
    splits: Splits
    test_report: dict
    seconds: float


def build_loss(training: dict):
    """A loss by name ("mean_absolute_error") or a Loss class with options
    ({name = "SparseCategoricalCrossentropy", from_logits = true})."""
    loss = training["loss"]
    if isinstance(loss, str):
        return keras.losses.get(loss)
    options = {k: v for k, v in loss.items() if k != "name"}
    with keras.saving.CustomObjectScope(CUSTOM_OBJECTS):
        built = keras.losses.get({"class_name": loss["name"], "config": options})
    if not isinstance(built, keras.losses.Loss):
        # keras.losses.get resolves a function name and silently drops the options
        raise ValueError(f"loss {loss['name']!r} with options {options} must name a keras.losses.Loss "
                         f"class (e.g. 'SparseCategoricalCrossentropy')")
    return built


def build_optimizer(training: dict) -> keras.optimizers.Optimizer:
    config = dict(training["optimizer"])
    name = config.pop("name")
    with keras.saving.CustomObjectScope(CUSTOM_OBJECTS):
        return keras.optimizers.get({"class_name": name, "config": config})


def output_transform(recipe: Recipe):
    """Raw model outputs -> probabilities (classification) or values (regression)."""
    if recipe.training.get("outputs", "logits") == "logits" and recipe.task == "multiclass":
        return lambda raw: keras.ops.convert_to_numpy(keras.ops.softmax(raw, axis=-1))
    if recipe.training.get("outputs", "logits") == "logits" and recipe.task in ("binary", "multilabel"):
        return lambda raw: keras.ops.convert_to_numpy(keras.ops.sigmoid(raw))
    return lambda raw: np.asarray(raw)


def training_metrics(task: str, num_classes: int) -> list:
    if task == "regression":
        return [keras.metrics.MeanAbsoluteError(name="mae")]
    if task == "multiclass":
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    return [keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc", multi_label=True)]


def copy_matching_weights(model: keras.Model, source_file: str | Path) -> list[str]:
    """Weights of a trained ``.keras`` model copied into layers of the same name and shapes
    (transfer learning); returns the names of the layers left as they were."""
    source_file = Path(source_file)
    if not source_file.is_file():
        raise ECGDataError(source_file, "initial weights not found")
    source = {layer.name: layer for layer in keras.models.load_model(source_file, compile=False).layers}
    skipped = []
    for layer in model.layers:
        if not layer.weights:
            continue
        donor = source.get(layer.name)
        if donor is None or [w.shape for w in donor.weights] != [w.shape for w in layer.weights]:
            skipped.append(layer.name)
            continue
        for target, value in zip(layer.weights, donor.weights):
            target.assign(value)  # by variable, so frozen γ/β (non-trainable) are copied too
    return skipped


def compile_model(recipe: Recipe, num_outputs: int) -> keras.Model:
    options = dict(recipe.model.get("options", {}))
    model = build_model(recipe.model["name"], **options)
    if recipe.model.get("initial_weights"):
        skipped = copy_matching_weights(model, recipe.model["initial_weights"])
        print(f"initial weights from {recipe.model['initial_weights']}; left fresh: {skipped}")
    if model.output_shape[-1] != num_outputs:
        raise ValueError(f"model {recipe.model['name']} has {model.output_shape[-1]} outputs, "
                         f"the data has {num_outputs}: set model.options")
    model.compile(optimizer=build_optimizer(recipe.training), loss=build_loss(recipe.training),
                  metrics=training_metrics(recipe.task, num_outputs))
    return model


def start_at_median(model: keras.Model, targets: np.ndarray) -> None:
    """Set the output bias to the training targets' median, so that an L1 regressor
    starts as the best constant predictor instead of at 0 (HR ~ 70 bpm, QT ~ 400 ms)."""
    kernel, bias = model.layers[-1].get_weights()
    model.layers[-1].set_weights([kernel, np.median(targets.reshape(len(targets), -1), axis=0)
                                  .astype(bias.dtype)])


def _pairs(dataset, training: dict):
    pairs = training.get("pairs")
    if pairs not in (None, "halves"):
        raise ValueError(f"unknown pair sampling {pairs!r}")
    return pairs_from_halves(dataset) if pairs else dataset


def evaluation_dataset(splits: Splits, training: dict, split: str):
    """A deterministic dataset of one split: the same batches (and pairs) on every pass.

    With ``training.pairs = "halves"`` every batch becomes (reference, query) pairs
    labelled same (0) / different (1) class, drawn once with a fixed seed."""
    pairs = bool(training.get("pairs"))
    data = array_dataset(*getattr(splits, split), training["batch_size"], shuffle=pairs,
                         seed=training.get("seed", 0) + 1, drop_remainder=pairs, reshuffle=False)
    return _pairs(data, training)


def make_datasets(splits: Splits, training: dict) -> dict:
    """Shuffled training batches (reshuffled every epoch), deterministic val / test."""
    train_data = array_dataset(*splits.train, training["batch_size"], shuffle=True, seed=training.get("seed", 0),
                               drop_remainder=bool(training.get("pairs")) or training.get("drop_remainder", False))
    return {"train": _pairs(train_data, training), "val": evaluation_dataset(splits, training, "val"),
            "test": evaluation_dataset(splits, training, "test")}


def _callbacks(recipe: Recipe, run_dir: Path, splits: Splits, datasets: dict, to_outputs) -> list:
    training = recipe.training
    monitor = training.get("monitor", "val_loss")
    callbacks = [ValidationMacroAUC(datasets["val"], splits.output_names, to_outputs)] if monitor == "val_macro_auc" else []
    callbacks += [
        keras.callbacks.BackupAndRestore(str(run_dir / "backup")),  # resume after an interruption
        keras.callbacks.TensorBoard(str(run_dir / "logs"), write_graph=False),
        keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True),
        keras.callbacks.ModelCheckpoint(str(run_dir / BEST), monitor=monitor, save_best_only=True,
                                        mode=training.get("monitor_mode", "auto")),
        EvaluationImages(run_dir / "logs", splits.val[0][0], datasets["val"], recipe.task, splits.output_names,
                         to_outputs, splits.input_spec, every=training.get("image_every", 1)),
    ]
    schedule = epoch_schedule(training.get("schedule"), training["optimizer"]["learning_rate"])
    if schedule:
        callbacks.append(schedule)
    if "early_stopping" in training:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, **training["early_stopping"]))
    if "reduce_lr_on_plateau" in training:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor=monitor, **training["reduce_lr_on_plateau"]))
    return callbacks


def write_report(run_dir: Path, name: str, report: dict, y_true, outputs) -> None:
    """``<name>.json`` plus one PNG per figure under ``plots/``."""
    (run_dir / f"{name}.json").write_text(json.dumps(report, indent=2))
    plots = run_dir / "plots"
    plots.mkdir(exist_ok=True)
    for figure_name, figure in report_figures(report, y_true, outputs).items():
        (plots / f"{name}_{figure_name}.png").write_bytes(figure_to_png(figure))


def train(recipe: Recipe, run_dir: str | Path, data_root=None, splits: Splits | None = None,
          verbose: int = 2) -> TrainingResult:
    """Run a recipe into ``run_dir``; running it again after an interruption resumes it."""
    started = time.time()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if recipe.path is not None:
        shutil.copyfile(recipe.path, run_dir / "recipe.toml")
    training = recipe.training
    keras.utils.set_random_seed(training.get("seed", 0))
    splits = splits or load_source(recipe.data, data_root)
    num_outputs = 1 if recipe.task == "binary" else len(splits.output_names)
    model = compile_model(recipe, num_outputs)
    if training.get("output_bias") == "train_median":
        start_at_median(model, splits.train[1])
    to_outputs = output_transform(recipe)
    datasets = make_datasets(splits, training)
    model.fit(datasets["train"], validation_data=datasets["val"], epochs=training["epochs"], verbose=verbose,
              shuffle=False, callbacks=_callbacks(recipe, run_dir, splits, datasets, to_outputs))
    model.save(run_dir / FINAL)
    if training.get("keep", "best") == "best" and (run_dir / BEST).exists():
        model = keras.models.load_model(run_dir / BEST)
    y_test = dataset_targets(datasets["test"])
    outputs = to_outputs(model.predict(datasets["test"], verbose=0))
    report = evaluation_report(recipe.task, y_test, outputs, splits.output_names,
                               training.get("thresholds", 0.5))
    report["model_kept"] = training.get("keep", "best")
    write_report(run_dir, "test_metrics", report, y_test, outputs)
    (run_dir / "input_spec.json").write_text(json.dumps(
        {"input_spec": splits.input_spec.to_dict(), "output_names": splits.output_names,
         "task": recipe.task, "outputs": training.get("outputs", "logits"), "data_info": splits.info},
        indent=2))
    return TrainingResult(run_dir, model, splits, report, time.time() - started)
