"""MIT-BIH beats around annotated R peaks (systems 3 and 4, the MIT-BIH quickstart)."""

from __future__ import annotations

import numpy as np

from tf_ecg.data import mitbih
from tf_ecg.data.paths import dataset_dir
from tf_ecg.data.sources import Splits, random_split, register_source
from tf_ecg.data.spec import InputSpec, normalise
from tf_ecg.errors import ECGDataError, RecipeError


@register_source("mitbih_beats")
def mitbih_beats(data_root=None, before: int = 80, after: int = 80, split: str = "de_chazal",
                 val_fraction: float = 0.1, seed: int = 0, records: list | None = None) -> Splits:
    """Two-lead MIT-BIH beats around annotated R peaks, AAMI classes N, S, V, F, Q.

    ``split="de_chazal"``: inter-patient DS1 (train, with a seeded validation share of
    its beats) -> DS2 (test), paced records excluded.
    """
    if split != "de_chazal":
        raise RecipeError(None, f"data.split: unknown MIT-BIH split {split!r} (known: 'de_chazal')")
    if before < 0 or after < 0 or before + after < 1:
        raise RecipeError(None, f"data.before = {before}, data.after = {after}: need a window of at least one sample")
    mitdb_dir = dataset_dir("mitdb", data_root)
    wanted = set(records) if records else None
    available = set(mitbih.available_records(mitdb_dir))

    def load(record_ids, part: str):
        selected = [r for r in record_ids if r in available and (not wanted or r in wanted)]
        if not selected:
            raise ECGDataError(mitdb_dir, f"no MIT-BIH record of the {part} split is present or selected")
        beats = mitbih.beat_set(mitdb_dir, selected, before, after)
        ids = np.char.add(np.char.add(beats.records.astype(str), ":"), beats.samples.astype(str))  # record:R peak
        return normalise(beats.waves, "minmax_per_lead"), mitbih.aami_labels(beats.symbols), ids

    x_train, y_train, train_ids = load(mitbih.DS1, "training (DS1)")
    x_test, y_test, test_ids = load(mitbih.DS2, "test (DS2)")
    train_part, val_part = random_split(len(x_train), (1 - val_fraction, val_fraction), seed)
    spec = InputSpec("beat", mitbih.SAMPLING_RATE, before + after, None, 2, before=before, after=after,
                     lead_labels=list(mitbih.CHANNEL_LABELS))
    return Splits((x_train[train_part], y_train[train_part]), (x_train[val_part], y_train[val_part]),
                  (x_test, y_test), spec, list(mitbih.AAMI_CLASSES),
                  ids={"train": train_ids[train_part], "val": train_ids[val_part], "test": test_ids})
