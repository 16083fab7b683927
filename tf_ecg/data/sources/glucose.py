"""Apple Watch beats of the glucose study (system 5)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tf_ecg.data import glucose
from tf_ecg.data.paths import dataset_dir
from tf_ecg.data.sources import Splits, register_source
from tf_ecg.data.spec import InputSpec
from tf_ecg.errors import RecipeError


@register_source("glucose_beats")
def glucose_beats(data_root=None, split: str = "date_2024_01_11") -> Splits:
    """Apple Watch beats of the glucose study (383 samples in uV + RR), split by date.

    Labels 0 = fast, 1 = glucose. (The January 2024 recordings are an evaluation set of
    their own: ``tf_ecg.data.glucose.study_beats(..., leading_samples_removed=10)``.)
    """
    if split != "date_2024_01_11":
        raise RecipeError(None, f"data.split: unknown glucose split {split!r} (known: 'date_2024_01_11')")
    study_dir = dataset_dir("applewatch-glucose", data_root)
    beats = glucose.cached_study_beats(str(study_dir))

    def arrays(part: glucose.GlucoseBeats):
        return part.beats[..., None].astype(np.float32), part.labels[:, None].astype(np.float32)

    parts = {name: beats.dates(dates) for name, dates in glucose.DATE_SPLIT.items()}
    info = {name: {"beats": len(part.labels), "glucose": int(part.labels.sum())} for name, part in parts.items()}
    spec = InputSpec("glucose_beat", 512, glucose.BEAT_LENGTH, ["I"], 1, normalisation="none", units="uV")
    return Splits(arrays(parts["train"]), arrays(parts["val"]), arrays(parts["test"]), spec,
                  list(glucose.CLASS_NAMES), info, {name: beat_ids(part) for name, part in parts.items()})


def beat_ids(part: glucose.GlucoseBeats) -> np.ndarray:
    """"<recording file>#<beat>" of each beat, beats counted within their recording."""
    files = part.recordings["path"].map(lambda path: "/".join(Path(path).parts[-3:]))  # date/condition/file
    names = files.to_numpy(dtype=str)[part.recording]
    order = np.zeros(len(names), dtype=int)
    for recording in np.unique(part.recording):
        members = np.flatnonzero(part.recording == recording)
        order[members] = np.arange(len(members))
    return np.char.add(np.char.add(names, "#"), order.astype(str))
