"""DeepFake generator throughput (ECGs/s): the Keras port, and the PyTorch original of the
deepfake-ecg package where torch is installed (an optional benchmark environment).

Usage: python benchmarks/deepfake_generator.py [--n 256] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_io import write_result  # noqa: E402
from tf_ecg.deepfake import generate_ecgs, generator_checkpoint, load_generator  # noqa: E402


def keras_rate(n: int, batch_size: int) -> float:
    load_generator()
    generate_ecgs(batch_size, batch_size=batch_size, progress=False)  # warm-up (tracing)
    started = time.perf_counter()
    generate_ecgs(n, seed=1, batch_size=batch_size, progress=False)
    return n / (time.perf_counter() - started)


def torch_rate(n: int, batch_size: int) -> float | None:
    if importlib.util.find_spec("torch") is None:
        return None
    import torch

    from deepfakeecg.models.pulse2pulse import Pulse2pulseGenerator

    net = Pulse2pulseGenerator()
    net.load_state_dict(torch.load(generator_checkpoint(), map_location="cpu", weights_only=False)["stat_dict"])
    net.eval()
    started = time.perf_counter()
    with torch.no_grad():
        for start in range(0, n, batch_size):
            noise = torch.empty(min(batch_size, n - start), 8, 5000).uniform_(-1, 1)
            (net(noise) * 6000).int()
    return n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    results = {"n": args.n, "batch_size": args.batch_size,
               "keras_port_ecgs_per_s": round(keras_rate(args.n, args.batch_size), 1)}
    original = torch_rate(args.n, args.batch_size)
    results["pytorch_original_ecgs_per_s"] = None if original is None else round(original, 1)
    print(results)
    write_result("deepfake_generator", results)


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
