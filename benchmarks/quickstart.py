"""Runtime and test metrics of ``tf-ecg quickstart``: the DeepFake default for several seeds
(data and training seed together), and the MIT-BIH variant with --data-root.

Usage: python benchmarks/quickstart.py [--seeds 0 1 2] [--data-root ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_io import write_result  # noqa: E402
from tf_ecg.cli import main as tf_ecg  # noqa: E402


def run(extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.time()
        code = tf_ecg(["quickstart", "--run-dir", f"{tmp}/run", "--out", f"{tmp}/model", *extra])
        seconds = time.time() - started
        if code != 0:
            raise SystemExit(f"quickstart failed with exit code {code}")
        report = json.loads(Path(f"{tmp}/run/test_metrics.json").read_text())
        record = json.loads(Path(f"{tmp}/run/run.json").read_text())
        history = Path(f"{tmp}/run/history.csv").read_text().splitlines()
    summary = {"command_line": ["tf-ecg", "quickstart", *extra], "wall_seconds": round(seconds, 1),
               "train_seconds": record["seconds"], "data_info": record["data"]["info"], "test_n": report["n"],
               "history_csv": history}
    if report["task"] == "regression":
        summary["test"] = report["per_target"]
        scores = next(iter(report["per_target"].values()))
        summary["targets_met"] = {"r2_at_least_0.6": scores["r2"] >= 0.6,
                                  "mae_at_most_0.6_of_mean_predictor": scores["mae"] <= 0.6 * scores["mae_of_mean_predictor"]}
    else:
        summary["test"] = {k: report[k] for k in ("accuracy", "macro_f1", "macro_auc")}
        summary["test"]["per_class"] = {c: {m: v[m] for m in ("recall", "precision", "specificity", "f1", "support")}
                                        for c, v in report["per_class"].items()}
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--data-root", help="also run the MIT-BIH quickstart on this data root")
    args = parser.parse_args()
    results = {f"deepfake_hr_seed{seed}": run(["--set", f"data.seed={seed}", "--set", f"training.seed={seed}"])
               for seed in args.seeds}
    if args.data_root:
        results["mitbih"] = run(["--data-root", args.data_root])
    write_result("quickstart", results)


if __name__ == "__main__":
    main()
