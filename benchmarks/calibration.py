"""Does 0.91 mean 91 %? Test-set calibration before and after the temperature an export fits.

For each model: the temperature is fitted on its validation split exactly as ``tf-ecg
export`` fits it (``tf_ecg.evaluation.calibration.fit_calibration``), then the test split
is scored with the network's own probabilities and with the calibrated ones: ECE (15
equal-width bins; top-label for single-label outputs), Brier score, and accuracy (which a
temperature cannot change). Models: the MIT-BIH DS1 -> DS2 beat classifier
(quickstart-mitbih), the Kaggle heartbeat networks (the Conv1D peer; the ResNeXt once its
run has finished), the glucose supervised network (original checkpoint, date split) and the
PTB-XL superclass Inception1d (100 Hz, 10 epochs, as in ptbxl_inception1d.json). Regressors:
the coverage of the 90 % split-conformal interval their exports carry, on the quickstart HR
regressor and e18's four PTB-XL interval regressors (100 Hz, 10 epochs). Runs are trained
into ``--store`` when missing.

    python benchmarks/calibration.py --data-root ../shared/data
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import tf_ecg  # noqa: F401  (before TensorFlow starts: tf_ecg chooses its CPU kernels)
import keras
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from explain import GLUCOSE_WEIGHTS, run_dir  # noqa: E402
from results_io import write_result  # noqa: E402
from tf_ecg.evaluation.calibration import (apply_temperature, calibration_scores, fit_calibration,  # noqa: E402
                                           interval_coverage, predicted_classes, to_logits)
from tf_ecg.training.trainer import load_run_recipe  # noqa: E402

PTBXL_OVERRIDES = {"data.sampling_rate": 100, "model.options.input_length": 1000, "training.epochs": 10}


def scored(task, outputs, names, val, test, source) -> dict:
    """Fit on ``val`` = (raw outputs, labels); score ``test`` before and after."""
    calibration = fit_calibration(task, outputs, *val, names)
    kind = "softmax" if task == "multiclass" else "sigmoid"
    logits, labels = to_logits(test[0], outputs, task), test[1]
    result = {"source": source, "task": task, "val_n": len(val[1]), "test_n": len(labels),
              "temperature": calibration["temperature"],
              "val_ece_before": calibration["val_ece_before"], "val_ece_after": calibration["val_ece_after"]}
    for when, temperature in (("before", np.ones(1)), ("after", np.asarray(calibration["temperature"]))):
        probabilities = apply_temperature(logits, temperature, kind)
        scores = calibration_scores(task, labels, probabilities, names)
        result[f"test_ece_{when}"], result[f"test_brier_{when}"] = scores["ece"], scores["brier"]
        if task != "multilabel":
            result[f"test_accuracy_{when}"] = float((predicted_classes(probabilities, task)
                                                     == np.asarray(labels).reshape(-1)).mean())
    return result


def run_case(directory: Path, data_root) -> dict:
    recipe = load_run_recipe(directory)
    splits = tf_ecg.load_data(directory / "recipe.toml", data_root=data_root)
    model = keras.models.load_model(directory / "best.keras")
    outputs = {split: (model.predict(getattr(splits, split)[0], batch_size=256, verbose=0), getattr(splits, split)[1])
               for split in ("val", "test")}
    return scored(recipe.task, recipe.training.outputs, splits.output_names, outputs["val"], outputs["test"],
                  f"run {directory} ({recipe.name}), its validation and test splits")


def glucose_case(originals: Path, data_root) -> dict:
    from tf_ecg.data.glucose import DATE_SPLIT, cached_study_beats
    from tf_ecg.data.paths import dataset_dir

    model = tf_ecg.load_preset("glucose_supervised", weights=originals / "weights" / "glucose" / GLUCOSE_WEIGHTS).model
    study = cached_study_beats(str(dataset_dir("applewatch-glucose", data_root)))
    parts = {}
    for split in ("val", "test"):
        beats = study.dates(DATE_SPLIT[split])
        parts[split] = (model.predict(beats.beats[..., None].astype("float32"), batch_size=256, verbose=0),
                        beats.labels[:, None])
    return scored("binary", "probabilities", ["fast", "glucose"], parts["val"], parts["test"],
                  f"original checkpoint {GLUCOSE_WEIGHTS}; validation dates {list(DATE_SPLIT['val'])}, "
                  f"test dates {list(DATE_SPLIT['test'])}")


def interval_case(directory: Path, data_root) -> dict:
    """The 90 % split-conformal interval an export of this regressor carries (fitted on its
    validation split), and how often it held on the test split."""
    splits = tf_ecg.load_data(directory / "recipe.toml", data_root=data_root)
    model = keras.models.load_model(directory / "best.keras")
    val, test = (model.predict(part[0], batch_size=256, verbose=0) for part in (splits.val, splits.test))
    calibration = fit_calibration("regression", "values", val, splits.val[1], splits.output_names)
    half_width = np.asarray(list(calibration["half_width"].values()))
    coverage = interval_coverage(splits.test[1], test, half_width)
    return {"source": f"run {directory}", "level": calibration["level"], "val_n": len(splits.val[1]),
            "test_n": len(splits.test[1]), "half_width": calibration["half_width"],
            "test_coverage": dict(zip(splits.output_names, coverage["coverage"])),
            "mean_width": dict(zip(splits.output_names, coverage["mean_width"]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", default="../shared/data")
    parser.add_argument("--originals", default="../shared/originals")
    parser.add_argument("--store", default=str(Path.home() / ".cache" / "tf_ecg-runs" / "reference"))
    parser.add_argument("--kaggle-store", default=str(Path.home() / ".cache" / "tf_ecg-runs" / "mitbih_kaggle"))
    args = parser.parse_args()
    store, kaggle = Path(args.store).expanduser(), Path(args.kaggle_store).expanduser()
    models, not_measured = {}, {}
    models["mitbih_ds1_ds2"] = run_case(run_dir(store, "quickstart_mitbih", args.data_root), args.data_root)
    for name, folder in (("kaggle_conv1d_peer", "kaggle-conv1d-baseline"), ("kaggle_resnext", "mitbih-resnext")):
        record = kaggle / folder / "run.json"
        if record.is_file() and json.loads(record.read_text()).get("status") == "finished":
            models[name] = run_case(kaggle / folder, args.data_root)
        else:
            not_measured[name] = f"its run in {kaggle / folder} has not finished (benchmarks/mitbih.py resnext)"
    models["glucose_supervised"] = glucose_case(Path(args.originals), args.data_root)
    superclass = store / "inception1d-superclass-100hz"
    if not (superclass / "best.keras").is_file():
        tf_ecg.train("inception1d_superclass", superclass, data_root=args.data_root, overrides=PTBXL_OVERRIDES)
    models["ptbxl_superclass"] = run_case(superclass, args.data_root)
    not_measured["glucose_comparator"] = "serves same-class votes against its reference bank, not probabilities"
    intervals = {"quickstart_deepfake_hr": interval_case(run_dir(store, "quickstart_deepfake_hr", args.data_root),
                                                         args.data_root)}
    for target in ("hr", "qrs", "pr", "qt"):
        directory = store / f"inception1d-regression-{target}-100hz"
        if not (directory / "best.keras").is_file():
            tf_ecg.train(f"inception1d_regression_{target}", directory, data_root=args.data_root,
                         overrides=PTBXL_OVERRIDES)
        intervals[f"e18_{target}_ptbxl"] = interval_case(directory, args.data_root)
    for name, m in intervals.items():
        print(f"{name}: 90 % interval covered {list(m['test_coverage'].values())[0]:.1%} of {m['test_n']} test examples")
    for name, m in models.items():
        print(f"{name}: test ECE {m['test_ece_before']:.4f} -> {m['test_ece_after']:.4f} (T = "
              f"{np.round(m['temperature'], 3).tolist()}), accuracy {m.get('test_accuracy_before')} -> "
              f"{m.get('test_accuracy_after')}")
    write_result("calibration", {"definition": "ECE: 15 equal-width bins on [0, 1]; top-label for single-label "
                                               "outputs (one sigmoid read as two classes)", "models": models,
                                 "not_measured": not_measured, "ptbxl_overrides": PTBXL_OVERRIDES,
                                 "intervals": intervals})


if __name__ == "__main__":
    main()
