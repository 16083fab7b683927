"""Leave-one-patient-out protocol of the MIT-BIH Conv1D notebook (system 4), with the
patient-transfer variant.

Spec: ``originals/4-mitbih-loo-conv1d.md``. Beats: 160-sample windows ``[R - 80, R + 80)``
of both leads, every beat symbol but Q (14 classes, labels in order of first appearance:
this reproduces the original's printed normal-beat share 0.6856484950382865). For each
of the 48 records: train a fresh ``loo_conv1d`` on the other 47 (Adam 1e-3, batch 32, 10
epochs, per-lead min-max over the training set; the held-out record scaled on its own
min/max as in the original) and predict every held-out beat (baseline). Transfer: freeze
the three convolutions of that model, fine-tune its two Dense layers on the record's first
10 minutes and predict its last 20 minutes (the baseline is scored on the same beats too).

Each fold writes ``fold_<record>.npz`` (predictions) when done, so a re-run resumes.
"""

from __future__ import annotations

import json
import time
import shutil
from dataclasses import asdict
from pathlib import Path

import keras
import numpy as np
from tqdm.auto import tqdm

from tf_ecg.config import LeaveOneOutConfig
from tf_ecg.data import mitbih
from tf_ecg.errors import ECGDataError, OutputPathError, RunError
from tf_ecg.evaluation.metrics import aami_report, label_report, strict_json
from tf_ecg.evaluation.plots import confusion_matrix_figure, figure_to_png
from tf_ecg.registry import build_model
from tf_ecg.training.callbacks import png_summary, summary_writer

FINE_TUNE_END = 10 * 60 * mitbih.SAMPLING_RATE               # first 10 minutes: R peak < 216,000
EVALUATION_START = 650_000 - 20 * 60 * mitbih.SAMPLING_RATE  # last 20 minutes: R peak >= 218,000
VARIANTS = ("baseline", "baseline_last20", "transfer")


def _scale(waves: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """Per-lead min-max over all beats of ``reference`` (default: the beats themselves)."""
    reference = waves if reference is None else reference
    low = reference.min(axis=(0, 1), keepdims=True)
    span = np.maximum(reference.max(axis=(0, 1), keepdims=True) - low, 1e-8)
    return ((waves - low) / span).astype(np.float32)


def _compile(model: keras.Model, learning_rate: float) -> None:
    model.compile(keras.optimizers.Adam(learning_rate),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])


def run_fold(beats: mitbih.BeatSet, labels: np.ndarray, num_classes: int, record: str,
             config: LeaveOneOutConfig, log_dir: Path | None = None) -> dict[str, np.ndarray]:
    """Train on every record but ``record``; returns true and predicted labels per variant."""
    keras.utils.set_random_seed(config.seed)
    held_out = beats.records == record
    train_waves = beats.waves[~held_out]
    x_train = _scale(train_waves)
    model = build_model("loo_conv1d", num_classes=num_classes, output_activation=config.output_activation or None)
    _compile(model, config.learning_rate)

    def callbacks(name):
        return [keras.callbacks.TensorBoard(str(log_dir / record / name))] if log_dir else []

    model.fit(x_train, labels[~held_out], batch_size=config.batch_size, epochs=config.epochs, shuffle=True,
              verbose=0, callbacks=callbacks("baseline"))
    test = beats.subset(held_out)
    y_test = labels[held_out]
    reference = None if config.test_scaling == "own" else train_waves
    predicted = model.predict(_scale(test.waves, reference), batch_size=1024, verbose=0).argmax(axis=1)
    last20 = test.samples >= EVALUATION_START
    result = {"baseline_true": y_test, "baseline_pred": predicted,
              "baseline_last20_true": y_test[last20], "baseline_last20_pred": predicted[last20]}
    if config.transfer:
        first10 = test.samples < FINE_TUNE_END
        for layer in model.layers:
            if layer.name.startswith("conv"):
                layer.trainable = False
        _compile(model, config.learning_rate)  # a fresh Adam; recompiling applies the freezing
        fine_tune = test.waves[first10]
        model.fit(_scale(fine_tune), y_test[first10], batch_size=config.batch_size, epochs=config.fine_tune_epochs,
                  shuffle=True, verbose=0, callbacks=callbacks("transfer"))
        reference = None if config.test_scaling == "own" else fine_tune
        result["transfer_true"] = y_test[last20]
        result["transfer_pred"] = model.predict(_scale(test.waves[last20], reference), batch_size=1024,
                                                verbose=0).argmax(axis=1)
    return result


def run_leave_one_out(mitdb_dir: Path, out_dir: Path, records=None, config: LeaveOneOutConfig | None = None,
                      pool=None, tensorboard: bool = True, on_fold=None) -> dict:
    """Hold out each of ``records`` in turn (default: every record of the pool), training on
    the rest of ``pool`` (default: every record present); finished folds are skipped, so an
    interrupted run resumes. ``on_fold(path)`` is called with each fold's file as it is
    written. Returns and writes the pooled report (``report.json``)."""
    config = config or LeaveOneOutConfig()
    out_dir = Path(out_dir)
    settings = out_dir / "config.json"
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputPathError(out_dir, "output path is a file, not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not settings.is_file():
        raise OutputPathError(out_dir, "folder holds files that are not a leave-one-out run; use a new folder")
    if settings.exists() and json.loads(settings.read_text()) != asdict(config):
        changed = sorted(k for k, v in json.loads(settings.read_text()).items() if asdict(config).get(k) != v)
        raise RunError(out_dir, f"holds folds of a different configuration (differing: {', '.join(changed)}); "
                                f"use another folder")
    beats, labels, symbols = mitbih.leave_one_out_beats(mitdb_dir, pool)
    folds = list(records) if records is not None else list(dict.fromkeys(beats.records))
    outside = sorted(set(folds) - set(beats.records))
    if outside:
        raise ECGDataError(mitdb_dir, f"records {outside} are not in the pool of beats "
                                      f"(pool: {pool or 'all records present'})")
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    settings.write_text(json.dumps(asdict(config), indent=2))
    try:
        _run_folds(beats, labels, symbols, folds, config, out_dir, tensorboard, on_fold)
    except Exception:
        if created and not list(out_dir.glob("fold_*.npz")):
            shutil.rmtree(out_dir, ignore_errors=True)  # nothing finished: leave nothing behind
        raise
    report = pooled_report(out_dir, folds, symbols)
    (out_dir / "report.json").write_text(strict_json(report))
    write_pooled_figures(out_dir, report, tensorboard)
    return report


def _run_folds(beats, labels, symbols, folds, config: LeaveOneOutConfig, out_dir: Path, tensorboard: bool,
               on_fold=None) -> None:
    for record in tqdm(folds, desc="leave-one-out folds", unit="fold"):
        path = out_dir / f"fold_{record}.npz"
        if path.exists():
            continue
        started = time.time()
        result = run_fold(beats, labels, len(symbols), record, config, out_dir / "tensorboard" if tensorboard else None)
        staging = out_dir / f"fold_{record}.partial.npz"
        np.savez(staging, seconds=time.time() - started, **result)
        staging.replace(path)
        if on_fold is not None:
            on_fold(path)


def write_pooled_figures(out_dir: Path, report: dict, tensorboard: bool = True) -> None:
    """AAMI and beat-symbol confusion matrices of every variant as PNGs in ``plots/`` and as
    TensorBoard images in ``tensorboard/pooled`` (step = number of folds pooled)."""
    plots = Path(out_dir) / "plots"
    plots.mkdir(exist_ok=True)
    writer = summary_writer(Path(out_dir) / "tensorboard", "pooled") if tensorboard else None
    for variant, scores in report["variants"].items():
        for kind, key, names in (("aami", "pooled_aami", mitbih.AAMI_CLASSES), ("symbols", "pooled", report["classes"])):
            figure = confusion_matrix_figure(scores[key]["confusion_matrix"], list(names),
                                             f"{variant}, {report['folds']} folds (rows = true)")
            png = figure_to_png(figure)
            (plots / f"{variant}_{kind}_confusion.png").write_bytes(png)
            if writer is not None:
                png_summary(writer, f"pooled/{variant}_{kind}_confusion", png, report["folds"])


def pooled_report(out_dir: Path, records, symbols: list[str]) -> dict:
    """Per fold and pooled over folds, per variant: accuracy and macro-F1 over the symbols,
    and the AAMI report (N, S = SVEB, V = VEB, F, Q with Se and +P)."""
    folds = {r: np.load(Path(out_dir) / f"fold_{r}.npz") for r in records}
    report = {"classes": symbols, "folds": len(folds), "variants": {}}
    for variant in VARIANTS:
        present = {r: f for r, f in folds.items() if f"{variant}_true" in f}
        if not present:
            continue
        y_true = np.concatenate([f[f"{variant}_true"] for f in present.values()])
        y_pred = np.concatenate([f[f"{variant}_pred"] for f in present.values()])
        names = np.array(symbols)
        per_fold = {r: {"n": int(len(f[f"{variant}_true"])),
                        "accuracy": float((f[f"{variant}_true"] == f[f"{variant}_pred"]).mean())
                        if len(f[f"{variant}_true"]) else float("nan")} for r, f in present.items()}
        report["variants"][variant] = {
            "pooled": label_report(y_true, y_pred, symbols),
            "pooled_aami": aami_report(names[y_true], names[y_pred]),
            "per_fold": per_fold,
            "mean_fold_accuracy": float(np.nanmean([v["accuracy"] for v in per_fold.values()]))}
    report["seconds"] = float(sum(float(f["seconds"]) for f in folds.values()))
    return report
