"""Figures people would rather look at than read: ECG strips, confusion matrices, ROC curves."""

from __future__ import annotations

import io

# No backend is forced: a Jupyter kernel shows the figures inline, a machine without a display
# falls back to Agg by itself (files and TensorBoard images need nothing more).
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve


# Figures go to TensorBoard, which shows a PNG at its own size in a card ~500 px wide:
# sizes and fonts are chosen for that (a figure 6-7 inches wide at 90 dpi, 11-13 pt text).
plt.rcParams.update({"font.size": 12, "axes.titlesize": 13, "axes.labelsize": 12, "legend.fontsize": 11})


def ecg_strip(signal: np.ndarray, sampling_rate: float, leads=None, title: str = "", units: str = "mV",
              attribution: np.ndarray | None = None):
    """One row per lead of a (samples, leads) signal, time in seconds, amplitude in ``units``;
    with ``attribution`` (the signal's shape), its magnitude as a red band behind each lead
    (one colour scale for all leads)."""
    signal = np.asarray(signal)
    count = signal.shape[1]
    figure, axes = plt.subplots(count, 1, figsize=(7, 0.75 * count + 1.4), sharex=True, squeeze=False)
    time = np.arange(len(signal)) / sampling_rate
    magnitude = None if attribution is None else np.abs(np.asarray(attribution, float))
    for i, axis in enumerate(axes[:, 0]):
        if magnitude is not None:
            low, high = float(signal[:, i].min()), float(signal[:, i].max())
            pad = 0.1 * (high - low) + 1e-6
            axis.imshow(magnitude[None, :, i], aspect="auto", cmap="Reds", vmin=0, vmax=magnitude.max() + 1e-12,
                        extent=(0, len(signal) / sampling_rate, low - pad, high + pad), alpha=0.7,
                        interpolation="nearest")
        axis.plot(time, signal[:, i], linewidth=0.8, color="black")
        axis.set_ylabel(leads[i] if leads else f"lead {i + 1}", rotation=0, ha="right", va="center", fontsize=12)
        axis.grid(True, color="#f4b6b6", linewidth=0.5)
        axis.tick_params(axis="y", labelsize=9)
        axis.locator_params(axis="y", nbins=2)
    axes[-1, 0].set_xlabel("time (s)")
    figure.suptitle(f"{title}\namplitude: {units}" if title else f"amplitude: {units}", fontsize=12)
    figure.tight_layout()
    return figure


def confusion_matrix_figure(matrix, class_names, title: str = "Confusion matrix (rows = true)"):
    """A matplotlib figure of a confusion matrix (rows: true class): counts, shaded by row share."""
    matrix = np.asarray(matrix)
    size = max(5.0, 1.2 + 0.9 * len(class_names))
    figure, axis = plt.subplots(figsize=(size, size))
    shown = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    axis.imshow(shown, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(matrix):
        axis.text(j, i, str(count), ha="center", va="center",
                  color="white" if shown[i, j] > 0.5 else "black", fontsize=13 if len(class_names) <= 8 else 9)
    axis.set_xticks(range(len(class_names)), class_names)
    axis.set_yticks(range(len(class_names)), class_names)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(title)
    figure.tight_layout()
    return figure


def roc_figure(y_true_one_hot, scores, class_names, title: str = "ROC (one vs rest)"):
    """One-vs-rest ROC curves with their AUC, from one-hot truths and per-class scores."""
    figure, axis = plt.subplots(figsize=(5.5, 5.5))
    y_true_one_hot, scores = np.asarray(y_true_one_hot), np.asarray(scores)
    for i, name in enumerate(class_names):
        if 0 < y_true_one_hot[:, i].sum() < len(y_true_one_hot):
            fpr, tpr, _ = roc_curve(y_true_one_hot[:, i], scores[:, i])
            area = roc_auc_score(y_true_one_hot[:, i], scores[:, i])
            axis.plot(fpr, tpr, label=f"{name} (AUC {area:.3f})")
    axis.plot([0, 1], [0, 1], "--", color="grey", linewidth=0.8)
    axis.set_xlabel("1 - specificity")
    axis.set_ylabel("sensitivity")
    axis.set_title(title)
    if axis.get_legend_handles_labels()[0]:  # a class needs both outcomes to have a curve
        axis.legend(loc="lower right", fontsize=10)
    figure.tight_layout()
    return figure


def reliability_figure(y_true_one_hot, probabilities, class_names, title: str = "reliability (15 bins)"):
    """Per class: observed frequency against mean predicted probability in each of the 15
    equal-width bins (the diagonal is perfect calibration), with the class's ECE."""
    from tf_ecg.evaluation.calibration import expected_calibration_error, reliability_bins

    figure, axis = plt.subplots(figsize=(5.5, 5.5))
    y_true_one_hot, probabilities = np.asarray(y_true_one_hot, float), np.asarray(probabilities, float)
    for i, name in enumerate(class_names):
        table = reliability_bins(probabilities[:, i], y_true_one_hot[:, i])
        filled = table["count"] > 0
        ece = expected_calibration_error(probabilities[:, i], y_true_one_hot[:, i])
        axis.plot(table["confidence"][filled], table["frequency"][filled], "o-", markersize=3,
                  label=f"{name} (ECE {ece:.3f})")
    axis.plot([0, 1], [0, 1], "--", color="grey", linewidth=0.8)
    axis.set_xlabel("mean predicted probability")
    axis.set_ylabel("observed frequency")
    axis.set_xlim(0, 1)
    axis.set_ylim(0, 1)
    axis.set_title(title)
    axis.legend(loc="upper left", fontsize=9)
    figure.tight_layout()
    return figure


TARGET_UNITS = {"HR": "bpm", "PR": "ms", "QRS": "ms", "QT": "ms"}


def regression_figure(y_true, y_pred, name: str):
    """Predicted against true values of one target (units from its name, e.g. bpm, ms), with
    the identity line."""
    y_true, y_pred = np.ravel(y_true), np.ravel(y_pred)
    unit = f" ({TARGET_UNITS[name]})" if name in TARGET_UNITS else ""
    figure, axis = plt.subplots(figsize=(5, 5))
    axis.scatter(y_true, y_pred, s=6, alpha=0.6)
    low, high = float(min(y_true.min(), y_pred.min())), float(max(y_true.max(), y_pred.max()))
    axis.plot([low, high], [low, high], "--", color="grey")
    axis.set_xlabel(f"true {name}{unit}")
    axis.set_ylabel(f"predicted {name}{unit}")
    axis.set_title(f"{name}: prediction vs truth")
    figure.tight_layout()
    return figure


def report_figures(report: dict, y_true, outputs) -> dict:
    """Named figures for an evaluation report (see tf_ecg.evaluation.metrics)."""
    if report["task"] == "regression":
        y_true = np.asarray(y_true).reshape(len(y_true), -1)
        outputs = np.asarray(outputs).reshape(y_true.shape)
        return {f"scatter_{name}": regression_figure(y_true[:, i], outputs[:, i], name)
                for i, name in enumerate(report["target_names"])}
    names = report["class_names"]
    if report["task"] == "binary":  # one sigmoid output: P(names[1])
        outputs = np.concatenate([1 - np.reshape(outputs, (-1, 1)), np.reshape(outputs, (-1, 1))], axis=1)
    if report["task"] in ("multiclass", "binary"):
        one_hot = np.eye(len(names))[np.asarray(y_true).reshape(-1).astype(int)]
        return {"confusion_matrix": confusion_matrix_figure(report["confusion_matrix"], names),
                "roc": roc_figure(one_hot, outputs, names), "reliability": reliability_figure(one_hot, outputs, names)}
    truth = np.asarray(y_true).reshape(len(y_true), -1)
    return {"roc": roc_figure(truth, outputs, names), "reliability": reliability_figure(truth, outputs, names)}


def figure_to_png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return buffer.getvalue()
