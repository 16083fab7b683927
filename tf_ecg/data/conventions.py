"""Lead names and amplitude units as files spell them, mapped to one convention.

Lead names: CODE writes DI, DII, DIII, AVR, ...; WFDB/PTB-XL I, II, III, aVR, ...; Apple
Health "Lead I". All compare equal after :func:`lead_key`. MIT-BIH's MLII (a modified
lead II) stays a name of its own.

Units: every reader returns millivolts (WFDB's own default unit); a model whose inputs
are in other units (the glucose study's microvolts) scales inside its SavedModel.
"""

from __future__ import annotations

import re

import numpy as np

from tf_ecg.errors import ECGDataError

STANDARD_LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
_ROMAN_WITH_D = re.compile(r"^D(I{1,3})$")  # DI, DII, DIII (the CODE / Brazilian spelling)


def lead_key(name: str) -> str:
    """A spelling-independent key: 'DII', 'II', 'Lead II', 'lead_ii' -> 'II'; 'AVR', 'aVR' -> 'AVR'."""
    key = re.sub(r"^LEAD[\s_-]*", "", str(name).strip().upper())
    return _ROMAN_WITH_D.sub(r"\1", key)


def lead_indices(file_leads, wanted, path) -> list[int]:
    """Positions in ``file_leads`` of the ``wanted`` leads (in the wanted order), matched by
    :func:`lead_key`; a missing lead is an error that names the file and both lists."""
    lookup: dict[str, int] = {}
    for index, name in enumerate(file_leads):
        lookup.setdefault(lead_key(name), index)
    missing = [lead for lead in wanted if lead_key(lead) not in lookup]
    if missing:
        raise ECGDataError(path, f"lead(s) {missing} missing: the model needs {list(wanted)}, "
                                 f"the file has {list(file_leads)}")
    return [lookup[lead_key(lead)] for lead in wanted]


MILLIVOLTS_PER_UNIT = {"V": 1000.0, "mV": 1.0, "uV": 1e-3}
_UNIT_SPELLINGS = {"v": "V", "volt": "V", "volts": "V", "mv": "mV", "millivolt": "mV", "millivolts": "mV",
                   "uv": "uV", "µv": "uV", "μv": "uV", "microvolt": "uV", "microvolts": "uV"}


def unit_name(text: str, path=None) -> str:
    """'µV', 'microvolts', 'uV' -> 'uV'; 'mV' -> 'mV'; 'V' -> 'V'. Anything else is an error."""
    name = _UNIT_SPELLINGS.get(str(text).strip().lower())
    if name is None:
        raise ECGDataError(path, f"unknown amplitude unit {text!r} (known: V, mV, uV / µV)")
    return name


def to_millivolts(signal: np.ndarray, unit: str, path=None) -> np.ndarray:
    return (np.asarray(signal, dtype=np.float64) * MILLIVOLTS_PER_UNIT[unit_name(unit, path)]).astype(np.float32)
