"""Apple Watch CSVs: the study's values-only files and Apple Health exports."""

import numpy as np
import pytest

from tf_ecg.data.formats.applewatch import list_glucose_recordings, read_applewatch_csv
from tf_ecg.errors import ECGDataError

HEALTH_HEADER = """Name,Jane Doe
Date of Birth,"Jan 1, 1990"
Recorded Date,2023-10-05 08:12:31 +0200
Classification,Sinus Rhythm
Symptoms,
Software Version,1.90
Device,"Watch6,18"
Sample Rate,{rate}
Lead,Lead I
Unit,µV

"""


def test_values_only_recording(shared_data):
    ecg = read_applewatch_csv(shared_data / "applewatch-glucose" / "0921" / "fast1" / "ecg_2023-09-21.csv")
    assert ecg.signal.shape == (15_360,) and ecg.sampling_rate == 512
    assert ecg.signal[0] == pytest.approx(-18.793)
    assert str(ecg.recorded_date) == "2023-09-21"


def test_study_listing(shared_data):
    table = list_glucose_recordings(shared_data / "applewatch-glucose")
    assert len(table) == 259  # fast2 / glucose2 are not used
    assert table["date"].nunique() == 13
    assert (table["label"] == 0).sum() == 152 and (table["label"] == 1).sum() == 107
    assert table.groupby("date")["label"].sum()["1007"] == 7
    later = list_glucose_recordings(shared_data / "applewatch-glucose-2024-01")
    assert len(later) == 16 and set(later["date"]) == {"0105", "0106", "0107", "0108"}


def test_apple_health_export(tmp_path):
    values = np.round(np.sin(np.linspace(0, 60, 15_360)) * 500, 3)
    path = tmp_path / "ecg_2023-10-05.csv"
    path.write_text(HEALTH_HEADER.format(rate="512 hertz") + "\n".join(map(str, values)) + "\n",
                    encoding="utf-8")
    ecg = read_applewatch_csv(path)
    np.testing.assert_allclose(ecg.signal, values)
    assert ecg.header["Classification"] == "Sinus Rhythm" and ecg.header["Unit"] == "µV"


def test_bad_apple_watch_files(tmp_path):
    wrong_rate = tmp_path / "ecg_256.csv"
    wrong_rate.write_text(HEALTH_HEADER.format(rate="256 hertz") + "1.0\n2.0\n", encoding="utf-8")
    with pytest.raises(ECGDataError, match=r"ecg_256\.csv: sampling rate is 256 Hz, expected 512 Hz"):
        read_applewatch_csv(wrong_rate)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ECGDataError, match=r"empty\.csv: no ECG samples"):
        read_applewatch_csv(empty)
    garbage = tmp_path / "garbage.csv"
    garbage.write_text("1.0\n2.0\nabc\n")
    with pytest.raises(ECGDataError, match=r"garbage\.csv: line 3"):
        read_applewatch_csv(garbage)
    nan = tmp_path / "nan.csv"
    nan.write_text("1.0\nnan\n")
    with pytest.raises(ECGDataError, match="NaN"):
        read_applewatch_csv(nan)
