"""One recording to predict on, from any format ``tf-ecg predict`` reads, in millivolts.

WFDB records and Apple Health exports carry their sampling rate and units; a ``.npy`` or a
values-only Apple Watch CSV does not, and takes them from the caller (``--sampling-rate``,
``--units``) or from the model's documented defaults. A value given on the command line
that contradicts the file's own header is an error, never silently preferred.
"""

from __future__ import annotations

import tokenize
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tf_ecg.data.formats.applewatch import SAMPLING_RATE as APPLE_WATCH_RATE, read_applewatch_csv
from tf_ecg.data.conventions import to_millivolts, unit_name
from tf_ecg.data.formats.wfdb_records import read_header, read_record, record_path
from tf_ecg.errors import ECGDataError


@dataclass(frozen=True)
class Recording:
    path: Path
    signal: np.ndarray            # (samples, leads), or ready windows (n, length, leads); millivolts
    sampling_rate: float
    leads: tuple[str, ...] | None  # None: channels are taken by position
    units: str = "mV"              # what the file's values were declared to be (header, --units or default)

    @property
    def is_windows(self) -> bool:
        return self.signal.ndim == 3


def read_npy_array(path: str | Path) -> np.ndarray:
    """A ``.npy`` array (no pickled objects); a missing, truncated or garbled file is an
    error naming it (numpy parses the header as Python literals: SyntaxError and TokenError too)."""
    path = Path(path)
    if not path.is_file():
        raise ECGDataError(path, "file not found")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, SyntaxError, TypeError, tokenize.TokenError) as error:
        raise ECGDataError(path, f"not a readable .npy array ({type(error).__name__}: {error})") from None


def _read_npy(path: Path) -> np.ndarray:
    signal = read_npy_array(path)
    if signal.size == 0:
        raise ECGDataError(path, f"empty array (shape {signal.shape})")
    if not np.issubdtype(signal.dtype, np.number) or np.issubdtype(signal.dtype, np.complexfloating):
        raise ECGDataError(path, f"array of {signal.dtype}, expected real numbers")
    if signal.ndim not in (1, 2, 3):
        raise ECGDataError(path, f"array of shape {signal.shape}: expected (samples,), (samples, leads) "
                                 f"or (windows, length, leads)")
    return signal[:, None] if signal.ndim == 1 else signal


def _agree(path, what: str, in_file, given) -> None:
    if given is not None and in_file != given:
        raise ECGDataError(path, f"the file says {what} {in_file}, the command line {given}")


def read_recording(path: str | Path, sampling_rate: float | None = None, units: str | None = None,
                   default_rate: float | None = None, default_units: str = "mV") -> Recording:
    """Read a WFDB record, an Apple Watch / Apple Health CSV or a ``.npy`` into millivolts.

    ``sampling_rate`` / ``units``: what the user says the file holds (checked against a
    header that says it too); ``default_rate`` / ``default_units``: what a ``.npy`` holds
    otherwise (the model's documented input). A values-only Apple Watch CSV is 512 Hz, µV.
    """
    path = Path(path)
    given_unit = unit_name(units, path) if units is not None else None
    if path.suffix == ".npy":
        signal = _read_npy(path)
        rate = sampling_rate or default_rate
        if rate is None:
            raise ECGDataError(path, "a .npy holds no sampling rate: give --sampling-rate")
        if not np.isfinite(signal).all():
            bad = ~np.isfinite(signal)
            where = f"window {int(np.argmax(bad.any(axis=(1, 2))))}" if signal.ndim == 3 else \
                f"sample {int(np.argmax(bad.any(axis=1)))}"
            raise ECGDataError(path, f"{int(bad.sum())} NaN or infinite values (first in {where})")
        declared = given_unit or unit_name(default_units, path)
        return Recording(path, to_millivolts(signal, declared, path), float(rate), None, declared)
    if path.suffix == ".csv":
        ecg = read_applewatch_csv(path, sampling_rate=None, units=units,
                                  rate_if_unknown=sampling_rate or APPLE_WATCH_RATE)
        if "Sample Rate" in ecg.header and sampling_rate is not None:
            _agree(path, "sampling rate (Hz)", ecg.sampling_rate, float(sampling_rate))
        declared = unit_name(ecg.header["Unit"], path) if "Unit" in ecg.header else given_unit or "uV"
        return Recording(path, to_millivolts(ecg.signal[:, None], "uV", path), float(ecg.sampling_rate), ("I",),
                         declared)
    header_file = record_path(path).with_suffix(".hea")
    header = read_header(path)
    if sampling_rate is not None:
        _agree(header_file, "sampling rate (Hz)", float(header.fs), float(sampling_rate))
    if given_unit is not None:
        _agree(header_file, "units", sorted({unit_name(u, header_file) for u in (header.units or ["mV"])}),
               [given_unit])
    record = read_record(path)
    return Recording(record.path, record.signal, record.sampling_rate, tuple(record.leads),
                     unit_name((header.units or ["mV"])[0], header_file))
