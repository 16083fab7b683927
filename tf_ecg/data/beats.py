"""Fixed windows around R peaks (beats) cut from a multi-lead signal."""

from __future__ import annotations

import numpy as np


def beat_windows(signal: np.ndarray, peaks: np.ndarray, before: int, after: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Windows ``signal[p - before : p + after]`` for every peak that fits in the signal.

    Returns (windows (n, before + after, leads), kept mask over ``peaks``). Peaks too
    close to either end are dropped, never zero-padded, so every window is real signal.
    """
    peaks = np.asarray(peaks, dtype=np.int64)
    kept = (peaks - before >= 0) & (peaks + after <= len(signal))
    offsets = np.arange(-before, after)
    index = peaks[kept, None] + offsets[None, :]
    return signal[index], kept


def minmax_scale(x: np.ndarray, axis, epsilon: float = 1e-8) -> np.ndarray:
    """(x - min) / (max - min) over ``axis``; a flat segment maps to 0 instead of NaN."""
    low = x.min(axis=axis, keepdims=True)
    span = x.max(axis=axis, keepdims=True) - low
    return ((x - low) / np.maximum(span, epsilon)).astype(np.float32)
