"""CODE-15% (Ribeiro et al.'s public 15 % of CODE, Zenodo 10.5281/zenodo.4916206).

``exams.csv`` (one row per exam: exam_id, patient_id, the six labels, ...) plus
``exams_part0.hdf5`` ... ``exams_part17.hdf5``, each holding ``tracings`` (N, 4096, 12)
float32 (400 Hz, mV, leads DI ... V6) and ``exam_id`` (N,) in the same order. A part's rows
are not in ``exams.csv``'s order, its last row is zero padding (exam_id 0) and some
tracings are all zeros: exams are joined by exam_id, never by position, and rows that
match no exam or hold no signal are skipped and counted. The label columns come in the
order 1dAVb, RBBB, LBBB, SB, ST, AF and are taken by name into the paper's order
(:data:`tf_ecg.data.formats.code.CLASSES`).

Splits are by patient (all exams of a patient in one split), drawn with a seed; see
docs/deviations.md for why this differs from the original's last-2 %-of-the-file rule.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np
import pandas as pd

from tf_ecg.data.formats.code import CLASSES, LEADS, LENGTH, SAMPLING_RATE, open_tracings
from tf_ecg.data.spec import InputSpec
from tf_ecg.errors import ECGDataError

EXAMS_CSV = "exams.csv"
PART = re.compile(r"exams_part(\d+)\.hdf5$")
BLOCK = 256  # exams read from a part at once (~50 MB)

CODE15_SPEC = InputSpec(kind="code_exam", sampling_rate=SAMPLING_RATE, length=LENGTH, leads=list(LEADS),
                        num_leads=len(LEADS), normalisation="none", units="mV")


def read_exams(directory: str | Path) -> pd.DataFrame:
    """``exams.csv`` indexed by exam_id: patient_id and the six labels (0/1, paper's order)."""
    path = Path(directory) / EXAMS_CSV
    if not path.is_file():
        raise ECGDataError(path, "file not found (CODE-15%: exams.csv beside exams_part*.hdf5)")
    try:
        table = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as error:
        raise ECGDataError(path, f"not a readable CSV ({error})") from None
    missing = [c for c in ("exam_id", "patient_id", *CLASSES) if c not in table.columns]
    if missing:
        raise ECGDataError(path, f"missing column(s) {missing} (has {list(table.columns)})")
    if table["exam_id"].duplicated().any():
        raise ECGDataError(path, f"exam_id {table['exam_id'][table['exam_id'].duplicated()].iloc[0]} appears twice")
    labels = table[list(CLASSES)].replace({"True": 1, "False": 0}).astype(np.float32)
    if not labels.isin((0.0, 1.0)).all().all():
        raise ECGDataError(path, "label columns must hold 0/1 or True/False")
    return pd.concat([table[["exam_id", "patient_id"]], labels], axis=1).set_index("exam_id")


def part_files(directory: str | Path) -> list[Path]:
    """The ``exams_part<N>.hdf5`` files, by part number."""
    parts = sorted((p for p in Path(directory).iterdir() if PART.search(p.name)),
                   key=lambda p: int(PART.search(p.name).group(1)))
    if not parts:
        raise ECGDataError(directory, "no exams_part*.hdf5 files (CODE-15% layout)")
    return parts


def patient_splits(patients: pd.Series, val_fraction: float, test_fraction: float, seed: int) -> pd.Series:
    """exam_id -> "train" / "val" / "test": patients drawn in a seeded order, the first
    ``test_fraction`` of them for test, the next ``val_fraction`` for validation."""
    unique = np.sort(patients.unique())
    order = np.random.default_rng(seed).permutation(len(unique))
    n_test, n_val = int(round(test_fraction * len(unique))), int(round(val_fraction * len(unique)))
    split_of = np.full(len(unique), "train", dtype=object)
    split_of[order[:n_test]] = "test"
    split_of[order[n_test:n_test + n_val]] = "val"
    return pd.Series(split_of[np.searchsorted(unique, patients.to_numpy())], index=patients.index)


def code15_examples(directory: str | Path, val_fraction: float = 0.02, test_fraction: float = 0.02,
                    seed: int = 0, skipped: dict | None = None) -> Iterator[tuple[str, np.ndarray, np.ndarray, int]]:
    """(split, tracing (4096, 12) mV, labels (6,), exam_id) for every exam with a signal,
    part by part, ``BLOCK`` exams at a time (memory does not grow with the data set).
    ``skipped`` (a dict) receives the counts of rows left out and why."""
    exams = read_exams(directory)
    splits = patient_splits(exams["patient_id"], val_fraction, test_fraction, seed)
    labels = exams[list(CLASSES)].to_numpy()
    skipped = {} if skipped is None else skipped
    skipped.update(padding=0, not_in_exams_csv=0, no_signal=0)
    for part in part_files(directory):
        with _open_part(part) as (tracings, exam_ids):
            for start in range(0, len(exam_ids), BLOCK):
                block, ids = tracings[start:start + BLOCK], exam_ids[start:start + BLOCK]
                rows = exams.index.get_indexer(ids)
                broken = np.flatnonzero(np.isnan(block).any(axis=(1, 2)) & (rows >= 0))
                if len(broken):
                    raise ECGDataError(part, f"exam_id {ids[broken[0]]} (row {start + broken[0]}) holds NaN")
                has_signal = np.abs(block).max(axis=(1, 2)) > 0
                padding = (ids == 0) & ~has_signal
                skipped["padding"] += int(padding.sum())
                skipped["not_in_exams_csv"] += int(((rows < 0) & ~padding).sum())
                skipped["no_signal"] += int(((rows >= 0) & ~has_signal).sum())
                for i in np.flatnonzero((rows >= 0) & has_signal):
                    yield splits.iloc[rows[i]], block[i], labels[rows[i]], int(ids[i])


@contextlib.contextmanager
def _open_part(path: Path):
    """``with _open_part(path) as (tracings, exam_ids)``: a part's datasets, checked."""
    handle, tracings = open_tracings(path, "tracings", length=LENGTH)
    try:
        if "exam_id" not in handle or handle["exam_id"].shape != (len(tracings),):
            raise ECGDataError(path, f"no exam_id dataset of shape ({len(tracings)},) beside the tracings")
        yield tracings, handle["exam_id"][:]
    finally:
        handle.close()


def write_code15_layout(directory: str | Path, exams: int, parts: int = 2, seed: int = 0) -> Path:
    """A synthetic data set in the CODE-15% layout (for tests and benchmarks of the reader at
    any size): ``exams`` exams over ``parts`` files, rows shuffled against exams.csv, a
    zero-padding row per part, about 1 % all-zero tracings, ~1.5 exams per patient, and the
    CSV's label order. Signals are noise plus a QRS-like spike train, in mV."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    exam_ids = rng.choice(np.arange(1, 10 * exams + 1), exams, replace=False)
    csv_order = ("1dAVb", "RBBB", "LBBB", "SB", "ST", "AF")
    labels = rng.random((exams, 6)) < 0.05
    table = pd.DataFrame({"exam_id": exam_ids, "age": rng.integers(18, 90, exams),
                          "patient_id": rng.integers(0, int(exams / 1.5) + 1, exams),
                          **{name: labels[:, i] for i, name in enumerate(csv_order)},
                          "trace_file": [f"exams_part{i % parts}.hdf5" for i in range(exams)]})
    table.to_csv(directory / EXAMS_CSV, index=False)
    beat = np.zeros(LENGTH, np.float32)
    beat[::300] = 1.0
    for part in range(parts):
        members = rng.permutation(np.flatnonzero(np.arange(exams) % parts == part))
        with h5py.File(directory / f"exams_part{part}.hdf5", "w") as handle:
            tracings = handle.create_dataset("tracings", (len(members) + 1, LENGTH, len(LEADS)), dtype="float32",
                                             chunks=(1, LENGTH, len(LEADS)))
            for start in range(0, len(members), BLOCK):
                block = rng.normal(scale=0.05, size=(min(BLOCK, len(members) - start), LENGTH, len(LEADS)))
                block += beat[None, :, None] * rng.uniform(0.5, 2.0, (len(block), 1, len(LEADS)))
                block[rng.random(len(block)) < 0.01] = 0.0
                tracings[start:start + len(block)] = block.astype(np.float32)
            handle.create_dataset("exam_id", data=np.append(exam_ids[members], 0))
    return directory
