"""Labels measured from the records (PTB-XL intervals: ~0.14 s per record, ~50 CPU-minutes
for the full data set), kept on disk so that every later ``train`` or ``evaluate`` reads
them instead of measuring again.

A table is stored beside the data (``<data set>/.tf_ecg_cache/``) where that folder is
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

import pandas as pd

from tf_ecg.data.paths import cache_root

BESIDE_DATA = ".tf_ecg_cache"


def cache_dir(data_dir: Path) -> Path:
    """Where derived tables of ``data_dir`` are kept (see the module's text)."""
    beside = Path(data_dir) / BESIDE_DATA
    if _writable(beside if beside.is_dir() else Path(data_dir)):
        return beside
    return cache_root() / f"{Path(data_dir).name}-{hashlib.sha256(str(Path(data_dir).resolve()).encode()).hexdigest()[:12]}"


def _writable(folder: Path) -> bool:
    """Writable by its permissions, not only to root (who may write anywhere): a data
    folder made read-only stays untouched."""
    return folder.is_dir() and os.access(folder, os.W_OK) and bool(folder.stat().st_mode & stat.S_IWUSR)


def cached_table(data_dir: Path, stem: str, key: dict, compute: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    """``compute()``, or the table it returned before for the same ``key``."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    directory = cache_dir(data_dir)
    path = directory / f"{stem}-{digest}.csv"
    if path.is_file():
        return pd.read_csv(path, index_col=0, na_values=["NaN"], keep_default_na=False)
    table = compute()
    directory.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{os.getpid()}.partial")  # another process may write it too
    table.to_csv(staging, na_rep="NaN")
    staging.replace(path)
    path.with_suffix(".json").write_text(json.dumps(key, indent=1))
    return table
