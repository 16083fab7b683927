"""The Kaggle "ECG Heartbeat Categorization" MIT-BIH set (``mitbih_train.csv``,
``mitbih_test.csv``), rebuilt from the raw records with Kachuee et al. 2018's method, and a
reader for the real CSVs (187 samples at 125 Hz in [0, 1], zero-padded, then the AAMI
label 0-4 = N, S, V, F, Q).

The method: lead MLII resampled to 125 Hz, cut into 10-s windows, each window min-max
normalised to [0, 1]; the nominal period T of a window is its median RR interval; each
beat is the 1.2 T samples starting at its R peak, zero-padded to 187. R peaks and labels
are the reference annotations. The published files hold one row per annotated beat
except the last beat of each record (their class counts prove it: the 48 last beats are
42 N, 2 S and 4 Q, exactly the published shortfall), split 80/20 stratified by class.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from tf_ecg.data import mitbih
from tf_ecg.data.resample import resample
from tf_ecg.errors import ECGDataError

SAMPLING_RATE = 125
BEAT_LENGTH = 187
WINDOW_SECONDS = 10
PERIOD_FACTOR = 1.2
TRAIN_FILE, TEST_FILE = "mitbih_train.csv", "mitbih_test.csv"
# Published row counts of the Kaggle files (for comparison in reports and tests).
PUBLISHED_COUNTS = {"train": {"N": 72471, "S": 2223, "V": 5788, "F": 641, "Q": 6431},
                    "test": {"N": 18118, "S": 556, "V": 1448, "F": 162, "Q": 1608}}


@dataclass
class Heartbeats:
    beats: np.ndarray    # (n, 187) float32 in [0, 1]
    labels: np.ndarray   # (n,) int64, AAMI index 0-4
    records: np.ndarray  # (n,) record name of each beat ("" when read from a CSV)

    def counts(self) -> dict[str, int]:
        return {name: int((self.labels == i).sum()) for i, name in enumerate(mitbih.AAMI_CLASSES)}


def _mlii(record) -> np.ndarray:
    """Lead MLII where the record has it (records 102 and 104 do not: their first lead)."""
    names = list(record.leads)
    return record.signal[:, names.index("MLII") if "MLII" in names else 0]


def to_125_hz(lead: np.ndarray, sampling_rate: float) -> np.ndarray:
    """Polyphase resampling of one lead to the Kaggle set's 125 Hz."""
    return resample(lead, sampling_rate, SAMPLING_RATE).astype(np.float64)


def kachuee_beats(lead: np.ndarray, peaks: np.ndarray) -> np.ndarray:
    """Beats (len(peaks), 187) of a 125 Hz lead: per 10-s window min-max to [0, 1], each beat
    the 1.2 T samples from its R peak (T = the window's median RR), zero-padded."""
    window = WINDOW_SECONDS * SAMPLING_RATE
    beats = np.zeros((len(peaks), BEAT_LENGTH), dtype=np.float32)
    for start in range(0, len(lead), window):
        inside = np.flatnonzero((peaks >= start) & (peaks < start + window))
        if len(inside) == 0:
            continue
        segment = lead[start:start + window]
        span = segment.max() - segment.min()
        segment = (segment - segment.min()) / span if span > 0 else np.zeros_like(segment)
        rr = np.diff(peaks[inside])
        period = np.median(rr) if len(rr) else BEAT_LENGTH / PERIOD_FACTOR
        length = min(int(PERIOD_FACTOR * period), BEAT_LENGTH)
        for i in inside:
            piece = segment[peaks[i] - start:peaks[i] - start + length]
            beats[i, :len(piece)] = piece
    return beats


def record_heartbeats(mitdb_dir: Path, record: str) -> Heartbeats:
    """Kaggle-format beats of one MIT-BIH record (all annotated beats but the last)."""
    lead = to_125_hz(_mlii(mitbih.read_mitbih_record(mitdb_dir, record)), mitbih.SAMPLING_RATE)
    samples, symbols = mitbih.beat_annotations(mitdb_dir, record)
    peaks = np.round(samples * SAMPLING_RATE / mitbih.SAMPLING_RATE).astype(np.int64)[:-1]
    return Heartbeats(kachuee_beats(lead, peaks), mitbih.aami_labels(symbols[:-1]), np.full(len(peaks), record))


def build_heartbeats(mitdb_dir: Path, records=None, test_fraction: float = 0.2,
                     seed: int = 0) -> tuple[Heartbeats, Heartbeats]:
    """(train, test) rebuilt from the raw records: per class, a seeded ``ceil(0.2 n)`` of the
    beats go to the test file (intra-patient, as the Kaggle files, whose per-class test counts
    this rounding matches for N, S, V and Q; F has one beat more there)."""
    records = mitbih.available_records(mitdb_dir) if records is None else list(records)
    parts = [record_heartbeats(mitdb_dir, r) for r in tqdm(records, desc="Kaggle heartbeats", unit="record")]
    beats = np.concatenate([p.beats for p in parts])
    labels = np.concatenate([p.labels for p in parts])
    names = np.concatenate([p.records for p in parts])
    rng = np.random.default_rng(seed)
    test = np.sort(np.concatenate([
        rng.permutation(members)[:int(np.ceil(test_fraction * len(members)))]
        for members in (np.flatnonzero(labels == c) for c in np.unique(labels))]))
    train = np.setdiff1d(np.arange(len(labels)), test)
    return Heartbeats(beats[train], labels[train], names[train]), Heartbeats(beats[test], labels[test], names[test])


def write_kaggle_csv(path: Path, heartbeats: Heartbeats) -> None:
    """The Kaggle layout: no header, 187 beat values then the label, one beat per row."""
    table = pd.DataFrame(heartbeats.beats.astype(np.float64))
    table[BEAT_LENGTH] = heartbeats.labels.astype(np.float64)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(".csv.partial")
    table.to_csv(staging, header=False, index=False, float_format="%.6e")
    staging.replace(path)


def read_kaggle_csv(path: str | Path) -> Heartbeats:
    """Read ``mitbih_train.csv`` / ``mitbih_test.csv`` (Kaggle's or a rebuilt one), checking
    the layout: 188 numeric columns, no NaN, beat values in [0, 1], labels 0-4."""
    path = Path(path)
    if not path.is_file():
        raise ECGDataError(path, "file not found")
    try:
        values = pd.read_csv(path, header=None, dtype=np.float64).to_numpy()
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise ECGDataError(path, f"not a numeric CSV: {error}") from None
    if values.ndim != 2 or values.shape[1] != BEAT_LENGTH + 1:
        raise ECGDataError(path, f"expected {BEAT_LENGTH + 1} columns (187 samples + label), found {values.shape[1]}")
    if np.isnan(values).any():
        row = int(np.flatnonzero(np.isnan(values).any(axis=1))[0])
        raise ECGDataError(path, f"NaN in row {row + 1}")
    beats, labels = values[:, :BEAT_LENGTH], values[:, BEAT_LENGTH]
    if beats.min() < 0 or beats.max() > 1:
        raise ECGDataError(path, f"beat values outside [0, 1] ({beats.min():.3g} .. {beats.max():.3g})")
    if not np.isin(labels, np.arange(len(mitbih.AAMI_CLASSES))).all():
        raise ECGDataError(path, f"labels must be 0-4, found {sorted(set(labels.tolist()) - set(range(5)))[:5]}")
    return Heartbeats(beats.astype(np.float32), labels.astype(np.int64), np.full(len(labels), ""))


def heartbeat_files(directory: Path) -> tuple[Path, Path]:
    return directory / TRAIN_FILE, directory / TEST_FILE
