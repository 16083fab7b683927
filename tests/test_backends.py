"""Every registry model gives the same outputs from the same weights on TensorFlow, JAX and
PyTorch (Keras 3 backends; JAX and torch where installed), within 1e-5; and the same losses
over two training steps (SGD), and with the ResNeXt recipe's focal loss and AdaBound."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tf_ecg.registry import model_names

SCRIPT = Path(__file__).resolve().parent / "backend_parity.py"
BACKENDS = ["jax", "torch"]
# Training steps that differ from TensorFlow's today: the ResNeXt's training-mode forward at
# initialisation is ill-conditioned in float32 (56 batch-normalised layers over 8 examples:
# TensorFlow's own fused and element-wise BatchNorm give first losses 1.1e-3 apart, and its
# oneDNN and Eigen kernels second losses 20 % apart); the generator's compiled step on JAX
# fails ("'str' object has no attribute '_error_repr'").
STEP_DIFFERS = {("mitbih_resnext", "jax"), ("mitbih_resnext", "torch"), ("pulse2pulse_generator", "jax")}
# The loss of the training step itself within 1e-5; the losses after the update within 1e-4:
# there TensorFlow's own two BatchNorm computations differ by 6e-5 on Inception1d.
FIRST_STEP_RTOL, LATER_STEP_RTOL = 1e-5, 1e-4


def _run(backend: str, folder: Path) -> dict:
    """One process under ``backend``: every model's outputs (saved beside the weights) and
    its training-step losses."""
    environment = {**os.environ, "KERAS_BACKEND": backend, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, str(SCRIPT), str(folder), "--steps"],
                          env=environment, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((folder / f"{backend}.json").read_text())


@pytest.fixture(scope="module")
def backend_runs(tmp_path_factory):
    """The TensorFlow run (which writes the weights the others load); the others on first use."""
    folder = tmp_path_factory.mktemp("backends")
    runs = {"tensorflow": _run("tensorflow", folder)}

    def run(backend: str) -> dict:
        if importlib.util.find_spec(backend) is None:
            pytest.skip(f"{backend} is not installed")
        if backend not in runs:
            runs[backend] = _run(backend, folder)
        return runs[backend]

    run.folder = folder
    return run


@pytest.mark.xdist_group("backends")  # one TensorFlow reference run per test process
@pytest.mark.parametrize("backend", BACKENDS)
def test_every_model_gives_the_same_outputs_on_every_backend(backend, backend_runs):
    reference, other = backend_runs("tensorflow"), backend_runs(backend)
    assert sorted(name for name in reference if name != "focal_adabound") == sorted(model_names())
    assert {n: r["shape"] for n, r in other.items() if n in model_names()} == \
        {n: r["shape"] for n, r in reference.items() if n in model_names()}
    folder = backend_runs.folder
    differences = {name: float(np.abs(np.load(folder / f"{name}.{backend}.npy")
                                      - np.load(folder / f"{name}.tensorflow.npy")).max()) for name in model_names()}
    assert max(differences.values()) <= 1e-5, differences


@pytest.mark.xdist_group("backends")
@pytest.mark.parametrize("name, backend", [
    pytest.param(n, b, marks=pytest.mark.xfail(strict=True, reason="known difference") if (n, b) in STEP_DIFFERS else ())
    for n in [*model_names(), "focal_adabound"] for b in BACKENDS])
def test_training_steps_give_the_same_losses_on_every_backend(name, backend, backend_runs):
    reference, other = backend_runs("tensorflow")[name], backend_runs(backend)[name]
    assert "error" not in other, other.get("error")
    expected, losses = (reference, other) if name == "focal_adabound" else (reference["losses"], other["losses"])
    np.testing.assert_allclose(losses[0], expected[0], rtol=FIRST_STEP_RTOL, atol=1e-6)
    np.testing.assert_allclose(losses[1:], expected[1:], rtol=LATER_STEP_RTOL, atol=1e-6)
