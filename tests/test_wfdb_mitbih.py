"""MIT-BIH through wfdb: the real 48 records, and bad records the tests write themselves."""

import shutil

import numpy as np
import pytest

from tf_ecg.data import mitbih
from tf_ecg.data.formats.wfdb_records import read_record
from tf_ecg.errors import ECGDataError
from conftest import write_record


def test_all_48_records_give_109494_beats_and_the_aami_counts(mitdb_dir):
    table = mitbih.beat_table(mitdb_dir)
    assert table["record"].nunique() == 48
    assert len(table) == 109_494
    assert table["aami"].value_counts().to_dict() == {"N": 90_631, "Q": 8_043, "V": 7_236, "S": 2_781, "F": 803}
    assert table.groupby("symbol").size()["S"] == 2 and table.groupby("symbol").size()["N"] == 75_052


def test_record_100_signal(mitdb_dir):
    record = mitbih.read_mitbih_record(mitdb_dir, "100")
    assert record.signal.shape == (650_000, 2) and record.sampling_rate == 360
    assert record.leads == ("MLII", "V5")
    # first sample of MLII: (995 - 1024) / 200 mV
    assert record.signal[0, 0] == pytest.approx((995 - 1024) / 200)


def test_de_chazal_split_is_disjoint_and_excludes_paced_records():
    assert not set(mitbih.DS1) & set(mitbih.DS2)
    assert len(mitbih.DS1) == len(mitbih.DS2) == 22
    assert not {"102", "104", "107", "217"} & set(mitbih.DS1 + mitbih.DS2)


def test_truncated_dat_file_is_named(mitdb_dir, tmp_path):
    shutil.copy(mitdb_dir / "100.hea", tmp_path)
    (tmp_path / "100.dat").write_bytes((mitdb_dir / "100.dat").read_bytes()[:100_000])
    with pytest.raises(ECGDataError, match=r"100\.dat: truncated"):
        read_record(tmp_path / "100")


def test_missing_files(mitdb_dir, tmp_path):
    with pytest.raises(ECGDataError, match=r"nothing\.hea: WFDB header not found"):
        read_record(tmp_path / "nothing")
    shutil.copy(mitdb_dir / "100.hea", tmp_path)
    with pytest.raises(ECGDataError, match=r"100\.dat: signal file named by the header is missing"):
        read_record(tmp_path / "100")
    with pytest.raises(ECGDataError, match=r"100\.atr: annotation file not found"):
        mitbih.beat_annotations(tmp_path, "100")


def test_wrong_rate_and_lead_count(small_record):
    with pytest.raises(ECGDataError, match="sampling rate is 360 Hz, expected 500 Hz"):
        read_record(small_record, sampling_rate=500)
    with pytest.raises(ECGDataError, match="2 leads, expected 12"):
        read_record(small_record, num_leads=12)
    with pytest.raises(ECGDataError, match=r"lead\(s\) \['V6'\] missing"):
        read_record(small_record, leads=["V1", "V6"])


def test_written_record_round_trips_with_lead_selection(small_record):
    record = read_record(small_record, sampling_rate=360, leads=["v1", "MLII"])
    assert record.leads == ("V1", "MLII")
    np.testing.assert_allclose(record.signal[:, 0], 0.5 * record.signal[:, 1], atol=2e-3)


def test_nan_samples_are_an_error(tmp_path):
    signal = np.random.default_rng(0).normal(size=(1000, 2))
    signal[10:20, 1] = np.nan  # wfdb stores them as the invalid-sample value
    path = write_record(tmp_path, "gappy", signal, 250, ["I", "II"])
    with pytest.raises(ECGDataError, match="20 missing samples|10 missing samples"):
        read_record(path)
