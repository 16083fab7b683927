"""Calibration: ECE (15 equal-width bins) and Brier by hand and on tasks of known calibration;
temperature scaling recovers a known over-confidence and never changes an argmax."""

import numpy as np
import pytest
from scipy.special import softmax

from tf_ecg.evaluation.calibration import (apply_temperature, confidence_threshold, conformal_half_width,
                                           expected_calibration_error, fit_calibration, fit_temperature,
                                           interval_coverage, risk_coverage, single_label_calibration, to_logits)
from tf_ecg.evaluation.metrics import evaluation_report

RNG = np.random.default_rng(7)


def test_ece_by_hand():
    # bin 0: one prediction at 0.05, wrong (gap 0.05); bin 14: two at 0.95, one right (gap 0.45)
    assert expected_calibration_error([0.05, 0.95, 0.95], [0, 1, 0]) == pytest.approx((0.05 + 2 * 0.45) / 3)
    assert expected_calibration_error([1.0, 1.0], [1, 1]) == 0.0  # 1.0 falls in the last bin


def test_ece_is_near_zero_when_calibrated_and_large_when_not():
    p = RNG.uniform(size=200_000)
    calibrated = RNG.uniform(size=p.size) < p
    assert expected_calibration_error(p, calibrated) < 0.01
    overconfident = RNG.uniform(size=p.size) < 0.5 + (p - 0.5) * 0.4  # true frequency pulled to 0.5
    assert expected_calibration_error(p, overconfident) > 0.1


def test_reports_carry_ece_and_brier():
    y = np.array([0, 1, 2, 1])
    probabilities = np.eye(3)[y] * 0.7 + 0.1  # right, with confidence 0.8
    report = evaluation_report("multiclass", y, probabilities, ["a", "b", "c"])
    assert report["calibration"]["ece"] == pytest.approx(0.2)
    assert report["calibration"]["brier"] == pytest.approx(0.2 ** 2 + 2 * 0.1 ** 2)
    binary = evaluation_report("binary", np.array([0, 1]), np.array([0.2, 0.9]), ["n", "y"])
    assert binary["calibration"]["ece"] == pytest.approx(np.mean([0.2, 0.1]))
    multilabel = evaluation_report("multilabel", np.array([[1, 0], [0, 0]]), np.array([[0.9, 0.2], [0.1, 0.3]]), ["a", "b"])
    assert multilabel["calibration"]["ece_per_class"]["b"] == pytest.approx(0.25)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_temperature_scaling_recovers_overconfidence_and_keeps_the_argmax(seed):
    rng = np.random.default_rng(seed)
    true_logits = rng.normal(size=(20_000, 5)) * 1.5
    labels = np.array([rng.choice(5, p=row) for row in softmax(true_logits, axis=1)])
    logits = 3.0 * true_logits  # a network three times too sure
    temperature = fit_temperature(logits[:10_000], labels[:10_000])
    assert temperature[0] == pytest.approx(3.0, rel=0.1)
    before = softmax(logits[10_000:], axis=1)
    after = apply_temperature(logits[10_000:], temperature)
    np.testing.assert_array_equal(after.argmax(axis=1), before.argmax(axis=1))
    ece = lambda p: single_label_calibration(labels[10_000:], p, list("abcde"))["ece"]  # noqa: E731
    assert ece(after) < 0.02 < ece(before)


def test_one_temperature_per_sigmoid_output():
    true_logits = RNG.normal(size=(20_000, 2)) * 2
    labels = (RNG.uniform(size=true_logits.shape) < 1 / (1 + np.exp(-true_logits))).astype(float)
    temperature = fit_temperature(true_logits * np.array([2.0, 0.5]), labels, kind="sigmoid")
    np.testing.assert_allclose(temperature, [2.0, 0.5], rtol=0.1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_split_conformal_interval_covers_as_promised_on_known_noise(seed):
    """y = f(x) + N(0, 3): a predictor that knows f; the 90 % interval fitted on 1,000
    validation examples covers 90 % of 50,000 new ones (its half-width near 1.645 x 3)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 10, size=51_000)
    y = np.sin(x) * 20 + rng.normal(0, 3, size=x.size)
    predicted = np.sin(x) * 20
    calibration = fit_calibration("regression", "values", predicted[:1000, None], y[:1000, None], ["y"])
    half_width = calibration["half_width"]["y"]
    assert half_width == pytest.approx(1.645 * 3, rel=0.12)
    coverage = interval_coverage(y[1000:], predicted[1000:], [half_width])["coverage"][0]
    assert abs(coverage - 0.9) < 0.03
    assert conformal_half_width(np.ones((5, 1)), 0.9)[0] == np.inf  # 5 examples cannot promise 90 %


def test_risk_coverage_and_the_confidence_threshold_for_a_target_accuracy():
    confidence = np.array([0.99, 0.95, 0.9, 0.8, 0.7, 0.6, 0.55, 0.5, 0.45, 0.4])
    correct = np.array([1, 1, 1, 1, 0, 1, 0, 0, 1, 0])
    table = risk_coverage(confidence, correct)
    assert table["coverage"][0] == 1.0 and table["accuracy"][0] == 0.6
    assert table["accuracy"][table["coverage"].index(0.4)] == 1.0 and table["threshold"][table["coverage"].index(0.4)] == 0.8
    assert confidence_threshold(table, 1.0) == 0.8  # the four most confident are all right
    assert confidence_threshold(table, 0.6) == 0.4 and confidence_threshold(table, 1.01) == np.inf
    report = evaluation_report("multiclass", np.array([0, 1, 1]), np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]]), ["a", "b"])
    assert report["risk_coverage"]["accuracy"][0] == pytest.approx(2 / 3) and report["risk_coverage"]["accuracy"][-1] == 1.0


@pytest.mark.parametrize("task, outputs", [("multiclass", "logits"), ("multiclass", "probabilities"),
                                           ("multilabel", "logits"), ("binary", "probabilities")])
def test_the_served_temperature_layer_equals_the_fitted_calibration_and_keeps_decisions(task, outputs):
    import keras

    from tf_ecg.serving import TemperatureScaling

    rng = np.random.default_rng(3)
    width = 1 if task == "binary" else 4
    logits = rng.normal(size=(3000, width)) * 4
    if task == "multiclass":
        labels = np.array([rng.choice(width, p=row) for row in softmax(logits / 4, axis=1)])
        raw = logits if outputs == "logits" else softmax(logits, axis=1)
    else:
        labels = (rng.uniform(size=logits.shape) < 1 / (1 + np.exp(-logits / 4))).astype(float)
        raw = logits if outputs == "logits" else 1 / (1 + np.exp(-logits))
    calibration = fit_calibration(task, outputs, raw, labels, [f"c{i}" for i in range(width)])
    assert calibration["val_ece_after"] < calibration["val_ece_before"]
    assert np.all(np.asarray(calibration["temperature"]) > 2)  # the network was 4x too sure
    served = keras.ops.convert_to_numpy(TemperatureScaling(calibration["temperature"], task, outputs)(raw.astype("float32")))
    kind = "softmax" if task == "multiclass" else "sigmoid"
    # logits recovered from float32 probabilities near 0 or 1 lose digits: 1e-3 there, 1e-5 from logits
    np.testing.assert_allclose(served, apply_temperature(to_logits(raw, outputs, task), calibration["temperature"], kind),
                               atol=1e-5 if outputs == "logits" else 1e-3)
    uncalibrated = apply_temperature(to_logits(raw, outputs, task), np.ones(1), kind)
    if task == "multiclass":
        np.testing.assert_array_equal(served.argmax(axis=1), uncalibrated.argmax(axis=1))
    else:
        np.testing.assert_array_equal(served > 0.5, uncalibrated > 0.5)  # a sigmoid's 0.5 is logit 0 at any T
