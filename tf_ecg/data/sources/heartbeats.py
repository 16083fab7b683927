"""The Kaggle MIT-BIH heartbeat set (system 3)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from tf_ecg.data import heartbeats, mitbih
from tf_ecg.data.paths import dataset_dir
from tf_ecg.data.sources import Splits, register_source
from tf_ecg.data.spec import InputSpec


@register_source("kaggle_heartbeats")
def kaggle_heartbeats(data_root=None, csv_dir: str | None = None, val_fraction: float = 0.1, seed: int = 777,
                      rebuild_seed: int = 0) -> Splits:
    """The Kaggle MIT-BIH heartbeat set (187 samples at 125 Hz, AAMI N, S, V, F, Q):
    ``mitbih_train.csv`` / ``mitbih_test.csv`` from ``csv_dir`` (default <data root>/heartbeats,
    a user's Kaggle download or ``tf-ecg data heartbeats``); without them, rebuilt from the
    raw MIT-BIH records in memory. Validation: a class-stratified ``val_fraction`` of the
    training file (the original validated on its training set)."""
    directory = Path(csv_dir) if csv_dir else dataset_dir("heartbeats", data_root, must_exist=False)
    train_file, test_file = heartbeats.heartbeat_files(directory)
    if train_file.exists() or test_file.exists():
        train, test = heartbeats.read_kaggle_csv(train_file), heartbeats.read_kaggle_csv(test_file)
        origin = str(directory)
    else:
        train, test = heartbeats.build_heartbeats(dataset_dir("mitdb", data_root), seed=rebuild_seed)
        origin = "rebuilt from mitdb"
    fit_part, val_part = train_test_split(np.arange(len(train.labels)), test_size=val_fraction,
                                          stratify=train.labels, random_state=seed)
    spec = InputSpec("kaggle_beat", heartbeats.SAMPLING_RATE, heartbeats.BEAT_LENGTH, None, 1, normalisation="none")
    x, y = train.beats[..., None], train.labels
    rows = {"train": np.array([f"{train_file.name}:{row}" for row in range(len(train.labels))]),
            "test": np.array([f"{test_file.name}:{row}" for row in range(len(test.labels))])}
    return Splits((x[fit_part], y[fit_part]), (x[val_part], y[val_part]), (test.beats[..., None], test.labels), spec,
                  list(mitbih.AAMI_CLASSES), {"origin": origin, "train": len(fit_part), "val": len(val_part),
                                              "test": len(test.labels)},
                  {"train": rows["train"][fit_part], "val": rows["train"][val_part], "test": rows["test"]})
