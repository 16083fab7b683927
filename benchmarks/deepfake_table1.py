"""e18 Table 1 on DeepFake ECGs: the four Inception1d interval regressors (HR, QRS, PR, QT)
trained with models/inception1d_deepfake_regression.toml on generated ECGs labelled by the
project's delineation, random 70/10/20 split; train / val / test MAE beside the published
validation MAE, and the noise floor of the labels themselves.

Noise floor: the same ECGs (--floor-ecgs of them) measured twice, under changes that should
not move an interval (resampled to 250 Hz and back; another lead subset). The mean absolute
difference between the two measurements is reported, and that divided by sqrt(2) (the mean
absolute error of one measurement, were the two errors independent and alike): about the
MAE a perfect model would still show against these labels.

Resumable across sessions: the runs live in --store (keep it outside the clone); --minutes M
starts no epoch after M minutes, and the same command continues. Labels are delineated once
and kept in tf_ecg's cache (tf_ecg.data.cache). Test outputs of finished runs go to
results/ as float16 with the sha256 of the labels they are scored against.

Usage: python benchmarks/deepfake_table1.py --store ~/.cache/tf_ecg-runs/e18_table1
       [--n-ecgs 10000] [--sampling-rate 100] [--patience 10] [--minutes M] [--targets HR QRS PR QT]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import tf_ecg  # noqa: F401  (before TensorFlow starts: tf_ecg chooses its CPU kernels)
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_io import RESULTS, earlier_result, finished_elsewhere, run_progress, write_result  # noqa: E402
from tf_ecg.config import load_recipe  # noqa: E402
from tf_ecg.data.intervals import INTERVALS, heart_rate_with_cause, interval_table  # noqa: E402
from tf_ecg.data.resample import resample  # noqa: E402
from tf_ecg.deepfake import LEADS, SAMPLING_RATE, generate_ecgs, interval_labels  # noqa: E402
from tf_ecg.training.trainer import train  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "models" / "inception1d_deepfake_regression.toml"
RESULT = "deepfake_table1"
# e18 Table 1: validation MAE of the regressors trained on the DeepFake ECGs (bpm; ms).
PUBLISHED_VAL_MAE = {"HR": 0.706, "QRS": 3.007, "PR": 5.110, "QT": 4.130}
TARGETS = {"HR": ("val MAE <=", 0.8), "QRS": ("val MAE <= 1.25 x published", 1.25 * 3.007),
           "PR": ("val MAE <= 1.25 x published", 1.25 * 5.110), "QT": ("val MAE <= 1.25 x published", 1.25 * 4.130)}


def labels_of(ecgs: np.ndarray, target: str) -> np.ndarray:
    """The interval the source labels ECGs with (NaN where the quality check failed)."""
    values, failures = interval_labels(ecgs, target)
    return np.where([not f for f in failures], values, np.nan)


def noise_floor(n_ecgs: int, seed: int) -> dict:
    """Each interval measured twice on the same generated ECGs, under two changes that should
    not move it: resampling to 250 Hz and back, and another lead subset (HR: lead I's R peaks
    instead of lead II's; PR, QRS, QT: delineation on I, II, V1-V3 instead of all eight)."""
    ecgs = generate_ecgs(n_ecgs, seed=seed).astype(np.float32)
    round_trip = resample(resample(ecgs, SAMPLING_RATE, 250, axis=1), 250, SAMPLING_RATE, axis=1).astype(np.float32)
    subset = [LEADS.index(lead) for lead in ("I", "II", "V1", "V2", "V3")]
    fewer_leads = interval_table(ecgs[:, :, subset], SAMPLING_RATE, rate_lead=1, desc="delineation, 5 leads")
    floor = {"ecgs": n_ecgs}
    for target in INTERVALS:
        labels = labels_of(ecgs, target)
        if target == "HR":  # the source's HR: lead II's R peaks
            again = {"resampled to 250 Hz and back": labels_of(round_trip, target),
                     "lead I instead of lead II": np.array(
                         [heart_rate_with_cause(e[:, LEADS.index("I")], SAMPLING_RATE)[0] for e in ecgs])}
        else:
            again = {"resampled to 250 Hz and back": labels_of(round_trip, target),
                     "leads I, II, V1-V3 instead of all eight": np.where(fewer_leads["ok"], fewer_leads[target], np.nan)}
        floor[target] = {change: _differences(labels, values) for change, values in again.items()}
    return floor


def earlier_floor(n_ecgs: int) -> dict | None:
    """The noise floor an earlier call of this script measured on as many ECGs (minutes of
    delineation saved on every resumed call)."""
    floor = earlier_result(RESULT).get("results", {}).get("noise_floor")
    return floor if floor and floor.get("ecgs") == n_ecgs else None


def _differences(first: np.ndarray, second: np.ndarray) -> dict:
    both = np.isfinite(first) & np.isfinite(second)
    difference = np.abs(first[both] - second[both])
    return {"n": int(both.sum()), "mean_abs_difference": round(float(difference.mean()), 3),
            "median_abs_difference": round(float(np.median(difference)), 3),
            "single_measurement_mae_if_independent": round(float(difference.mean() / np.sqrt(2)), 3)}


def regressor_summary(run_dir: Path, target: str) -> dict:
    summary = run_progress(run_dir, ("epoch", "loss", "val_loss", "learning_rate"))
    history = summary["history"]
    if history:
        best = min(history, key=lambda row: row["val_loss"])  # the recipe's loss is the MAE
        summary["best_epoch"] = {"epoch": best["epoch"], "train_mae": best["loss"], "val_mae": best["val_loss"]}
    report_file = run_dir / "test_metrics.json"
    if summary["status"] == "finished" and report_file.is_file():
        report = json.loads(report_file.read_text())
        with np.load(run_dir / "test_outputs.npz") as test:
            outputs, labels = test["outputs"].astype(np.float16), test["labels"].astype(np.float32)
        predictions = RESULTS / f"deepfake_table1_test_predictions_{target}.npy"
        np.save(predictions, outputs)
        scores = report["per_target"][target]
        summary["scored_model"] = scored_model(run_dir, history)
        summary["test"] = {"n": report["n"], "mae": round(scores["mae"], 3), "rmse": round(scores["rmse"], 3),
                           "r2": round(scores["r2"], 4),
                           "predictions": f"results/{predictions.name} (float16, test order)",
                           "labels_sha256": hashlib.sha256(labels.tobytes()).hexdigest(),
                           "labels_sha256_of": "the test labels as float32, in test order"}
    return summary


def scored_model(run_dir: Path, history: list[dict]) -> dict:
    """The validation MAE of the model the test set scored (best.keras, from the validation
    outputs the run wrote) and the epoch it is: the history's epoch with that val MAE. Runs
    resumed before tf_ecg restored the checkpoint's state on resuming could keep the first
    epoch after a resume in place of the best one; this shows which one was scored."""
    with np.load(run_dir / "val_outputs.npz") as val:
        mae = float(np.abs(val["raw"].ravel() - val["labels"].ravel()).mean())
    epoch = next((row["epoch"] for row in history if abs(row["val_loss"] - mae) < 1e-3), None)
    return {"val_mae": round(mae, 3), "epoch": epoch}


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def table(results: dict) -> dict:
    """Table 1 as the docs show it: per target the published and measured MAE, the target and
    the label noise floor (one delineation against another on a different lead subset)."""
    rows = {}
    for target in INTERVALS:
        regressor = results["regressors"].get(target, {})
        lead_subset = next(v for change, v in results["noise_floor"][target].items() if change.startswith("lead"))
        rows[target] = {"published_val_mae": PUBLISHED_VAL_MAE[target], "target_val_mae": round(TARGETS[target][1], 3),
                        "val_mae": _rounded(regressor.get("best_epoch", {}).get("val_mae")),
                        "test_mae": regressor.get("test", {}).get("mae"),
                        "label_noise_floor": lead_subset["single_measurement_mae_if_independent"],
                        "scored_epoch": regressor.get("scored_model", {}).get("epoch"),
                        "epochs": regressor.get("epochs_run", 0), "status": regressor.get("status", "not started")}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", required=True, help="the runs' folder (checkpoints: keep it outside the clone)")
    parser.add_argument("--n-ecgs", type=int, default=10_000)
    parser.add_argument("--sampling-rate", type=int, default=100, help="the original: 500 Hz")
    parser.add_argument("--patience", type=int, default=10, help="epochs without a val-MAE gain (recipe: 50)")
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--floor-ecgs", type=int, default=1000)
    parser.add_argument("--minutes", type=float, help="start no epoch after this many minutes")
    parser.add_argument("--targets", nargs="+", default=list(INTERVALS), choices=INTERVALS)
    args = parser.parse_args()
    deadline = None if args.minutes is None else time.time() + 60 * args.minutes
    store = Path(args.store).expanduser()
    rate = args.sampling_rate
    common = {"data.n_ecgs": args.n_ecgs, "data.sampling_rate": rate, "model.options.input_length": 10 * rate,
              "training.epochs": args.epochs, "training.early_stopping.patience": args.patience}
    seed = load_recipe(RECIPE).data.get("seed", 0)
    results = {"protocol": {**{k.split(".")[-1]: v for k, v in common.items()}, "seed": seed,
                            "split": "random 70/10/20 (the recipe's fractions)",
                            "labels": "tf_ecg.data.intervals on the generated 500 Hz ECGs (HR: lead II R peaks)"},
               "published_val_mae": PUBLISHED_VAL_MAE,
               "targets": {t: {"criterion": c, "val_mae_at_most": round(v, 3)} for t, (c, v) in TARGETS.items()},
               "noise_floor": earlier_floor(args.floor_ecgs) or noise_floor(args.floor_ecgs, seed)}
    earlier = earlier_result(RESULT)
    same_protocol = earlier.get("results", {}).get("protocol") == results["protocol"]
    results["regressors"] = {}
    for target in INTERVALS:  # every regressor the store (or another machine) holds, trained or not on this call
        run_dir = store / f"deepfake_{target}_{rate}hz"
        kept = same_protocol and finished_elsewhere(earlier, "regressors", target, run_dir)
        if kept or (run_dir / "run.json").is_file():
            results["regressors"][target] = kept or checked_summary(run_dir, target)
    results["table"] = table(results)
    write_result(RESULT, results)
    for target in args.targets:
        run_dir = store / f"deepfake_{target}_{rate}hz"
        minutes = None if deadline is None else (deadline - time.time()) / 60
        if "machine" in results["regressors"].get(target, {}) or (run_dir / "test_metrics.json").is_file() \
                or (minutes is not None and minutes <= 0):
            continue  # finished (here or on another machine), or no time left
        train(load_recipe(RECIPE, {**common, "data.target": target}), run_dir, minutes=minutes)
        results["regressors"][target] = checked_summary(run_dir, target)
        results["table"] = table(results)
        write_result(RESULT, results)


def checked_summary(run_dir: Path, target: str) -> dict:
    """A regressor's summary with its best validation MAE against the target and Table 1."""
    summary = regressor_summary(run_dir, target)
    if "best_epoch" in summary:
        if summary["status"] == "finished":  # a run still training has not missed anything yet
            summary["meets_target"] = summary["best_epoch"]["val_mae"] <= TARGETS[target][1]
        summary["val_mae_over_published"] = round(summary["best_epoch"]["val_mae"] / PUBLISHED_VAL_MAE[target], 3)
    return summary


if __name__ == "__main__":
    main()
