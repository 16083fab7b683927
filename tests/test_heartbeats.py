import numpy as np
import pytest

from tf_ecg import cli
from tf_ecg.data import heartbeats, mitbih
from tf_ecg.data.spec import InputSpec, prepare_windows
from tf_ecg.errors import ECGDataError
from tf_ecg.data.sources import load_source


def test_rebuilt_kaggle_set_reproduces_the_published_class_counts(mitdb_dir):
    train, test = heartbeats.build_heartbeats(mitdb_dir)
    published = heartbeats.PUBLISHED_COUNTS
    for name in mitbih.AAMI_CLASSES:
        # every annotated beat but the last of each record: the published totals exactly
        assert train.counts()[name] + test.counts()[name] == published["train"][name] + published["test"][name]
        assert abs(test.counts()[name] - published["test"][name]) <= 1  # stratified 80/20
    assert abs(len(test.labels) - 21_892) <= 1 and len(train.labels) + len(test.labels) == 109_446
    assert train.beats.shape[1:] == (187,) and 0 <= train.beats.min() and train.beats.max() <= 1
    # intra-patient, as Kaggle's: a record's beats fall in both files
    assert set(train.records) == set(test.records) == set(mitbih.RECORDS)


def test_beats_start_at_the_r_peak_and_last_1_2_median_rr(mitdb_dir):
    beats = heartbeats.record_heartbeats(mitdb_dir, "100")
    samples, _ = mitbih.beat_annotations(mitdb_dir, "100")
    assert len(beats.labels) == len(samples) - 1
    rr = np.median(np.diff(samples)) * 125 / 360
    last_nonzero = np.array([np.flatnonzero(b)[-1] for b in beats.beats])
    assert abs(np.median(last_nonzero) + 1 - 1.2 * rr) <= 3
    # R peak (a maximum of the normalised window) at the start of a normal beat
    normal = beats.beats[beats.labels == 0]
    assert np.median(normal[:, 0]) > np.median(normal[:, 40]) + 0.3


def test_cli_writes_kaggle_csvs_that_the_reader_and_source_load(mitdb_dir, tmp_path, capsys):
    out = tmp_path / "heartbeats"
    assert cli.main(["data", "heartbeats", "--data-root", str(mitdb_dir.parent), "--records", "100", "119",
                     "--out", str(out)]) == 0
    train = heartbeats.read_kaggle_csv(out / "mitbih_train.csv")
    test = heartbeats.read_kaggle_csv(out / "mitbih_test.csv")
    expected = sum(len(mitbih.beat_annotations(mitdb_dir, r)[0]) - 1 for r in ("100", "119"))
    assert len(train.labels) + len(test.labels) == expected
    rebuilt_train, _ = heartbeats.build_heartbeats(mitdb_dir, ["100", "119"])
    np.testing.assert_allclose(train.beats, rebuilt_train.beats, atol=1e-6)
    splits = load_source({"source": "kaggle_heartbeats", "csv_dir": str(out)})
    assert splits.info["origin"] == str(out)
    assert len(splits.train[1]) + len(splits.val[1]) == len(train.labels)
    assert splits.train[0].shape[1:] == (187, 1) and splits.input_spec.kind == "kaggle_beat"


@pytest.mark.parametrize("content, problem", [
    ("1,2,3\n", "expected 188 columns"),
    (",".join(["0.5"] * 187 + ["7"]) + "\n", "labels must be 0-4"),
    (",".join(["0.5"] * 186 + ["nan", "1"]) + "\n", "NaN in row 1"),
    (",".join(["3.0"] * 187 + ["1"]) + "\n", r"outside \[0, 1\]"),
    ("a,b\n", "not a numeric CSV"),
])
def test_reader_rejects_malformed_files_naming_them(tmp_path, content, problem):
    path = tmp_path / "mitbih_train.csv"
    path.write_text(content)
    with pytest.raises(ECGDataError, match=problem) as error:
        heartbeats.read_kaggle_csv(path)
    assert str(path) in str(error.value)


def test_missing_csv_is_a_clear_error(tmp_path):
    with pytest.raises(ECGDataError, match="file not found"):
        heartbeats.read_kaggle_csv(tmp_path / "mitbih_test.csv")


def test_predict_input_from_a_raw_record_uses_the_same_beats(mitdb_dir):
    record = mitbih.read_mitbih_record(mitdb_dir, "100")
    spec = InputSpec("kaggle_beat", 125, 187, None, 1, normalisation="none")
    beats, peaks = prepare_windows(record.signal[:360 * 60], 360, record.leads, spec, mitdb_dir / "100")
    annotated = mitbih.beat_annotations(mitdb_dir, "100")[0]
    assert beats.shape[1:] == (187, 1) and abs(len(beats) - (annotated < 360 * 60).sum()) <= 2
    assert 0 <= beats.min() and beats.max() <= 1
