"""Where the data sets live: an explicit root, else $TF_ECG_DATA_ROOT, else ~/tf_ecg_data.

Layout under the root (PhysioNet's own layout inside each folder):
``mitdb/``, ``ptbxl/``, ``code-test/``, ``applewatch-glucose/``; ``heartbeats/`` holds the
Kaggle-format MIT-BIH CSVs (``tf-ecg data heartbeats`` or a user's Kaggle download).
"""

from __future__ import annotations

import os
from pathlib import Path

from tf_ecg.errors import ECGDataError

DATA_ROOT_ENV = "TF_ECG_DATA_ROOT"
DATASET_DIRS = {"mitdb": "mitdb", "ptb-xl": "ptbxl", "code-test": "code-test",
                "applewatch-glucose": "applewatch-glucose", "heartbeats": "heartbeats"}


def data_root(root: str | os.PathLike | None = None) -> Path:
    if root is not None:
        return Path(root).expanduser()
    if os.environ.get(DATA_ROOT_ENV):
        return Path(os.environ[DATA_ROOT_ENV]).expanduser()
    return Path.home() / "tf_ecg_data"


def dataset_dir(name: str, root: str | os.PathLike | None = None, must_exist: bool = True) -> Path:
    """Folder of data set ``name`` (a key of DATASET_DIRS) under the data root."""
    path = data_root(root) / DATASET_DIRS[name]
    if must_exist and not path.is_dir():
        raise ECGDataError(path, f"data set {name!r} not found; download it with "
                                 f"'tf-ecg data download {name}' or set --data-root/${DATA_ROOT_ENV}")
    return path
