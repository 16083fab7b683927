"""Ribeiro/CODE format: labels on the real test-set files, tracings written by the tests."""

import h5py
import numpy as np
import pytest

from tf_ecg.data.formats import code
from tf_ecg.errors import ECGDataError


def test_gold_standard_positives(shared_data):
    labels = code.read_labels(shared_data / "code-test" / "annotations" / "gold_standard.csv")
    assert labels.shape == (827, 6)
    assert labels.sum(axis=0).tolist() == [28, 34, 30, 16, 13, 37]


def test_dnn_csv_with_its_index_column(shared_data):
    labels = code.read_labels(shared_data / "code-test" / "annotations" / "dnn.csv")
    assert labels.shape == (827, 6)


@pytest.mark.parametrize("rate, seconds, pad", [(400, 7, 648), (400, 10, 48), (500, 10, 48)])
def test_resample_and_symmetric_zero_padding(rate, seconds, pad):
    t = np.arange(rate * seconds) / rate
    signal = np.stack([np.sin(2 * np.pi * 1.0 * t) + 2] * 12, axis=1)
    out = code.to_code_format(signal, rate)
    assert out.shape == (4096, 12)
    assert np.all(out[:pad] == 0) and np.all(out[-pad:] == 0)
    assert np.all(out[pad:4096 - pad] > 0.5)


def test_wrong_lead_count_and_nan():
    with pytest.raises(ECGDataError, match=r"expected \(samples, 12\)"):
        code.to_code_format(np.zeros((4000, 8)), 400)
    bad = np.zeros((4000, 12))
    bad[5, 3] = np.nan
    with pytest.raises(ECGDataError, match="NaN"):
        code.to_code_format(bad, 400)


def test_tracings_file(tmp_path):
    path = tmp_path / "ecg_tracings.hdf5"
    with h5py.File(path, "w") as handle:
        handle["tracings"] = np.ones((3, 4096, 12), dtype="float32")
        handle["wrong"] = np.ones((3, 4000, 12), dtype="float32")
    handle, tracings = code.open_tracings(path, length=4096)
    assert tracings.shape == (3, 4096, 12)
    handle.close()
    with pytest.raises(ECGDataError, match="has shape \\(3, 4000, 12\\); expected \\(exams, 4096, 12\\) with leads DI"):
        code.open_tracings(path, "wrong", length=4096)
    code.open_tracings(path, "wrong")[0].close()  # any length where none is required
    with pytest.raises(ECGDataError, match="no dataset 'signals' \\(the file has \\['tracings', 'wrong'\\]\\)"):
        code.open_tracings(path, "signals")
    (tmp_path / "empty.hdf5").write_bytes(b"")
    with pytest.raises(ECGDataError, match="empty.hdf5: empty file"):
        code.open_tracings(tmp_path / "empty.hdf5")
