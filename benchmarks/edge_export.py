"""Every preset and the two quickstarts exported to LiteRT (float32, dynamic, int8) and ONNX: file size,
largest difference to the SavedModel on real inputs, int8 accuracy beside float32 where labels
exist, and single-window latency of each runtime on this CPU.

Real inputs, as ``tf-ecg predict`` prepares them (serving windows in mV): PTB-XL records (CODE
exams, e18 windows), MIT-BIH record 100 (Kaggle beats), the glucose study's beats of its test
dates, uniform noise for the generator. Presets whose weights are not public here (Ribeiro,
autoECG, e18, ResNeXt) are exported with seeded random weights: the conversion, not the weights,
is what is measured; glucose uses the original checkpoints, the generator its packaged file.
Accuracy: the glucose supervised network on the test dates (beats), the MIT-BIH quickstart on DS2
beats, the DeepFake HR quickstart (MAE) on its test split. int8 calibrates on 256 windows of
the training side (the preset's other real inputs, or the run's training split).

Usage: python benchmarks/edge_export.py --data-root ../shared/data   -> results/edge_export.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tf_ecg  # noqa: F401  (before TensorFlow starts: tf_ecg chooses its CPU kernels)
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_io import write_result  # noqa: E402
from tf_ecg.api import export, load  # noqa: E402
from tf_ecg.building import build_model  # noqa: E402
from tf_ecg.data.spec import prepare_windows  # noqa: E402
from tf_ecg.data.formats.wfdb_records import read_record  # noqa: E402
from tf_ecg.edge import export_edge, onnx_runner, tflite_runner  # noqa: E402
from tf_ecg.errors import TfEcgInputError  # noqa: E402
from tf_ecg.published import PRESETS  # noqa: E402
from tf_ecg.saved_model import export_preset_model  # noqa: E402

ORIGINALS = Path(__file__).resolve().parents[2] / "shared" / "originals" / "weights"
CALIBRATION, EVALUATION = 256, 64


def _ptbxl_windows(root: Path, spec, count: int) -> np.ndarray:
    windows = []
    for header in sorted((root / "ptbxl" / "records500").rglob("*_hr.hea"))[:count]:
        record = read_record(header.with_suffix(""))
        windows.append(prepare_windows(record.signal, record.sampling_rate, record.leads, spec, header)[0][:1])
    return np.concatenate(windows)


def _mitbih_beats(root: Path, spec, records=("100", "101")) -> np.ndarray:
    beats = []
    for name in records:
        record = read_record(root / "mitdb" / name)
        beats.append(prepare_windows(record.signal, record.sampling_rate, record.leads, spec, record.path)[0])
    return np.concatenate(beats)


def _glucose_sets(root: Path, spec):
    from tf_ecg.data.glucose import DATE_SPLIT, cached_study_beats
    from tf_ecg.serving import serving_windows

    study = cached_study_beats(str(root / "applewatch-glucose"))
    train, test = study.dates(DATE_SPLIT["train"]), study.dates(DATE_SPLIT["test"])
    as_served = lambda beats: serving_windows(beats.beats[..., None], spec)  # noqa: E731
    return as_served(train), as_served(test), test.labels


def _random_weights(model, seed: int = 0):
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        weight.assign((rng.normal(size=weight.shape) * 0.05 + (1 if "variance" in weight.path else 0)).astype("float32"))
    return model


def _latency_ms(run, window: np.ndarray, repeats: int = 10) -> float:
    run(window)
    started = time.perf_counter()
    for _ in range(repeats):
        run(window)
    return round(1000 * (time.perf_counter() - started) / repeats, 2)


def _inputs(name: str, preset, root: Path):
    """(calibration windows, evaluation windows, labels or None) of a preset, all real."""
    spec = preset.input_spec
    if spec.kind in ("code_exam", "segment"):
        windows = _ptbxl_windows(root, spec, 40)
        return windows[:24], windows[24:], None
    if spec.kind == "kaggle_beat":
        beats = _mitbih_beats(root, spec)
        rng = np.random.default_rng(0).permutation(len(beats))
        return beats[rng[:CALIBRATION]], beats[rng[CALIBRATION:CALIBRATION + EVALUATION]], None
    if spec.kind == "glucose_beat":
        train, test, labels = _glucose_sets(root, spec)
        return train[np.random.default_rng(0).permutation(len(train))[:CALIBRATION]], test, labels
    noise = np.random.default_rng(0).uniform(-1, 1, size=(20, spec.length, spec.num_leads)).astype(np.float32)
    return noise[:12], noise[12:], None


def _preset_model(name: str, folder: Path, root: Path) -> tuple[Path, str]:
    preset = PRESETS[name]
    if name.startswith("glucose"):
        weights = ORIGINALS / "glucose" / preset.weights.file
        return export(preset=name, weights=weights, out=folder / name, data_root=root), "original checkpoint"
    if name == "pulse2pulse_generator":
        return export(preset=name, out=folder / name), "packaged file"
    model = _random_weights(build_model(preset.model, **preset.options))
    return export_preset_model(name, model, folder / name, {"file": "seeded random weights"}), "random (seed 0)"


def _measure(saved: Path, folder: Path, calibration, evaluation, labels, task: str) -> dict:
    served = load(saved)
    reference = served.exported(evaluation)
    row = {"saved_model": {"ms_per_window": _latency_ms(served.exported, evaluation[:1])}}
    spread = float(reference.max() - reference.min()) or 1.0
    for key, file_format, quantize in (("tflite_float32", "tflite", "none"), ("tflite_dynamic", "tflite", "dynamic"),
                                       ("tflite_int8", "tflite", "int8"), ("onnx", "onnx", "none")):
        out = folder / f"{saved.name}-{key}.{'onnx' if file_format == 'onnx' else 'tflite'}"
        try:
            export_edge(saved, out, file_format, quantize, calibration if quantize == "int8" else None)
        except TfEcgInputError as error:
            row[key] = {"error": str(error)}
            continue
        run = (onnx_runner if file_format == "onnx" else tflite_runner)(out)
        outputs = run(evaluation)
        difference = float(np.abs(outputs - reference).max())
        entry = {"bytes": out.stat().st_size, "max_abs_difference": difference,
                 "max_difference_over_output_range": difference / spread,
                 "ms_per_window": _latency_ms(run, evaluation[:1])}
        if labels is not None:
            entry.update(_task_score(outputs, labels, task))
        row[key] = entry
    if labels is not None:
        row["saved_model"].update(_task_score(reference, labels, task))
    return row


def _task_score(outputs: np.ndarray, labels: np.ndarray, task: str) -> dict:
    if task == "regression":
        return {"mae": round(float(np.abs(outputs[:, 0] - np.ravel(labels)).mean()), 3)}
    predicted = (outputs[:, 0] > 0.5).astype(int) if task == "binary" else outputs.argmax(axis=1)
    return {"accuracy": round(float(np.mean(predicted == np.ravel(labels))), 4)}


def _quickstart(folder: Path, root: Path | None) -> tuple[Path, np.ndarray, np.ndarray, np.ndarray, str]:
    """Train a quickstart recipe and return (SavedModel, calibration, test windows, test labels, task)."""
    from tf_ecg.serving import serving_windows

    name = "quickstart_mitbih" if root is not None else "quickstart_deepfake_hr"
    overrides = {} if root is not None else {"data.n_ecgs": 400}
    result = tf_ecg.train(name, folder / name, data_root=root, overrides=overrides, verbose=0)
    saved = export(result.run_dir, folder / f"{name}-saved", data_root=root)
    splits = result.splits
    x, y = splits.train
    calibration = serving_windows(x[np.random.default_rng(0).permutation(len(x))[:CALIBRATION]], splits.input_spec)
    test_x, test_y = splits.test
    rows = np.sort(np.random.default_rng(1).permutation(len(test_x))[:2000])  # a seeded sample of large test sets
    return saved, calibration, serving_windows(test_x[rows], splits.input_spec), test_y[rows], load(saved).task


def markdown_table(results: dict) -> str:
    """The README's table, from a results file (so no figure is typed by hand)."""
    lines = ["| model | weights | runtime | size | max difference to the SavedModel (of the output range) | "
             "accuracy / MAE | ms per window |", "|---|---|---|---|---|---|---|"]
    rows = {**results["presets"], **results["quickstarts"]}
    for name, row in rows.items():
        for key in ("saved_model", "tflite_float32", "tflite_dynamic", "tflite_int8", "onnx"):
            entry = row.get(key, {})
            if "error" in entry:
                lines.append(f"| {name} | {row.get('weights', 'trained here')} | {key} | - | {entry['error'][:80]} | - | - |")
                continue
            size = f"{entry['bytes'] / 2 ** 20:.2f} MiB" if "bytes" in entry else "-"
            difference = (f"{entry['max_abs_difference']:.2g} ({entry['max_difference_over_output_range']:.1e})"
                          if "max_abs_difference" in entry else "-")
            score = entry.get("accuracy", entry.get("mae", "-"))
            score = f"{score:.2%}" if "accuracy" in entry else (f"{score:.2f}" if score != "-" else "-")
            lines.append(f"| {name} | {row.get('weights', 'trained here')} | {key} | {size} | {difference} | "
                         f"{score} | {entry.get('ms_per_window', '-')} |")
    return "\n".join(lines)


def _measure_one(name: str, root: Path) -> dict:
    """One preset or quickstart, measured in this process."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if name in PRESETS:
            preset = PRESETS[name]
            saved, weights = _preset_model(name, folder, root)
            calibration, evaluation, labels = _inputs(name, preset, root)
            labels = labels if preset.task == "binary" else None  # the comparator is compared, not scored
            return {"weights": weights, "evaluation_windows": len(evaluation),
                    **_measure(saved, folder, calibration, evaluation, labels, preset.task)}
        saved, calibration, test_x, test_y, task = _quickstart(folder, root if name == "quickstart_mitbih" else None)
        return {"weights": "trained here", "evaluation_windows": len(test_x),
                **_measure(saved, folder, calibration, test_x, test_y, task)}


QUICKSTARTS = ("quickstart_mitbih", "quickstart_deepfake_hr")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root")
    parser.add_argument("--models", nargs="+", default=[*PRESETS, *QUICKSTARTS])
    parser.add_argument("--resume", action="store_true", help="keep the models already in the results file")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one model, print its JSON
    parser.add_argument("--table", action="store_true", help="print the README table of results/edge_export.json")
    args = parser.parse_args()
    from results_io import RESULTS

    path = RESULTS / "edge_export.json"
    if args.table:
        print(markdown_table(json.loads(path.read_text())["results"]))
        return
    if not args.data_root:
        parser.error("--data-root is required")
    if args.one:
        print("RESULT " + json.dumps(_measure_one(args.one, Path(args.data_root))))
        return
    results = json.loads(path.read_text())["results"] if args.resume and path.is_file() else \
        {"evaluation_windows": "see the module text", "presets": {}, "quickstarts": {}}
    for name in args.models:
        group = "presets" if name in PRESETS else "quickstarts"
        if name in results[group]:
            continue
        print(f"--- {name}", flush=True)
        # a fresh process per model: a converted 56-million-parameter network leaves gigabytes behind
        done = subprocess.run([sys.executable, __file__, "--data-root", args.data_root, "--one", name],
                              capture_output=True, text=True)
        line = next((l for l in done.stdout.splitlines() if l.startswith("RESULT ")), None)
        if line is None:
            raise SystemExit(f"{name} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
        results[group][name] = json.loads(line[len("RESULT "):])
        write_result("edge_export", results)  # after every model: what is done is kept


if __name__ == "__main__":
    main()
