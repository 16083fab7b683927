import neurokit2 as nk
import numpy as np
import pytest

from tf_ecg.data import mitbih, ptbxl
from tf_ecg.data.intervals import INTERVALS, ecg_intervals, heart_rate, interval_table


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


def _beat_train(pr_ms: float, qrs_ms: float, qt_ms: float, bpm: float, fs: int = 500, leads: int = 8):
    """A synthetic ECG whose PR, QRS and QT are known by construction: half-sine P (90 ms)
    starting PR before the QRS onset, Q-R-S lobes spanning the QRS duration, and a T wave
    ending QT after the QRS onset."""
    t = np.arange(10 * fs) / fs
    ecg = np.zeros((len(t), leads))

    def lobe(start, duration, amplitude):
        inside = (t >= start) & (t < start + duration)
        ecg[inside] += amplitude * np.sin(np.pi * (t[inside] - start) / duration)[:, None]

    qrs = qrs_ms / 1000
    for onset in np.arange(0.3, 9.4, 60 / bpm):
        lobe(onset - pr_ms / 1000, 0.09, 0.15)
        lobe(onset, 0.2 * qrs, -0.1)
        lobe(onset + 0.2 * qrs, 0.5 * qrs, 1.2)
        lobe(onset + 0.7 * qrs, 0.3 * qrs, -0.3)
        lobe(onset + qt_ms / 1000 - 0.18, 0.18, 0.35)
    return ecg + np.random.default_rng(0).normal(0, 0.005, ecg.shape)


@pytest.mark.parametrize("pr, qrs, qt, bpm", [(160, 100, 400, 70), (220, 90, 380, 60), (140, 130, 440, 80)])
def test_intervals_of_synthetic_ecgs_with_known_values(pr, qrs, qt, bpm):
    labels = ecg_intervals(_beat_train(pr, qrs, qt, bpm), 500)
    assert labels["ok"]
    assert labels["HR"] == pytest.approx(bpm, abs=1)
    assert labels["PR"] == pytest.approx(pr, abs=20)
    assert labels["QT"] == pytest.approx(qt, abs=25)
    # neurokit2 places the QRS onset/offset inside low-amplitude Q and S lobes: QRS reads short
    assert qrs - 35 <= labels["QRS"] <= qrs + 5


def test_qrs_label_orders_wide_and_narrow_complexes():
    narrow = ecg_intervals(_beat_train(160, 80, 400, 70), 500)["QRS"]
    wide = ecg_intervals(_beat_train(160, 130, 400, 70), 500)["QRS"]
    assert wide > narrow + 15


def test_intervals_of_real_ptbxl_records_follow_their_diagnoses(ptbxl_dir):
    """On real records: normal sinus ECGs have PR 120-200 ms and QT 350-450 ms; first-degree
    AV block is defined by PR > 200 ms."""
    metadata = ptbxl.load_metadata(ptbxl_dir)
    normal = metadata.index[ptbxl.has_statement(metadata, "NORM")][:12]
    av_block = metadata.index[ptbxl.has_statement(metadata, "1AVB")][:6]
    leads = ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"]
    table = interval_table(ptbxl.load_signals(ptbxl_dir, metadata, list(normal) + list(av_block), 500, leads=leads), 500)
    assert table["ok"].mean() >= 0.9
    normal_median = table.iloc[:len(normal)][list(INTERVALS)].median()
    assert 120 <= normal_median["PR"] <= 200 and 350 <= normal_median["QT"] <= 450
    assert 70 <= normal_median["QRS"] <= 120
    assert table.iloc[len(normal):]["PR"].median() > 200


def test_intervals_of_deepfake_ecgs_match_the_published_ground_truth():
    """The original's DeepFake set (MUSE reports, 121,977 ECGs): HR 69.8 +/- 7.6 bpm, PR
    158 +/- 17, QRS 92 +/- 9, QT 395 +/- 21 ms. Our labels of generated ECGs must agree."""
    from tf_ecg.deepfake import SAMPLING_RATE, generate_ecgs

    table = interval_table(generate_ecgs(24, seed=3), SAMPLING_RATE)
    assert table["ok"].all()
    means = table[list(INTERVALS)].mean()
    for name, (mean, std) in {"HR": (69.8, 7.56), "PR": (158.1, 16.8), "QRS": (92.1, 8.67), "QT": (395.2, 20.5)}.items():
        assert abs(means[name] - mean) < std, name


def test_a_failed_delineation_fails_the_quality_check():
    labels = ecg_intervals(np.random.default_rng(1).normal(size=(5000, 8)), 500)
    assert labels["ok"] is False


def test_quality_failures_are_counted_by_cause():
    from tf_ecg.data.intervals import failure_counts

    flat = ecg_intervals(np.zeros((5000, 8)), 500)
    assert flat["ok"] is False and flat["failure"]
    table = interval_table([np.zeros((5000, 8)), np.zeros((5000, 8)), _beat_train(160, 90, 400, 70)], 500)
    counts = failure_counts(table["failure"])
    assert sum(counts.values()) == 2 and list(counts) == [flat["failure"]]


def test_a_programming_error_during_delineation_is_raised_not_counted(monkeypatch):
    def broken(*args, **kwargs):
        raise TypeError("ecg_delineate() got an unexpected keyword argument 'method'")  # e.g. a changed API

    monkeypatch.setattr(nk, "ecg_delineate", broken)
    with pytest.raises(TypeError, match="unexpected keyword"):
        ecg_intervals(_beat_train(160, 90, 400, 70), 500)
