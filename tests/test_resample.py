"""One resampler for every rate: sources, CODE format, Kaggle beats and inference."""

import numpy as np
import pytest

from tf_ecg.data.resample import resample
from tf_ecg.errors import ECGDataError


@pytest.mark.parametrize("target", [100, 125, 200, 250, 360, 400, 1000])
def test_a_sine_keeps_its_frequency_and_length_at_any_rate(target):
    seconds, frequency = 10, 3.0
    signal = np.sin(2 * np.pi * frequency * np.arange(500 * seconds) / 500)[:, None]
    out = resample(signal, 500, target)
    assert out.shape == (target * seconds, 1) and out.dtype == np.float32
    expected = np.sin(2 * np.pi * frequency * np.arange(target * seconds) / target)
    middle = slice(target, -target)  # away from the filter's edges
    np.testing.assert_allclose(out[middle, 0], expected[middle], atol=0.02)


def test_content_above_the_new_nyquist_rate_is_removed():
    t = np.arange(5000) / 500
    out = resample(np.sin(2 * np.pi * 80 * t), 500, 100)  # 80 Hz cannot exist at 100 Hz
    assert np.abs(out[100:-100]).max() < 0.05


@pytest.mark.parametrize("from_rate, to_rate", [(0, 100), (500, -1), (500, float("nan")), (float("inf"), 500)])
def test_impossible_rates_are_refused(from_rate, to_rate):
    with pytest.raises(ECGDataError):
        resample(np.zeros(100), from_rate, to_rate)


def test_an_irrational_ratio_is_approximated_closely():
    out = resample(np.zeros((5000, 2)), 500, 100 * np.pi)  # 355/565 of the rate: 1e-7 off
    assert out.shape == (3142, 2)


@pytest.mark.parametrize("rate", [200, 250, 400])
def test_deepfake_source_at_any_rate(rate):
    """The issue's bug: 500 // 200 = 2 labelled 200 Hz data as if it were 250 Hz."""
    from tf_ecg.data.sources import load_source

    splits = load_source({"source": "deepfake_intervals", "n_ecgs": 6, "sampling_rate": rate,
                          "fractions": [0.5, 0.17, 0.33]})
    assert splits.input_spec.sampling_rate == rate and splits.input_spec.length == 10 * rate
    assert splits.train[0].shape[1:] == (10 * rate, 8)
    assert set(splits.info) >= {"generated", "dropped_by_quality", "quality_failures"}
