"""Sampling-rate conversion: one polyphase resampler for every source and for inference."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from tf_ecg.errors import ECGDataError

MAX_RATIO_TERM = 1000  # up/down factors beyond this mean a rate that is not a rational multiple


def resample(signal: np.ndarray, from_rate: float, to_rate: float, axis: int = 0,
             path: str | Path | None = None) -> np.ndarray:
    """``signal`` at ``from_rate`` Hz -> ``to_rate`` Hz along ``axis`` (polyphase FIR with
    scipy's Kaiser anti-aliasing filter), float32. Rates must be positive and in a ratio
    of small integers (500 -> 100, 360 -> 125, 500 -> 400 ...)."""
    if not (np.isfinite(from_rate) and np.isfinite(to_rate) and from_rate > 0 and to_rate > 0):
        raise ECGDataError(path, f"cannot resample from {from_rate} Hz to {to_rate} Hz")
    ratio = Fraction(float(to_rate) / float(from_rate)).limit_denominator(MAX_RATIO_TERM)
    if abs(float(ratio) * from_rate - to_rate) > 1e-6 * to_rate:
        raise ECGDataError(path, f"{from_rate:g} Hz -> {to_rate:g} Hz is not a ratio of small integers")
    if ratio == 1:
        return np.asarray(signal, dtype=np.float32)
    return resample_poly(np.asarray(signal, dtype=np.float64), ratio.numerator, ratio.denominator,
                         axis=axis).astype(np.float32)
