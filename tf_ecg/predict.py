"""Predictions of an exported model: one recording in any format, or a CODE HDF5 file.

``predict_file`` reads a WFDB record, an Apple Watch / Apple Health CSV or a ``.npy``
(``tf_ecg.data.formats.recording``: millivolts, the file's own rate and leads), prepares windows
as training did (``tf_ecg.data.spec.prepare_windows``) and summarises the model's outputs
per recording. ``predict_code_hdf5`` streams the exams of a CODE-format HDF5 file in
batches to an (N, classes) ``.npy`` or ``.csv`` without holding the file in memory.
"""

from __future__ import annotations

import csv
import json
import shutil
import tempfile
import warnings
from pathlib import Path

import h5py
import numpy as np
from tqdm.auto import tqdm

from tf_ecg.data.formats.code import SAMPLING_RATE as CODE_RATE, open_tracings, read_exams
from tf_ecg.data.conventions import to_millivolts, unit_name
from tf_ecg.data.paths import check_new_file
from tf_ecg.data.formats.recording import read_recording
from tf_ecg.data.plausibility import amplitude_warning, flat_leads
from tf_ecg.data.spec import InputSpec, check_not_flat, model_lead_names, prepare_windows
from tf_ecg.errors import ECGDataError, ImplausibleInputWarning
from tf_ecg.evaluation.calibration import classification_confidence, confidence_threshold
from tf_ecg.evaluation.glucose import beat_decisions, recording_decision
from tf_ecg.saved_model import ExportedModel, load_exported

HDF5_SUFFIXES = (".hdf5", ".h5", ".hdf")


def recording_windows(exported: ExportedModel, input_path: Path, sampling_rate, units) -> tuple[np.ndarray, np.ndarray, list]:
    """(the windows the export takes: mV at its rate; their positions; warnings about the input)."""
    spec = InputSpec(**exported.metadata["input_spec"])
    if spec.kind == "noise":  # the DeepFake generator: noise in, ECGs out
        noise = read_recording(input_path, spec.sampling_rate, None, spec.sampling_rate).signal
        noise = noise[None] if noise.ndim == 2 else noise
        if noise.shape[1:] != (spec.length, spec.num_leads):
            raise ECGDataError(input_path, f"noise of shape {noise.shape[1:]}, the generator needs "
                                           f"{(spec.length, spec.num_leads)}")
        return noise, np.arange(len(noise)), []
    recording = read_recording(input_path, sampling_rate, units, default_rate=spec.sampling_rate)
    signal = recording.signal
    notes = _input_warnings(recording, spec)
    if recording.is_windows:
        if signal.shape[1:] != (spec.length, spec.num_leads):
            hint = " (transposed? windows are (n, length, leads))" if signal.shape[1:] == (spec.num_leads, spec.length) else ""
            raise ECGDataError(input_path, f"windows of shape {signal.shape[1:]}, the model needs "
                                           f"{(spec.length, spec.num_leads)}{hint}")
        if not np.isclose(recording.sampling_rate, spec.sampling_rate):
            raise ECGDataError(input_path, f"ready windows must be at the model's {spec.sampling_rate:g} Hz, "
                                           f"not {recording.sampling_rate:g} Hz")
        if spec.kind == "glucose_beat":  # the appended RR interval is in samples: no unit to convert
            signal = signal.copy()
            signal[:, -1] /= to_millivolts(np.ones(1), units or spec.units, input_path)[0]
        else:
            check_not_flat(signal.reshape(-1, signal.shape[-1]), model_lead_names(None, spec), input_path)
        return signal, np.arange(len(signal)), notes
    if signal.shape[0] < signal.shape[1]:
        raise ECGDataError(input_path, f"signal of shape {signal.shape} has more leads than samples: "
                                       f"transposed? a signal is (samples, leads)")
    return (*prepare_windows(signal, recording.sampling_rate, recording.leads, spec, input_path), notes)


def _input_warnings(recording, spec: InputSpec) -> list[str]:
    """An amplitude implausible for a surface ECG in the declared units, as a Python warning
    (``ImplausibleInputWarning``) and a line for the prediction output."""
    signal = recording.signal
    if recording.is_windows:
        if spec.kind == "glucose_beat":  # the last value of a glucose beat is its RR interval, not an amplitude
            signal = signal[:, :-1]
        signal = signal.reshape(-1, signal.shape[-1])
    message = amplitude_warning(signal, recording.units, str(recording.path))
    if message is None:
        return []
    warnings.warn(message, ImplausibleInputWarning, stacklevel=3)
    return [message]


NO_CALIBRATION = ("none: exported before tf_ecg calibrated its exports; the probabilities are the network's own "
                  "(export the run again to calibrate them)")


def predict_file(saved_model_dir: str | Path, input_path: str | Path, sampling_rate: float | None = None,
                 units: str | None = None, batch_size: int = 64, exported: ExportedModel | None = None,
                 raw: bool = False, target_accuracy: float | None = None) -> dict:
    """Per window (or beat) outputs of an exported model on one recording, plus a summary.

    ``sampling_rate`` / ``units``: what a file without a header holds (a ``.npy``, a
    values-only Apple Watch CSV); default: the model's own rate and millivolts (the glucose
    models: microvolts, as Apple Watch files are). A ``.npy`` holds a (samples, leads)
    signal or ready windows (n, length, leads) at the model's rate. ``raw``: the network's
    own probabilities instead of the calibrated ones. ``target_accuracy``: flag the windows
    whose confidence is below the level at which the model reached this accuracy on its
    validation split.
    """
    exported = exported or load_exported(saved_model_dir)  # ``exported``: already loaded (tf_ecg.load)
    metadata = exported.metadata
    calibration = metadata.get("calibration")
    threshold = _confidence_threshold(saved_model_dir, metadata, raw, target_accuracy)  # before the work
    spec = InputSpec(**metadata["input_spec"])
    if units is None and spec.units != "mV" and Path(input_path).suffix == ".npy":
        units = spec.units  # a headerless array for a microvolt model is taken to be in microvolts
    windows, positions, input_warnings = recording_windows(exported, Path(input_path), sampling_rate, units)
    outputs = np.concatenate([exported(windows[i:i + batch_size], raw=raw)
                              for i in range(0, len(windows), batch_size)])
    result = {"input": str(input_path), "task": metadata["task"], "kind": spec.kind,
              "positions": positions.tolist(), "output_names": metadata["output_names"], "warnings": input_warnings}
    result.update(summarise(outputs, metadata))
    if metadata["task"] in ("generator", "comparator"):
        return result
    result["calibration"] = NO_CALIBRATION if calibration is None else {
        key: calibration[key] for key in ("method", "temperature", "level", "half_width") if key in calibration}
    if calibration is not None and "temperature" in calibration:
        result["calibration"]["served"] = "raw" if raw else "calibrated"
    if calibration is not None and "half_width" in calibration:
        half_width = np.asarray(list(calibration["half_width"].values()), float)
        result["intervals"] = {"level": calibration["level"], "lower": (outputs - half_width).tolist(),
                               "upper": (outputs + half_width).tolist()}
    if threshold is not None:
        flagged = classification_confidence(outputs, metadata["task"]) < threshold
        result["flagged"] = flagged.tolist()
        result["summary"]["flagged"] = {"windows": int(flagged.sum()), "target_accuracy": target_accuracy,
                                        "confidence_below": threshold}
    return result


def _confidence_threshold(saved_model_dir, metadata: dict, raw: bool, target_accuracy: float | None) -> float | None:
    if target_accuracy is None:
        return None
    if not 0 < target_accuracy <= 1:
        raise ECGDataError(None, f"target accuracy {target_accuracy} must be in (0, 1]")
    table = (metadata.get("calibration") or {}).get("risk_coverage")
    if table is None:
        raise ECGDataError(saved_model_dir, "this export carries no validation risk-coverage table (a single-label "
                                            "classifier exported by this tf_ecg has one): export it again")
    if raw:
        raise ECGDataError(None, "a target accuracy is read from the calibrated confidences: drop --raw")
    return confidence_threshold(table, target_accuracy)


def summarise(outputs: np.ndarray, metadata: dict) -> dict:
    """Per-window decisions and the recording's summary, by task, with the exported thresholds."""
    names, task = metadata["output_names"], metadata["task"]
    thresholds = metadata.get("thresholds")
    thresholds = 0.5 if thresholds is None else thresholds
    if task == "generator":
        return {"outputs": outputs.tolist(), "summary": {"ecgs": len(outputs), "shape": list(outputs.shape[1:]),
                                                          "units": metadata.get("output_units")}}
    if task == "comparator":  # outputs: P(different) (n, 2, k) against the embedded reference bank
        beats, votes = beat_decisions(outputs)
        decision, recording_votes = recording_decision(outputs)
        return {"outputs": votes.tolist(), "output_kind": "same-class votes per beat (fast, glucose)",
                "predicted": [names[b] for b in beats],
                "summary": {"votes": dict(zip(names, np.bincount(beats, minlength=2).tolist())),
                            "recording_votes": dict(zip(names, recording_votes.tolist())),
                            "recording": names[decision]}}
    result = {"outputs": outputs.tolist()}
    if task == "regression":
        result["summary"] = {name: float(outputs[:, i].mean()) for i, name in enumerate(names)}
    elif task == "multiclass":
        votes = np.bincount(outputs.argmax(axis=1), minlength=len(names))
        result["predicted"] = [names[i] for i in outputs.argmax(axis=1)]
        result["summary"] = {"votes": dict(zip(names, votes.tolist())), "majority": names[int(votes.argmax())]}
    elif task == "binary":
        # One sigmoid = P(names[1]); a window is names[1] iff p > threshold, and the
        # recording iff at least half of its windows are (the glucose study's rule).
        positive = outputs[:, 0] > float(np.ravel(thresholds)[0])
        result["predicted"] = [names[int(p)] for p in positive]
        votes = {names[0]: int((~positive).sum()), names[1]: int(positive.sum())}
        result["summary"] = {"votes": votes, "recording": names[1] if positive.sum() >= len(positive) / 2 else names[0]}
    else:
        positive = outputs > np.broadcast_to(np.asarray(thresholds, float), (len(names),))
        result["predicted"] = [[n for n, p in zip(names, row) if p] for row in positive]
        result["summary"] = {"positive_fraction": dict(zip(names, positive.mean(axis=0).tolist()))}
    return result


def _exam_ids(handle: h5py.File, count: int) -> np.ndarray | None:
    if "exam_id" in handle and handle["exam_id"].shape[:1] == (count,):
        return np.asarray(handle["exam_id"][()]).reshape(count)
    return None


def predict_code_hdf5(saved_model_dir: str | Path, path: str | Path, out: str | Path, dataset: str = "tracings",
                      sampling_rate: float = CODE_RATE, units: str = "mV", batch_size: int = 32,
                      progress: bool = True) -> dict:
    """Scores of every exam of a CODE-format HDF5 file, in file order, to ``out``
    (``.npy``: an (N, classes) float32 array; ``.csv``: ``exam_id`` (when the file has
    one) and one column per class). Exams are read ``batch_size`` at a time, so memory does
    not grow with N; the output is written to a temporary file and moved into place whole.
    Leads are taken in the CODE order (DI, DII, DIII, AVR, AVL, AVF, V1-V6).

    An exam with a flat lead (an empty or padding exam, a disconnected electrode) is skipped:
    its row holds NaN, and the report (returned, and written beside ``out`` as
    ``<out>.report.json``) lists it; so are exams whose amplitude is implausible in ``units``
    (scored, with a warning)."""
    path, out = Path(path), Path(out)
    if out.suffix not in (".npy", ".csv"):
        raise ECGDataError(out, "scores are written to a .npy or a .csv file")
    check_new_file(out, "scores")
    exported = load_exported(saved_model_dir)
    spec = InputSpec(**exported.metadata["input_spec"])
    if spec.kind != "code_exam":
        raise ECGDataError(saved_model_dir, f"this model takes {spec.kind} inputs, not whole 12-lead CODE exams")
    names = exported.metadata["output_names"]
    scale = to_millivolts(np.ones(1), unit_name(units, path), path)[0]
    handle, tracings = open_tracings(path, dataset, spec.num_leads, hint="; choose one with --dataset")
    count = tracings.shape[0]
    report_file = out.with_name(out.name + ".report.json")
    check_new_file(report_file, "report")
    skipped, implausible = [], []
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent if out.parent.exists() else None))
    try:
        scores = np.lib.format.open_memmap(staging / "scores.npy", mode="w+", dtype=np.float32,
                                           shape=(count, len(names)))
        with tqdm(total=count, desc=f"{path.name}", unit="exam", disable=not progress) as bar:
            for start in range(0, count, batch_size):
                batch = read_exams(tracings, start, start + batch_size, path)
                bad = ~np.isfinite(batch).all(axis=(1, 2))
                if bad.any():
                    raise ECGDataError(path, f"exam {start + int(np.argmax(bad))} of {dataset!r} holds NaN or "
                                             f"infinite samples")
                batch = batch * scale
                usable = np.ones(len(batch), bool)
                for row, exam in enumerate(batch):
                    flat = flat_leads(exam, spec.leads)
                    if flat:
                        usable[row] = False
                        skipped.append({"exam": start + row, "problem": f"flat lead(s) {', '.join(flat)}"})
                    elif amplitude_warning(exam, unit_name(units, path), "") is not None:
                        implausible.append(start + row)
                scores[start:start + len(batch)] = np.nan
                if usable.any():
                    kept = batch[usable]
                    if not np.isclose(sampling_rate, spec.sampling_rate):
                        kept = np.stack([prepare_windows(exam, sampling_rate, None, spec, path)[0][0] for exam in kept])
                    scores[start + np.flatnonzero(usable)] = exported(kept)
                bar.update(len(batch))
        scores.flush()
        exam_ids = _exam_ids(handle, count)
        for entry in skipped:
            if exam_ids is not None:
                entry["exam_id"] = exam_ids[entry["exam"]].item()
        notes = []
        if implausible:
            example = read_exams(tracings, implausible[0], implausible[0] + 1, path)[0] * scale
            notes.append(f"{len(implausible)} of {count} exams: "
                         + amplitude_warning(example, unit_name(units, path), f"{path} exam {implausible[0]}"))
            warnings.warn(notes[-1], ImplausibleInputWarning, stacklevel=2)
        if out.suffix == ".npy":
            written = staging / "scores.npy"
        else:
            written = staging / "scores.csv"
            with open(written, "w", newline="") as table:
                writer = csv.writer(table)
                writer.writerow((["exam_id"] if exam_ids is not None else []) + list(names))
                for i in range(count):
                    writer.writerow(([exam_ids[i].item()] if exam_ids is not None else [])
                                    + [f"{v:.6g}" for v in scores[i]])
        del scores
        report = {"input": str(path), "dataset": dataset, "exams": count, "scored": count - len(skipped),
                  "out": str(out), "classes": list(names), "exam_ids": exam_ids is not None,
                  "skipped": skipped, "implausible_amplitude_exams": implausible, "warnings": notes}
        (staging / "report.json").write_text(json.dumps(report, indent=1))
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(written), str(out))
        shutil.move(str(staging / "report.json"), str(report_file))
    finally:
        handle.close()
        shutil.rmtree(staging, ignore_errors=True)
    return {**report, "report": str(report_file)}
