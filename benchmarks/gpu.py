"""Training-step and inference throughput of every port on every Keras backend here: the GPU
benchmark (one prepared job for a GPU machine that has JAX and PyTorch but no TensorFlow),
which also runs on a CPU.

Usage:
    python benchmarks/gpu.py [--device gpu|any] [--backends jax torch tensorflow] [--only PORT ...]
                             [--precisions float32 mixed_bfloat16] [--steps 20] [--minutes 7] [--result NAME]

Per port (``throughput.py``'s, at the recipe's batch size, with its loss and optimiser through
``tf_ecg.training.compiling``, which needs no TensorFlow) and per backend that is installed, in a
fresh process: examples/s of a training step (``train_on_batch``) and of inference
(``predict_on_batch``), the median of ``--steps`` steps after two warm-ups; the first call of
each apart, as ``compile_s`` (tracing and XLA compilation, what a steady state never pays).
The Pulse2Pulse generator is timed generating (inference only).

bf16: ``mixed_bfloat16`` (bf16 compute, float32 weights and outputs), timed only where the
numerics hold, checked on the batch itself: the same weights in both precisions; the largest
difference of the inference outputs relative to the largest output, and the relative
difference of the first training step's loss, must stay under ``BF16_TOLERANCE``. Both
figures are recorded, held or not.

``--device gpu`` measures only backends that see a GPU (and says which do not); ``--minutes``
starts no measurement after that budget (what is left is recorded as not measured). Writes
``results/<name>.json`` (default ``gpu`` with ``--device gpu``, else ``backends_cpu``) with the
devices (name, driver from ``nvidia-smi``), the backends' versions and the CPU; on a CPU it
also reports JAX's and PyTorch's training steps over TensorFlow's. Without TensorFlow the
machine record holds what the other backends report. ``benchmarks/gpu_wheels.sh`` prepares
the wheels the GPU image lacks.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from throughput import GENERATOR_BATCH, PORTS, random_batch, timed  # noqa: E402

BACKENDS = ("jax", "torch", "tensorflow")
PRECISIONS = ("float32", "mixed_bfloat16")
GPU_PORTS = {**PORTS, "kaggle_conv1d_baseline": ("kaggle_conv1d_baseline", {}, (187, 1), None)}
GENERATOR = "pulse2pulse_generator"
BF16_TOLERANCE = 0.05  # relative: bf16 keeps 8 bits of mantissa (~0.4 % per rounding)
RESNEXT_TARGET_BEATS_PER_S = 5000
JAX_CPU_SLOWDOWN_AT_MOST = 1.5  # JAX's CPU training step at most 1.5x slower than TensorFlow's


# ---------------------------------------------------------------- one measurement (a child process)

def sees_gpu(backend: str) -> bool:
    if backend == "jax":
        import jax

        return jax.devices()[0].platform == "gpu"
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def device_name(backend: str) -> str:
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        return f"{device.platform}: {device.device_kind}"
    if backend == "torch":
        import torch

        return f"cuda: {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "cpu"
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return f"gpu: {tf.config.experimental.get_device_details(gpus[0]).get('device_name', '')}" if gpus else "cpu"


def _model(port: str, precision: str, weights=None):
    """(compiled model, x, y, batch) of a port under ``precision``; ``weights`` copied in."""
    import keras

    from tf_ecg.config import load_recipe, recipes_dir
    from tf_ecg.building import build_model
    from tf_ecg.training.compiling import compile_model

    keras.config.set_dtype_policy(precision)
    keras.utils.set_random_seed(0)
    if port == GENERATOR:
        model, batch = build_model(GENERATOR), GENERATOR_BATCH
        x, y = random_batch((5000, 8), batch, "regression", 1)
    else:
        recipe_name, overrides, shape, _ = GPU_PORTS[port]
        recipe = load_recipe(recipes_dir() / f"{recipe_name}.toml", overrides)
        batch = recipe.training.batch_size
        outputs = build_model(recipe.model.name, **recipe.model.options).output_shape[-1]
        model = compile_model(recipe, outputs, shape)
        x, y = random_batch(shape, batch, recipe.task, outputs)
        if recipe.training.pairs:  # the comparator: reference half, query half, same/different labels
            x, y = [x[:batch // 2], x[batch // 2:]], y[:batch // 2]
    if weights is not None:
        model.set_weights(weights)
    return model, x, y, batch


def _first_and_steady(step, steps: int) -> tuple[float, float]:
    started = time.perf_counter()
    step()
    first = time.perf_counter() - started
    return first, timed(step, steps)


def measure_port(backend: str, port: str, precisions: list[str], steps: int) -> dict:
    """Every precision of one port on this process's backend."""
    import keras
    import numpy as np

    result = {"backend": backend, "device": device_name(backend)}
    reference = None
    for precision in precisions:
        model, x, y, batch = _model(port, precision, None if reference is None else reference["weights"])
        outputs = keras.ops.convert_to_numpy(model.predict_on_batch(x)).astype(np.float64)
        loss = None if port == GENERATOR else float(np.ravel(model.train_on_batch(x, y))[0])
        entry = {"batch": batch}
        if reference is None:
            reference = {"weights": None, "outputs": outputs, "loss": loss}
        else:
            scale = np.abs(reference["outputs"]).max() or 1.0
            entry["numerics"] = {
                "max_output_difference_relative": float(np.abs(outputs - reference["outputs"]).max() / scale),
                "first_loss_relative_difference": (None if loss is None else
                                                   abs(loss - reference["loss"]) / max(abs(reference["loss"]), 1e-12)),
                "tolerance": BF16_TOLERANCE}
            entry["numerics"]["holds"] = all(value is None or value <= BF16_TOLERANCE for key, value in
                                             entry["numerics"].items() if "difference" in key)
            if not entry["numerics"]["holds"]:
                result[precision] = {**entry, "timed": False}
                continue
        # a fresh model for the timings (the checks above took a step)
        model, x, y, batch = _model(port, precision)
        if reference["weights"] is None:
            reference["weights"] = model.get_weights()
        infer_first, infer = _first_and_steady(lambda: keras.ops.convert_to_numpy(model.predict_on_batch(x)), steps)
        entry.update({"inference_examples_per_s": round(batch / infer, 1),
                      "inference_compile_s": round(max(infer_first - infer, 0.0), 2)})
        if port != GENERATOR:
            train_first, train = _first_and_steady(lambda: model.train_on_batch(x, y), steps)
            entry.update({"train_examples_per_s": round(batch / train, 1),
                          "train_compile_s": round(max(train_first - train, 0.0), 2)})
        result[precision] = entry
    return result


def child(backend: str, port: str, precisions: list[str], steps: int, device: str) -> None:
    if device == "gpu" and not sees_gpu(backend):
        print(json.dumps({"error": f"no GPU visible to {backend} ({device_name(backend)})"}))
        return
    print(json.dumps(measure_port(backend, port, precisions, steps)))


# ---------------------------------------------------------------- the benchmark

def run_child(backend: str, port: str, precisions: list[str], steps: int, device: str) -> dict:
    environment = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2",
                   "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, str(Path(__file__).resolve()), "--child", backend, port, "--steps", str(steps),
               "--device", device, "--precisions", *precisions]
    done = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=HERE.parent)
    if done.returncode:
        return {"error": (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1][:500]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def installed_backends(asked: list[str]) -> tuple[list[str], dict]:
    found = [b for b in asked if importlib.util.find_spec(b) is not None]
    return found, {b: "not installed" for b in asked if b not in found}


def gpu_driver() -> dict:
    """nvidia-smi's name, driver and memory of each GPU (none where it is not installed)."""
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    rows = [[part.strip() for part in line.split(",")] for line in done.stdout.strip().splitlines() if line.strip()]
    return {"gpus": [{"name": r[0], "driver": r[1], "memory": r[2]} for r in rows if len(r) == 3]}


def backend_ratios(results: dict) -> dict:
    """Per port: the JAX and PyTorch training steps' examples/s over TensorFlow's (float32)."""
    ratios = {}
    for port, entries in results.items():
        tensorflow = entries.get("tensorflow", {}).get("float32", {}).get("train_examples_per_s")
        if not tensorflow:
            continue
        ratios[port] = {f"{b}_over_tensorflow": round(entries[b]["float32"]["train_examples_per_s"] / tensorflow, 3)
                        for b in ("jax", "torch") if entries.get(b, {}).get("float32", {}).get("train_examples_per_s")}
    return ratios


def targets(results: dict, device: str) -> dict:
    """The targets: on a GPU, the ResNeXt's training step in beats/s (float32 or bf16); on a
    CPU, JAX's training step within ``JAX_CPU_SLOWDOWN_AT_MOST`` of TensorFlow's, per port."""
    if device != "gpu":
        ratios = {port: r["jax_over_tensorflow"] for port, r in backend_ratios(results).items() if "jax_over_tensorflow" in r}
        return {"jax_train_step_over_tensorflow_at_least": round(1 / JAX_CPU_SLOWDOWN_AT_MOST, 3),
                "per_port": {port: {"jax_over_tensorflow": r, "met": r >= 1 / JAX_CPU_SLOWDOWN_AT_MOST}
                             for port, r in ratios.items()}} if ratios else {}
    best = {b: max([e.get("train_examples_per_s", 0) for e in results.get("mitbih_resnext", {}).get(b, {}).values()
                    if isinstance(e, dict)] or [0]) for b in BACKENDS}
    return {"mitbih_resnext_train_beats_per_s": {"target": RESNEXT_TARGET_BEATS_PER_S, "best_per_backend": best,
                                                 "met": max(best.values()) >= RESNEXT_TARGET_BEATS_PER_S}}


def machine_record(backends: list[str]) -> dict:
    """Versions and CPU (tf_ecg.runtime: TensorFlow's only where it is installed) and the GPUs."""
    from tf_ecg.runtime import cpu_info

    found = {}
    for name in ("keras", "numpy", *backends):
        try:
            found[name] = importlib.import_module(name).__version__
        except ModuleNotFoundError:
            pass
    import platform

    return {"platform": platform.platform(), "python": platform.python_version(), "cpu": cpu_info(),
            "versions": found, **gpu_driver()}


def write(name: str, payload: dict) -> Path:
    import datetime

    path = HERE / "results" / f"{name}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps({"command": " ".join([Path(sys.executable).name] + sys.argv),
                                "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                                **payload}, indent=2) + "\n")
    print(f"written {path}")
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("gpu", "any"), default="any")
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--only", nargs="+", choices=[*GPU_PORTS, GENERATOR])
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--minutes", type=float, help="start no measurement after this many minutes")
    parser.add_argument("--result", help="results/<name>.json (default: gpu, or backends_cpu)")
    parser.add_argument("--child", nargs=2, metavar=("BACKEND", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.precisions = [p for p in PRECISIONS if p in args.precisions]  # float32 first: bf16 is checked against it
    if args.child:
        child(*args.child, args.precisions, args.steps, args.device)
        return 0
    started = time.time()
    backends, skipped = installed_backends(args.backends)
    if not backends:
        print(f"gpu.py: error: none of the backends {args.backends} is installed", file=sys.stderr)
        return 2
    results, not_measured = {}, []
    for port in args.only or [*GPU_PORTS, GENERATOR]:
        for backend in backends:
            if args.minutes is not None and time.time() - started > 60 * args.minutes:
                not_measured.append(f"{port} on {backend}")
                continue
            entry = run_child(backend, port, args.precisions, args.steps, args.device)
            results.setdefault(port, {})[backend] = entry
            print(port, backend, json.dumps(entry), flush=True)
    unseen = {b for entries in results.values() for b, e in entries.items() if "no GPU visible" in e.get("error", "")}
    if args.device == "gpu" and unseen == set(backends):
        print(f"gpu.py: error: --device gpu: no GPU visible to {', '.join(backends)}; run it on a GPU machine, "
              f"or --device any to measure the CPU", file=sys.stderr)
        return 2
    write(args.result or ("gpu" if args.device == "gpu" else "backends_cpu"), {
        "machine": machine_record(backends), "device": args.device, "steps": args.steps,
        "precisions": args.precisions, "backends_skipped": skipped, "not_measured": not_measured,
        "seconds": round(time.time() - started, 1), "results": results,
        "train_step_over_tensorflow": backend_ratios(results), "targets": targets(results, args.device)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
