"""Can this be a surface ECG in the units declared? Flat leads and implausible amplitudes.

A lead is *flat* when its robust range (99.5th minus 0.5th percentile) is below
``FLAT_RANGE_MV``: a constant lead, a disconnected electrode, an all-zero file. No model
output means anything for it, so it is an error that names the lead. A recording whose
*amplitude* (the median of its leads' robust ranges, in mV after the declared units) lies
outside ``PLAUSIBLE_AMPLITUDE_MV`` is most likely in other units (ADC counts or microvolts
read as millivolts, volts read as millivolts): a warning that names the file, the measured
amplitude and the ``--units`` that would fit. The thresholds come from every real recording
in the project's data (``benchmarks/amplitudes.py`` -> ``benchmarks/results/amplitudes.json``,
docs/input_contracts.md), with a wide margin on both sides.
"""

from __future__ import annotations

import numpy as np

from tf_ecg.data.conventions import MILLIVOLTS_PER_UNIT

FLAT_RANGE_MV = 0.01
PLAUSIBLE_AMPLITUDE_MV = (0.05, 20.0)


def lead_ranges(signal: np.ndarray) -> np.ndarray:
    """Robust range per lead of a (samples, leads) signal (its own units)."""
    low, high = np.percentile(np.asarray(signal, dtype=np.float64), [0.5, 99.5], axis=0)
    return high - low


def recording_amplitude(signal_mv: np.ndarray) -> float:
    return float(np.median(lead_ranges(signal_mv)))


def flat_leads(signal_mv: np.ndarray, lead_names=None) -> list[str]:
    """Names (or 1-based channel numbers) of the leads of a (samples, leads) millivolt signal
    that are flat. Judged in the units that fit the recording: volts read as millivolts are
    a units mistake (warned about), not flat leads; a constant lead is flat in every unit."""
    names = list(lead_names) if lead_names is not None else [f"channel {i + 1}" for i in range(signal_mv.shape[1])]
    ranges = lead_ranges(signal_mv)
    units = fitting_units(float(np.median(ranges)), "mV")
    ranges = ranges * (MILLIVOLTS_PER_UNIT[units] if units else 1.0)
    return [names[i] for i in np.flatnonzero(ranges < FLAT_RANGE_MV)]


def fitting_units(amplitude_mv: float, declared: str) -> str | None:
    """The unit among V, mV, uV under which the values would have a plausible amplitude
    (the one closest to the middle of the range, on a log scale), or None."""
    low, high = PLAUSIBLE_AMPLITUDE_MV
    middle = np.sqrt(low * high)
    raw = amplitude_mv / MILLIVOLTS_PER_UNIT[declared]
    candidates = {unit: raw * MILLIVOLTS_PER_UNIT[unit] for unit in ("V", "mV", "uV")}
    fitting = {unit: a for unit, a in candidates.items() if low <= a <= high}
    return min(fitting, key=lambda unit: abs(np.log(fitting[unit] / middle))) if fitting else None


def amplitude_warning(signal_mv: np.ndarray, declared: str, where: str) -> str | None:
    """A one-line warning if the amplitude of ``signal_mv`` (read as ``declared`` units) is
    implausible for a surface ECG, naming ``where`` and the units that would fit; else None."""
    amplitude = recording_amplitude(signal_mv)
    low, high = PLAUSIBLE_AMPLITUDE_MV
    if low <= amplitude <= high:
        return None
    units = fitting_units(amplitude, declared)
    if units is None and amplitude * MILLIVOLTS_PER_UNIT["V"] < FLAT_RANGE_MV:
        return None  # flat in any unit: the flat-lead check refuses it
    advice = (f"the values fit {units}: pass --units {units}" if units else
              "no unit fits (ADC counts? convert them with the recording's gain)")
    return (f"{where}: amplitude {amplitude:.3g} mV read as {declared} (median robust range of the leads) is "
            f"implausible for a surface ECG ({low:g}-{high:g} mV); {advice}")
