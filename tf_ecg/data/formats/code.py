"""Ribeiro/CODE format: HDF5 ``tracings`` (N, 4096, 12) at 400 Hz in mV plus CSV labels."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from tf_ecg.data.resample import resample
from tf_ecg.errors import ECGDataError

LEADS = ("DI", "DII", "DIII", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6")
CLASSES = ("1dAVb", "RBBB", "LBBB", "SB", "AF", "ST")
SAMPLING_RATE = 400
LENGTH = 4096


def to_code_format(signal: np.ndarray, sampling_rate: float, path: str | Path = "<signal>") -> np.ndarray:
    """(samples, 12) at any rate -> (4096, 12) at 400 Hz, zero-padded on both sides.

    Resampling is polyphase (scipy). Longer exams are cut to their central 4096 samples.
    """
    signal = np.asarray(signal, dtype=np.float32)
    if signal.ndim != 2 or signal.shape[1] != len(LEADS):
        raise ECGDataError(path, f"expected (samples, 12) leads, got shape {signal.shape}")
    if np.isnan(signal).any():
        raise ECGDataError(path, "signal contains NaN")
    signal = resample(signal, sampling_rate, SAMPLING_RATE, path=path)
    length = signal.shape[0]
    if length >= LENGTH:
        start = (length - LENGTH) // 2
        return signal[start:start + LENGTH]
    left = (LENGTH - length) // 2
    return np.pad(signal, ((left, LENGTH - length - left), (0, 0)))


def open_tracings(path: str | Path, dataset: str = "tracings", num_leads: int = len(LEADS),
                  length: int | None = None, hint: str = "") -> tuple[h5py.File, h5py.Dataset]:
    """The open HDF5 file and its (exams, samples, leads) dataset, checked; read it by
    slices (a CODE file may not fit in memory) and close the file. ``length``: the samples
    required (None: any); ``hint``: appended to the error for a missing dataset."""
    path = Path(path)
    if not path.is_file():
        raise ECGDataError(path, "file not found")
    if path.stat().st_size == 0:
        raise ECGDataError(path, "empty file")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise ECGDataError(path, f"not a readable HDF5 file ({error})") from None
    try:  # a damaged file can open and fail on its first lookup (HDF5 raises RuntimeError there)
        found = dataset in handle and isinstance(handle[dataset], h5py.Dataset)
        keys = list(handle.keys())
        tracings = handle[dataset] if found else None
        shape = tracings.shape if found else None
    except (OSError, RuntimeError, KeyError, ValueError) as error:
        handle.close()
        raise ECGDataError(path, f"damaged HDF5 file ({error})") from None
    if not found:
        handle.close()
        raise ECGDataError(path, f"no dataset {dataset!r} (the file has {keys}){hint}")
    if len(shape) != 3 or shape[2] != num_leads or shape[0] == 0 or length is not None and shape[1] != length:
        handle.close()
        leads = f" with leads {', '.join(LEADS)}" if num_leads == len(LEADS) else ""
        raise ECGDataError(path, f"dataset {dataset!r} has shape {shape}; expected (exams, "
                                 f"{length or 'samples'}, {num_leads}){leads}")
    return handle, tracings


def read_labels(path: str | Path, classes=CLASSES) -> np.ndarray:
    """0/1 label matrix (N, 6) from a CSV with one column per class (extra index column allowed)."""
    path = Path(path)
    if not path.is_file():
        raise ECGDataError(path, "file not found")
    try:
        table = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise ECGDataError(path, "empty CSV file") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise ECGDataError(path, f"not a readable CSV file ({error})") from None
    missing = [c for c in classes if c not in table.columns]
    if missing:
        raise ECGDataError(path, f"missing class column(s) {missing}")
    if table.empty:
        raise ECGDataError(path, "no rows of labels")
    labels = table[list(classes)].to_numpy()
    if not np.isin(labels, (0, 1)).all():
        raise ECGDataError(path, "labels must be 0 or 1")
    return labels.astype(np.int64)


def read_exams(tracings: h5py.Dataset, start: int, stop: int, path: str | Path) -> np.ndarray:
    """Exams ``start:stop`` of an open tracings dataset as float32; a damaged file (a chunk
    that cannot be read or decompressed) is an error naming it."""
    try:
        return np.asarray(tracings[start:stop], dtype=np.float32)
    except (OSError, RuntimeError, ValueError, TypeError) as error:
        raise ECGDataError(path, f"exams {start}-{stop - 1} of {tracings.name!r} cannot be read "
                                 f"(damaged file? {error})") from None
