"""ECG interval labels (HR, PR, QRS, QT) from R-peak detection and wave delineation
(neurokit2), with a quality flag.

Heart rate comes from the R peaks of one lead. PR, QRS and QT are "global" intervals in
the GE 12SL / MUSE sense: every lead is delineated at the same R peaks (neurokit2's
``prominence`` method) and, per beat, the onsets are taken early and the offsets late
across leads (15th / 85th percentile, which ignores a single misplaced lead). The record
value is the median over beats, in ms.

A record fails the quality check (drop it, never guess) when too few peaks are found, the
rate is outside a physiological range, the RR intervals are too irregular for a stable
mean, fewer than half of the beats were delineated, or an interval is implausible.
"""

from __future__ import annotations

import warnings
from importlib.metadata import version

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

# what a cached interval table was measured with: raise the number when the measurement changes
MEASUREMENT = f"tf_ecg intervals 1, neurokit2 {version('neurokit2')}"
MIN_PEAKS = 4
MAX_RR_VARIATION = 0.5  # coefficient of variation of RR intervals
INTERVALS = ("HR", "PR", "QRS", "QT")
PLAUSIBLE = {"HR": (25.0, 250.0), "PR": (60.0, 400.0), "QRS": (40.0, 250.0), "QT": (200.0, 700.0)}
EARLY, LATE = 15, 85  # percentiles across leads for onsets / offsets
MIN_DELINEATED_FRACTION = 0.5


def _clean(lead: np.ndarray, sampling_rate: float) -> np.ndarray:
    import neurokit2 as nk  # here, not at import: neurokit2 loads scikit-learn; models never need it

    return nk.ecg_clean(np.asarray(lead, dtype=np.float64), sampling_rate=sampling_rate)


def r_peaks(lead: np.ndarray, sampling_rate: float) -> np.ndarray:
    """R-peak sample indices of one lead (neurokit2's default detector, after its cleaning)."""
    import neurokit2 as nk

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, info = nk.ecg_peaks(_clean(lead, sampling_rate), sampling_rate=sampling_rate)
    return np.asarray(info["ECG_R_Peaks"], dtype=np.int64)


# Exceptions neurokit2 (or the numpy / scipy / pandas code under it) raises on signals it
# cannot process (flat, too short, no waves): those fail the quality check. The same types
# raised by our own code, or at the call into neurokit2 (a changed API), propagate.
DETECTION_ERRORS = (ValueError, TypeError, IndexError, KeyError, ZeroDivisionError)
DEPENDENCIES = {"neurokit2", "numpy", "scipy", "pandas", "sklearn"}


def _failure_cause(error: Exception, stage: str) -> str:
    """The quality-check cause for a detection error raised inside neurokit2 and the
    libraries under it; any other error is re-raised (a bug is not bad data)."""
    frame = error.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    module = frame.tb_frame.f_globals.get("__name__", "") if frame is not None else ""
    if module.split(".")[0] not in DEPENDENCIES:
        raise error
    return f"{stage} error ({type(error).__name__})"


def _rate_from_peaks(peaks: np.ndarray, sampling_rate: float) -> tuple[float, str]:
    """(mean heart rate in bpm, failure cause or "" when it passes the quality check)."""
    if len(peaks) < MIN_PEAKS:
        return float("nan"), "too few R peaks"
    rr = np.diff(peaks) / sampling_rate
    rate = 60.0 / rr.mean()
    low, high = PLAUSIBLE["HR"]
    if not low <= rate <= high:
        return float(rate), "implausible HR"
    if rr.std() / rr.mean() > MAX_RR_VARIATION:
        return float(rate), "irregular RR intervals"
    return float(rate), ""


def heart_rate_with_cause(lead: np.ndarray, sampling_rate: float) -> tuple[float, str]:
    """(mean heart rate in bpm, failure cause or "") of one lead."""
    try:
        peaks = r_peaks(lead, sampling_rate)
    except DETECTION_ERRORS as error:
        return float("nan"), _failure_cause(error, "R-peak detection")
    return _rate_from_peaks(peaks, sampling_rate)


def heart_rate(lead: np.ndarray, sampling_rate: float) -> tuple[float, bool]:
    """(mean heart rate in bpm, quality ok) of one lead."""
    rate, failure = heart_rate_with_cause(lead, sampling_rate)
    return rate, not failure


def _per_beat(points, n_beats: int) -> np.ndarray:
    values = np.asarray(points, dtype=np.float64)[:n_beats]
    return np.pad(values, (0, n_beats - len(values)), constant_values=np.nan)


def _across_leads(values: np.ndarray, percentile: float) -> np.ndarray:
    """Per-beat percentile over leads (rows), NaN where no lead delineated the beat."""
    result = np.full(values.shape[1], np.nan)
    seen = np.isfinite(values).any(axis=0)
    result[seen] = np.nanpercentile(values[:, seen], percentile, axis=0)
    return result


def ecg_intervals(signal: np.ndarray, sampling_rate: float, rate_lead: int = 1) -> dict:
    """HR (bpm), PR, QRS and QT (ms) of one multi-lead recording ``(samples, leads)``, plus
    ``ok``: False when any of them failed the quality check (its value is then NaN or
    untrustworthy), and ``failure``: the first cause ("" when ok). R peaks come from
    ``rate_lead`` (lead II of I, II, V1-V6)."""
    import neurokit2 as nk

    signal = np.asarray(signal, dtype=np.float64)
    if signal.ndim == 1:
        signal = signal[:, None]
    labels = dict.fromkeys(INTERVALS, float("nan"))

    def failed(cause: str) -> dict:
        return {**labels, "ok": False, "failure": cause}

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            cleaned = [_clean(signal[:, j], sampling_rate) for j in range(signal.shape[1])]
            _, info = nk.ecg_peaks(cleaned[min(rate_lead, len(cleaned) - 1)], sampling_rate=sampling_rate)
        except DETECTION_ERRORS as error:
            return failed(_failure_cause(error, "R-peak detection"))
        peaks = np.asarray(info["ECG_R_Peaks"], dtype=np.int64)
        labels["HR"], failure = _rate_from_peaks(peaks, sampling_rate)
        if failure:
            return failed(failure)
        waves = {"ECG_P_Onsets": [], "ECG_R_Onsets": [], "ECG_R_Offsets": [], "ECG_T_Offsets": []}
        try:
            for lead in cleaned:
                _, points = nk.ecg_delineate(lead, peaks, sampling_rate=sampling_rate, method="prominence")
                for key in waves:
                    waves[key].append(_per_beat(points[key], len(peaks)))
        except DETECTION_ERRORS as error:
            return failed(_failure_cause(error, "delineation"))
    waves = {key: np.array(rows) for key, rows in waves.items()}
    qrs_onset = _across_leads(waves["ECG_R_Onsets"], EARLY)
    per_beat = {
        "PR": qrs_onset - _across_leads(waves["ECG_P_Onsets"], EARLY),
        "QRS": _across_leads(waves["ECG_R_Offsets"], LATE) - qrs_onset,
        "QT": _across_leads(waves["ECG_T_Offsets"], LATE) - qrs_onset,
    }
    failures = []
    for name, values in per_beat.items():
        values = values[np.isfinite(values)] * 1000.0 / sampling_rate
        low, high = PLAUSIBLE[name]
        if len(values) < MIN_DELINEATED_FRACTION * len(peaks):
            failures.append(f"{name} delineated in too few beats")
            continue
        labels[name] = float(np.median(values))
        if not low <= labels[name] <= high:
            failures.append(f"implausible {name}")
    return {**labels, "ok": not failures, "failure": failures[0] if failures else ""}


def interval_table(signals, sampling_rate: float, rate_lead: int = 1, index=None, desc: str = "intervals") -> pd.DataFrame:
    """:func:`ecg_intervals` for every recording: one row each, columns HR, PR, QRS, QT, ok, failure."""
    rows = [ecg_intervals(s, sampling_rate, rate_lead) for s in tqdm(signals, desc=desc, unit="ecg")]
    return pd.DataFrame(rows, index=index, columns=[*INTERVALS, "ok", "failure"])


def failure_counts(causes) -> dict[str, int]:
    """How many recordings failed the quality check, by cause (one cause per recording,
    "" for those that passed: an interval table's ``failure`` column)."""
    counts = pd.Series([str(c) for c in causes if c], dtype=object).value_counts()
    return {str(cause): int(count) for cause, count in counts.items()}
