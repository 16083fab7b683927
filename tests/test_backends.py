"""Every registry model gives the same outputs from the same weights on TensorFlow, JAX and
PyTorch (Keras 3 backends; JAX and torch where installed), within 1e-5."""

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


def _run(backend: str, folder: Path) -> dict:
    environment = {**os.environ, "KERAS_BACKEND": backend, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, str(SCRIPT), str(folder)], env=environment, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((folder / f"{backend}.json").read_text())


@pytest.fixture(scope="module")
def tensorflow_outputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("backends")
    return folder, _run("tensorflow", folder)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_every_model_gives_the_same_outputs_on_every_backend(backend, tensorflow_outputs):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    folder, shapes = tensorflow_outputs
    assert sorted(shapes) == sorted(model_names())
    assert _run(backend, folder) == shapes
    differences = {name: float(np.abs(np.load(folder / f"{name}.{backend}.npy")
                                      - np.load(folder / f"{name}.tensorflow.npy")).max()) for name in shapes}
    assert max(differences.values()) <= 1e-5, differences
