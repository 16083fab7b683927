"""Apple Watch single-lead ECG CSVs: values-only files and Apple Health exports.

Apple Health writes a header (Name, Recorded Date, Classification, Sample Rate
"512 hertz", Lead, Unit "µV", ...) and then one value per line; the glucose study's
files hold the values only. Both read into the same :class:`AppleWatchECG`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from tf_ecg.data.conventions import MILLIVOLTS_PER_UNIT, unit_name
from tf_ecg.errors import ECGDataError

SAMPLING_RATE = 512
CONDITION_LABELS = {"fast1": 0, "glucose1": 1}  # fast2 / glucose2 (meals) are not used
_FILE_DATE = re.compile(r"ecg_(\d{4})-(\d{2})-(\d{2})")


@dataclass(frozen=True)
class AppleWatchECG:
    path: Path
    signal: np.ndarray                  # (samples,) float64, microvolts
    sampling_rate: float = SAMPLING_RATE
    header: dict = field(default_factory=dict)

    @property
    def recorded_date(self) -> date | None:
        match = _FILE_DATE.search(self.path.name) or _FILE_DATE.search(self.header.get("Recorded Date", ""))
        return date(*map(int, match.groups())) if match else None


def _parse_header_value(path: Path, key: str, value: str) -> float:
    match = re.match(r"\s*([\d.]+)", value)
    if not match:
        raise ECGDataError(path, f"unreadable {key} {value!r}")
    return float(match.group(1))


def read_applewatch_csv(path: str | Path, sampling_rate: float | None = SAMPLING_RATE,
                        units: str | None = None, rate_if_unknown: float = SAMPLING_RATE) -> AppleWatchECG:
    """Read one recording into microvolts; checks the sampling rate, empty files and non-numbers.

    The rate and unit come from an Apple Health header ("Sample Rate", "Unit"); a values-only
    file is ``rate_if_unknown`` Hz (the glucose study's 512) in ``units`` (default µV).
    ``sampling_rate``: the rate the caller requires (None: any); ``units`` given for a file
    whose header names another unit is an error."""
    path = Path(path)
    if not path.is_file():
        raise ECGDataError(path, "file not found")
    lines = path.read_text(encoding="utf-8-sig", errors="replace").splitlines()
    header: dict[str, str] = {}
    values: list[float] = []
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        try:
            values.append(float(text))
            continue
        except ValueError:
            pass
        if values:
            raise ECGDataError(path, f"line {number}: {text[:40]!r} is not a number")
        key, _, value = text.partition(",")
        header[key.strip()] = value.strip().strip('"')
    if not values:
        if not header:
            raise ECGDataError(path, "no ECG samples: the file is empty")
        raise ECGDataError(path, f"no numeric ECG samples: {len(header)} line(s) of text only "
                                 f"(first: {next(iter(header))[:40]!r}); expected one sample per line")
    signal = np.asarray(values, dtype=np.float64)
    if not np.isfinite(signal).all():
        raise ECGDataError(path, f"{int((~np.isfinite(signal)).sum())} NaN/infinite samples")
    rate = (_parse_header_value(path, "Sample Rate", header["Sample Rate"])
            if "Sample Rate" in header else rate_if_unknown)
    if sampling_rate is not None and not np.isclose(rate, sampling_rate):
        raise ECGDataError(path, f"sampling rate is {rate:g} Hz, expected {sampling_rate:g} Hz")
    unit = unit_name(header["Unit"], path) if "Unit" in header else unit_name(units or "uV", path)
    if units is not None and unit_name(units, path) != unit:
        raise ECGDataError(path, f"the header says the unit is {header['Unit']!r}, --units says {units!r}")
    signal = signal * (MILLIVOLTS_PER_UNIT[unit] / MILLIVOLTS_PER_UNIT["uV"])
    return AppleWatchECG(path, signal, rate, header)


def list_glucose_recordings(study_dir: str | Path) -> pd.DataFrame:
    """Recordings of the glucose study: ``[MMDD/]{fast1,glucose1}/ecg_*.csv``.

    Columns: path, date (the MMDD folder, or the date in the file name for the
    2024-01 layout without date folders), condition, label (fast1 = 0, glucose1 = 1).
    Files are sorted lexicographically within each folder.
    """
    study_dir = Path(study_dir)
    if not study_dir.is_dir():
        raise ECGDataError(study_dir, "folder not found")
    rows = []
    for condition, label in CONDITION_LABELS.items():
        for csv in sorted(study_dir.glob(f"**/{condition}/*.csv")):
            folder = csv.parent.parent.name
            if re.fullmatch(r"\d{4}", folder):
                recording_date = folder
            else:
                match = _FILE_DATE.search(csv.name)
                recording_date = f"{match.group(2)}{match.group(3)}" if match else ""
            rows.append({"path": csv, "date": recording_date, "condition": condition, "label": label})
    if not rows:
        raise ECGDataError(study_dir, "no fast1/ or glucose1/ recordings found")
    return pd.DataFrame(rows).sort_values(["date", "condition", "path"], kind="stable",
                                          key=lambda c: c.astype(str)).reset_index(drop=True)
