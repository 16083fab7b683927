"""WFDB records (MIT-BIH, PTB-XL) read through wfdb, with checks that name the file.

wfdb itself reads a truncated ``.dat`` without complaint or with an opaque reshape
error, and turns invalid samples into NaN; here each of those is a clear error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tf_ecg.data.conventions import lead_indices, to_millivolts
from tf_ecg.errors import ECGDataError

if TYPE_CHECKING:  # wfdb is imported where a record is read (model code never needs it)
    import wfdb

# Bytes per sample for the WFDB storage formats these data sets use.
BYTES_PER_SAMPLE = {"212": 1.5, "16": 2, "80": 1, "24": 3, "32": 4, "61": 2}


@dataclass(frozen=True)
class ECGRecord:
    path: Path               # record path without extension
    signal: np.ndarray       # (samples, leads) float32, millivolts
    sampling_rate: float
    leads: tuple[str, ...]

    def select_leads(self, names) -> "ECGRecord":
        """Leads by name in the order given, spelled either way ('avr' or 'AVR' finds 'aVR', 'DI' finds 'I')."""
        index = lead_indices(self.leads, names, self.path)
        return ECGRecord(self.path, self.signal[:, index], self.sampling_rate,
                         tuple(self.leads[i] for i in index))


def record_path(path: str | Path) -> Path:
    """Accept 'dir/100', 'dir/100.hea' or 'dir/100.dat'; return 'dir/100'."""
    path = Path(path)
    return path.with_suffix("") if path.suffix in (".hea", ".dat", ".atr") else path


def read_header(path: str | Path) -> wfdb.Record:
    import wfdb

    path = record_path(path)
    header = path.with_suffix(".hea")
    if not header.is_file():
        raise ECGDataError(header, "WFDB header not found")
    try:
        record = wfdb.rdheader(str(path))
    except Exception as exc:  # noqa: BLE001 - wfdb raises many types for a bad header
        raise ECGDataError(header, f"unreadable WFDB header ({exc})") from None
    if not record.n_sig or not record.file_name or not record.fmt:
        raise ECGDataError(header, "the header declares no signals")
    if not (record.fs or 0) > 0:
        raise ECGDataError(header, f"sampling frequency {record.fs}: must be above 0")
    return record


def _check_signal_files(path: Path, header: wfdb.Record) -> None:
    """Each .dat file must hold all samples the header promises."""
    for file_name in sorted(set(header.file_name)):
        dat = path.parent / file_name
        if not dat.is_file():
            raise ECGDataError(dat, "signal file named by the header is missing")
        channels = [i for i, f in enumerate(header.file_name) if f == file_name]
        fmt = header.fmt[channels[0]]
        if fmt not in BYTES_PER_SAMPLE or header.sig_len is None:  # no length promised: wfdb reads what is there
            continue
        offset = (header.byte_offset or [0] * header.n_sig)[channels[0]] or 0
        expected = int(np.ceil(header.sig_len * len(channels) * BYTES_PER_SAMPLE[fmt])) + offset
        actual = dat.stat().st_size
        if actual < expected:
            raise ECGDataError(dat, f"truncated: {actual} bytes, the header needs {expected} "
                                    f"({header.sig_len} samples x {len(channels)} leads, format {fmt})")


def read_record(path: str | Path, sampling_rate: float | None = None,
                leads=None, num_leads: int | None = None) -> ECGRecord:
    """Read a WFDB record in millivolts (converted from the header's units), checking rate,
    lead count, completeness, units and NaNs."""
    import wfdb

    path = record_path(path)
    header = read_header(path)
    if sampling_rate is not None and not np.isclose(header.fs, sampling_rate):
        raise ECGDataError(path.with_suffix(".hea"),
                           f"sampling rate is {header.fs:g} Hz, expected {sampling_rate:g} Hz")
    if num_leads is not None and header.n_sig != num_leads:
        raise ECGDataError(path.with_suffix(".hea"), f"{header.n_sig} leads, expected {num_leads}")
    _check_signal_files(path, header)
    try:
        record = wfdb.rdrecord(str(path), physical=True)
    except Exception as exc:  # noqa: BLE001
        raise ECGDataError(path.with_suffix(".dat"), f"unreadable signal ({exc})") from None
    units = record.units or ["mV"] * record.n_sig  # WFDB's default unit is the millivolt
    signal = np.stack([to_millivolts(record.p_signal[:, i], unit, path.with_suffix(".hea"))
                       for i, unit in enumerate(units)], axis=1)
    missing = int(np.isnan(signal).sum())
    if missing:
        raise ECGDataError(path.with_suffix(".dat"), f"{missing} missing samples (NaN) in the signal")
    result = ECGRecord(path, signal, float(record.fs), tuple(record.sig_name))
    return result.select_leads(leads) if leads is not None else result


def read_annotations(path: str | Path, extension: str = "atr") -> tuple[np.ndarray, np.ndarray]:
    """(sample indices, symbols) of a WFDB annotation file."""
    import wfdb

    path = record_path(path)
    annotation_file = path.with_suffix(f".{extension}")
    if not annotation_file.is_file():
        raise ECGDataError(annotation_file, "annotation file not found")
    try:
        annotation = wfdb.rdann(str(path), extension)
    except Exception as exc:  # noqa: BLE001
        raise ECGDataError(annotation_file, f"unreadable annotation file ({exc})") from None
    return np.asarray(annotation.sample, dtype=np.int64), np.asarray(annotation.symbol)
