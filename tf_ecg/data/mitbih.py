"""MIT-BIH Arrhythmia Database: records, beat annotations, AAMI classes, splits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from tf_ecg.data.beats import beat_windows
from tf_ecg.data.formats.wfdb_records import read_annotations, read_record
from tf_ecg.errors import ECGDataError

SAMPLING_RATE = 360
# The two channels as stored: the upper is MLII in 45 of 48 records, the lower mostly V1.
CHANNEL_LABELS = ("upper (MLII)", "lower (V1)")
RECORDS = (
    "100", "101", "102", "103", "104", "105", "106", "107", "108", "109", "111", "112",
    "113", "114", "115", "116", "117", "118", "119", "121", "122", "123", "124", "200",
    "201", "202", "203", "205", "207", "208", "209", "210", "212", "213", "214", "215",
    "217", "219", "220", "221", "222", "223", "228", "230", "231", "232", "233", "234")
# The 15 beat-annotation symbols (non-beat annotations such as '+', '~', '|' are not beats).
BEAT_SYMBOLS = ("N", "L", "R", "A", "a", "J", "S", "V", "F", "e", "j", "E", "/", "f", "Q")
AAMI_CLASSES = ("N", "S", "V", "F", "Q")
AAMI_MAP = {**dict.fromkeys("NLRej", "N"), **dict.fromkeys("AaJS", "S"), **dict.fromkeys("VE", "V"),
            "F": "F", **dict.fromkeys("/fQ", "Q")}
# Inter-patient split of de Chazal et al. 2004 (paced records 102, 104, 107, 217 excluded).
DS1 = ("101", "106", "108", "109", "112", "114", "115", "116", "118", "119", "122", "124",
       "201", "203", "205", "207", "208", "209", "215", "220", "223", "230")
DS2 = ("100", "103", "105", "111", "113", "117", "121", "123", "200", "202", "210", "212",
       "213", "214", "219", "221", "222", "228", "231", "232", "233", "234")


def aami_labels(symbols) -> np.ndarray:
    """AAMI class index (into AAMI_CLASSES: N, S, V, F, Q) of each beat symbol."""
    return np.array([AAMI_CLASSES.index(AAMI_MAP[s]) for s in symbols], dtype=np.int64)


def available_records(mitdb_dir: Path) -> list[str]:
    """The records present in ``mitdb_dir``; all 48 for a complete download."""
    present = [r for r in RECORDS if (mitdb_dir / f"{r}.hea").is_file()]
    if not present:
        raise ECGDataError(mitdb_dir, "no MIT-BIH records (NNN.hea) found")
    return present


def beat_annotations(mitdb_dir: Path, record: str) -> tuple[np.ndarray, np.ndarray]:
    """(R-peak samples, symbols) of the beat annotations of one record."""
    samples, symbols = read_annotations(mitdb_dir / record)
    is_beat = np.isin(symbols, BEAT_SYMBOLS)
    return samples[is_beat], symbols[is_beat]


def beat_table(mitdb_dir: Path, records=None, progress: bool = False) -> pd.DataFrame:
    """One row per beat annotation: record, sample, symbol, AAMI class."""
    records = available_records(mitdb_dir) if records is None else list(records)
    frames = []
    for record in tqdm(records, desc="MIT-BIH annotations", disable=not progress):
        samples, symbols = beat_annotations(mitdb_dir, record)
        frames.append(pd.DataFrame({"record": record, "sample": samples, "symbol": symbols}))
    table = pd.concat(frames, ignore_index=True)
    table["aami"] = table["symbol"].map(AAMI_MAP)
    return table


def read_mitbih_record(mitdb_dir: Path, record: str):
    """One MIT-BIH record (``mitdb_dir/record``) in mV: both leads in file order, 360 Hz."""
    return read_record(mitdb_dir / record, sampling_rate=SAMPLING_RATE, num_leads=2)


@dataclass
class BeatSet:
    """Fixed windows around annotated R peaks, both leads in file order, in mV."""
    waves: np.ndarray    # (n, before + after, 2) float32
    symbols: np.ndarray  # (n,) annotation symbol
    records: np.ndarray  # (n,) record name
    samples: np.ndarray  # (n,) R-peak sample index in the record

    def subset(self, mask: np.ndarray) -> "BeatSet":
        return BeatSet(self.waves[mask], self.symbols[mask], self.records[mask], self.samples[mask])


def record_beats(mitdb_dir: Path, record: str, before: int = 80, after: int = 80,
                 keep=BEAT_SYMBOLS) -> BeatSet:
    """Windows ``[R - before, R + after)`` of the beats with a symbol in ``keep``; beats whose
    window leaves the record are dropped."""
    signal = read_mitbih_record(mitdb_dir, record).signal
    samples, symbols = beat_annotations(mitdb_dir, record)
    wanted = np.isin(symbols, list(keep))
    waves, kept = beat_windows(signal, samples[wanted], before, after)
    return BeatSet(waves.astype(np.float32), symbols[wanted][kept], np.full(kept.sum(), record),
                   samples[wanted][kept])


def beat_set(mitdb_dir: Path, records=None, before: int = 80, after: int = 80, keep=BEAT_SYMBOLS) -> BeatSet:
    """:func:`record_beats` of several records (default: all present), concatenated."""
    records = available_records(mitdb_dir) if records is None else list(records)
    parts = [record_beats(mitdb_dir, r, before, after, keep) for r in tqdm(records, desc="MIT-BIH beats", unit="record")]
    return BeatSet(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("waves", "symbols", "records", "samples")))


LEAVE_ONE_OUT_SYMBOLS = tuple(s for s in BEAT_SYMBOLS if s != "Q")  # system 4: 14 classes


def leave_one_out_beats(mitdb_dir: Path, records=None) -> tuple[BeatSet, np.ndarray, list[str]]:
    """System 4's beats: 160-sample windows of both leads around each R peak, every beat
    symbol but Q. Returns (beats, integer labels, class symbols in label order); labels are
    numbered in order of first appearance, as the original numbered them."""
    beats = beat_set(mitdb_dir, records, 80, 80, LEAVE_ONE_OUT_SYMBOLS)
    codes, symbols = pd.factorize(beats.symbols)
    return beats, codes.astype(np.int64), [str(s) for s in symbols]
