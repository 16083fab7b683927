"""Resolved recipe -> data -> compiled model -> fit (TensorBoard, checkpoints, resume) -> test report.

A run directory records what made it: ``recipe.toml`` is the resolved recipe (the file
plus every override, defaults filled in) and ``run.json`` the versions, machine, seed,
command line and a fingerprint of the data. Training into a directory that holds another
recipe's run is refused; an interrupted run resumes; a finished one is left alone.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from tf_ecg.config import Recipe, TrainingConfig, differences, initial_learning_rate, load_recipe
from tf_ecg.data.pipelines import pairs_from_halves
from tf_ecg.data.sources import Splits, load_source
from tf_ecg.errors import OutputPathError, RecipeError, RunError
from tf_ecg.evaluation.calibration import INTERVAL_LEVEL, conformal_half_width, interval_coverage
from tf_ecg.evaluation.metrics import evaluation_report, strict_json
from tf_ecg.evaluation.plots import figure_to_png, report_figures
from tf_ecg.runtime import machine_info
from tf_ecg.training.compiling import L1_LOSSES, compile_model
from tf_ecg.training.distribution import (Runtime, fit_under_multi_worker, make_strategy, runtime_context,
                                          worker_directory)
from tf_ecg.training.callbacks import (BatchNormStatistics, HistoryCSV, PatienceSpent, ResumedMonitors, TimeBudget,
                                      TimeBudgetSpent, ValidationReport,
                                      dataset_targets, epoch_schedule, tensorboard_callbacks,
                                      write_attribution_summaries, write_run_summaries)
from tf_ecg.training.run_lock import LOCK_FILES, run_lock

BEST, FINAL = "best.keras", "final.keras"
RECIPE_FILE, RECORD_FILE = "recipe.toml", "run.json"
# Everything train() writes into a run directory (and all that --restart removes).
TEST_OUTPUTS = "test_outputs.npz"  # the kept model's test outputs and the labels they were scored against
VAL_OUTPUTS = "val_outputs.npz"    # its raw validation outputs (logits or the model's outputs): export calibrates on them
RUN_FILES = (RECIPE_FILE, RECORD_FILE, f".{RECORD_FILE}.partial", BEST, FINAL, "history.csv", "history.csv.partial",
             "test_metrics.json", TEST_OUTPUTS, VAL_OUTPUTS, "input_spec.json", "logs", "backup", "plots")


@dataclass
class TrainingResult:
    run_dir: Path
    model: keras.Model
    splits: Splits
    test_report: dict | None  # None while the run is paused (``minutes`` spent before its last epoch)
    seconds: float

    @property
    def paused(self) -> bool:
        return self.test_report is None


def output_transform(recipe: Recipe):
    """Raw model outputs -> probabilities (classification) or values (regression)."""
    if recipe.training.outputs == "logits" and recipe.task == "multiclass":
        return lambda raw: keras.ops.convert_to_numpy(keras.ops.softmax(raw, axis=-1))
    if recipe.training.outputs == "logits" and recipe.task in ("binary", "multilabel"):
        return lambda raw: keras.ops.convert_to_numpy(keras.ops.sigmoid(raw))
    return lambda raw: np.asarray(raw)


def start_at_median(model: keras.Model, median: np.ndarray) -> None:
    """Set the output bias to the training targets' median, so that an L1 regressor
    starts as the best constant predictor instead of at 0 (HR ~ 70 bpm, QT ~ 400 ms)."""
    output = next(layer for layer in reversed(model.layers) if layer.weights)  # past a float32 cast
    kernel, bias = output.get_weights()
    output.set_weights([kernel, np.asarray(median).astype(bias.dtype)])


def evaluation_dataset(splits: Splits, training: TrainingConfig, split: str):
    """A deterministic dataset of one split: the same batches (and pairs) on every pass.

    With ``training.pairs = "halves"`` every batch becomes (reference, query) pairs
    labelled same (0) / different (1) class, drawn once with a fixed seed."""
    pairs = bool(training.pairs)
    data = splits.dataset(split, training.batch_size, shuffle=pairs, seed=training.seed + 1,
                          drop_remainder=pairs, reshuffle=False)
    return pairs_from_halves(data) if pairs else data


def make_datasets(splits: Splits, training: TrainingConfig) -> dict:
    """Shuffled training batches (reshuffled every epoch), deterministic val / test."""
    pairs = bool(training.pairs)
    train_data = splits.dataset("train", training.batch_size, shuffle=True, seed=training.seed,
                                drop_remainder=pairs or training.drop_remainder)
    return {"train": pairs_from_halves(train_data) if pairs else train_data,
            "val": evaluation_dataset(splits, training, "val"), "test": evaluation_dataset(splits, training, "test")}


def _callbacks(recipe: Recipe, run_dir: Path, splits: Splits, datasets: dict, to_outputs,
               minutes: float | None = None) -> list:
    training = recipe.training
    callbacks = [
        # first: the validation task metrics it adds to the logs are what the others see
        ValidationReport(run_dir / "logs", splits.example_input("val"), datasets["val"], recipe.task, splits.output_names,
                         to_outputs, splits.input_spec, pairs=bool(training.pairs), every=training.image_every,
                         skip=("mae",) if training.loss in L1_LOSSES else ()),
        keras.callbacks.BackupAndRestore(str(run_dir / "backup")),  # resume after an interruption
        *tensorboard_callbacks(run_dir / "logs"),
        HistoryCSV(run_dir / "history.csv"),
        keras.callbacks.ModelCheckpoint(str(run_dir / BEST), monitor=training.monitor, save_best_only=True,
                                        mode=training.monitor_mode),
    ]
    if training.batch_norm_statistics == "recompute":
        callbacks.insert(0, BatchNormStatistics(splits.train[0], seed=training.seed))
    schedule = epoch_schedule(training.schedule, initial_learning_rate(training.optimizer))
    if schedule:
        callbacks.append(schedule)
    if training.early_stopping is not None:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=training.monitor, **{"mode": training.monitor_mode, **training.early_stopping}))
    if training.reduce_lr_on_plateau is not None:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor=training.monitor, **{"mode": training.monitor_mode, **training.reduce_lr_on_plateau}))
    monitored = _monitored_history(run_dir, training.monitor)
    if monitored:
        callbacks.append(ResumedMonitors(monitored, [c for c in callbacks if isinstance(c, (
            keras.callbacks.ModelCheckpoint, keras.callbacks.EarlyStopping, keras.callbacks.ReduceLROnPlateau))]))
    if minutes is not None:
        callbacks.append(TimeBudget(60 * minutes))  # last: the epoch is recorded and backed up first
    return callbacks


def _monitored_history(run_dir: Path, monitor: str) -> list[float]:
    """The monitored value of each epoch a resumed run has finished ([] for a new run)."""
    import pandas as pd

    history = run_dir / "history.csv"
    if not (history.is_file() and history.stat().st_size):
        return []
    table = pd.read_csv(history)
    return [float(v) for v in table[monitor]] if monitor in table else []


def write_report(run_dir: Path, name: str, report: dict, y_true, outputs) -> None:
    """``<name>.json`` (strict JSON: NaN as null) plus one PNG per figure under ``plots/``."""
    (run_dir / f"{name}.json").write_text(strict_json(report))
    plots = run_dir / "plots"
    plots.mkdir(exist_ok=True)
    for figure_name, figure in report_figures(report, y_true, outputs).items():
        (plots / f"{name}_{figure_name}.png").write_bytes(figure_to_png(figure))


# ---------------------------------------------------------------- run directories

def read_run_record(run_dir: Path) -> dict:
    path = Path(run_dir) / RECORD_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise RunError(path, "not a tf_ecg run directory (no run.json)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RunError(path, f"corrupt run record ({error})") from None


def load_run_recipe(run_dir: str | Path) -> Recipe:
    """The resolved recipe a run directory was trained with."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunError(run_dir, "run directory not found")
    if not (run_dir / RECIPE_FILE).is_file():
        raise RunError(run_dir, f"not a tf_ecg run directory (no {RECIPE_FILE})")
    return load_recipe(run_dir / RECIPE_FILE)


def _check_run_dir(recipe: Recipe, run_dir: Path, restart: bool) -> str:
    """Checks ``run_dir`` before any work: returns "new", "replace", "resume" or "finished"."""
    if run_dir.exists() and not run_dir.is_dir():
        raise OutputPathError(run_dir, "exists and is not a directory")
    if not run_dir.exists() or all(p.name in LOCK_FILES for p in run_dir.iterdir()):
        return "new"
    strangers = sorted(p.name for p in run_dir.iterdir() if not _written_by_runs(p.name))
    if not (run_dir / RECIPE_FILE).is_file() or strangers:
        raise OutputPathError(run_dir, f"holds files that are not a tf_ecg run ({strangers[:5]}); "
                                       f"choose an empty or new --run-dir")
    if restart:
        return "replace"
    previous = load_recipe(run_dir / RECIPE_FILE)
    changed = differences(previous.to_dict(), recipe.to_dict())
    # any hardware resumes, and so does a run that now checks its shards
    changed = [key for key in changed if key not in ("name", "data.verify") and not key.startswith("runtime.")]
    if changed:
        raise RunError(run_dir, f"holds a run of a different recipe (differing: {', '.join(changed)}); "
                                f"use another --run-dir, or --restart to replace it")
    return "finished" if (run_dir / "test_metrics.json").is_file() else "resume"


def _written_by_runs(name: str) -> bool:
    return name in RUN_FILES or name in LOCK_FILES or name.startswith("evaluate_")  # evaluate_<which>_<split>.json


def _clear_run(run_dir: Path) -> None:
    """Remove what a run (or an evaluation of it) wrote, and nothing else, from ``run_dir``."""
    for path in run_dir.iterdir():
        if not _written_by_runs(path.name) or path.name in LOCK_FILES:  # the lock stays with its holder
            continue
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _write_run_record(run_dir: Path, record: dict) -> None:
    staging = run_dir / f".{RECORD_FILE}.partial"
    staging.write_text(strict_json(record))
    staging.replace(run_dir / RECORD_FILE)


def train(recipe: Recipe, run_dir: str | Path, data_root=None, splits: Splits | None = None,
          verbose: int = 2, restart: bool = False, command: list[str] | None = None,
          minutes: float | None = None) -> TrainingResult:
    """Run a recipe into ``run_dir``; running it again after an interruption resumes it.

    ``minutes``: start no epoch after this much wall time; the run is then left paused
    (``run.json`` status "paused", ``result.paused``) and the same call resumes it.
    ``restart``: replace a run already in ``run_dir`` (only files a run writes are removed).
    A directory holding another recipe's run, or files that are not a run, is refused
    before any work starts; a run that fails before its first epoch leaves nothing behind.
    """
    started = time.time()
    requested = Path(run_dir)
    run_dir = worker_directory(requested, recipe.runtime)  # the chief's is the run directory
    _check_run_dir(recipe, run_dir, restart)  # before the lock writes into a directory that is not ours
    with run_lock(run_dir) as created:  # one writer per run directory
        return _train_locked(recipe, run_dir, requested, created, data_root, splits, verbose, restart, command,
                             minutes, started)


def _train_locked(recipe: Recipe, run_dir: Path, requested: Path, created: bool, data_root, splits, verbose: int,
                  restart: bool, command, minutes: float | None, started: float) -> TrainingResult:
    state = _check_run_dir(recipe, run_dir, restart)  # again: another process may have written it meanwhile
    if state == "finished":
        raise RunError(run_dir, "this run has finished (test_metrics.json): evaluate or export it, "
                                "or pass --restart to train it again")
    strategy = make_strategy(recipe.runtime)  # before a data source starts TensorFlow
    splits = splits or load_source(recipe.data, data_root)
    if not isinstance(splits, Splits):  # streamed: what needs every training array at once is refused
        for key, value in (("training.pairs", recipe.training.pairs),
                           ("training.batch_norm_statistics", recipe.training.batch_norm_statistics == "recompute")):
            if value:
                raise RecipeError(recipe.path, f"{key} needs the training data in memory; the 'shards' source "
                                               f"streams them (use the data set's own source)")
    with runtime_context(recipe.runtime, strategy) as runtime, splits.naming_read_errors():
        result = _train(recipe, run_dir, state, created, splits, runtime, started, verbose, command, minutes)
    if run_dir != requested:  # another worker's own directory: the chief holds the run
        shutil.rmtree(run_dir, ignore_errors=True)
    return result


def _train(recipe: Recipe, run_dir: Path, state: str, created: bool, splits: Splits, runtime: Runtime,
           started: float, verbose: int, command, minutes: float | None) -> TrainingResult:
    training, as_written = recipe.training, recipe
    if runtime.learning_rate(1.0) != 1.0:  # explicit in the recipe, and recorded
        training = dataclasses.replace(training, optimizer={
            **training.optimizer, "learning_rate": runtime.learning_rate(training.optimizer.get("learning_rate", 1e-3))})
        recipe = dataclasses.replace(recipe, training=training)
    if runtime.multi_worker:
        training = dataclasses.replace(training, drop_remainder=True)  # workers step in lockstep on full batches
        recipe = dataclasses.replace(recipe, training=training)
        _check_last_batches(recipe, splits, runtime.replicas)
    print(f"runtime: {runtime.strategy_name} ({keras.backend.backend()}), {runtime.replicas} replica(s), global batch "
          f"{training.batch_size} = {runtime.replicas} x {runtime.per_replica_batch(training.batch_size)}, "
          f"{recipe.runtime.mixed_precision}, learning rate {initial_learning_rate(training.optimizer):g}")
    # Seeded here, after the data: the model's initial weights depend on the seed alone, not
    # on what a source drew before (the DeepFake generator is built once per process).
    keras.utils.set_random_seed(training.seed)
    num_outputs = 1 if recipe.task == "binary" else len(splits.output_names)
    model = compile_model(recipe, num_outputs, splits.example_shape, runtime.jit_compile)
    if runtime.multi_worker:
        fit_under_multi_worker(model)
    if training.output_bias == "train_median":
        start_at_median(model, splits.target_median())
    to_outputs = output_transform(recipe)
    datasets = make_datasets(splits, training)
    record = {"status": "running", "started": _now(), "recipe": str(recipe.path), "overrides": recipe.overrides,
              "seed": training.seed, "command": command if command is not None else sys.argv,
              "machine": machine_info(), "runtime": {**runtime.record(training.batch_size),
                                                     "learning_rate": training.optimizer.get("learning_rate"),
                                                     "drop_remainder": training.drop_remainder},
              "data": {"source": recipe.data["source"], "info": splits.info, "fingerprint": splits.fingerprint()},
              "model": {"name": recipe.model.name, "parameters": int(model.count_params())}}
    if state == "replace":  # only now that the data and the model are ready
        _clear_run(run_dir)
    try:
        (run_dir / RECIPE_FILE).write_text(as_written.to_toml())
        if state == "resume":
            record["resumed"] = True
            if read_run_record(run_dir).get("data", {}).get("fingerprint") != record["data"]["fingerprint"]:
                raise RunError(run_dir, "the data differ from the data this run started with "
                                        "(run.json fingerprint); --restart to train on the new data")
        _write_run_record(run_dir, record)
        write_run_summaries(run_dir / "logs", as_written, None)
        model.fit(datasets["train"], validation_data=datasets["val"], epochs=training.epochs, verbose=verbose,
                  shuffle=False, callbacks=_callbacks(recipe, run_dir, splits, datasets, to_outputs, minutes))
    except PatienceSpent as spent:
        print(f"training had ended when it was interrupted: {spent}")
        shutil.rmtree(run_dir / "backup", ignore_errors=True)  # as a finished fit leaves it
    except TimeBudgetSpent as spent:
        print(f"paused after epoch {spent.epochs_done} of {training.epochs}: the {minutes:g}-minute budget is spent")
        seconds = time.time() - started
        _write_run_record(run_dir, {**record, "status": "paused", "paused": _now(), "seconds": round(seconds, 1),
                                    "epochs_run": _epochs_run(run_dir)})
        return TrainingResult(run_dir, model, splits, None, seconds)
    except Exception:
        if created and not (run_dir / "backup").exists():
            shutil.rmtree(run_dir, ignore_errors=True)  # nothing half-made is left behind
        raise
    model.save(run_dir / FINAL)
    if training.keep == "best" and (run_dir / BEST).exists():
        model = keras.models.load_model(run_dir / BEST)
    y_test = dataset_targets(datasets["test"])
    outputs = to_outputs(model.predict(datasets["test"], verbose=0))
    report = evaluation_report(recipe.task, y_test, outputs, splits.output_names, training.thresholds)
    report["model_kept"] = training.keep
    np.savez_compressed(run_dir / TEST_OUTPUTS, outputs=outputs, labels=y_test)  # re-scorable without the model
    raw_val, y_val = model.predict(datasets["val"], verbose=0), dataset_targets(datasets["val"])
    np.savez_compressed(run_dir / VAL_OUTPUTS, raw=raw_val, labels=y_val)
    add_interval_coverage(report, recipe, raw_val, y_val, y_test, outputs)
    (run_dir / "input_spec.json").write_text(strict_json(
        {"input_spec": splits.input_spec.to_dict(), "output_names": splits.output_names,
         "task": recipe.task, "outputs": training.outputs, "thresholds": training.thresholds,
         "data_info": splits.info}))
    write_report(run_dir, "test_metrics", report, y_test, outputs)
    write_run_summaries(run_dir / "logs", as_written, report)
    write_attribution_summaries(run_dir / "logs", model, datasets["val"], splits.input_spec, splits.output_names,
                                recipe)
    seconds = time.time() - started
    _write_run_record(run_dir, {**record, "status": "finished", "finished": _now(), "seconds": round(seconds, 1),
                                "epochs_run": _epochs_run(run_dir), "test_metrics": "test_metrics.json"})
    return TrainingResult(run_dir, model, splits, report, seconds)


def _check_last_batches(recipe: Recipe, splits, replicas: int) -> None:
    """A last val / test batch smaller than the number of replicas would leave a replica an
    empty batch, which Keras 3 models cannot take: refuse it before training."""
    batch = recipe.training.batch_size
    for split in ("val", "test"):
        last = splits.size(split) % batch
        if 0 < last < replicas:
            raise RecipeError(recipe.path, f"the {split} split's last batch holds {last} of {splits.size(split)} "
                                           f"examples, fewer than the {replicas} replicas: choose a training.batch_size "
                                           f"that leaves at least {replicas} (or none) in the last batch")


def _epochs_run(run_dir: Path) -> int:
    history = run_dir / "history.csv"
    return max(0, len(history.read_text().splitlines()) - 1) if history.is_file() else 0


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


# ---------------------------------------------------------------- evaluation of a finished run

def add_interval_coverage(report: dict, recipe: Recipe, raw_val, y_val, y, values) -> None:
    """A regressor's report gains the split-conformal interval its export serves (fitted on
    the validation outputs) and how often it held: coverage and mean width per target."""
    if recipe.task != "regression":
        return
    half_width = conformal_half_width(np.asarray(y_val, float).reshape(len(y_val), -1)
                                      - np.asarray(raw_val, float).reshape(len(y_val), -1))
    report["interval"] = {"method": "split conformal, fitted on the validation split", "level": INTERVAL_LEVEL,
                          "per_target": dict(zip(report["target_names"], [
                              {"half_width": float(h), "coverage": c, "mean_width": float(2 * h)}
                              for h, c in zip(half_width, interval_coverage(y, values, half_width)["coverage"])]))}


def validation_outputs(run_dir: Path, model: keras.Model, which: str = "best", data_root=None) -> tuple[np.ndarray, np.ndarray]:
    """(raw outputs, labels) of the run's kept model on its validation split: those the run
    wrote when it finished, else (a run from before tf_ecg wrote them, or ``which`` is not the
    kept model) predicted now on the validation split rebuilt from ``data_root``."""
    recipe = load_run_recipe(run_dir)
    if which == recipe.training.keep and (run_dir / VAL_OUTPUTS).is_file():
        with np.load(run_dir / VAL_OUTPUTS) as stored:
            return stored["raw"], stored["labels"]
    splits = load_source(recipe.data, data_root)
    data = evaluation_dataset(splits, recipe.training, "val")
    with splits.naming_read_errors():
        return model.predict(data, verbose=0), dataset_targets(data)


def evaluate_run(run_dir: str | Path, which: str = "best", split: str = "test", data_root=None) -> dict:
    """Score ``<run_dir>/<which>.keras`` on one split rebuilt from the run's resolved recipe;
    writes ``evaluate_<which>_<split>.json`` and plots. The report says whether the data
    match the run's fingerprint (a different data root can hold different records)."""
    run_dir = Path(run_dir)
    recipe = load_run_recipe(run_dir)
    model_file = run_dir / f"{which}.keras"
    if not model_file.is_file():
        raise RunError(model_file, "trained model not found: the run has not finished")
    model = keras.models.load_model(model_file)
    splits = load_source(recipe.data, data_root)
    data = evaluation_dataset(splits, recipe.training, split)
    with splits.naming_read_errors():
        y = dataset_targets(data)
        outputs = output_transform(recipe)(model.predict(data, verbose=0))
    report = evaluation_report(recipe.task, y, outputs, splits.output_names, recipe.training.thresholds)
    if recipe.task == "regression":
        add_interval_coverage(report, recipe, *validation_outputs(run_dir, model, which, data_root), y, outputs)
    recorded = read_run_record(run_dir).get("data", {}).get("fingerprint", {}).get(split)
    report["data_matches_run"] = recorded == splits.fingerprint([split])[split]  # only the split scored
    report["model"] = str(model_file)
    write_report(run_dir, f"evaluate_{which}_{split}", report, y, outputs)
    return report
