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
from tf_ecg.errors import ECGDataError

METADATA = Path("assets.extra") / "tf_ecg.json"


def serving_model(model: keras.Model, task: str, outputs: str) -> keras.Model:
    if outputs != "logits" or task == "regression":
        return model
    activation = "softmax" if task == "multiclass" else "sigmoid"
    probabilities = keras.layers.Activation(activation, name="probabilities")(model.output)
    return keras.Model(model.input, probabilities, name=model.name)


def export_run(run_dir: str | Path, out_dir: str | Path, which: str = "best") -> Path:
    """Export ``<run_dir>/<which>.keras`` as a SavedModel into ``out_dir`` (atomically)."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    model_file = run_dir / f"{which}.keras"
    if not model_file.is_file():
        raise ECGDataError(model_file, "trained model not found (has the run finished?)")
    spec_file = run_dir / "input_spec.json"
    if not spec_file.is_file():
        raise ECGDataError(spec_file, "run metadata not found (has the run finished?)")
    metadata = json.loads(spec_file.read_text())
    metadata["source_model"] = str(model_file)
    model = keras.models.load_model(model_file)
    return export_model(serving_model(model, metadata["task"], metadata["outputs"]), out_dir, metadata)


def export_model(model: keras.Model, out_dir: str | Path, metadata: dict) -> Path:
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        model.export(str(staging / "model"), format="tf_saved_model", verbose=False)
        (staging / "model" / METADATA).parent.mkdir(parents=True, exist_ok=True)
        (staging / "model" / METADATA).write_text(json.dumps(metadata, indent=2))
        if out_dir.exists():
            shutil.rmtree(out_dir)
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


def load_exported(saved_model_dir: str | Path) -> ExportedModel:
    saved_model_dir = Path(saved_model_dir)
    if not (saved_model_dir / "saved_model.pb").is_file():
        raise ECGDataError(saved_model_dir, "not a SavedModel (no saved_model.pb)")
    metadata_file = saved_model_dir / METADATA
    if not metadata_file.is_file():
        raise ECGDataError(metadata_file, "not exported by tf_ecg (no tf_ecg.json)")
    return ExportedModel(tf.saved_model.load(str(saved_model_dir)), json.loads(metadata_file.read_text()))


def read_signal(path: str | Path) -> tuple[np.ndarray, float | None, list[str] | None]:
    """(signal (samples, leads), sampling rate or None if unknown, lead names or None)."""
    path = Path(path)
    if path.suffix == ".npy":
        if not path.is_file():
            raise ECGDataError(path, "file not found")
        signal = np.load(path)
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
            raise ECGDataError(input_path, f"windows of shape {signal.shape[1:]}, the model needs "
                                           f"{(spec.length, spec.num_leads)}")
        windows, positions = normalise(signal, spec.normalisation), np.arange(len(signal))
    else:
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
        # One sigmoid = P(names[1]); a window is names[1] iff p > 0.5, and the recording
        # iff at least half of its windows are (the glucose study's rule).
        positive = outputs[:, 0] > 0.5
        result["predicted"] = [names[int(p)] for p in positive]
        votes = {names[0]: int((~positive).sum()), names[1]: int(positive.sum())}
        result["summary"] = {"votes": votes, "recording": names[1] if positive.sum() >= len(positive) / 2 else names[0]}
    else:
        positive = outputs > 0.5
        result["summary"] = {"positive_fraction": dict(zip(names, positive.mean(axis=0).tolist()))}
    return result
