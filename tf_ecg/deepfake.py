"""DeepFake ECGs from the Keras port of the Pulse2Pulse generator, and the data source
built on them (it needs a model, so it sits above ``models``, not in ``data``).

The generator's weights ship in the PyPI package ``deepfake-ecg`` (a dependency of
tf_ecg; it declares no torch requirement). Its ``__init__`` imports torch, so the
checkpoint is located through the package's import spec without importing it.
"""

from __future__ import annotations

import hashlib
import importlib.util
from functools import lru_cache
from pathlib import Path

import keras
import numpy as np
from tqdm.auto import tqdm

from tf_ecg.data.cache import cached_table
from tf_ecg.data.intervals import INTERVALS, MEASUREMENT, failure_counts, heart_rate_with_cause, interval_table
from tf_ecg.data.resample import resample
from tf_ecg.data.sources import Splits, random_split, register_source
from tf_ecg.data.spec import InputSpec, normalise
from tf_ecg.errors import OutputPathError, RecipeError, WeightFileError
from tf_ecg.models.pulse2pulse import LEADS, MICROVOLTS_PER_UNIT, SAMPLES, SAMPLING_RATE
from tf_ecg.registry import build_model
from tf_ecg.weights import load_original_weights

__all__ = ["LEADS", "SAMPLING_RATE", "generator_checkpoint", "load_generator", "generate_ecgs", "write_ecgs",
           "check_synth_output", "deepfake_intervals"]


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
        raise RecipeError(None, f"the number of ECGs must be positive, got {n}")
    generator = load_generator()
    rng = np.random.default_rng(seed)
    out = np.empty((n, SAMPLES, len(LEADS)), dtype=np.int32)
    with tqdm(total=n, desc="DeepFake ECGs", unit="ecg", disable=not progress) as bar:
        for start in range(0, n, batch_size):
            count = min(batch_size, n - start)
            noise = rng.uniform(-1.0, 1.0, size=(count, SAMPLES, len(LEADS))).astype("float32")
            signal = generator.predict_on_batch(noise)  # a compiled call: 1.4x an eager one on a CPU
            out[start:start + count] = np.trunc(signal * MICROVOLTS_PER_UNIT).astype(np.int32)
            bar.update(count)
    return out


def _file_names(count: int, file_format: str, start_id: int) -> list[str]:
    if file_format not in ("wfdb", "npy"):
        raise RecipeError(None, f"unknown format {file_format!r}; use 'wfdb' or 'npy'")
    suffixes = (".npy",) if file_format == "npy" else (".hea", ".dat")
    return [f"deepfake_{start_id + i:06d}{suffix}" for i in range(count) for suffix in suffixes]


def check_synth_output(out_dir: str | Path, count: int, file_format: str = "wfdb", start_id: int = 0) -> Path:
    """Checks before generating: ``out_dir`` is a folder (or new) and none of the files to
    write exists there (they are never replaced)."""
    out_dir = Path(out_dir)
    if count < 1:
        raise RecipeError(None, f"the number of ECGs must be positive, got {count}")
    if start_id < 0:
        raise RecipeError(None, f"the first record number must be 0 or more, got {start_id}")
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputPathError(out_dir, "output path is a file, not a folder")
    existing = [name for name in _file_names(count, file_format, start_id) if (out_dir / name).exists()]
    if existing:
        raise OutputPathError(out_dir, f"{len(existing)} file(s) to write exist already (first: {existing[0]}); "
                                       f"use another folder or --start-id")
    return out_dir


WFDB_COMMENT = "DeepFake ECG (Pulse2Pulse, Keras port); 1 adu = 1 uV"


def write_wfdb_record(folder: Path, name: str, ecg: np.ndarray) -> None:
    """One (5000, 8) microvolt ECG as a WFDB record, format 16, gain 1000/mV: the bytes that
    ``wfdb.wrsamp(name, fs=500, units=["mV"] * 8, sig_name=LEADS, d_signal=ecg, fmt=["16"] * 8,
    adc_gain=[1000.0] * 8, baseline=[0] * 8, comments=[WFDB_COMMENT])`` writes (tested byte for
    byte), written directly: wrsamp spends ~10 ms per record on header bookkeeping, 3x the
    time the generator takes to make the ECG."""
    if ecg.shape != (SAMPLES, len(LEADS)) or ecg.min() < -32768 or ecg.max() > 32767:
        raise ValueError(f"{name}: a record is ({SAMPLES}, {len(LEADS)}) samples within 16 bits, "
                         f"got {ecg.shape} in [{ecg.min()}, {ecg.max()}]")
    samples = ecg.astype("<i2")
    samples.tofile(folder / f"{name}.dat")
    checksums = ecg.astype(np.int64).sum(axis=0) % 65536  # WFDB: the 16-bit sum of each signal
    lines = [f"{name} {len(LEADS)} {SAMPLING_RATE} {SAMPLES}"]
    lines += [f"{name}.dat 16 1000.0(0)/mV 16 0 {samples[0, i]} {checksums[i]} 0 {lead}" for i, lead in enumerate(LEADS)]
    (folder / f"{name}.hea").write_text("\n".join([*lines, f"# {WFDB_COMMENT}"]) + "\n")


def write_ecgs(ecgs: np.ndarray, out_dir: str | Path, file_format: str = "wfdb", start_id: int = 0) -> list[Path]:
    """Write (n, 5000, 8) microvolt ECGs as WFDB records (16-bit, 1 adu = 1 uV) or ``.npy``.

    Files appear in ``out_dir`` only when all of them are written (staged, then moved);
    existing files are never replaced.
    """
    import shutil
    import tempfile

    out_dir = check_synth_output(out_dir, len(ecgs), file_format, start_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".synth-", dir=out_dir))
    try:
        for offset, ecg in enumerate(ecgs):
            name = f"deepfake_{start_id + offset:06d}"
            if file_format == "npy":
                np.save(staging / f"{name}.npy", ecg.astype(np.int32))
            else:
                write_wfdb_record(staging, name, ecg)
        names = _file_names(len(ecgs), file_format, start_id)
        for name in names:
            shutil.move(str(staging / name), out_dir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [out_dir / n for n in names]


def interval_labels(ecgs: np.ndarray, target: str) -> tuple[np.ndarray, list[str]]:
    """(one interval per generated ECG, failure cause per ECG or "") measured at 500 Hz;
    HR from lead II's R peaks, PR/QRS/QT by multi-lead delineation (which measures all
    three at once: kept on disk, keyed by the ECGs' own samples, for the other targets)."""
    rate_lead = LEADS.index("II")
    if target == "HR":
        measured = [heart_rate_with_cause(ecg[:, rate_lead], SAMPLING_RATE)
                    for ecg in tqdm(ecgs, desc="R peaks -> HR", unit="ecg")]
        return np.array([v for v, _ in measured], np.float32), [cause for _, cause in measured]
    key = {"table": "DeepFake intervals", "ecgs": hashlib.sha256(np.ascontiguousarray(ecgs, np.float32)).hexdigest(),
           "shape": list(ecgs.shape), "sampling_rate": SAMPLING_RATE, "measurement": MEASUREMENT}
    table = cached_table(None, "deepfake-intervals", key, lambda: interval_table(
        ecgs, SAMPLING_RATE, rate_lead=rate_lead, desc=f"delineation -> {', '.join(INTERVALS[1:])}"))
    return table[target].to_numpy(np.float32), [str(c) for c in table["failure"]]


@register_source("deepfake_intervals")
def deepfake_intervals(data_root=None, target: str = "HR", n_ecgs: int = 1000, seed: int = 0,
                       sampling_rate: float = SAMPLING_RATE, fractions: list = (0.7, 0.1, 0.2)) -> Splits:
    """DeepFake 8-lead ECGs labelled with one interval (HR in bpm; PR, QRS or QT in ms)
    measured on the generated 500 Hz signal, then resampled to ``sampling_rate`` (any rate
    in a ratio of small integers to 500 Hz), per-lead min-max, random split.

    Needs no data root. ECGs whose R-peak detection or delineation fails the quality check
    are dropped; the source's info counts them by cause.
    """
    if target not in INTERVALS:
        raise RecipeError(None, f"data.target: unknown interval target {target!r}; known: {list(INTERVALS)}")
    if len(fractions) != 3 or min(fractions) <= 0 or not np.isclose(sum(fractions), 1.0):
        raise RecipeError(None, f"data.fractions = {list(fractions)}: three positive shares summing to 1")
    ecgs = generate_ecgs(n_ecgs, seed=seed).astype(np.float32)
    values, failures = interval_labels(ecgs, target)
    ok = np.array([not cause for cause in failures])
    x = resample(ecgs[ok], SAMPLING_RATE, sampling_rate, axis=1)
    x, y = normalise(x, "minmax_per_lead"), values[ok, None]
    parts = random_split(len(x), fractions, seed)
    spec = InputSpec("segment", sampling_rate, x.shape[1], list(LEADS), len(LEADS))
    return Splits(*[(x[p], y[p]) for p in parts], spec, [target],
                  {"generated": n_ecgs, "dropped_by_quality": int((~ok).sum()),
                   "quality_failures": failure_counts(failures)})
