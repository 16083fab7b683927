"""Data sources a recipe can name in ``[data] source = ...``.

A source turns the data root and the recipe's [data] options into train/val/test
arrays plus an :class:`InputSpec` that tells inference how to prepare new recordings.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from scipy.signal import decimate
from sklearn.model_selection import train_test_split
from tqdm.auto import tqdm

from tf_ecg.data import code, glucose, heartbeats, mitbih, ptbxl
from tf_ecg.data.intervals import INTERVALS, heart_rate, interval_table
from tf_ecg.data.paths import dataset_dir
from tf_ecg.data.spec import InputSpec, normalise

SourceFn = Callable[..., "Splits"]
_SOURCES: dict[str, SourceFn] = {}


@dataclass
class Splits:
    train: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    input_spec: InputSpec
    output_names: list[str]         # class names, or target names for regression
    info: dict = field(default_factory=dict)


def register_source(name: str) -> Callable[[SourceFn], SourceFn]:
    def decorator(function: SourceFn) -> SourceFn:
        _SOURCES[name] = function
        return function

    return decorator


def load_source(options: dict, data_root=None) -> Splits:
    options = dict(options)
    name = options.pop("source", None)
    if name not in _SOURCES:
        raise ValueError(f"unknown data source {name!r}; known: {sorted(_SOURCES)}")
    return _SOURCES[name](data_root=data_root, **options)


def random_split(n: int, fractions=(0.7, 0.1, 0.2), seed: int = 0) -> list[np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    cuts = np.cumsum([int(round(f * n)) for f in fractions[:-1]])
    return np.split(order, cuts)


def _interval_labels(signals: np.ndarray, sampling_rate: float, target: str,
                     rate_lead: int) -> tuple[np.ndarray, np.ndarray]:
    """(label, quality ok) per recording; R peaks from ``rate_lead``; HR needs only R peaks."""
    if target not in INTERVALS:
        raise ValueError(f"unknown interval target {target!r}; known: {list(INTERVALS)}")
    if target == "HR":
        labels = [heart_rate(s[:, rate_lead], sampling_rate) for s in tqdm(signals, desc="R peaks -> HR", unit="ecg")]
        return np.array([v for v, _ in labels], np.float32), np.array([ok for _, ok in labels])
    table = interval_table(signals, sampling_rate, rate_lead=rate_lead, desc=f"delineation -> {target}")
    return table[target].to_numpy(np.float32), table["ok"].to_numpy(bool)


@register_source("deepfake_intervals")
def deepfake_intervals(data_root=None, target: str = "HR", n_ecgs: int = 1000, seed: int = 0,
                       sampling_rate: int = 500, fractions=(0.7, 0.1, 0.2)) -> Splits:
    """DeepFake 8-lead ECGs labelled with one interval (HR in bpm; PR, QRS or QT in ms)
    measured on the generated 500 Hz signal (tf_ecg.data.intervals), random split.

    Needs no data root: the ECGs come from the Pulse2Pulse port (tf_ecg.deepfake).
    Records whose R-peak detection or delineation fails the quality check are dropped.
    """
    from tf_ecg.deepfake import LEADS, SAMPLING_RATE, generate_ecgs

    ecgs = generate_ecgs(n_ecgs, seed=seed).astype(np.float32)
    values, ok = _interval_labels(ecgs, SAMPLING_RATE, target, rate_lead=LEADS.index("II"))
    factor = SAMPLING_RATE // sampling_rate
    x = decimate(ecgs[ok], factor, axis=1, zero_phase=True) if factor > 1 else ecgs[ok]
    x, y = normalise(np.asarray(x), "minmax_per_lead"), values[ok, None]
    parts = random_split(len(x), fractions, seed)
    spec = InputSpec("segment", sampling_rate, x.shape[1], list(LEADS), len(LEADS))
    return Splits(*[(x[p], y[p]) for p in parts], spec, [target],
                  {"generated": n_ecgs, "dropped_by_quality": int((~ok).sum())})


@register_source("mitbih_beats")
def mitbih_beats(data_root=None, before: int = 80, after: int = 80, split: str = "de_chazal",
                 val_fraction: float = 0.1, seed: int = 0, records=None) -> Splits:
    """Two-lead MIT-BIH beats around annotated R peaks, AAMI classes N, S, V, F, Q.

    ``split="de_chazal"``: inter-patient DS1 (train, with a seeded validation share of
    its beats) -> DS2 (test), paced records excluded.
    """
    if split != "de_chazal":
        raise ValueError(f"unknown MIT-BIH split {split!r}")
    mitdb_dir = dataset_dir("mitdb", data_root)
    wanted = set(records) if records else None
    available = set(mitbih.available_records(mitdb_dir))

    def load(record_ids):
        selected = [r for r in record_ids if r in available and (not wanted or r in wanted)]
        if not selected:
            raise ValueError("no MIT-BIH records selected for this split")
        beats = mitbih.beat_set(mitdb_dir, selected, before, after)
        return normalise(beats.waves, "minmax_per_lead"), mitbih.aami_labels(beats.symbols)

    x_train, y_train = load(mitbih.DS1)
    x_test, y_test = load(mitbih.DS2)
    train_part, val_part = random_split(len(x_train), (1 - val_fraction, val_fraction), seed)
    spec = InputSpec("beat", mitbih.SAMPLING_RATE, before + after, None, 2, before=before, after=after)
    return Splits((x_train[train_part], y_train[train_part]), (x_train[val_part], y_train[val_part]),
                  (x_test, y_test), spec, list(mitbih.AAMI_CLASSES))


@register_source("glucose_beats")
def glucose_beats(data_root=None, split: str = "date_2024_01_11") -> Splits:
    """Apple Watch beats of the glucose study (383 samples in uV + RR), split by date.

    Labels 0 = fast, 1 = glucose. (The January 2024 recordings are an evaluation set of
    their own: ``tf_ecg.data.glucose.study_beats(..., leading_samples_removed=10)``.)
    """
    if split != "date_2024_01_11":
        raise ValueError(f"unknown glucose split {split!r}")
    study_dir = dataset_dir("applewatch-glucose", data_root)
    beats = glucose.cached_study_beats(str(study_dir))

    def arrays(part: glucose.GlucoseBeats):
        return part.beats[..., None].astype(np.float32), part.labels[:, None].astype(np.float32)

    parts = {name: beats.dates(dates) for name, dates in glucose.DATE_SPLIT.items()}
    info = {name: {"beats": len(part.labels), "glucose": int(part.labels.sum())} for name, part in parts.items()}
    spec = InputSpec("glucose_beat", 512, glucose.BEAT_LENGTH, ["I"], 1, normalisation="none")
    return Splits(arrays(parts["train"]), arrays(parts["val"]), arrays(parts["test"]), spec,
                  list(glucose.CLASS_NAMES), info)


# PTB-XL statements behind Ribeiro's six classes (1dAVb, RBBB, LBBB, SB, AF, ST).
RIBEIRO_STATEMENTS = ("1AVB", "CRBBB", "CLBBB", "SBRAD", "AFIB", "STACH")


@register_source("ptbxl_code_format")
def ptbxl_code_format(data_root=None, labels: str = "normal_vs_abnormal", train_folds=range(1, 9),
                      val_folds=(9,), test_folds=(10,)) -> Splits:
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
        raise ValueError(f"unknown PTB-XL label set {labels!r}")
    split = ptbxl.fold_split(metadata, train_folds, val_folds, test_folds)

    def arrays(ids):
        signals = ptbxl.load_signals(ptbxl_dir, metadata, ids, 500, leads=ptbxl.LEADS)
        x = np.stack([code.to_code_format(s, 500, ptbxl_dir) for s in signals])
        return x, targets.loc[ids].to_numpy()

    spec = InputSpec("code_exam", code.SAMPLING_RATE, code.LENGTH, list(ptbxl.LEADS), 12, normalisation="none")
    return Splits(arrays(split["train"]), arrays(split["val"]), arrays(split["test"]), spec, names,
                  {name: len(ids) for name, ids in split.items()})


@register_source("ptbxl_superclass")
def ptbxl_superclass(data_root=None, sampling_rate: int = 500, leads=("I", "II", "V1", "V2", "V3", "V4", "V5", "V6"),
                     classes=("MI", "STTC", "HYP", "NORM", "CD"), train_folds=range(1, 9), val_folds=(9,),
                     test_folds=(10,)) -> Splits:
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
                  {name: len(ids) for name, ids in split.items()})


@register_source("ptbxl_intervals")
def ptbxl_intervals(data_root=None, target: str = "HR", sampling_rate: int = 500,
                    leads=("I", "II", "V1", "V2", "V3", "V4", "V5", "V6"), train_folds=range(1, 9), val_folds=(9,),
                    test_folds=(10,)) -> Splits:
    """e18's interval regression on PTB-XL: the single-superclass records (as the original's
    PTB-XL+ set), 8 leads, per-lead min-max, one target (HR bpm; PR, QRS, QT ms) measured
    from the 500 Hz record by delineation (PTB-XL+ is not available offline); records that
    fail the quality check are dropped. Split by strat_fold."""
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
    return Splits(arrays(split["train"]), arrays(split["val"]), arrays(split["test"]), spec, [target], info)


@functools.lru_cache(maxsize=4)
def ptbxl_interval_table(ptbxl_dir: str, leads: tuple[str, ...]) -> pd.DataFrame:
    """HR, PR, QRS, QT and ok of every single-superclass PTB-XL record (500 Hz), indexed by
    ecg_id; cached per process so the four regressors of one run measure once."""
    ptbxl_dir = Path(ptbxl_dir)
    metadata = ptbxl.load_metadata(ptbxl_dir)
    ids = ptbxl.single_superclass_labels(metadata, ptbxl.load_scp_statements(ptbxl_dir)).index
    signals = ptbxl.load_signals(ptbxl_dir, metadata, ids, 500, leads=list(leads))
    return interval_table(signals, 500, rate_lead=list(leads).index("II"), index=ids, desc="PTB-XL delineation")


@register_source("kaggle_heartbeats")
def kaggle_heartbeats(data_root=None, csv_dir=None, val_fraction: float = 0.1, seed: int = 777,
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
    return Splits((x[fit_part], y[fit_part]), (x[val_part], y[val_part]), (test.beats[..., None], test.labels), spec,
                  list(mitbih.AAMI_CLASSES), {"origin": origin, "train": len(fit_part), "val": len(val_part),
                                              "test": len(test.labels)})
