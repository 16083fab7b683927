"""Calibration: ECE (15 equal-width bins) and Brier by hand and on tasks of known calibration;
temperature scaling recovers a known over-confidence and never changes an argmax."""

import numpy as np
import pytest
from scipy.special import softmax

from tf_ecg.evaluation.calibration import (apply_temperature, expected_calibration_error, fit_temperature,
                                           single_label_calibration)
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
