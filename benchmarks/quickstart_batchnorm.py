"""Why the quickstart's validation swung: BatchNorm moving statistics against Adam at 0.01.

One training run per seed with the quickstart recipe (moving-average statistics, as e18).
After every epoch the same weights are scored on the validation split twice: with the
moving averages Keras kept during training, and with statistics recomputed from 256
training ECGs (``tf_ecg.training.callbacks.recompute_batch_norm_statistics``). The
recomputed statistics are put back afterwards, so the training run is the moving-average
run throughout.

Usage: python benchmarks/quickstart_batchnorm.py [--seeds 0 1 2] [--epochs 5] [--sampling-rate 50]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import tf_ecg  # noqa: F401  (before TensorFlow starts: tf_ecg chooses its CPU kernels)
import keras
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_io import write_result  # noqa: E402
from tf_ecg.config import load_recipe, recipes_dir  # noqa: E402
from tf_ecg.data.sources import load_source  # noqa: E402
from tf_ecg.training.callbacks import epoch_schedule, recompute_batch_norm_statistics  # noqa: E402
from tf_ecg.training.compiling import compile_model  # noqa: E402
from tf_ecg.training.trainer import make_datasets, start_at_median  # noqa: E402


def mae(model, x, y) -> float:
    return float(np.abs(model.predict(x, batch_size=64, verbose=0) - y).mean())


def run(seed: int, epochs: int, rate: int) -> dict:
    overrides = {"data.seed": seed, "training.seed": seed, "training.batch_norm_statistics": "moving_average",
                 "data.sampling_rate": rate, "model.options.input_length": 10 * rate}
    recipe = load_recipe(recipes_dir() / "quickstart_deepfake_hr.toml", overrides)
    splits = load_source(recipe.data)
    keras.utils.set_random_seed(seed)  # after the data, as tf_ecg.training.trainer.train does
    model = compile_model(recipe, 1, splits.train[0].shape[1:])
    start_at_median(model, splits.target_median())
    datasets = make_datasets(splits, recipe.training)
    schedule = epoch_schedule(recipe.training.schedule, recipe.training.optimizer["learning_rate"])
    (x_val, y_val), (x_test, y_test) = splits.val, splits.test
    sample = splits.train[0][np.sort(np.random.default_rng(seed).permutation(len(splits.train[0]))[:256])]
    statistics = [v for v in model.non_trainable_variables if "moving" in v.path]
    rows = []
    for epoch in range(epochs):
        history = model.fit(datasets["train"], epochs=epoch + 1, initial_epoch=epoch, callbacks=[schedule], verbose=0)
        moving = mae(model, x_val, y_val)
        kept = [v.numpy() for v in statistics]
        recompute_batch_norm_statistics(model, sample)
        recomputed, recomputed_test = mae(model, x_val, y_val), mae(model, x_test, y_test)
        for variable, value in zip(statistics, kept):
            variable.assign(value)
        rows.append({"epoch": epoch + 1, "train_loss": round(float(history.history["loss"][-1]), 3),
                     "val_mae_moving_average": round(moving, 3), "val_mae_recomputed": round(recomputed, 3),
                     "test_mae_moving_average": round(mae(model, x_test, y_test), 3),
                     "test_mae_recomputed": round(recomputed_test, 3)})
        print(seed, rows[-1], flush=True)
    return {"overrides": overrides, "val_mae_of_mean_predictor": round(float(np.abs(y_val - splits.train[1].mean()).mean()), 3),
            "test_mae_of_mean_predictor": round(float(np.abs(y_test - splits.train[1].mean()).mean()), 3),
            "per_epoch": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--sampling-rate", type=int, default=50)
    args = parser.parse_args()
    write_result("quickstart_batchnorm", {f"seed{seed}": run(seed, args.epochs, args.sampling_rate)
                                          for seed in args.seeds})


if __name__ == "__main__":
    main()
