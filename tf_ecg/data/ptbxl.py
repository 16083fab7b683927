"""PTB-XL: metadata, SCP codes -> diagnostic superclasses, strat_fold, signals by lead name."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from tf_ecg.data.formats.wfdb_records import read_record
from tf_ecg.errors import ECGDataError

LEADS = ("I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6")
SUPERCLASSES = ("NORM", "MI", "STTC", "CD", "HYP")
SAMPLING_RATES = {100: "filename_lr", 500: "filename_hr"}


def _read_csv(path: Path, **kwargs) -> pd.DataFrame:
    if not path.is_file():
        raise ECGDataError(path, "file not found")
    try:
        table = pd.read_csv(path, **kwargs)
    except pd.errors.EmptyDataError:
        raise ECGDataError(path, "empty CSV file") from None
    if table.empty:
        raise ECGDataError(path, "CSV file has a header but no rows")
    return table


def load_metadata(ptbxl_dir: Path) -> pd.DataFrame:
    """``ptbxl_database.csv`` indexed by ecg_id, ``scp_codes`` parsed to dicts."""
    path = ptbxl_dir / "ptbxl_database.csv"
    table = _read_csv(path, index_col="ecg_id")
    missing = {"scp_codes", "strat_fold", "filename_lr", "filename_hr"} - set(table.columns)
    if missing:
        raise ECGDataError(path, f"missing column(s) {sorted(missing)}")
    table["scp_codes"] = table["scp_codes"].apply(ast.literal_eval)
    return table


def load_scp_statements(ptbxl_dir: Path) -> pd.DataFrame:
    """PTB-XL's ``scp_statements.csv``: each SCP code with its diagnostic class and subclass."""
    return _read_csv(ptbxl_dir / "scp_statements.csv", index_col=0)


def diagnostic_superclasses(metadata: pd.DataFrame, statements: pd.DataFrame,
                            min_likelihood: float = 0.0) -> pd.Series:
    """Set of diagnostic superclasses per record.

    Codes count whatever their likelihood by default (as e18 and the PTB-XL benchmark
    do: a code listed with likelihood 0 still counts); ``min_likelihood`` raises the bar.
    """
    diagnostic = statements[statements["diagnostic"] == 1]["diagnostic_class"].to_dict()

    def superclasses(codes: dict) -> frozenset:
        return frozenset(diagnostic[c] for c, likelihood in codes.items()
                         if c in diagnostic and likelihood >= min_likelihood)

    return metadata["scp_codes"].apply(superclasses)


def single_superclass_labels(metadata: pd.DataFrame, statements: pd.DataFrame,
                             classes=SUPERCLASSES) -> pd.Series:
    """Class index (into ``classes``) of records with exactly one superclass."""
    sets = diagnostic_superclasses(metadata, statements)
    single = sets[sets.apply(len) == 1].apply(lambda s: next(iter(s)))
    return single.map({c: i for i, c in enumerate(classes)}).astype(int)


def has_statement(metadata: pd.DataFrame, code: str) -> pd.Series:
    """Whether each record lists SCP code ``code`` (e.g. 'NORM', '1AVB', 'AFIB')."""
    return metadata["scp_codes"].apply(lambda codes: code in codes)


def fold_split(metadata: pd.DataFrame, train_folds=range(1, 9), val_folds=(9,), test_folds=(10,)
               ) -> dict[str, pd.Index]:
    """The recommended PTB-XL split by ``strat_fold``: 1-8 train, 9 validation, 10 test."""
    fold = metadata["strat_fold"]
    return {"train": metadata.index[fold.isin(list(train_folds))],
            "val": metadata.index[fold.isin(list(val_folds))],
            "test": metadata.index[fold.isin(list(test_folds))]}


def load_signals(ptbxl_dir: Path, metadata: pd.DataFrame, ecg_ids, sampling_rate: int = 500,
                 leads=LEADS, progress: bool = True) -> np.ndarray:
    """Signals (n, samples, leads) in mV of the given records, leads chosen by name."""
    if sampling_rate not in SAMPLING_RATES:
        raise ECGDataError(ptbxl_dir, f"PTB-XL has 100 and 500 Hz records, not {sampling_rate} Hz")
    column = SAMPLING_RATES[sampling_rate]
    signals = None
    for i, ecg_id in enumerate(tqdm(list(ecg_ids), desc=f"PTB-XL {sampling_rate} Hz", disable=not progress)):
        record = read_record(ptbxl_dir / metadata.loc[ecg_id, column], sampling_rate=sampling_rate,
                             leads=leads)
        if signals is None:
            signals = np.empty((len(ecg_ids),) + record.signal.shape, dtype=np.float32)
        if record.signal.shape != signals.shape[1:]:
            raise ECGDataError(record.path, f"shape {record.signal.shape}, expected {signals.shape[1:]}")
        signals[i] = record.signal
    if signals is None:
        raise ECGDataError(ptbxl_dir, "no records selected")
    return signals
