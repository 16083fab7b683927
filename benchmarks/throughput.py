"""Training and inference throughput of every port, beside the original where it runs here.

Usage: python benchmarks/throughput.py [--steps 5] [--threads 2]

Per model, at the batch shapes of issue 13: samples/s of a training step
(``model.train_on_batch`` with the recipe's optimizer and loss) and of inference
(``model.predict_on_batch``), the median of ``--steps`` steps after two warm-up steps, with
TensorFlow (and PyTorch) held to ``--threads`` threads. Beside them, where PyTorch is
installed: the DeepFake generator of the ``deepfake-ecg`` package (the original itself),
and the PyTorch Inception1d and ResNeXt kModel that ``tests/torch_references.py`` writes
from the specs (the same layers; the originals' own training scripts are not run here).
The glucose EfficientNetV2 and the Ribeiro tf-keras originals are not installed here and
are recorded as not measured.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))  # the spec-written PyTorch references
from results_io import write_result  # noqa: E402

# name: (packaged recipe, overrides, input shape, batch): built and compiled as the trainer does
PORTS = {
    "glucose_effnetv2": ("glucose_supervised", {}, (384, 1), 128),
    "mitbih_resnext": ("mitbih_resnext", {}, (187, 1), 128),
    "inception1d": ("inception1d_superclass", {"model.options.input_length": 1000}, (1000, 8), 32),
    "ribeiro_resnet": ("ribeiro_6class", {}, (4096, 12), 64),
}


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


def port_rates(name: str, steps: int) -> dict:
    import keras

    from tf_ecg import build_model
    from tf_ecg.config import load_recipe, recipes_dir
    from tf_ecg.training.trainer import compile_model

    recipe_name, overrides, shape, batch = PORTS[name]
    recipe = load_recipe(recipes_dir() / f"{recipe_name}.toml", overrides)
    outputs = build_model(recipe.model.name, **recipe.model.options).output_shape[-1]
    keras.utils.set_random_seed(0)
    model = compile_model(recipe, outputs, shape)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, *shape)).astype(np.float32)
    y = (rng.random((batch, outputs)) < 0.2).astype(np.float32) if recipe.task in ("binary", "multilabel") \
        else rng.integers(0, outputs, batch)
    train = timed(lambda: model.train_on_batch(x, y), steps)
    infer = timed(lambda: model.predict_on_batch(x), steps)
    return {"recipe": f"models/{recipe_name}.toml", "batch": batch, "input": list(shape),
            "train_samples_per_s": round(batch / train, 2), "inference_samples_per_s": round(batch / infer, 2)}


def torch_rates(name: str, steps: int) -> dict | None:
    import torch

    from torch_references import Inception1d, KModel

    shapes = {"mitbih_resnext": (KModel, {}, (1, 187), 128, 5), "inception1d": (Inception1d, {"num_classes": 5}, (8, 1000), 32, 5)}
    if name not in shapes:
        return None
    module, options, shape, batch, classes = shapes[name]
    torch.manual_seed(0)
    net = module(**options)
    optimizer = torch.optim.Adam(net.parameters(), 1e-3)
    x, y = torch.randn(batch, *shape), torch.randint(0, classes, (batch,))

    def train_step():
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        optimizer.step()

    def infer_step():
        with torch.no_grad():
            net(x)

    net.train()
    train = timed(train_step, steps)
    net.eval()
    infer = timed(infer_step, steps)
    return {"batch": batch, "train_samples_per_s": round(batch / train, 2), "inference_samples_per_s": round(batch / infer, 2),
            "what": "PyTorch module written from the spec (tests/torch_references.py), Adam + cross-entropy"}


def generator_rates(steps: int, with_torch: bool) -> dict:
    from tf_ecg.deepfake import generate_ecgs, generator_checkpoint, load_generator

    batch = 32
    load_generator()
    port = timed(lambda: generate_ecgs(batch, seed=1, batch_size=batch, progress=False), steps)
    result = {"batch": batch, "input": [5000, 8], "port_generate_ecgs_per_s": round(batch / port, 2)}
    if with_torch:
        import torch
        from deepfakeecg.models.pulse2pulse import Pulse2pulseGenerator

        net = Pulse2pulseGenerator()
        net.load_state_dict(torch.load(generator_checkpoint(), map_location="cpu", weights_only=False)["stat_dict"])
        net.eval()

        def original():
            with torch.no_grad():
                (net(torch.empty(batch, 8, 5000).uniform_(-1, 1)) * 6000).int()

        result["original_ecgs_per_s"] = round(batch / timed(original, steps), 2)
        result["ratio"] = round(result["port_generate_ecgs_per_s"] / result["original_ecgs_per_s"], 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    with_torch = importlib.util.find_spec("torch") is not None
    if with_torch:
        import torch

        torch.set_num_threads(args.threads)
    results = {"threads": args.threads, "steps": args.steps, "timing": "median of steps after 2 warm-up steps",
               "models": {}}
    for name in PORTS:
        entry = {"port": port_rates(name, args.steps)}
        reference = torch_rates(name, args.steps) if with_torch else None
        if reference:
            entry["pytorch"] = reference
            entry["train_ratio"] = round(entry["port"]["train_samples_per_s"] / reference["train_samples_per_s"], 2)
        else:
            entry["original"] = "not measured here: " + (
                "the glucose study's PyTorch code is not installed" if name == "glucose_effnetv2" else
                "tf-keras 2 is not installed" if name == "ribeiro_resnet" else "PyTorch is not installed")
        results["models"][name] = entry
        print(name, entry, flush=True)
    results["models"]["deepfake_generator"] = generator_rates(args.steps, with_torch)
    print(results["models"]["deepfake_generator"])
    write_result("throughput", results)


if __name__ == "__main__":
    main()
