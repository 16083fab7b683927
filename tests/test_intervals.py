import neurokit2 as nk
import numpy as np
import pytest

from tf_ecg.data import mitbih
from tf_ecg.data.intervals import heart_rate


@pytest.mark.parametrize("bpm", [55, 75, 110])
def test_heart_rate_of_simulated_ecgs(bpm):
    ecg = nk.ecg_simulate(duration=10, sampling_rate=500, heart_rate=bpm, random_state=1)
    rate, ok = heart_rate(ecg, 500)
    assert ok and rate == pytest.approx(bpm, abs=2)


def test_heart_rate_of_a_real_record_matches_its_annotations(mitdb_dir):
    record = mitbih.read_mitbih_record(mitdb_dir, "100")
    peaks, _ = mitbih.beat_annotations(mitdb_dir, "100")
    window = slice(0, 360 * 30)
    inside = peaks[(peaks >= 0) & (peaks < 360 * 30)]
    annotated = 60 * 360 / np.diff(inside).mean()
    rate, ok = heart_rate(record.signal[window, 0], 360)
    assert ok and rate == pytest.approx(annotated, abs=1.5)


def test_flat_or_noise_signals_fail_the_quality_check():
    assert heart_rate(np.zeros(5000), 500)[1] is False
    assert heart_rate(np.random.default_rng(0).normal(size=200), 500)[1] is False
