"""System 2 (e18 Inception1d) on the real PTB-XL subset, strat_fold 1-8 / 9 / 10:
interval regression (HR, QRS, PR, QT) on PTB-XL and on DeepFake ECGs, the 5-superclass
baseline classifier, transfer scheme B from every regressor (within PTB-XL and from
DeepFake) and scheme A (four frozen regressors combined). Test accuracy and macro AUC
for classifiers, test MAE for regressors (beside a predictor that always answers the
training median).

The recipes in models/ run at 500 Hz for up to 1,000 epochs; on a CPU this script runs
them shorter (--sampling-rate, --epochs, --patience) and says so in its results.

Usage: python benchmarks/ptbxl_inception1d.py --data-root ../shared/data [--sampling-rate 100]
       [--epochs 12] [--deepfake-ecgs 600] [--runs-dir runs/ptbxl_benchmark]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_io import write_result  # noqa: E402
from tf_ecg.models.inception1d import REGRESSION_TARGETS  # noqa: E402
from tf_ecg.config import load_recipe  # noqa: E402
from tf_ecg.training.trainer import BEST, train  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULT = "ptbxl_inception1d"


def run(recipe_file: str, run_dir: Path, data_root: str, overrides: dict) -> dict:
    recipe = load_recipe(REPO / "models" / recipe_file, overrides)
    result = train(recipe, run_dir, data_root=data_root, verbose=2)
    report = result.test_report
    summary = {"recipe": recipe_file, "overrides": overrides, "seconds": round(result.seconds),
               "data": result.splits.info, "test_n": report["n"]}
    if report["task"] == "regression":
        y_train, y_test = result.splits.train[1], result.splits.test[1]
        scores = next(iter(report["per_target"].values()))
        summary.update(test_mae=round(scores["mae"], 2), test_rmse=round(scores["rmse"], 2),
                       test_r2=round(scores["r2"], 3),
                       median_predictor_mae=round(float(np.abs(y_test - np.median(y_train)).mean()), 2))
    else:
        summary.update(test_accuracy=round(report["accuracy"], 3), test_macro_auc=round(report["macro_auc"], 3),
                       test_per_class_auc={k: round(v["auc"], 3) for k, v in report["per_class"].items()
                                           if v.get("auc") is not None and np.isfinite(v["auc"])})
    print(run_dir.name, {k: v for k, v in summary.items() if k not in ("overrides", "data")}, flush=True)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--sampling-rate", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--patience", type=int, default=50)
    parser.add_argument("--deepfake-ecgs", type=int, default=600)
    parser.add_argument("--runs-dir", default=str(REPO / "runs" / "ptbxl_benchmark"))
    args = parser.parse_args()
    runs = Path(args.runs_dir)
    rate = args.sampling_rate
    common = {"data.sampling_rate": rate, "model.options.input_length": 10 * rate, "training.epochs": args.epochs,
              "training.early_stopping.patience": args.patience}
    started = time.time()
    results = {"protocol": {"sampling_rate_hz": rate, "input_length": 10 * rate, "epochs": args.epochs,
                            "patience": args.patience, "deepfake_ecgs": args.deepfake_ecgs,
                            "split": "PTB-XL subset strat_fold 1-8 / 9 / 10; DeepFake random 70/10/20",
                            "labels": "intervals by neurokit2 delineation (tf_ecg.data.intervals)"}}

    def save():
        results["total_seconds"] = round(time.time() - started)
        write_result(RESULT, results)

    regressors = {"ptbxl": {}, "deepfake": {}}
    for target in REGRESSION_TARGETS:
        results.setdefault("regression_ptbxl", {})[target] = run(
            f"inception1d_regression_{target.lower()}.toml", runs / f"ptbxl_{target}", args.data_root, common)
        regressors["ptbxl"][target] = str(runs / f"ptbxl_{target}" / BEST)
        save()
    for target in REGRESSION_TARGETS:
        results.setdefault("regression_deepfake", {})[target] = run(
            "inception1d_deepfake_regression.toml", runs / f"deepfake_{target}", args.data_root,
            {**common, "data.target": target, "data.n_ecgs": args.deepfake_ecgs})
        regressors["deepfake"][target] = str(runs / f"deepfake_{target}" / BEST)
        save()
    classification = results.setdefault("classification", {})
    classification["baseline"] = run("inception1d_superclass.toml", runs / "baseline", args.data_root, common)
    save()
    for source, paths in regressors.items():
        for target, path in paths.items():
            classification[f"transfer_b_{source}_{target}"] = run(
                "inception1d_transfer_b.toml", runs / f"transfer_b_{source}_{target}", args.data_root,
                {**common, "model.initial_weights": path})
            save()
        a_overrides = {k: v for k, v in common.items() if not k.startswith("training.early_stopping")}
        a_overrides.update({f"model.options.regressor_weights.{t}": p for t, p in paths.items()})
        classification[f"combined_a_{source}"] = run("inception1d_combined_a.toml", runs / f"combined_a_{source}",
                                                     args.data_root, a_overrides)
        save()


if __name__ == "__main__":
    main()
