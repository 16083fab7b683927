"""ECG interval labels from R-peak detection (neurokit2), with a quality flag.

Heart rate is measured from the R peaks of one lead. A record fails the quality check
(and should be dropped, not guessed) when too few peaks are found, the rate is
outside a physiological range, or the RR intervals are too irregular for a stable mean.
"""

from __future__ import annotations

import warnings

import neurokit2 as nk
import numpy as np

MIN_PEAKS = 4
HR_RANGE = (25.0, 250.0)
MAX_RR_VARIATION = 0.5  # coefficient of variation of RR intervals


def r_peaks(lead: np.ndarray, sampling_rate: float) -> np.ndarray:
    """R-peak sample indices of one lead (neurokit2's default detector, after its cleaning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cleaned = nk.ecg_clean(np.asarray(lead, dtype=np.float64), sampling_rate=sampling_rate)
        _, info = nk.ecg_peaks(cleaned, sampling_rate=sampling_rate)
    return np.asarray(info["ECG_R_Peaks"], dtype=np.int64)


def heart_rate(lead: np.ndarray, sampling_rate: float) -> tuple[float, bool]:
    """(mean heart rate in bpm, quality ok) of one lead."""
    try:
        peaks = r_peaks(lead, sampling_rate)
    except Exception:  # noqa: BLE001 - a failed detection is a failed quality check
        return float("nan"), False
    if len(peaks) < MIN_PEAKS:
        return float("nan"), False
    rr = np.diff(peaks) / sampling_rate
    rate = 60.0 / rr.mean()
    ok = HR_RANGE[0] <= rate <= HR_RANGE[1] and rr.std() / rr.mean() <= MAX_RR_VARIATION
    return float(rate), bool(ok)
