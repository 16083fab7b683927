import os
import subprocess
import sys

import numpy as np
import pytest

from tf_ecg.evaluation.metrics import multiclass_report, multilabel_report, regression_report


def test_multiclass_per_class_scores_and_confusion_orientation():
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 1, 2, 2])
    report = multiclass_report(y_true, np.eye(3)[y_pred], ["N", "S", "V"])
    assert report["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]  # rows = true
    assert report["accuracy"] == pytest.approx(4 / 6)
    s = report["per_class"]["S"]
    assert (s["precision"], s["recall"], s["specificity"]) == (0.5, 0.5, 0.75)
    assert s["f1"] == pytest.approx(0.5)
    assert report["macro_f1"] == pytest.approx(np.mean([0.8, 0.5, 2 / 3]))


def test_multilabel_threshold_is_strict():
    y_true = np.array([[1, 0], [0, 1], [1, 1]])
    scores = np.array([[0.5, 0.2], [0.1, 0.9], [0.7, 0.5]])
    report = multilabel_report(y_true, scores, ["a", "b"], thresholds=[0.5, 0.4])
    a, b = report["per_class"]["a"], report["per_class"]["b"]
    assert (a["tp"], a["fn"], a["fp"]) == (1, 1, 0)  # 0.5 is not > 0.5
    assert (b["tp"], b["fn"], b["fp"]) == (2, 0, 0)


def test_regression_report():
    report = regression_report(np.array([60, 70, 80]), np.array([62, 70, 77]), ["HR"])
    assert report["per_target"]["HR"]["mae"] == pytest.approx(5 / 3)
    assert report["per_target"]["HR"]["mae_of_mean_predictor"] == pytest.approx(20 / 3)


def test_loss_options_need_a_loss_class():
    from tf_ecg.config import TrainingConfig
    from tf_ecg.training.compiling import build_loss

    def training(loss):
        return TrainingConfig(task="multiclass", loss=loss, optimizer={"name": "adam"}, batch_size=8, epochs=1)

    loss = build_loss(training({"name": "SparseCategoricalCrossentropy", "from_logits": True}))
    assert loss.get_config()["from_logits"] is True
    with pytest.raises(ValueError, match="must name a keras.losses.Loss class"):
        build_loss(training({"name": "sparse_categorical_crossentropy", "from_logits": True}))


def test_aami_report_maps_symbols_and_gives_se_and_ppv():
    from tf_ecg.evaluation.metrics import aami_report

    true = ["N", "L", "A", "a", "V", "E", "F", "/", "N", "V"]
    predicted = ["N", "N", "A", "N", "V", "V", "V", "f", "V", "V"]
    report = aami_report(true, predicted)
    # S (SVEB): 2 true (A, a), 1 found, no false alarm; V (VEB): 3 true (V, E, V), all found, 2 false (F, N)
    assert report["se_ppv"]["S"] == {"Se": 0.5, "+P": 1.0}
    assert report["se_ppv"]["V"]["Se"] == 1.0 and report["se_ppv"]["V"]["+P"] == 3 / 5
    assert report["confusion_matrix"][0] == [2, 0, 1, 0, 0]  # true N: N, L -> N; N -> V
    assert report["accuracy"] == 0.7


def test_plots_leave_the_matplotlib_backend_to_the_user():
    """A notebook's inline backend (here: svg, chosen the same way, by MPLBACKEND) survives
    importing the plots, so plt.show() still draws the figures where the user works."""
    code = "import tf_ecg.evaluation.plots, matplotlib; print(matplotlib.get_backend())"
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "MPLBACKEND": "svg"}).stdout.split()
    assert shown[-1] == "svg"
