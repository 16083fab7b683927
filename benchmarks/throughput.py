"""Training and inference throughput of every port, beside the original's computation.

Usage:
    python benchmarks/throughput.py [--steps 7] [--threads 2] [--compare-with DIR]
                                    [--compare-kernels] [--avx2-cpu] [--only NAME ...] [--result NAME]
    python benchmarks/throughput.py --table benchmarks/results/throughput.json   (Markdown)

Per model, at the batch shapes of issue 13: samples/s of a training step
(``model.train_on_batch`` with the recipe's optimizer and loss, built by the trainer's
``compile_model``) and of inference (``model.predict_on_batch``), the median of ``--steps``
steps after two warm-up steps, every framework held to ``--threads`` threads. Beside them,
where installed: PyTorch (the ``deepfake-ecg`` generator itself; for the glucose
networks, the ResNeXt and Inception1d, the modules ``tests/torch_references.py`` writes
from the specs, which compute the originals' outputs: the glucose ones reproduce the
original checkpoints' recorded outputs exactly) trained with the original's optimizer
(Adam; AdaBound's update costs what Adam's does), and tf-keras 2 for Ribeiro
(``tests/tf_keras_references.py``; ``pip install --no-deps tf-keras==2.21.0``).
``tf-ecg synth`` is timed writing WFDB records (generation included).

Every measurement runs in a fresh process, one at a time. ``--compare-with DIR`` also
times the ports of another tf_ecg checkout (``git worktree add DIR <commit>``), in the same
order, so that a change is measured against what it replaces on the same machine and hour.
``--compare-kernels`` also times each port with the CPU kernels tf_ecg did not choose
(``TF_ENABLE_ONEDNN_OPTS`` flipped: oneDNN <-> Eigen), in the same run. ``--avx2-cpu``
runs everything as on a CPU without AVX-512 (AMD Zen 1-3, Intel before Skylake-X): oneDNN
(also behind TensorFlow's Eigen matrix products), MKL and PyTorch held to AVX2, and
TensorFlow's kernels chosen as there: Eigen (``TF_ENABLE_ONEDNN_OPTS=0``, its default on
such CPUs) for the tf-keras original and for a tf_ecg that leaves the choice to
TensorFlow, whatever tf_ecg chooses for a tf_ecg that does (``tf_ecg/__init__.py``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from results_io import write_result  # noqa: E402

# name: (packaged recipe, overrides, input shape, batch): the batch shapes of issue 13
PORTS = {
    "glucose_supervised": ("glucose_supervised", {}, (384, 1), 128),
    "glucose_comparator": ("glucose_comparator", {}, (384, 1), 128),
    "mitbih_resnext": ("mitbih_resnext", {}, (187, 1), 128),
    "inception1d": ("inception1d_superclass", {"model.options.input_length": 1000}, (1000, 8), 32),
    "ribeiro_resnet": ("ribeiro_6class", {}, (4096, 12), 64),
}
GENERATOR_BATCH, SYNTH_ECGS = 32, 128
AVX2_CPU = {"ONEDNN_MAX_CPU_ISA": "AVX2", "DNNL_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2",
            "MKL_ENABLE_INSTRUCTIONS": "AVX2"}


def _chooses_cpu_kernels(source: Path) -> bool:
    """Whether a tf_ecg checkout sets TensorFlow's oneDNN switch itself (on import)."""
    return "TF_ENABLE_ONEDNN_OPTS" in (source / "tf_ecg" / "__init__.py").read_text()


def timed(step, steps: int) -> float:
    """Median seconds of ``step()`` over ``steps`` calls after two warm-up calls."""
    for _ in range(2):
        step()
    seconds = []
    for _ in range(steps):
        started = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def _rates(batch: int, train, infer, steps: int) -> dict:
    return {"batch": batch, "train_samples_per_s": round(batch / timed(train, steps), 2),
            "inference_samples_per_s": round(batch / timed(infer, steps), 2)}


def _tensorflow(threads: int):
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    return tf


def _torch(threads: int):
    import torch

    torch.set_num_threads(threads)
    return torch


def random_batch(shape, batch: int, task: str, outputs: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, *shape)).astype(np.float32) * (150.0 if shape == (384, 1) else 1.0)  # beats in uV
    y = (rng.random((batch, outputs)) < 0.3).astype(np.float32) if task in ("binary", "multilabel") \
        else rng.integers(0, outputs, batch)
    return x, y


def port_rates(name: str, steps: int, threads: int) -> dict:
    _tensorflow(threads)
    import keras

    import tf_ecg
    from tf_ecg import build_model
    from tf_ecg.config import load_recipe, recipes_dir
    from tf_ecg.training.compiling import compile_model

    recipe_name, overrides, shape, batch = PORTS[name]
    recipe = load_recipe(recipes_dir() / f"{recipe_name}.toml", overrides)
    outputs = build_model(recipe.model.name, **recipe.model.options).output_shape[-1]
    keras.utils.set_random_seed(0)
    model = compile_model(recipe, outputs, shape)
    x, y = random_batch(shape, batch, recipe.task, outputs)
    if recipe.training.pairs:  # the comparator: reference half, query half, same/different labels
        x, y = [x[:batch // 2], x[batch // 2:]], y[:batch // 2]
    return {"recipe": f"models/{recipe_name}.toml", "input": list(shape), "tf_ecg": tf_ecg.__file__,
            **_rates(batch, lambda: model.train_on_batch(x, y), lambda: model.predict_on_batch(x), steps)}


def reference_rates(name: str, steps: int, threads: int) -> dict:
    """The original's computation: PyTorch modules (tf-keras for Ribeiro) with its optimizer."""
    recipe_name, _, shape, batch = PORTS[name]
    sys.path.insert(0, str(REPO / "tests"))
    if name == "ribeiro_resnet":
        _tensorflow(threads)
        import tf_keras
        from tf_keras_references import ribeiro_resnet

        tf_keras.utils.set_random_seed(0)
        model = ribeiro_resnet()
        model.compile(optimizer=tf_keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
        x, y = random_batch(shape, batch, "multilabel", 6)
        return {"what": "tf-keras 2 ResNet written from the spec (tests/tf_keras_references.py), Adam",
                "tf_keras": tf_keras.__version__,
                **_rates(batch, lambda: model.train_on_batch(x, y), lambda: model.predict_on_batch(x), steps)}
    torch = _torch(threads)
    import torch_references as refs

    torch.manual_seed(0)
    net, optimizer, loss, learning_rate = {
        "glucose_supervised": (refs.GlucoseEffNetV2, "adam", "bce", 1e-4),
        "glucose_comparator": (refs.GlucoseComparator, "adam", "bce", 4e-3),
        "mitbih_resnext": (refs.KModel, "adam", "cross_entropy", 1e-3),
        "inception1d": (lambda: refs.Inception1d(num_classes=5), "adam", "bce", 1e-2),
    }[name]
    net = net()
    optimizer = torch.optim.Adam(net.parameters(), learning_rate, eps=1e-8)
    x, y = random_batch(shape, batch, "multiclass" if loss == "cross_entropy" else "multilabel",
                  5 if name in ("mitbih_resnext", "inception1d") else 1)
    x, y = torch.from_numpy(x.transpose(0, 2, 1).copy()), torch.from_numpy(y)
    inputs = (x[:batch // 2], x[batch // 2:]) if name == "glucose_comparator" else (x,)
    target = y[:batch // 2] if name == "glucose_comparator" else y

    def train_step():
        optimizer.zero_grad()
        out = net(*inputs)
        value = (torch.nn.functional.cross_entropy(out, target) if loss == "cross_entropy" else
                 torch.nn.functional.binary_cross_entropy(out, target) if name.startswith("glucose") else
                 torch.nn.functional.binary_cross_entropy_with_logits(out, target))
        value.backward()
        optimizer.step()

    def infer_step():
        with torch.no_grad():
            net(*inputs)

    net.train()
    train = timed(train_step, steps)
    net.eval()
    infer = timed(infer_step, steps)
    return {"what": "PyTorch module written from the spec (tests/torch_references.py), Adam", "torch": torch.__version__,
            "batch": batch, "train_samples_per_s": round(batch / train, 2), "inference_samples_per_s": round(batch / infer, 2)}


def generator_port_rates(steps: int, threads: int) -> dict:
    import tempfile

    _tensorflow(threads)
    from tf_ecg.cli import main as cli
    from tf_ecg.deepfake import generate_ecgs, load_generator

    load_generator()
    rate = GENERATOR_BATCH / timed(lambda: generate_ecgs(GENERATOR_BATCH, seed=1, batch_size=GENERATOR_BATCH,
                                                         progress=False), steps)
    with tempfile.TemporaryDirectory() as folder:
        runs = iter(range(1000))
        synth = timed(lambda: cli(["synth", "--n", str(SYNTH_ECGS), "--out", f"{folder}/{next(runs)}", "--seed", "2"]),
                      max(2, steps // 3))
    return {"batch": GENERATOR_BATCH, "input": [5000, 8], "generate_ecgs_per_s": round(rate, 2),
            "synth_wfdb_ecgs_per_s": round(SYNTH_ECGS / synth, 2), "synth_ecgs": SYNTH_ECGS}


def generator_original_rates(steps: int, threads: int) -> dict:
    torch = _torch(threads)
    from deepfakeecg.models.pulse2pulse import Pulse2pulseGenerator

    from tf_ecg.deepfake import generator_checkpoint

    net = Pulse2pulseGenerator()
    net.load_state_dict(torch.load(generator_checkpoint(), map_location="cpu", weights_only=False)["stat_dict"])
    net.eval()

    def generate():
        with torch.no_grad():
            (net(torch.empty(GENERATOR_BATCH, 8, 5000).uniform_(-1, 1)) * 6000).int()

    return {"what": "deepfake-ecg's Pulse2pulseGenerator (the original), batched, tanh x 6000 -> int",
            "torch": torch.__version__, "batch": GENERATOR_BATCH,
            "ecgs_per_s": round(GENERATOR_BATCH / timed(generate, steps), 2)}


def run_child(kind: str, name: str, steps: int, threads: int, environment: dict, source: Path | None = None) -> dict:
    """One measurement in a fresh process (its own threads, kernels and tf_ecg)."""
    env = {**os.environ, **environment, "TF_CPP_MIN_LOG_LEVEL": "2"}
    if environment is AVX2_CPU and "TF_ENABLE_ONEDNN_OPTS" not in os.environ and (
            kind == "reference" or not _chooses_cpu_kernels(source or REPO)):
        env["TF_ENABLE_ONEDNN_OPTS"] = "0"  # TensorFlow's default on a CPU without AVX-512 VNNI
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(source), env.get("PYTHONPATH", "")])
    command = [sys.executable, str(Path(__file__).resolve()), "--child", kind, name, "--steps", str(steps),
               "--threads", str(threads)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=source or REPO)
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _ratio(port: dict, original: dict, key: str, original_key: str | None = None):
    if "error" in port or "error" in original:
        return None
    return round(port[key] / original[original_key or key], 2)


def _other_kernels(port: dict, environment: dict) -> dict:
    """The environment that runs TensorFlow's other CPU kernels than the port ran with."""
    return {**environment, "TF_ENABLE_ONEDNN_OPTS": "0" if port.get("tensorflow_cpu_kernels") == "oneDNN" else "1"}


def measure(args, environment: dict) -> dict:
    compare = Path(args.compare_with).resolve() if args.compare_with else None
    with_torch = importlib.util.find_spec("torch") is not None
    with_tf_keras = importlib.util.find_spec("tf_keras") is not None
    models = {}
    for name in PORTS:
        if args.only and name not in args.only:
            continue
        entry = {"port": run_child("port", name, args.steps, args.threads, environment)}
        if compare:
            entry["compared"] = run_child("port", name, args.steps, args.threads, environment, compare)
            entry["speedup_over_compared"] = {
                key: _ratio(entry["port"], entry["compared"], f"{key}_samples_per_s") for key in ("train", "inference")}
        if args.compare_kernels:
            entry["other_kernels"] = run_child("port", name, args.steps, args.threads,
                                               _other_kernels(entry["port"], environment))
            entry["speedup_over_other_kernels"] = {
                key: _ratio(entry["port"], entry["other_kernels"], f"{key}_samples_per_s") for key in ("train", "inference")}
        if (with_tf_keras if name == "ribeiro_resnet" else with_torch):
            entry["original"] = run_child("reference", name, args.steps, args.threads, environment)
            entry["train_ratio"] = _ratio(entry["port"], entry["original"], "train_samples_per_s")
            entry["inference_ratio"] = _ratio(entry["port"], entry["original"], "inference_samples_per_s")
        else:
            entry["original"] = "not measured: " + ("tf_keras" if name == "ribeiro_resnet" else "torch") + " not installed"
        models[name] = entry
        print(name, json.dumps(entry), flush=True)
    if not args.only or "deepfake_generator" in args.only:
        entry = {"port": run_child("generator_port", "-", args.steps, args.threads, environment)}
        if compare:
            entry["compared"] = run_child("generator_port", "-", args.steps, args.threads, environment, compare)
            entry["speedup_over_compared"] = _ratio(entry["port"], entry["compared"], "generate_ecgs_per_s")
        if args.compare_kernels:
            entry["other_kernels"] = run_child("generator_port", "-", args.steps, args.threads,
                                               _other_kernels(entry["port"], environment))
            entry["speedup_over_other_kernels"] = _ratio(entry["port"], entry["other_kernels"], "generate_ecgs_per_s")
        if with_torch:
            entry["original"] = run_child("generator_original", "-", args.steps, args.threads, environment)
            entry["generate_ratio"] = _ratio(entry["port"], entry["original"], "generate_ecgs_per_s", "ecgs_per_s")
            entry["synth_ratio"] = _ratio(entry["port"], entry["original"], "synth_wfdb_ecgs_per_s", "ecgs_per_s")
        models["deepfake_generator"] = entry
        print("deepfake_generator", json.dumps(entry), flush=True)
    return models


def _tensorflow_cpu_kernels() -> str | None:
    """oneDNN or Eigen, read from TensorFlow itself (a compared checkout may predate
    tf_ecg.runtime.cpu_kernels); None where this process never started TensorFlow."""
    if "tensorflow" not in sys.modules:
        return None
    from tensorflow.python.util import _pywrap_util_port

    return "oneDNN" if _pywrap_util_port.IsMklEnabled() else "Eigen"


def _source_commit(path: Path | None) -> str | None:
    if path is None:
        return None
    done = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or None


def markdown_table(path: Path) -> str:
    """The README's table of a results file: port, before, original, ratio, per model."""
    def number(value):
        return f"{value:,.1f}" if isinstance(value, (int, float)) else "-"

    def ratio(value):
        return f"**{value}x**" if value is not None else "-"

    data = json.loads(Path(path).read_text())
    if any("other_kernels" in entry for entry in data["results"]["models"].values()):
        return _kernels_table(data, number)
    rows = ["| model (batch) | port, train | before | original | port / original | port, inference | original | port / original |",
            "|---|---|---|---|---|---|---|---|"]
    for name, entry in data["results"]["models"].items():
        port, before, original = entry["port"], entry.get("compared") or {}, entry.get("original")
        original = original if isinstance(original, dict) else {}
        if name == "deepfake_generator":
            rows.append(f"| generator, `generate_ecgs` ({port['batch']}), ECGs/s | {number(port['generate_ecgs_per_s'])} "
                        f"| {number(before.get('generate_ecgs_per_s'))} | {number(original.get('ecgs_per_s'))} "
                        f"| {ratio(entry.get('generate_ratio'))} | | | |")
            rows.append(f"| `tf-ecg synth` to WFDB files ({port['synth_ecgs']}), ECGs/s "
                        f"| {number(port['synth_wfdb_ecgs_per_s'])} | {number(before.get('synth_wfdb_ecgs_per_s'))} "
                        f"| {number(original.get('ecgs_per_s'))} (batched network) | {ratio(entry.get('synth_ratio'))} | | | |")
            continue
        rows.append(f"| {name} ({port['batch']}) | {number(port['train_samples_per_s'])} "
                    f"| {number(before.get('train_samples_per_s'))} | {number(original.get('train_samples_per_s'))} "
                    f"| {ratio(entry.get('train_ratio'))} | {number(port['inference_samples_per_s'])} "
                    f"| {number(original.get('inference_samples_per_s'))} | {entry.get('inference_ratio', '-')}x |")
    return "\n".join(rows)


def _kernels_table(data: dict, number) -> str:
    """A --compare-kernels results file: each port on tf_ecg's kernels and on the others."""
    models = data["results"]["models"]
    first = next(iter(models.values()))
    ours, other = first["port"]["tensorflow_cpu_kernels"], first["other_kernels"]["tensorflow_cpu_kernels"]
    rows = [f"| model (batch) | train, {ours} | train, {other} | {ours} / {other} "
            f"| inference, {ours} | inference, {other} | {ours} / {other} |", "|---|---|---|---|---|---|---|"]
    for name, entry in models.items():
        port, others, speedup = entry["port"], entry["other_kernels"], entry["speedup_over_other_kernels"]
        if name == "deepfake_generator":
            rows.append(f"| generator, `generate_ecgs` ({port['batch']}), ECGs/s | | | "
                        f"| {number(port['generate_ecgs_per_s'])} | {number(others.get('generate_ecgs_per_s'))} "
                        f"| {speedup}x |")
            continue
        rows.append(f"| {name} ({port['batch']}) | {number(port['train_samples_per_s'])} "
                    f"| {number(others.get('train_samples_per_s'))} | **{speedup['train']}x** "
                    f"| {number(port['inference_samples_per_s'])} | {number(others.get('inference_samples_per_s'))} "
                    f"| {speedup['inference']}x |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compare-with", help="another tf_ecg checkout to time beside this one")
    parser.add_argument("--compare-kernels", action="store_true",
                        help="also time each port with TensorFlow's other CPU kernels (oneDNN <-> Eigen)")
    parser.add_argument("--avx2-cpu", action="store_true", help="as on a CPU without AVX-512 (see above)")
    parser.add_argument("--only", nargs="+", choices=[*PORTS, "deepfake_generator"])
    parser.add_argument("--result", default="throughput", help="results file name (benchmarks/results/NAME.json)")
    parser.add_argument("--table", metavar="RESULTS_JSON", help="print a results file as a Markdown table and stop")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.table:
        print(markdown_table(Path(args.table)))
        return
    if args.child:
        kind, name = args.child
        function = {"port": port_rates, "reference": reference_rates,
                    "generator_port": lambda _, steps, threads: generator_port_rates(steps, threads),
                    "generator_original": lambda _, steps, threads: generator_original_rates(steps, threads)}[kind]
        result = function(name, args.steps, args.threads)
        print(json.dumps({**result, "tensorflow_cpu_kernels": _tensorflow_cpu_kernels()}))
        return
    environment = AVX2_CPU if args.avx2_cpu else {}
    for key, value in environment.items():
        os.environ.setdefault(key, value)  # recorded by write_result's machine section as well
    _tensorflow(args.threads)  # the machine section reports what the children ran with
    results = {"threads": args.threads, "steps": args.steps, "timing": "median of steps after 2 warm-up steps",
               "environment": environment or "as this machine runs by default",
               "compared_with": {"path": args.compare_with, "commit": _source_commit(
                   Path(args.compare_with) if args.compare_with else None)} if args.compare_with else None,
               "this_commit": _source_commit(REPO), "models": measure(args, environment)}
    write_result(args.result, results)


if __name__ == "__main__":
    main()
