"""SavedModel export of a trained run, and inference on new recordings with it.

The export serves probabilities (softmax/sigmoid folded into the graph for models
trained on logits) and carries ``assets.extra/tf_ecg.json``: the input spec, output
names and task, so that ``predict`` can prepare a WFDB record, an Apple Watch CSV or
a ``.npy`` exactly as the training data was prepared.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tf_ecg.data.applewatch import read_applewatch_csv
from tf_ecg.data.spec import InputSpec, normalise, prepare_windows
from tf_ecg.data.wfdb_records import read_record, record_path
from tf_ecg.data.paths import check_output_dir
from tf_ecg.errors import ECGDataError, RunError
from tf_ecg.evaluation.metrics import strict_json

METADATA = Path("assets.extra") / "tf_ecg.json"


def serving_model(model: keras.Model, task: str, outputs: str) -> keras.Model:
    if outputs != "logits" or task == "regression":
        return model
    activation = "softmax" if task == "multiclass" else "sigmoid"
    probabilities = keras.layers.Activation(activation, name="probabilities")(model.output)
    return keras.Model(model.input, probabilities, name=model.name)


SAVED_MODEL_ENTRIES = {"saved_model.pb", "fingerprint.pb", "variables", "assets", "assets.extra"}


def is_tf_ecg_export(path: Path) -> bool:
    """A folder holding nothing but a SavedModel that tf_ecg exported (safe to replace)."""
    entries = {p.name for p in Path(path).iterdir()}
    return (Path(path) / METADATA).is_file() and "saved_model.pb" in entries and entries <= SAVED_MODEL_ENTRIES


def export_run(run_dir: str | Path, out_dir: str | Path, which: str = "best") -> Path:
    """Export ``<run_dir>/<which>.keras`` as a SavedModel into ``out_dir`` (atomically).

    The task, outputs and thresholds come from the run's resolved recipe. ``out_dir`` must
    be new, empty or an earlier tf_ecg export, and apart from the run directory."""
    from tf_ecg.training.trainer import load_run_recipe, read_run_record

    run_dir, out_dir = Path(run_dir), Path(out_dir)
    recipe = load_run_recipe(run_dir)
    check_output_dir(out_dir, is_tf_ecg_export, protect=[run_dir], what="SavedModel")
    model_file = run_dir / f"{which}.keras"
    spec_file = run_dir / "input_spec.json"
    if not model_file.is_file() or not spec_file.is_file():
        raise RunError(run_dir, f"the run has not finished (no {model_file.name} / {spec_file.name})")
    metadata = json.loads(spec_file.read_text())
    metadata.update({"task": recipe.task, "outputs": recipe.training.outputs,
                     "thresholds": recipe.training.thresholds, "recipe": recipe.to_dict(),
                     "run": {"dir": str(run_dir), "model": str(model_file),
                             "data_fingerprint": read_run_record(run_dir).get("data", {}).get("fingerprint")}})
    model = keras.models.load_model(model_file)
    return export_model(serving_model(model, recipe.task, recipe.training.outputs), out_dir, metadata)


def export_model(model: keras.Model, out_dir: str | Path, metadata: dict) -> Path:
    """Write a SavedModel with tf_ecg's metadata; what was at ``out_dir`` is replaced only
    when it is an earlier tf_ecg export (checked), and only once the new one is complete."""
    out_dir = check_output_dir(out_dir, is_tf_ecg_export, what="SavedModel")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        model.export(str(staging / "model"), format="tf_saved_model", verbose=False)
        (staging / "model" / METADATA).parent.mkdir(parents=True, exist_ok=True)
        (staging / "model" / METADATA).write_text(strict_json(metadata))
        if out_dir.exists():
            out_dir.rename(staging / "previous")  # only a checked tf_ecg export gets here
        (staging / "model").rename(out_dir)  # nothing half-written at out_dir
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir


class ExportedModel:
    """A loaded SavedModel (kept referenced: its serving function needs its variables)."""

    def __init__(self, loaded, metadata: dict):
        self.loaded, self.metadata = loaded, metadata

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        return np.asarray(self.loaded.serve(tf.constant(windows)))


METADATA_KEYS = ("input_spec", "output_names", "task")


def load_exported(saved_model_dir: str | Path) -> ExportedModel:
    saved_model_dir = Path(saved_model_dir)
    if not saved_model_dir.exists():
        raise ECGDataError(saved_model_dir, "SavedModel folder not found")
    if not (saved_model_dir / "saved_model.pb").is_file():
        raise ECGDataError(saved_model_dir, "not a SavedModel (no saved_model.pb in this folder)")
    metadata_file = saved_model_dir / METADATA
    if not metadata_file.is_file():
        raise ECGDataError(metadata_file, "not exported by tf_ecg (no tf_ecg.json)")
    try:
        metadata = json.loads(metadata_file.read_text())
        missing = [key for key in METADATA_KEYS if key not in metadata]
        InputSpec(**metadata["input_spec"]) if not missing else None
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError, AttributeError) as error:
        raise ECGDataError(metadata_file, f"corrupt tf_ecg metadata ({error})") from None
    if not isinstance(metadata, dict) or missing:
        raise ECGDataError(metadata_file, f"corrupt tf_ecg metadata (missing {missing})")
    return ExportedModel(tf.saved_model.load(str(saved_model_dir)), metadata)


def read_signal(path: str | Path) -> tuple[np.ndarray, float | None, list[str] | None]:
    """(signal (samples, leads), sampling rate or None if unknown, lead names or None)."""
    path = Path(path)
    if path.suffix == ".npy":
        if not path.is_file():
            raise ECGDataError(path, "file not found")
        try:
            signal = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as error:
            raise ECGDataError(path, f"not a readable .npy array ({error})") from None
        if signal.size == 0:
            raise ECGDataError(path, f"empty array (shape {signal.shape})")
        if not np.issubdtype(signal.dtype, np.number) or np.issubdtype(signal.dtype, np.complexfloating):
            raise ECGDataError(path, f"array of {signal.dtype}, expected real numbers")
        if signal.ndim not in (1, 2, 3):
            raise ECGDataError(path, f"array of shape {signal.shape}: expected (samples,), (samples, leads) "
                                     f"or (windows, length, leads)")
        return (signal[:, None] if signal.ndim == 1 else signal), None, None
    if path.suffix == ".csv":
        ecg = read_applewatch_csv(path, sampling_rate=None)
        return ecg.signal[:, None], ecg.sampling_rate, ["I"]
    record = read_record(record_path(path))
    return record.signal, record.sampling_rate, list(record.leads)


def predict_file(saved_model_dir: str | Path, input_path: str | Path, batch_size: int = 64) -> dict:
    """Per window (or beat) outputs of an exported model on one recording, plus a summary.

    A ``.npy`` holds either a (samples, leads) signal at the model's rate or ready
    windows (n, length, leads), which are normalised as in training.
    """
    exported = load_exported(saved_model_dir)
    metadata = exported.metadata
    spec = InputSpec(**metadata["input_spec"])
    signal, rate, leads = read_signal(input_path)
    if signal.ndim == 3:
        if signal.shape[1:] != (spec.length, spec.num_leads):
            hint = " (transposed? windows are (n, length, leads))" if signal.shape[1:] == (spec.num_leads, spec.length) else ""
            raise ECGDataError(input_path, f"windows of shape {signal.shape[1:]}, the model needs "
                                           f"{(spec.length, spec.num_leads)}{hint}")
        bad = ~np.isfinite(signal).all(axis=(1, 2))
        if bad.any():
            raise ECGDataError(input_path, f"{int(bad.sum())} window(s) hold NaN or infinite samples "
                                           f"(first: window {int(np.argmax(bad))})")
        windows, positions = normalise(signal, spec.normalisation), np.arange(len(signal))
    else:
        if signal.shape[0] < signal.shape[1]:
            raise ECGDataError(input_path, f"signal of shape {signal.shape} has more leads than samples: "
                                           f"transposed? a signal is (samples, leads)")
        windows, positions = prepare_windows(signal, spec.sampling_rate if rate is None else rate,
                                             leads, spec, input_path)
    outputs = np.concatenate([exported(windows[i:i + batch_size]) for i in range(0, len(windows), batch_size)])
    names = metadata["output_names"]
    result = {"input": str(input_path), "task": metadata["task"], "kind": spec.kind,
              "positions": positions.tolist(), "outputs": outputs.tolist(), "output_names": names}
    if metadata["task"] == "regression":
        result["summary"] = {name: float(outputs[:, i].mean()) for i, name in enumerate(names)}
    elif metadata["task"] == "multiclass":
        votes = np.bincount(outputs.argmax(axis=1), minlength=len(names))
        result["predicted"] = [names[i] for i in outputs.argmax(axis=1)]
        result["summary"] = {"votes": dict(zip(names, votes.tolist())), "majority": names[int(votes.argmax())]}
    elif metadata["task"] == "binary":
        # One sigmoid = P(names[1]); a window is names[1] iff p > threshold (0.5 unless the
        # recipe set one), and the recording iff at least half of its windows are (the
        # glucose study's rule).
        positive = outputs[:, 0] > float(np.ravel(metadata.get("thresholds", 0.5))[0])
        result["predicted"] = [names[int(p)] for p in positive]
        votes = {names[0]: int((~positive).sum()), names[1]: int(positive.sum())}
        result["summary"] = {"votes": votes, "recording": names[1] if positive.sum() >= len(positive) / 2 else names[0]}
    else:
        positive = outputs > np.broadcast_to(np.asarray(metadata.get("thresholds", 0.5), float), (len(names),))
        result["summary"] = {"positive_fraction": dict(zip(names, positive.mean(axis=0).tolist()))}
    return result
