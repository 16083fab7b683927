"""Scoring predictions stored as files against reference labels (Ribeiro's Table 2).

Predictions are a 0/1 CSV (like ``dnn.csv``) or sigmoid scores in a ``.npy`` (like
``dnn_predicts/model.npy``) thresholded per class: positive iff score > threshold.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tf_ecg.data.formats.code import CLASSES, read_labels
from tf_ecg.data.formats.recording import read_npy_array
from tf_ecg.errors import ECGDataError
from tf_ecg.evaluation.metrics import multilabel_report
from tf_ecg.models.ribeiro import TABLE2_THRESHOLDS


def parse_thresholds(text: str | None, count: int) -> list[float]:
    """'table2' (Ribeiro's), one value for all classes, or one comma-separated value per class."""
    if text is None:
        return [0.5] * count
    if text == "table2":
        return list(TABLE2_THRESHOLDS)
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise ECGDataError(None, f"--thresholds {text!r}: 'table2', one number, or {count} comma-separated numbers") from None
    if not all(0.0 <= v <= 1.0 for v in values):
        raise ECGDataError(None, f"--thresholds {text!r}: thresholds are probabilities in [0, 1]")
    if len(values) == 1:
        return values * count
    if len(values) != count:
        raise ECGDataError(None, f"--thresholds: {len(values)} thresholds for {count} classes")
    return values


def evaluate_label_files(labels: str | Path, predictions: str | Path, thresholds: str | None = None,
                         classes=CLASSES) -> dict:
    reference = read_labels(labels, classes)
    predictions = Path(predictions)
    if predictions.suffix == ".npy":
        scores = read_npy_array(predictions)
        if scores.dtype.kind not in "biuf":
            raise ECGDataError(predictions, f"array of {scores.dtype}, expected scores (numbers)")
        scores = scores.astype(float)
        if not np.isfinite(scores).all():
            raise ECGDataError(predictions, f"{int((~np.isfinite(scores)).sum())} NaN or infinite scores")
        if scores.size and (scores.min() < 0 or scores.max() > 1):
            raise ECGDataError(predictions, f"scores range over [{scores.min():.3g}, {scores.max():.3g}]; "
                                            f"expected sigmoid probabilities in [0, 1]")
        cuts = parse_thresholds(thresholds or "table2", len(classes))
    else:
        scores, cuts = read_labels(predictions, classes).astype(float), [0.5] * len(classes)
    if scores.shape != reference.shape:
        raise ECGDataError(predictions, f"shape {scores.shape}, the labels in {labels} have {reference.shape}")
    report = multilabel_report(reference, scores, list(classes), cuts)
    report.update(labels=str(labels), predictions=str(predictions))
    return report
