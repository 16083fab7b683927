"""System 1: throughput of the Ribeiro ResNet port (batch 64, 4096 x 12) and the autoECG
transfer recipe trained on the PTB-XL subset (strat_fold 1-8 / 9 / 10), scored on fold 10.

Usage: python benchmarks/ribeiro.py --data-root ../shared/data [--epochs N] [--base-weights model.hdf5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import tf_ecg  # noqa: F401  (before TensorFlow starts: tf_ecg chooses its CPU kernels)
import keras
import numpy as np
import tensorflow as tf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_io import write_result  # noqa: E402
from tf_ecg.config import load_recipe  # noqa: E402
from tf_ecg.training.trainer import train  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def throughput(batch_size: int = 64, steps: int = 3) -> dict:
    model = tf_ecg.build_model("ribeiro_resnet")
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy")
    x, y = tf.random.normal((batch_size, 4096, 12)), tf.zeros((batch_size, 6))
    model.train_on_batch(x, y)
    started = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    train_rate = steps * batch_size / (time.perf_counter() - started)
    predict = tf.function(lambda batch: model(batch, training=False))
    predict(x)
    started = time.perf_counter()
    for _ in range(steps):
        predict(x).numpy()
    return {"batch_size": batch_size, "train_samples_per_s": round(train_rate, 2),
            "inference_samples_per_s": round(steps * batch_size / (time.perf_counter() - started), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--epochs", type=int, help="override the recipe's 50 epochs")
    parser.add_argument("--base-weights", help="Ribeiro's model.hdf5 (random initialisation without it)")
    args = parser.parse_args()
    results = {"throughput": throughput()}
    write_result("ribeiro", results)
    overrides = {"training.epochs": args.epochs} if args.epochs else {}
    if args.base_weights:
        overrides["model.options.base_weights"] = args.base_weights
    recipe = load_recipe(REPO / "models" / "autoecg_transfer.toml", overrides)
    with tempfile.TemporaryDirectory() as tmp:
        result = train(recipe, Path(tmp) / "run", data_root=args.data_root, verbose=2)
        history = (Path(tmp) / "run" / "history.csv").read_text()
    report = result.test_report
    abnormal = report["per_class"]["abnormal"]
    results["autoecg_transfer_ptbxl"] = {
        "epochs": recipe.training.epochs, "base": args.base_weights or "random initialisation",
        "records": result.splits.info, "seconds": round(result.seconds),
        "test_fold_10": {"n": report["n"], "auc": abnormal.get("auc"), "accuracy": report["accuracy"],
                         "f1_abnormal": abnormal["f1"], "f1_normal": report["per_class"]["normal"]["f1"],
                         "macro_f1": report["macro_f1"], "sensitivity": abnormal["recall"],
                         "specificity": abnormal["specificity"]},
        "history_csv": history}
    write_result("ribeiro", results)
    print({k: v for k, v in results["autoecg_transfer_ptbxl"].items() if k != "history_csv"})


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
