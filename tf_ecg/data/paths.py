"""Where the data sets live: an explicit root, else $TF_ECG_DATA_ROOT, else ~/tf_ecg_data.

Layout under the root (PhysioNet's own layout inside each folder):
``mitdb/``, ``ptbxl/``, ``code-test/``, ``code15/`` (exams.csv, exams_part*.hdf5),
``applewatch-glucose/``; ``heartbeats/`` holds the Kaggle-format MIT-BIH CSVs (``tf-ecg data
heartbeats`` or a user's Kaggle download); ``shards/<source>/`` what ``tf-ecg data shards`` wrote.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from tf_ecg.errors import ECGDataError, OutputPathError

DATA_ROOT_ENV = "TF_ECG_DATA_ROOT"
DATASET_DIRS = {"mitdb": "mitdb", "ptb-xl": "ptbxl", "code-test": "code-test", "code15": "code15",
                "applewatch-glucose": "applewatch-glucose", "heartbeats": "heartbeats"}


HOW_TO_OBTAIN = {
    "mitdb": "download it with 'tf-ecg data download mitdb'",
    "ptb-xl": "download it with 'tf-ecg data download ptb-xl'",
    "code-test": "get it from github antonior92/automatic-ecg-diagnosis (tracings: Zenodo 10.5281/zenodo.3625006)",
    "code15": "put exams.csv and exams_part*.hdf5 of Zenodo 10.5281/zenodo.4916206 there",
    "applewatch-glucose": "get it from github Jiazxu/ecg_glucose_comparator (dataset/data_raw)",
    "heartbeats": "build it with 'tf-ecg data heartbeats' or put the Kaggle CSVs there",
}


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
        raise ECGDataError(path, f"data set {name!r} not found; {HOW_TO_OBTAIN[name]}, "
                                 f"or set --data-root/${DATA_ROOT_ENV}")
    return path


def check_new_file(path: str | os.PathLike, what: str = "output") -> Path:
    """An output file path that does not exist yet (tf_ecg never replaces a file it did not
    write); its folder is created. Checked before the work starts."""
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(path, f"{what} path is a directory; give a file name")
    if path.exists():
        raise OutputPathError(path, f"{what} file exists; choose another name or remove it first")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def check_output_dir(path: str | os.PathLike, replaceable=lambda p: False, protect=(), what: str = "output") -> Path:
    """An output folder that is new, empty, or one ``replaceable(path)`` says tf_ecg wrote
    itself; never a file, never one of ``protect`` (or a folder inside or around one)."""
    path = Path(path)
    resolved = path.resolve()
    for guarded in protect:
        guarded = Path(guarded).resolve()
        if resolved == guarded or guarded in resolved.parents or resolved in guarded.parents:
            raise OutputPathError(path, f"{what} folder would overlap {guarded}; write it elsewhere")
    if path.exists() and not path.is_dir():
        raise OutputPathError(path, f"{what} path is a file, not a folder")
    if path.is_dir() and any(path.iterdir()) and not replaceable(path):
        raise OutputPathError(path, f"{what} folder exists and holds files tf_ecg did not write there; "
                                    f"choose a new or empty folder")
    return path


def sha256_of(path: str | os.PathLike, progress=None) -> str:
    """The sha256 of a file, read in 1 MiB blocks (weights and shards can be large);
    ``progress(n)`` is called with the bytes of each block read."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
            if progress is not None:
                progress(len(block))
    return digest.hexdigest()


def cache_root() -> Path:
    """tf_ecg's cache folder: ``$TF_ECG_CACHE``, default ``~/.cache/tf_ecg`` (measured label
    tables, downloaded weights)."""
    return Path(os.environ.get("TF_ECG_CACHE") or Path.home() / ".cache" / "tf_ecg")
