"""PTB-XL sources: the CODE format (system 1), e18's superclasses and intervals (system 2)."""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from tf_ecg.data import ptbxl
from tf_ecg.data.formats import code
from tf_ecg.data.cache import cached_table
from tf_ecg.data.intervals import INTERVALS, MEASUREMENT, failure_counts, interval_table
from tf_ecg.data.paths import dataset_dir
from tf_ecg.data.sources import Splits, register_source
from tf_ecg.data.spec import InputSpec, normalise
from tf_ecg.errors import RecipeError

# PTB-XL statements behind Ribeiro's six classes (1dAVb, RBBB, LBBB, SB, AF, ST).
RIBEIRO_STATEMENTS = ("1AVB", "CRBBB", "CLBBB", "SBRAD", "AFIB", "STACH")
E18_LEADS = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")


@register_source("ptbxl_code_format")
def ptbxl_code_format(data_root=None, labels: str = "normal_vs_abnormal", train_folds: list = range(1, 9),
                      val_folds: list = (9,), test_folds: list = (10,)) -> Splits:
    """PTB-XL 500 Hz records in the Ribeiro/CODE format: 12 leads in Ribeiro's order (DI,
    DII, DIII, AVR, AVL, AVF, V1-V6), resampled to 400 Hz, zero-padded to 4096, mV.

    ``labels``: "normal_vs_abnormal" (0 = NORM statement, 1 = no NORM statement) or
    "ribeiro6" (multi-label 1dAVb, RBBB, LBBB, SB, AF, ST from 1AVB, CRBBB, CLBBB, SBRAD,
    AFIB, STACH). Split by ``strat_fold``.
    """
    ptbxl_dir = dataset_dir("ptb-xl", data_root)
    metadata = ptbxl.load_metadata(ptbxl_dir)
    if labels == "normal_vs_abnormal":
        targets, names = (~ptbxl.has_statement(metadata, "NORM")).astype(np.float32).to_frame(), ["normal", "abnormal"]
    elif labels == "ribeiro6":
        targets = pd.concat([ptbxl.has_statement(metadata, c) for c in RIBEIRO_STATEMENTS], axis=1).astype(np.float32)
        names = list(code.CLASSES)
    else:
        raise RecipeError(None, f"data.labels: unknown PTB-XL label set {labels!r} "
                                f"(known: 'normal_vs_abnormal', 'ribeiro6')")
    split = ptbxl.fold_split(metadata, train_folds, val_folds, test_folds)

    def arrays(ids):
        # record by record into one array: the 500 Hz signals of a split are never all held
        x = np.empty((len(ids), code.LENGTH, len(ptbxl.LEADS)), np.float32)
        for row, ecg_id in enumerate(tqdm(ids, desc="PTB-XL in the CODE format", unit="record")):
            signal = ptbxl.load_signals(ptbxl_dir, metadata, [ecg_id], 500, leads=ptbxl.LEADS, progress=False)[0]
            x[row] = code.to_code_format(signal, 500, ptbxl_dir)
        return x, targets.loc[ids].to_numpy()

    spec = InputSpec("code_exam", code.SAMPLING_RATE, code.LENGTH, list(ptbxl.LEADS), 12, normalisation="none")
    return Splits(arrays(split["train"]), arrays(split["val"]), arrays(split["test"]), spec, names,
                  {name: len(ids) for name, ids in split.items()}, ecg_ids(split))


@register_source("ptbxl_superclass")
def ptbxl_superclass(data_root=None, sampling_rate: int = 500, leads: list = E18_LEADS,
                     classes: list = ("MI", "STTC", "HYP", "NORM", "CD"), train_folds: list = range(1, 9),
                     val_folds: list = (9,), test_folds: list = (10,)) -> Splits:
    """e18's 5-superclass task on PTB-XL: records with exactly one diagnostic superclass,
    8 leads (I, II, V1-V6), per-record per-lead min-max to [0, 1], split by strat_fold.
    Class order as the original: MI, STTC, HYP, NORM, CD."""
    ptbxl_dir = dataset_dir("ptb-xl", data_root)
    metadata = ptbxl.load_metadata(ptbxl_dir)
    labels = ptbxl.single_superclass_labels(metadata, ptbxl.load_scp_statements(ptbxl_dir), classes)
    split = ptbxl.fold_split(metadata.loc[labels.index], train_folds, val_folds, test_folds)

    def arrays(ids):
        x = ptbxl.load_signals(ptbxl_dir, metadata, ids, sampling_rate, leads=list(leads))
        return normalise(x, "minmax_per_lead"), labels.loc[ids].to_numpy(np.int64)

    spec = InputSpec("segment", sampling_rate, 10 * sampling_rate, list(leads), len(leads))
    return Splits(arrays(split["train"]), arrays(split["val"]), arrays(split["test"]), spec, list(classes),
                  {name: len(ids) for name, ids in split.items()}, ecg_ids(split))


@register_source("ptbxl_intervals")
def ptbxl_intervals(data_root=None, target: str = "HR", sampling_rate: int = 500, leads: list = E18_LEADS,
                    train_folds: list = range(1, 9), val_folds: list = (9,), test_folds: list = (10,)) -> Splits:
    """e18's interval regression on PTB-XL: the single-superclass records (as the original's
    PTB-XL+ set), 8 leads, per-lead min-max, one target (HR bpm; PR, QRS, QT ms) measured
    from the 500 Hz record by delineation (PTB-XL+ is not available offline); records that
    fail the quality check are dropped (counted by cause in the source's info). Split by
    strat_fold."""
    if target not in INTERVALS:
        raise RecipeError(None, f"data.target: unknown interval target {target!r}; known: {list(INTERVALS)}")
    ptbxl_dir = dataset_dir("ptb-xl", data_root)
    table = ptbxl_interval_table(str(ptbxl_dir), tuple(leads))
    labels = table.loc[table["ok"], target].astype(np.float32)
    metadata = ptbxl.load_metadata(ptbxl_dir)
    split = ptbxl.fold_split(metadata.loc[labels.index], train_folds, val_folds, test_folds)

    def arrays(ids):
        x = ptbxl.load_signals(ptbxl_dir, metadata, ids, sampling_rate, leads=list(leads))
        return normalise(x, "minmax_per_lead"), labels.loc[ids].to_numpy()[:, None]

    spec = InputSpec("segment", sampling_rate, 10 * sampling_rate, list(leads), len(leads))
    info = {name: len(ids) for name, ids in split.items()}
    info["dropped_by_quality"] = int((~table["ok"]).sum())
    info["quality_failures"] = failure_counts(table["failure"])
    return Splits(arrays(split["train"]), arrays(split["val"]), arrays(split["test"]), spec, [target], info,
                  ecg_ids(split))


def ecg_ids(split: dict) -> dict:
    """Example ids of a fold split: "ecg_id <n>" of each record."""
    return {name: np.array([f"ecg_id {i}" for i in ids]) for name, ids in split.items()}


@functools.lru_cache(maxsize=4)
def ptbxl_interval_table(ptbxl_dir: str, leads: tuple[str, ...]) -> pd.DataFrame:
    """HR, PR, QRS, QT, ok and failure of every single-superclass PTB-XL record (500 Hz),
    indexed by ecg_id. Measured once and kept on disk (:mod:`tf_ecg.data.cache`), keyed by
    the leads, the records (ids and file sizes) and the measurement's version."""
    ptbxl_dir = Path(ptbxl_dir)
    metadata = ptbxl.load_metadata(ptbxl_dir)
    ids = ptbxl.single_superclass_labels(metadata, ptbxl.load_scp_statements(ptbxl_dir)).index
    files = [ptbxl_dir / f"{metadata.loc[i, 'filename_hr']}.dat" for i in ids]
    records = hashlib.sha256(json.dumps([[int(i), f.stat().st_size if f.is_file() else None]
                                         for i, f in zip(ids, files)]).encode()).hexdigest()
    key = {"table": "PTB-XL intervals", "leads": list(leads), "sampling_rate": 500, "records": records,
           "measurement": MEASUREMENT}

    def measure() -> pd.DataFrame:
        signals = ptbxl.load_signals(ptbxl_dir, metadata, ids, 500, leads=list(leads))
        return interval_table(signals, 500, rate_lead=list(leads).index("II"), index=ids, desc="PTB-XL delineation")

    table = cached_table(ptbxl_dir, "intervals", key, measure)
    table.index.name = "ecg_id"
    return table
