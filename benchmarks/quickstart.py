"""Runtime and test metrics of ``tf-ecg quickstart`` (DeepFake default, and MIT-BIH).

Usage: python benchmarks/quickstart.py [--data-root ../shared/data]
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
        spec = json.loads(Path(f"{tmp}/run/input_spec.json").read_text())
    summary = {"wall_seconds": round(seconds, 1), "data_info": spec["data_info"], "test_n": report["n"]}
    if report["task"] == "regression":
        summary["test"] = report["per_target"]
    else:
        summary["test"] = {k: report[k] for k in ("accuracy", "macro_f1", "macro_auc")}
        summary["test"]["per_class"] = {c: {m: v[m] for m in ("recall", "precision", "specificity", "f1", "support")}
                                        for c, v in report["per_class"].items()}
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-root", help="also run the MIT-BIH quickstart on this data root")
    args = parser.parse_args()
    results = {"deepfake_hr": run([])}
    if args.data_root:
        results["mitbih"] = run(["--data-root", args.data_root])
    write_result("quickstart", results)


if __name__ == "__main__":
    main()
