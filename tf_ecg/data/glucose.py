"""Beats of the Apple Watch glucose study, exactly as the original builds them.

Spec: ``originals/5-glucose-comparator.md`` section (b). Per recording: drop the start
(``raw[1546:]``: the original re-reads its CSVs twice with the first value taken as a
header and then discards 1,535 samples), find R peaks with ``neurokit2.ecg_process``
(cleaning + neurokit detector with artifact correction) but cut the beats from the
*unfiltered* signal: 128 samples before and 255 after each R peak except the last, with
the interval to the next R peak (in samples) appended as the 384th value.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from tf_ecg.data.cache import cached_arrays
from tf_ecg.data.formats.applewatch import SAMPLING_RATE, list_glucose_recordings, read_applewatch_csv
from tf_ecg.errors import ECGDataError

BEFORE_R, AFTER_R = 128, 255
BEAT_LENGTH = BEFORE_R + AFTER_R + 1  # 383 samples + the RR interval
SKIPPED_SAMPLES = 1546  # of a raw Apple export; 1536 for files already without their first 10
DATE_SPLIT = {  # the split behind the shipped 2024-01-11 runs
    "train": ("0921", "0923", "0925", "0927", "0928", "0930", "1005", "1008"),
    "val": ("0924", "1006"),
    "test": ("0926", "1002", "1007"),
}
CLASS_NAMES = ("fast", "glucose")


def glucose_r_peaks(signal: np.ndarray) -> np.ndarray:
    """R peaks as the original finds them: ``nk.ecg_process(..., method="neurokit")``."""
    import neurokit2 as nk  # here, not at import: neurokit2 loads scikit-learn; models never need it

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, info = nk.ecg_process(signal, sampling_rate=SAMPLING_RATE, method="neurokit")
    return np.asarray(info["ECG_R_Peaks"], dtype=np.int64)


def segment_beats(signal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(beats (n, 384), R-peak positions) of an already trimmed recording."""
    signal = np.asarray(signal, dtype=np.float64)
    peaks = glucose_r_peaks(signal)
    beats, positions = [], []
    for peak, next_peak in zip(peaks[:-1], peaks[1:]):
        if peak - BEFORE_R > 0 and peak + AFTER_R <= len(signal):
            beats.append(np.append(signal[peak - BEFORE_R:peak + AFTER_R], next_peak - peak))
            positions.append(peak)
    return np.asarray(beats, dtype=np.float64).reshape(-1, BEAT_LENGTH), np.asarray(positions, np.int64)


def trimmed_beats(signal: np.ndarray, path: str | Path, leading_samples_removed: int = 0
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(beats, R-peak positions in ``signal``) of a whole recording, its start discarded as the
    original does; ``leading_samples_removed`` = 10 for files already without their first 10."""
    skip = SKIPPED_SAMPLES - leading_samples_removed
    if len(signal) <= skip + BEAT_LENGTH:
        raise ECGDataError(path, f"{len(signal)} samples: too short for beats after skipping {skip}")
    beats, positions = segment_beats(signal[skip:])
    if len(beats) == 0:
        raise ECGDataError(path, f"no complete beat found after the first {skip} samples")
    return beats, positions + skip


def recording_beats(path: str | Path, leading_samples_removed: int = 0) -> np.ndarray:
    """Beats of one recording file; ``leading_samples_removed`` = 10 for the 2024-01 files."""
    return trimmed_beats(read_applewatch_csv(path).signal, path, leading_samples_removed)[0]


@dataclass
class GlucoseBeats:
    beats: np.ndarray        # (n, 384) float64: 383 samples in microvolts + RR in samples
    labels: np.ndarray       # (n,) 0 = fast, 1 = glucose
    recording: np.ndarray    # (n,) index into `recordings`
    recordings: pd.DataFrame

    def subset(self, mask: np.ndarray) -> "GlucoseBeats":
        return GlucoseBeats(self.beats[mask], self.labels[mask], self.recording[mask], self.recordings)

    def dates(self, dates) -> "GlucoseBeats":
        """The beats of recordings made on the given MMDD dates."""
        beat_dates = self.recordings["date"].to_numpy(dtype=str)[self.recording]
        return self.subset(np.isin(beat_dates, list(dates)))


def study_beats(study_dir: str | Path, leading_samples_removed: int = 0, progress: bool = True) -> GlucoseBeats:
    """All fast1 / glucose1 beats of a study folder, recording by recording."""
    recordings = list_glucose_recordings(study_dir)
    beats, labels, owners = [], [], []
    for index, row in tqdm(list(recordings.iterrows()), desc="glucose beats", unit="recording",
                           disable=not progress):
        recording = recording_beats(row["path"], leading_samples_removed)
        beats.append(recording)
        labels.append(np.full(len(recording), row["label"]))
        owners.append(np.full(len(recording), index))
    return GlucoseBeats(np.concatenate(beats), np.concatenate(labels).astype(np.int64),
                        np.concatenate(owners), recordings)


@lru_cache(maxsize=4)
def cached_study_beats(study_dir: str, leading_samples_removed: int = 0) -> GlucoseBeats:
    """:func:`study_beats`, measured once and kept on disk (:mod:`tf_ecg.data.cache`; R-peak
    detection takes ~45 s for the study), keyed by the recordings (names and sizes), the
    samples removed, the beat layout and neurokit2's version (its detector finds the peaks)."""
    recordings = list_glucose_recordings(study_dir)
    files = [[str(Path(path).relative_to(study_dir)), Path(path).stat().st_size] for path in recordings["path"]]
    key = {"arrays": "glucose study beats", "recordings": hashlib.sha256(json.dumps(files).encode()).hexdigest(),
           "leading_samples_removed": leading_samples_removed, "skipped_samples": SKIPPED_SAMPLES,
           "beat": [BEFORE_R, AFTER_R], "neurokit2": version("neurokit2")}

    def measure() -> dict[str, np.ndarray]:
        measured = study_beats(study_dir, leading_samples_removed)
        return {"beats": measured.beats, "labels": measured.labels, "recording": measured.recording}

    arrays = cached_arrays(Path(study_dir), "glucose-beats", key, measure)
    return GlucoseBeats(arrays["beats"], arrays["labels"], arrays["recording"], recordings)
