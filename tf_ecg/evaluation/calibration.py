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
