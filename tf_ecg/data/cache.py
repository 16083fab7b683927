"""What is measured from the records (PTB-XL intervals: ~0.14 s per record, ~50 CPU-minutes
for the full data set; the glucose study's beats: R-peak detection, ~45 s for the study),
kept on disk so that every later ``train`` or ``evaluate`` reads it instead of measuring again.

A table (or a set of arrays) is stored beside the data (``<data set>/.tf_ecg_cache/``) where that folder is
writable, else under ``$TF_ECG_CACHE`` (default ``~/.cache/tf_ecg``). Its file name holds
a hash of everything that made it (the options, the records and their sizes, the version
of the measurement), and a ``.json`` beside it spells that key out: change any of them and
the table is measured anew.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from tf_ecg.data.paths import cache_root

BESIDE_DATA = ".tf_ecg_cache"


def cache_dir(data_dir: Path | None) -> Path:
    """Where derived tables of ``data_dir`` are kept (see the module's text); ``None``: data
    made by tf_ecg itself (DeepFake ECGs), kept under the cache folder."""
    if data_dir is None:
        return cache_root() / "generated"
    beside = Path(data_dir) / BESIDE_DATA
    if _writable(beside if beside.is_dir() else Path(data_dir)):
        return beside
    return cache_root() / f"{Path(data_dir).name}-{hashlib.sha256(str(Path(data_dir).resolve()).encode()).hexdigest()[:12]}"


def _writable(folder: Path) -> bool:
    """Writable by its permissions, not only to root (who may write anywhere): a data
    folder made read-only stays untouched."""
    return folder.is_dir() and os.access(folder, os.W_OK) and bool(folder.stat().st_mode & stat.S_IWUSR)


def cached_table(data_dir: Path | None, stem: str, key: dict, compute: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    """``compute()``, or the table it returned before for the same ``key``."""
    path = _cache_file(data_dir, stem, key, ".csv")
    if path.is_file():
        return pd.read_csv(path, index_col=0, na_values=["NaN"], keep_default_na=False)
    table = compute()
    _store(path, key, lambda staging: table.to_csv(staging, na_rep="NaN"))
    return table


def cached_arrays(data_dir: Path | None, stem: str, key: dict, compute: Callable[[], dict[str, np.ndarray]]
                  ) -> dict[str, np.ndarray]:
    """``compute()`` (named NumPy arrays), or the arrays it returned before for the same ``key``."""
    path = _cache_file(data_dir, stem, key, ".npz")
    if path.is_file():
        with np.load(path, allow_pickle=False) as stored:
            return {name: stored[name] for name in stored.files}
    arrays = compute()

    def write(staging: Path) -> None:
        with open(staging, "wb") as file:  # a file object: np.savez would append .npz to the name
            np.savez(file, **arrays)

    _store(path, key, write)
    return arrays


def _cache_file(data_dir: Path | None, stem: str, key: dict, suffix: str) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir(data_dir) / f"{stem}-{digest}{suffix}"


def _store(path: Path, key: dict, write: Callable[[Path], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{os.getpid()}.partial")  # another process may write it too
    write(staging)
    staging.replace(path)
    path.with_suffix(".json").write_text(json.dumps(key, indent=1))
