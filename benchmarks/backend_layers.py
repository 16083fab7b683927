"""What holds JAX and PyTorch back on a CPU: the training step and inference of single layers,
each alone in a model, at the shapes and batch sizes where the ports that run slowest off
TensorFlow spend their time (``backends_cpu.json``: the glucose networks and the ResNeXt), on
every Keras backend installed, in a fresh process each.

A layer whose ratio to TensorFlow is as low as its port's (``backends_cpu.json``) is what
holds the port back; inference as far behind as training points at the backend's kernels rather
than at its training loop. The grouped and depthwise convolutions are timed twice: Keras' own
layer (each backend's native convolution) and the port's.

Usage: python benchmarks/backend_layers.py [--steps 10] [--backends jax torch tensorflow]
Writes results/backend_layers.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from gpu import BACKENDS, installed_backends, machine_record, write  # noqa: E402
from throughput import timed  # noqa: E402

# name: (the port it comes from, batch, input shape (length, channels), layer and its options);
# "keras." layers are Keras' own, "tf_ecg." ones the ports' (the grouped and depthwise
# convolutions: Keras' beside the port's, whose JAX path sums one product per tap)
DEPTHWISE = {"kernel_size": 3, "strides": 2}
GROUPED_128 = {"filters": 128, "kernel_size": 3, "groups": 32, "padding": "same"}
GROUPED_512 = {"filters": 512, "kernel_size": 3, "groups": 32, "padding": "same"}
LAYERS = {
    "glucose depthwise k3 s2, 386x32 (Keras)": ("glucose", 128, (386, 32), ("keras.DepthwiseConv1D", DEPTHWISE)),
    "glucose depthwise k3 s2, 386x32 (tf_ecg)": ("glucose", 128, (386, 32), ("tf_ecg.DepthwiseConv1D", DEPTHWISE)),
    "glucose pointwise 384x8 -> 32": ("glucose", 128, (384, 8), ("tf_ecg.PointwiseConv1D",
                                                                 {"filters": 32, "kernel_size": 1})),
    "glucose fused conv k3 384x8 -> 32": ("glucose", 128, (384, 8), ("keras.Conv1D", {"filters": 32, "kernel_size": 3,
                                                                                       "padding": "same"})),
    "glucose batch norm 384x32": ("glucose", 128, (384, 32), ("tf_ecg.BatchNorm", {})),
    "resnext grouped k3 g32, 60x128 (Keras)": ("resnext", 128, (60, 128), ("keras.Conv1D", GROUPED_128)),
    "resnext grouped k3 g32, 60x128 (tf_ecg)": ("resnext", 128, (60, 128), ("tf_ecg.GroupedConv1D", GROUPED_128)),
    "resnext grouped k3 g32, 15x512 (Keras)": ("resnext", 128, (15, 512), ("keras.Conv1D", GROUPED_512)),
    "resnext grouped k3 g32, 15x512 (tf_ecg)": ("resnext", 128, (15, 512), ("tf_ecg.GroupedConv1D", GROUPED_512)),
    "resnext pointwise 60x256 -> 128": ("resnext", 128, (60, 256), ("tf_ecg.PointwiseConv1D",
                                                                    {"filters": 128, "kernel_size": 1})),
    "resnext batch norm 60x256": ("resnext", 128, (60, 256), ("tf_ecg.BatchNorm", {})),
}


def layer_rates(steps: int) -> dict:
    """Examples/s of every layer's training step and inference on this process's backend."""
    import keras
    import numpy as np

    from tf_ecg.models import layers as ours

    rates = {}
    for name, (_, batch, shape, (kind, options)) in LAYERS.items():
        keras.utils.set_random_seed(0)
        home, class_name = kind.split(".")
        layer = getattr(ours if home == "tf_ecg" else keras.layers, class_name)
        inputs = keras.Input(shape)
        model = keras.Model(inputs, layer(**options)(inputs))
        model.compile(optimizer=keras.optimizers.SGD(1e-3), loss="mean_squared_error")
        rng = np.random.default_rng(0)
        x = rng.normal(size=(batch, *shape)).astype("float32")
        y = rng.normal(size=(batch, *model.output_shape[1:])).astype("float32")
        rates[name] = {"train_examples_per_s": round(batch / timed(lambda: model.train_on_batch(x, y), steps), 1),
                       "inference_examples_per_s": round(batch / timed(lambda: model.predict_on_batch(x), steps), 1)}
    return rates


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--child", choices=BACKENDS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        import tf_ecg  # noqa: F401  (TensorFlow's CPU kernels chosen before it starts, as in a run)

        print(json.dumps(layer_rates(args.steps)))
        return 0
    backends, skipped = installed_backends(args.backends)
    results = {}
    for backend in backends:
        done = subprocess.run([sys.executable, __file__, "--child", backend, "--steps", str(args.steps)],
                              env={**os.environ, "KERAS_BACKEND": backend, "CUDA_VISIBLE_DEVICES": ""},
                              capture_output=True, text=True)
        if done.returncode:
            results[backend] = {"error": done.stderr.strip().splitlines()[-1][:500]}
            continue
        results[backend] = json.loads(done.stdout.strip().splitlines()[-1])
        print(backend, results[backend], flush=True)
    tensorflow = results.get("tensorflow", {})
    over_tensorflow = {
        name: {f"{backend}_{what}_over_tensorflow": round(rates[name][f"{what}_examples_per_s"]
                                                          / tensorflow[name][f"{what}_examples_per_s"], 3)
               for backend, rates in results.items() if backend != "tensorflow" and name in rates
               for what in ("train", "inference")}
        for name in LAYERS if name in tensorflow}
    write("backend_layers", {"machine": machine_record(backends), "steps": args.steps, "backends_skipped": skipped,
                             "layers": {name: {"port": port, "batch": batch, "input": list(shape), "layer": kind,
                                               "options": options}
                                        for name, (port, batch, shape, (kind, options)) in LAYERS.items()},
                             "results": results, "over_tensorflow": over_tensorflow})
    return 0


if __name__ == "__main__":
    sys.exit(main())
