"""How far predicted probabilities are from observed frequencies, and how to bring them closer.

Expected calibration error (ECE), as reported by tf_ecg: predictions are sorted into 15
equal-width bins of [0, 1] by their confidence; ECE is the sum over bins of (bin size / n) x
|observed frequency in the bin - mean confidence in the bin|. For single-label classification
(softmax, or one sigmoid read as two classes) the confidence is the top probability and the
frequency that of correct top predictions ("top-label" ECE); per class, and for multi-label
outputs, each class's probability is compared with that class being present ("classwise" ECE).
The Brier score is the mean squared difference between the probabilities and the one-hot (or
0/1 multi-label) truth, summed over classes for single-label outputs.

Temperature scaling (Guo et al. 2017) divides the logits by one temperature T (softmax) or by
one per output (independent sigmoids), fitted by minimising the negative log-likelihood on a
validation split; it never changes an argmax.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import expit, log_softmax, softmax

ECE_BINS = 15
DEFINITION = ("ECE: 15 equal-width confidence bins on [0, 1], sum of (bin size / n) x |observed frequency - "
              "mean confidence|; top-label for single-label outputs, classwise per class. Brier: mean squared "
              "difference between probabilities and the 0/1 truth (summed over classes for single-label outputs).")


def reliability_bins(confidence: np.ndarray, observed: np.ndarray, bins: int = ECE_BINS) -> dict:
    """Per equal-width bin of ``confidence``: count, mean confidence, observed frequency."""
    confidence, observed = np.asarray(confidence, float).ravel(), np.asarray(observed, float).ravel()
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    counts = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(index, confidence, bins) / counts
        frequency = np.bincount(index, observed, bins) / counts
    return {"edges": np.linspace(0, 1, bins + 1), "count": counts, "confidence": mean_confidence,
            "frequency": frequency}


def expected_calibration_error(confidence: np.ndarray, observed: np.ndarray, bins: int = ECE_BINS) -> float:
    table = reliability_bins(confidence, observed, bins)
    filled = table["count"] > 0
    gaps = np.abs(table["frequency"][filled] - table["confidence"][filled])
    return float((table["count"][filled] * gaps).sum() / table["count"].sum())


def single_label_calibration(y_true: np.ndarray, probabilities: np.ndarray, class_names) -> dict:
    """Top-label and classwise ECE and the Brier score of softmax-like outputs (n, classes)."""
    y_true = np.asarray(y_true).reshape(-1).astype(int)
    probabilities = np.asarray(probabilities, float)
    one_hot = np.eye(probabilities.shape[1])[y_true]
    return {"ece": expected_calibration_error(probabilities.max(axis=1), probabilities.argmax(axis=1) == y_true),
            "ece_per_class": {name: expected_calibration_error(probabilities[:, i], one_hot[:, i])
                              for i, name in enumerate(class_names)},
            "brier": float(((probabilities - one_hot) ** 2).sum(axis=1).mean()),
            "definition": DEFINITION}


def multilabel_calibration(y_true: np.ndarray, scores: np.ndarray, class_names) -> dict:
    """Classwise ECE (and its mean) and the Brier score of independent sigmoid outputs."""
    y_true = np.asarray(y_true, float).reshape(len(y_true), -1)
    scores = np.asarray(scores, float).reshape(y_true.shape)
    per_class = {name: expected_calibration_error(scores[:, i], y_true[:, i]) for i, name in enumerate(class_names)}
    return {"ece": float(np.mean(list(per_class.values()))), "ece_per_class": per_class,
            "brier": float(((scores - y_true) ** 2).mean()), "definition": DEFINITION}


def fit_temperature(logits: np.ndarray, y_true: np.ndarray, kind: str = "softmax") -> np.ndarray:
    """Temperatures minimising the validation negative log-likelihood: one for ``softmax``
    logits (n, classes) and integer labels; one per output for ``sigmoid`` logits and 0/1
    labels of the same shape. Searched over log T in [-3, 3] (T from 0.05 to 20)."""
    logits = np.asarray(logits, float)
    if kind == "softmax":
        labels = np.asarray(y_true).reshape(-1).astype(int)

        def nll(log_t):
            return -log_softmax(logits / np.exp(log_t), axis=1)[np.arange(len(labels)), labels].mean()

        return np.array([np.exp(minimize_scalar(nll, bounds=(-3, 3), method="bounded").x)])
    labels = np.asarray(y_true, float).reshape(logits.shape)
    temperatures = []
    for column in range(logits.shape[1]):
        z, y = logits[:, column], labels[:, column]

        def nll(log_t, z=z, y=y):
            p = np.clip(expit(z / np.exp(log_t)), 1e-12, 1 - 1e-12)
            return -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean()

        temperatures.append(np.exp(minimize_scalar(nll, bounds=(-3, 3), method="bounded").x))
    return np.array(temperatures)


def apply_temperature(logits: np.ndarray, temperature: np.ndarray, kind: str = "softmax") -> np.ndarray:
    """Calibrated probabilities from logits and :func:`fit_temperature`'s result."""
    scaled = np.asarray(logits, float) / np.asarray(temperature, float)
    return softmax(scaled, axis=1) if kind == "softmax" else expit(scaled)


# ------------------------------------------------- what an export carries: temperature, interval, abstention

INTERVAL_LEVEL = 0.9
COVERAGE_STEPS = np.round(np.arange(1.0, 0.0, -0.05), 2)  # kept share of windows: 100 %, 95 %, ... 5 %


def to_logits(raw: np.ndarray, outputs: str, task: str) -> np.ndarray:
    """A classifier's raw outputs as logits: as they are, or recovered from probabilities
    (log p for a softmax, log(p / (1 - p)) for sigmoids)."""
    raw = np.asarray(raw, float)
    if outputs == "logits":
        return raw
    p = np.clip(raw, 1e-7, 1 - 1e-7)
    return np.log(p) if task == "multiclass" else np.log(p / (1 - p))


def classification_confidence(probabilities: np.ndarray, task: str) -> np.ndarray:
    """The probability of the predicted class: the top softmax output, or max(p, 1 - p) of one sigmoid."""
    probabilities = np.asarray(probabilities, float)
    if task == "binary":
        p = probabilities.reshape(-1)
        return np.maximum(p, 1 - p)
    return probabilities.max(axis=1)


def risk_coverage(confidence: np.ndarray, correct: np.ndarray) -> dict:
    """Accuracy when only the most confident windows are kept: for each kept share (coverage,
    100 % down to 5 %), the accuracy of the kept windows and the confidence they reach."""
    order = np.argsort(-np.asarray(confidence, float), kind="stable")
    confidence, correct = np.asarray(confidence, float)[order], np.asarray(correct, float)[order]
    kept = np.maximum(1, np.ceil(COVERAGE_STEPS * len(order)).astype(int))
    return {"coverage": COVERAGE_STEPS.tolist(), "accuracy": [float(correct[:k].mean()) for k in kept],
            "threshold": [float(confidence[k - 1]) for k in kept], "n": int(len(order))}


def confidence_threshold(table: dict, target_accuracy: float) -> float:
    """The lowest confidence at which the windows kept reached ``target_accuracy`` on validation
    (the largest coverage that did); above 1 when no coverage did (every window is flagged)."""
    reached = [t for a, t in zip(table["accuracy"], table["threshold"]) if a >= target_accuracy]
    return min(reached) if reached else float("inf")


def conformal_half_width(residuals: np.ndarray, level: float = INTERVAL_LEVEL) -> np.ndarray:
    """Split-conformal half-widths, one per target, from validation residuals |y - y_hat|
    (n, targets): the ceil((n + 1) level)-th smallest, so that value +- half-width covers a
    new exchangeable example with probability >= level (infinite when n is too small)."""
    residuals = np.sort(np.abs(np.asarray(residuals, float)).reshape(len(residuals), -1), axis=0)
    rank = int(np.ceil((len(residuals) + 1) * level))
    if rank > len(residuals):
        return np.full(residuals.shape[1], np.inf)
    return residuals[rank - 1]


def interval_coverage(y_true: np.ndarray, values: np.ndarray, half_width: np.ndarray) -> dict:
    """Empirical coverage and mean width of value +- half-width, per target."""
    y_true = np.asarray(y_true, float).reshape(len(y_true), -1)
    values = np.asarray(values, float).reshape(y_true.shape)
    covered = np.abs(y_true - values) <= np.asarray(half_width, float)
    return {"coverage": covered.mean(axis=0).tolist(), "mean_width": (2 * np.asarray(half_width, float)).tolist()}


def fit_calibration(task: str, outputs: str, raw: np.ndarray, labels: np.ndarray, names, level: float = INTERVAL_LEVEL) -> dict:
    """What an export carries, fitted on validation outputs: temperature scaling and the
    risk-coverage table (classifiers), or a split-conformal interval (regression)."""
    labels = np.asarray(labels)
    if task == "regression":
        half_width = conformal_half_width(labels.reshape(len(labels), -1) - np.asarray(raw, float).reshape(len(labels), -1),
                                          level)
        return {"method": "split conformal", "level": level, "half_width": dict(zip(names, half_width.tolist())),
                "fitted_on": f"validation split ({len(labels)} examples)"}
    kind = "softmax" if task == "multiclass" else "sigmoid"
    logits = to_logits(raw, outputs, task)
    temperature = fit_temperature(logits, labels, kind)
    report = {"method": "temperature scaling", "temperature": temperature.tolist(),
              "fitted_on": f"validation split ({len(labels)} examples)", "definition": DEFINITION}
    for when, t in (("before", np.ones_like(temperature)), ("after", temperature)):
        probabilities = apply_temperature(logits, t, kind)
        scores = calibration_scores(task, labels, probabilities, names)
        report[f"val_ece_{when}"], report[f"val_brier_{when}"] = scores["ece"], scores["brier"]
    if task in ("multiclass", "binary"):
        probabilities = apply_temperature(logits, temperature, kind)
        report["risk_coverage"] = risk_coverage(classification_confidence(probabilities, task),
                                                predicted_classes(probabilities, task) == labels.reshape(-1))
    return report


def predicted_classes(probabilities: np.ndarray, task: str) -> np.ndarray:
    probabilities = np.asarray(probabilities, float)
    return (probabilities.reshape(-1) > 0.5).astype(int) if task == "binary" else probabilities.argmax(axis=1)


def calibration_scores(task: str, labels: np.ndarray, probabilities: np.ndarray, names) -> dict:
    """ECE and Brier by task: one sigmoid is read as two classes."""
    if task == "binary":
        p = np.asarray(probabilities, float).reshape(-1, 1)
        return single_label_calibration(labels, np.concatenate([1 - p, p], axis=1), names)
    if task == "multiclass":
        return single_label_calibration(labels, probabilities, names)
    return multilabel_calibration(labels, probabilities, names)
