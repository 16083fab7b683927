"""Shared fixtures: the real data in ../shared/data, and small records written by tests."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import wfdb

import tf_ecg  # noqa: F401  (before any test starts TensorFlow: tf_ecg chooses its CPU kernels)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TF_ECG_TEST_DATA", REPO.parent / "shared" / "data"))
ORIGINALS = SHARED_DATA.parent / "originals"


def _require(path: Path) -> Path:
    if path.exists():
        return path
    message = f"real test data not found at {path} (set TF_ECG_TEST_DATA)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)  # CI must not pass by skipping the real-data tests
    pytest.skip(message)


def pytest_collection_modifyitems(items):
    """The notebooks (minutes each) first: spread over the test processes (``-n 2``), the short
    tests fill in around them instead of one process running the last notebook alone."""
    items.sort(key=lambda item: Path(str(item.fspath)).name != "test_notebooks.py")


@pytest.fixture(scope="session", autouse=True)
def measured_label_cache(tmp_path_factory) -> Path:
    """What is measured from records (PTB-XL intervals, glucose beats) is cached for this test
    run only: every run measures afresh, and never touches ~/.cache. The processes of one run
    (pytest-xdist workers) share the folder, as processes share ``$TF_ECG_CACHE``."""
    root = tmp_path_factory.getbasetemp()
    folder = (root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root) / "tf_ecg_cache"
    folder.mkdir(exist_ok=True)
    os.environ["TF_ECG_CACHE"] = str(folder)  # notebook kernels inherit it
    return folder


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return _require(SHARED_DATA)


@pytest.fixture(scope="session")
def mitdb_dir(shared_data) -> Path:
    return _require(shared_data / "mitdb")


@pytest.fixture(scope="session")
def ptbxl_dir(shared_data) -> Path:
    return _require(shared_data / "ptbxl")


@pytest.fixture(scope="session")
def originals() -> Path:
    return _require(ORIGINALS)


def write_record(directory: Path, name: str, signal: np.ndarray, fs: float, leads, fmt: str = "16",
                 units: str = "mV") -> Path:
    """A small WFDB record written with wfdb itself (physical units mV unless told)."""
    directory.mkdir(parents=True, exist_ok=True)
    wfdb.wrsamp(name, fs=fs, units=[units] * len(leads), sig_name=list(leads), p_signal=signal,
                fmt=[fmt] * len(leads), write_dir=str(directory))
    return directory / name


@pytest.fixture
def small_record(tmp_path) -> Path:
    """Two-lead, 360 Hz, 20 s synthetic record with clean R peaks at 75 bpm."""
    import neurokit2 as nk

    lead = nk.ecg_simulate(duration=20, sampling_rate=360, heart_rate=75, random_state=3)
    signal = np.stack([lead, 0.5 * lead], axis=1)
    return write_record(tmp_path, "rec1", signal, 360, ["MLII", "V1"])


def assert_explains(saved, recording, out, method="integrated_gradients", steps=4, **options):
    """``tf-ecg explain`` of an export on a recording: attributions of the windows' shape, finite,
    and the files written; integrated gradients not all zero (a Grad-CAM map can be: every
    weighted sum negative, as in a network with random weights)."""
    import json

    import numpy as np

    from tf_ecg.cli import main

    args = ["explain", str(saved), str(recording), "--out", str(out), "--method", method.replace("_", "-"),
            "--steps", str(steps), *[f"--{k.replace('_', '-')}={v}" for k, v in options.items()]]
    assert main(args) == 0
    attributions, windows = np.load(out / "attributions.npy"), np.load(out / "windows.npy")
    assert attributions.shape == windows.shape and np.isfinite(attributions).all()
    assert method == "grad_cam" or np.abs(attributions).max() > 0
    assert len(json.loads((out / "explain.json").read_text())["explained"]) == len(windows)
    assert (out / "strip_0.png").is_file()
    return attributions


def environment_without(folder: Path, modules: tuple[str, ...]) -> dict:
    """The environment of a child process in which ``modules`` cannot be imported, as on a
    machine without them (a ``sitecustomize`` in ``folder`` refuses them)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(
        "import sys\n"
        "class _Hidden:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {tuple(modules)!r}:\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, _Hidden())\n")
    return {**os.environ, "PYTHONPATH": str(folder), "CUDA_VISIBLE_DEVICES": ""}
