"""Metrics this field reports: per-class precision (+P), recall (Se), specificity, F1, AUC, MAE."""

from __future__ import annotations

import json
import math

import numpy as np
from sklearn.metrics import confusion_matrix, roc_auc_score

from tf_ecg.evaluation.calibration import multilabel_calibration, risk_coverage, single_label_calibration
from tf_ecg.data.mitbih import AAMI_CLASSES, aami_labels


def _safe_divide(numerator, denominator):
    numerator, denominator = np.asarray(numerator, float), np.asarray(denominator, float)
    return np.divide(numerator, denominator, out=np.full_like(numerator, np.nan), where=denominator > 0)


def binary_counts(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, np.ndarray]:
    """TN, FP, FN, TP per column of 0/1 matrices (n, classes)."""
    y_true, y_pred = np.asarray(y_true).astype(bool), np.asarray(y_pred).astype(bool)
    return {"tn": (~y_true & ~y_pred).sum(0), "fp": (~y_true & y_pred).sum(0),
            "fn": (y_true & ~y_pred).sum(0), "tp": (y_true & y_pred).sum(0)}


def per_class_scores(counts: dict[str, np.ndarray], class_names) -> dict[str, dict[str, float]]:
    tp, fp, fn, tn = (counts[k].astype(float) for k in ("tp", "fp", "fn", "tn"))
    precision, recall = _safe_divide(tp, tp + fp), _safe_divide(tp, tp + fn)
    specificity = _safe_divide(tn, tn + fp)
    f1 = _safe_divide(2 * tp, 2 * tp + fp + fn)
    return {name: {"precision": float(precision[i]), "recall": float(recall[i]),
                   "specificity": float(specificity[i]), "f1": float(f1[i]),
                   "support": int(tp[i] + fn[i]),
                   "tn": int(tn[i]), "fp": int(fp[i]), "fn": int(fn[i]), "tp": int(tp[i])}
            for i, name in enumerate(class_names)}


def _macro(per_class: dict, key: str) -> float:
    """Mean over the classes present in the reference (absent classes have no recall)."""
    values = [v[key] for v in per_class.values() if v["support"] > 0 and not np.isnan(v[key])]
    return float(np.mean(values)) if values else float("nan")


def label_report(y_true: np.ndarray, y_pred: np.ndarray, class_names) -> dict:
    """Single-label classification from predicted class indices: accuracy, per-class
    precision (+P) / recall (Se) / specificity / F1, macro over the classes present,
    confusion matrix (rows = true)."""
    y_true = np.asarray(y_true).reshape(-1).astype(int)
    y_pred = np.asarray(y_pred).reshape(-1).astype(int)
    classes = list(range(len(class_names)))
    per_class = per_class_scores(binary_counts(np.eye(len(classes))[y_true], np.eye(len(classes))[y_pred]),
                                 class_names)
    return {"task": "multiclass", "n": int(len(y_true)), "accuracy": float((y_pred == y_true).mean()),
            "macro_f1": _macro(per_class, "f1"), "macro_recall": _macro(per_class, "recall"),
            "per_class": per_class, "class_names": list(class_names),
            "confusion_matrix": confusion_matrix(y_true, y_pred, labels=classes).tolist(),
            "confusion_matrix_orientation": "rows = true class, columns = predicted class"}


def one_vs_rest_aucs(y_true: np.ndarray, probabilities: np.ndarray, class_names) -> dict[str, float]:
    """Per class present (and not alone) in y_true, the AUC of its probability column against
    the rest; the mean of these is the macro AUC."""
    aucs = {}
    for i, name in enumerate(class_names):
        positives = (y_true == i).sum()
        if 0 < positives < len(y_true):
            aucs[name] = float(roc_auc_score(y_true == i, probabilities[:, i]))
    return aucs


def multiclass_report(y_true: np.ndarray, probabilities: np.ndarray, class_names) -> dict:
    """Single-label classification: y_true class indices, probabilities (n, classes);
    :func:`label_report` of the argmax plus one-vs-rest AUCs."""
    y_true = np.asarray(y_true).reshape(-1).astype(int)
    probabilities = np.asarray(probabilities, dtype=float)
    report = label_report(y_true, probabilities.argmax(axis=1), class_names)
    aucs = one_vs_rest_aucs(y_true, probabilities, class_names)
    for name, auc in aucs.items():
        report["per_class"][name]["auc"] = auc
    report["macro_auc"] = float(np.mean(list(aucs.values()))) if aucs else float("nan")
    report["calibration"] = single_label_calibration(y_true, probabilities, class_names)
    # the top probability of two complementary columns is max(p, 1 - p): also right for one sigmoid
    report["risk_coverage"] = risk_coverage(probabilities.max(axis=1), probabilities.argmax(axis=1) == y_true)
    return report


def aami_report(true_symbols, predicted_symbols) -> dict:
    """Beat-symbol predictions scored in the AAMI classes N, S (SVEB), V (VEB), F, Q, the
    way MIT-BIH results are published: per-class Se (recall) and +P (precision)."""
    report = label_report(aami_labels(true_symbols), aami_labels(predicted_symbols), AAMI_CLASSES)
    report["se_ppv"] = {name: {"Se": scores["recall"], "+P": scores["precision"]}
                        for name, scores in report["per_class"].items()}
    return report


def multilabel_report(y_true: np.ndarray, scores: np.ndarray, class_names, thresholds=0.5) -> dict:
    """Independent sigmoid outputs: positive where score > threshold (strictly, as Ribeiro)."""
    y_true = np.asarray(y_true).reshape(len(y_true), -1).astype(int)
    scores = np.asarray(scores, dtype=float).reshape(y_true.shape)
    y_pred = scores > np.broadcast_to(np.asarray(thresholds, dtype=float), (y_true.shape[1],))
    per_class = per_class_scores(binary_counts(y_true, y_pred), class_names)
    for i, name in enumerate(class_names):
        if 0 < y_true[:, i].sum() < len(y_true):
            per_class[name]["auc"] = float(roc_auc_score(y_true[:, i], scores[:, i]))
    aucs = [v["auc"] for v in per_class.values() if "auc" in v]
    return {"task": "multilabel", "n": int(len(y_true)), "thresholds": np.broadcast_to(
                np.asarray(thresholds, dtype=float), (y_true.shape[1],)).tolist(),
            "accuracy": float((y_pred == y_true.astype(bool)).mean()),
            "macro_f1": _macro(per_class, "f1"),
            "macro_auc": float(np.mean(aucs)) if aucs else float("nan"),
            "per_class": per_class, "class_names": list(class_names),
            "calibration": multilabel_calibration(y_true, scores, class_names)}


def regression_report(y_true: np.ndarray, y_pred: np.ndarray, target_names) -> dict:
    y_true = np.asarray(y_true, float).reshape(len(y_true), -1)
    y_pred = np.asarray(y_pred, float).reshape(y_true.shape)
    error = y_pred - y_true
    per_target = {}
    for i, name in enumerate(target_names):
        variance = ((y_true[:, i] - y_true[:, i].mean()) ** 2).sum()
        per_target[name] = {
            "mae": float(np.abs(error[:, i]).mean()), "rmse": float(np.sqrt((error[:, i] ** 2).mean())),
            "r2": float(1 - (error[:, i] ** 2).sum() / variance) if variance > 0 else float("nan"),
            "mae_of_mean_predictor": float(np.abs(y_true[:, i] - y_true[:, i].mean()).mean())}
    return {"task": "regression", "n": int(len(y_true)), "mae": float(np.abs(error).mean()),
            "per_target": per_target, "target_names": list(target_names)}


def evaluation_report(task: str, y_true, outputs, names, thresholds=0.5) -> dict:
    """Dispatch on the recipe's task; ``outputs`` are probabilities (classification) or values."""
    if task == "regression":
        return regression_report(y_true, outputs, names)
    if task == "multiclass":
        return multiclass_report(y_true, outputs, names)
    if task == "binary":
        return binary_report(y_true, outputs, names)
    return multilabel_report(y_true, outputs, names, thresholds)


def binary_report(y_true, probabilities, class_names) -> dict:
    """One sigmoid output = P(class_names[1]); positive iff p > 0.5 (0.5 rounds to negative,
    as torch.round does). Reported per class like a two-class problem."""
    p = np.asarray(probabilities, dtype=float).reshape(-1, 1)
    report = multiclass_report(y_true, np.concatenate([1 - p, p], axis=1), class_names)
    report["task"] = "binary"
    return report


def _finite_or_none(value):
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.ndarray):
        return _finite_or_none(value.tolist())
    return value


def strict_json(report) -> str:
    """JSON that every parser reads: NaN and infinities (an undefined precision, an AUC of
    a class without positives) become null."""
    return json.dumps(_finite_or_none(report), indent=2, allow_nan=False)
