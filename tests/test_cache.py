"""Measured labels kept on disk (tf_ecg.data.cache): measured once, read back identical,
measured anew when what made them changes, and never written into a read-only data folder."""

import numpy as np
import pandas as pd
import pytest

import tf_ecg.data.sources.ptbxl as ptbxl_sources
from tf_ecg.data.cache import BESIDE_DATA, cache_dir, cached_table
from tf_ecg.data.sources.ptbxl import E18_LEADS, ptbxl_interval_table


def test_ptbxl_intervals_are_measured_once_across_processes(ptbxl_dir, measured_label_cache, monkeypatch):
    ptbxl_interval_table.cache_clear()  # as a new process would start
    first = ptbxl_interval_table(str(ptbxl_dir), E18_LEADS)
    assert list(measured_label_cache.rglob("intervals-*.csv"))  # (other test processes may add other tables)
    assert not (ptbxl_dir / BESIDE_DATA).exists()  # the shared data folder is read-only

    def measuring_again(*args, **kwargs):
        raise AssertionError("measured again")

    monkeypatch.setattr(ptbxl_sources, "interval_table", measuring_again)
    ptbxl_interval_table.cache_clear()
    again = ptbxl_interval_table(str(ptbxl_dir), E18_LEADS)
    pd.testing.assert_frame_equal(first, again)
    assert first["ok"].dtype == bool and first["ok"].all() and (first["failure"] == "").all()
    with pytest.raises(AssertionError, match="measured again"):  # other leads: another key
        ptbxl_interval_table(str(ptbxl_dir), ("II", "V1"))
    ptbxl_interval_table.cache_clear()


def test_a_changed_key_measures_anew_beside_writable_data(tmp_path):
    calls = []

    def measure():
        calls.append(1)
        return pd.DataFrame({"HR": [60.5, np.nan], "ok": [True, False], "failure": ["", "too few peaks"]},
                            index=pd.Index([1, 2], name="ecg_id"))

    key = {"table": "test", "records": "abc"}
    first = cached_table(tmp_path, "intervals", key, measure)
    pd.testing.assert_frame_equal(first, cached_table(tmp_path, "intervals", key, measure))
    assert len(calls) == 1 and cache_dir(tmp_path) == tmp_path / BESIDE_DATA
    cached_table(tmp_path, "intervals", {**key, "records": "abd"}, measure)
    assert len(calls) == 2 and len(list((tmp_path / BESIDE_DATA).glob("intervals-*.csv"))) == 2


def test_glucose_beats_are_kept_beside_the_study_and_found_again(shared_data, tmp_path, monkeypatch):
    import shutil

    import tf_ecg.data.glucose as glucose

    study = tmp_path / "study"
    for path in glucose.list_glucose_recordings(shared_data / "applewatch-glucose")["path"].iloc[[0, -1]]:
        target = study / path.relative_to(shared_data / "applewatch-glucose")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    measured = glucose.study_beats(study, progress=False)
    first = glucose.cached_study_beats(str(study))
    for name in ("beats", "labels", "recording"):
        np.testing.assert_array_equal(getattr(first, name), getattr(measured, name))
    assert len(list((study / BESIDE_DATA).glob("glucose-beats-*.npz"))) == 1

    calls = []
    monkeypatch.setattr(glucose, "study_beats", lambda *args: calls.append(args) or measured)
    glucose.cached_study_beats.cache_clear()  # as a new process would start
    again = glucose.cached_study_beats(str(study))
    assert not calls and np.array_equal(again.beats, first.beats) and again.recordings.equals(first.recordings)
    recording = next(study.rglob("*.csv"))
    recording.write_text(recording.read_text() + "0\n")  # a recording changed: measured anew
    glucose.cached_study_beats.cache_clear()
    glucose.cached_study_beats(str(study))
    assert len(calls) == 1
    glucose.cached_study_beats.cache_clear()


def test_deepfake_intervals_are_delineated_once_for_every_target(monkeypatch):
    import tf_ecg.deepfake as deepfake

    ecgs = deepfake.generate_ecgs(4, seed=3, progress=False).astype(np.float32)
    qrs, qrs_failures = deepfake.interval_labels(ecgs, "QRS")

    def measuring_again(*args, **kwargs):
        raise AssertionError("measured again")

    monkeypatch.setattr(deepfake, "interval_table", measuring_again)
    pr, pr_failures = deepfake.interval_labels(ecgs, "PR")  # the same delineation, read back
    assert qrs_failures == pr_failures and np.isfinite(qrs).sum() == np.isfinite(pr).sum() >= 3
    assert np.nanmin(qrs) > 40 and np.nanmin(pr) > 60
    changed = ecgs.copy()
    changed[0, 0, 0] += 1  # other ECGs: another key
    with pytest.raises(AssertionError, match="measured again"):
        deepfake.interval_labels(changed, "QT")
