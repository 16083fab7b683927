"""DeepFake ECGs from the Keras port of the Pulse2Pulse generator.

The generator's weights ship in the PyPI package ``deepfake-ecg`` (a dependency of
tf_ecg; it declares no torch requirement). Its ``__init__`` imports torch, so the
checkpoint is located through the package's import spec without importing it.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import keras
import numpy as np
from tqdm.auto import tqdm

from tf_ecg.errors import WeightFileError
from tf_ecg.models.pulse2pulse import LEADS, MICROVOLTS_PER_UNIT, SAMPLES, SAMPLING_RATE
from tf_ecg.registry import build_model
from tf_ecg.weights import load_original_weights

__all__ = ["LEADS", "SAMPLING_RATE", "generator_checkpoint", "load_generator", "generate_ecgs"]


def generator_checkpoint() -> Path:
    """Path of ``deepfakeecg/checkpoints/g_stat.pt`` in the installed package."""
    spec = importlib.util.find_spec("deepfakeecg")
    if spec is None or not spec.submodule_search_locations:
        raise WeightFileError("deepfakeecg/checkpoints/g_stat.pt",
                              "package deepfake-ecg is not installed: pip install deepfake-ecg==1.1.2")
    path = Path(next(iter(spec.submodule_search_locations))) / "checkpoints" / "g_stat.pt"
    if not path.is_file():
        raise WeightFileError(path, "the deepfake-ecg package has no generator checkpoint")
    return path


@lru_cache(maxsize=1)
def load_generator() -> keras.Model:
    """The Pulse2Pulse generator with the official weights (built once per process)."""
    return load_original_weights(build_model("pulse2pulse_generator"), generator_checkpoint())


def generate_ecgs(n: int, seed: int = 0, batch_size: int = 32, progress: bool = True) -> np.ndarray:
    """``n`` 10-s 8-lead ECGs (leads I, II, V1-V6, 500 Hz) in microvolts, int32 (n, 5000, 8).

    As the original: noise ~ U(-1, 1), output x 6000, truncated toward zero.
    """
    if n < 1:
        raise ValueError(f"n must be a positive number of ECGs, got {n}")
    generator = load_generator()
    rng = np.random.default_rng(seed)
    out = np.empty((n, SAMPLES, len(LEADS)), dtype=np.int32)
    with tqdm(total=n, desc="DeepFake ECGs", unit="ecg", disable=not progress) as bar:
        for start in range(0, n, batch_size):
            count = min(batch_size, n - start)
            noise = rng.uniform(-1.0, 1.0, size=(count, SAMPLES, len(LEADS))).astype("float32")
            signal = np.asarray(generator(noise, training=False))
            out[start:start + count] = np.trunc(signal * MICROVOLTS_PER_UNIT).astype(np.int32)
            bar.update(count)
    return out


def write_ecgs(ecgs: np.ndarray, out_dir: str | Path, file_format: str = "wfdb", start_id: int = 0) -> list[Path]:
    """Write (n, 5000, 8) microvolt ECGs as WFDB records (16-bit, 1 adu = 1 uV) or ``.npy``.

    Files appear in ``out_dir`` only when all of them are written (staged, then moved).
    """
    import shutil
    import tempfile

    import wfdb

    if file_format not in ("wfdb", "npy"):
        raise ValueError(f"unknown format {file_format!r}; use 'wfdb' or 'npy'")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".synth-", dir=out_dir))
    try:
        names = []
        for offset, ecg in enumerate(ecgs):
            name = f"deepfake_{start_id + offset:06d}"
            if file_format == "npy":
                np.save(staging / f"{name}.npy", ecg.astype(np.int32))
                names.append(f"{name}.npy")
            else:
                wfdb.wrsamp(name, fs=SAMPLING_RATE, units=["mV"] * len(LEADS), sig_name=list(LEADS),
                            d_signal=ecg.astype(np.int64), fmt=["16"] * len(LEADS), adc_gain=[1000.0] * len(LEADS),
                            baseline=[0] * len(LEADS), write_dir=str(staging),
                            comments=["DeepFake ECG (Pulse2Pulse, Keras port); 1 adu = 1 uV"])
                names += [f"{name}.hea", f"{name}.dat"]
        for name in names:
            shutil.move(str(staging / name), out_dir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [out_dir / n for n in names]
