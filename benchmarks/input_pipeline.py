"""Does the tf.data input pipeline outrun the model's training step?

For each configuration: samples/s that ``array_dataset`` delivers (shuffled, batched,
from a memory-mapped .npy as with data sets larger than memory) and samples/s of the
model's training step on in-memory tensors. Usage: python benchmarks/input_pipeline.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tf_ecg  # noqa: F401  (before TensorFlow starts: tf_ecg chooses its CPU kernels)
import tensorflow as tf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_io import write_result  # noqa: E402
from tf_ecg.data.pipelines import array_dataset  # noqa: E402

CONFIGS = [  # (label, model, options, input shape, batch size, loss)
    ("loo_conv1d beats (160, 2)", "loo_conv1d", {"num_classes": 5}, (160, 2), 32, "sparse"),
    ("inception1d quickstart (1000, 8)", "inception1d", {"input_length": 1000}, (1000, 8), 31, "mae"),
    ("inception1d e18 (5000, 8)", "inception1d", {}, (5000, 8), 31, "mae"),
]


def pipeline_rate(x, y, batch_size: int, seconds: float = 3.0) -> float:
    dataset = array_dataset(x, y, batch_size, shuffle=True, seed=0).repeat()
    iterator = iter(dataset)
    next(iterator)
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        count += len(next(iterator)[0])
    return count / (time.perf_counter() - started)


def model_rate(name, options, shape, batch_size, loss, steps: int = 8) -> float:
    import keras

    model = tf_ecg.build_model(name, **options)
    sparse = loss == "sparse"
    model.compile(keras.optimizers.Adam(1e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True) if sparse else "mae")
    x = tf.random.uniform((batch_size,) + shape)
    y = tf.zeros((batch_size,), "int64") if sparse else tf.zeros((batch_size, 1))
    model.train_on_batch(x, y)
    started = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return steps * batch_size / (time.perf_counter() - started)


def main() -> None:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, name, options, shape, batch_size, loss in CONFIGS:
            n = max(20 * batch_size, int(2e8 // (np.prod(shape) * 4)))  # ~200 MB on disk
            path = Path(tmp) / f"{name}.npy"
            np.save(path, np.random.default_rng(0).random((n,) + shape, dtype="float32"))
            x = np.load(path, mmap_mode="r")
            y = np.zeros(n, "int64") if loss == "sparse" else np.zeros((n, 1), "float32")
            pipeline = pipeline_rate(x, y, batch_size)
            step = model_rate(name, options, shape, batch_size, loss)
            results.append({"configuration": label, "batch_size": batch_size, "samples_on_disk": n,
                            "pipeline_samples_per_s": round(pipeline, 1),
                            "train_step_samples_per_s": round(step, 1),
                            "pipeline_over_model": round(pipeline / step, 1)})
            print(results[-1])
    write_result("input_pipeline", {"configurations": results,
                                    "pipeline_outruns_model": all(r["pipeline_over_model"] > 1 for r in results)})


if __name__ == "__main__":
    main()
