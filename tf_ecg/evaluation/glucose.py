"""Evaluation of the glucose study's models as the original does it, with correct metric names.

Glucose is the positive class: sensitivity = glucose recall, specificity = fast recall
(the original prints them swapped). A beat is glucose when p > 0.5 (``torch.round``
sends 0.5 to 0).

* Supervised, per recording: glucose iff at least half of its beats are.
* Comparator, per beat: compared with 50 fast and 50 glucose reference beats; "same"
  votes V_f and V_g (p <= 0.5); fast iff V_f > V_g (ties go to glucose).
* Comparator, per recording: beat k is compared only with fast reference k and glucose
  reference k; the same rule on the vote counts over the recording's pairs.
"""

from __future__ import annotations

import keras
import numpy as np

from tf_ecg.data.glucose import GlucoseBeats

BANK_DRAW, BANK_PER_CLASS = 200, 50


def _scores(name: str, labels: np.ndarray, predicted: np.ndarray) -> dict:
    labels, predicted = np.asarray(labels, int), np.asarray(predicted, int)
    glucose, fast = labels == 1, labels == 0
    return {f"{name}_accuracy": float((predicted == labels).mean()), f"{name}_correct": int((predicted == labels).sum()),
            f"{name}_total": int(len(labels)),
            f"{name}_sensitivity_glucose_recall": float((predicted[glucose] == 1).mean()) if glucose.any() else None,
            f"{name}_specificity_fast_recall": float((predicted[fast] == 0).mean()) if fast.any() else None}


def recording_labels(data: GlucoseBeats) -> tuple[np.ndarray, np.ndarray]:
    """(recording ids present, their labels)."""
    ids = np.unique(data.recording)
    return ids, data.recordings.loc[ids, "label"].to_numpy(int)


def evaluate_supervised(model: keras.Model, data: GlucoseBeats, batch_size: int = 256) -> dict:
    """The supervised network on a set of study beats: a beat is "glucose" above 0.5, a recording
    by majority of its beats. Returns beat and recording accuracy, recalls and counts."""
    p = model.predict(data.beats[..., None].astype("float32"), batch_size=batch_size, verbose=0)[:, 0]
    beat_predictions = (p > 0.5).astype(int)
    ids, labels = recording_labels(data)
    recording_predictions = np.array([int(beat_predictions[data.recording == i].sum()
                                          >= (data.recording == i).sum() / 2) for i in ids])
    return {**_scores("beat", data.labels, beat_predictions), **_scores("recording", labels, recording_predictions)}


def reference_bank(train: GlucoseBeats, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(50 fast, 50 glucose) beats from the first shuffled draw of 200 training beats."""
    return draw_reference_bank(train.beats, train.labels, seed)


def draw_reference_bank(beats: np.ndarray, labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`reference_bank` on arrays: beats (n, 384), labels (n,) 0 = fast, 1 = glucose."""
    labels = np.ravel(labels)
    draw = np.random.default_rng(seed).permutation(len(labels))[:BANK_DRAW]
    fast = draw[labels[draw] == 0][:BANK_PER_CLASS]
    glucose = draw[labels[draw] == 1][:BANK_PER_CLASS]
    if len(fast) < BANK_PER_CLASS or len(glucose) < BANK_PER_CLASS:
        raise ValueError("the draw of 200 training beats holds fewer than 50 beats of a class")
    return beats[fast], beats[glucose]


def _embed(encoder: keras.Model, beats: np.ndarray) -> np.ndarray:
    return encoder.predict(beats[..., None].astype("float32"), batch_size=512, verbose=0)


def _different(head: keras.Model, query: np.ndarray, reference: np.ndarray) -> np.ndarray:
    return head.predict([query, reference], batch_size=4096, verbose=0)[:, 0]


def bank_comparisons(comparator: keras.Model, beats: np.ndarray, bank: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """P(different) of every beat against every reference: (n, 2 classes, k references)."""
    encoder, head = comparator.get_layer("encoder"), comparator.get_layer("comparator_head")
    queries = _embed(encoder, beats)
    references = np.concatenate([_embed(encoder, bank[0]), _embed(encoder, bank[1])])
    n, k2 = len(queries), len(references)
    different = _different(head, np.repeat(queries, k2, axis=0), np.tile(references, (n, 1, 1)))
    return different.reshape(n, 2, k2 // 2)


def beat_decisions(different: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(0 = fast / 1 = glucose per beat, "same" votes (n, 2)): fast iff V_f > V_g."""
    votes = (different <= 0.5).sum(axis=2)
    return np.where(votes[:, 0] > votes[:, 1], 0, 1), votes


def recording_decision(different: np.ndarray) -> tuple[int, np.ndarray]:
    """(decision, "same" votes (2,)) of one recording's beats: beat j meets only reference j
    of each class (its first k beats)."""
    m = min(different.shape[0], different.shape[2])
    votes = (different[np.arange(m), :, np.arange(m)] <= 0.5).sum(axis=0)
    return (0 if votes[0] > votes[1] else 1), votes


def evaluate_comparator(comparator: keras.Model, data: GlucoseBeats, bank: tuple[np.ndarray, np.ndarray]) -> dict:
    """The comparator on a set of study beats: each beat is compared with the 50 + 50 beats
    of the reference ``bank`` (:func:`reference_bank`) and is "fast" when more fast than glucose
    references are judged the same; a recording votes with beat j against reference j.
    Returns beat and recording accuracy, recalls and counts."""
    different = bank_comparisons(comparator, data.beats, bank)
    beat_predictions, _ = beat_decisions(different)
    ids, labels = recording_labels(data)
    recording_predictions = np.array([recording_decision(different[data.recording == i])[0] for i in ids])
    return {**_scores("beat", data.labels, beat_predictions), **_scores("recording", labels, recording_predictions)}


def summarise(runs: list[dict]) -> dict:
    """Mean, standard deviation, minimum and maximum of every numeric score over runs."""
    keys = [k for k, v in runs[0].items() if isinstance(v, (int, float)) and v is not None]
    return {k: {"mean": float(np.mean([r[k] for r in runs])), "std": float(np.std([r[k] for r in runs])),
                "min": float(np.min([r[k] for r in runs])), "max": float(np.max([r[k] for r in runs]))}
            for k in keys}
