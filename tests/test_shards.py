"""TFRecord shards: CODE-15% read by exam_id into shards, any source converted, and
training that streams them (tf_ecg.data.formats.shards, tf_ecg.data.formats.code15, the shards source)."""

import json
import re
import shutil

import h5py
import numpy as np
import pandas as pd
import pytest

from tf_ecg.cli import main
from tf_ecg.data.formats.code import CLASSES
from tf_ecg.data.formats.code15 import read_exams, write_code15_layout
from tf_ecg.data.formats.shards import ShardedSplits, encode_signal, int16_step_limit
from tf_ecg.data.sources import load_source
from tf_ecg.data.sources.shards import write_source_shards
from tf_ecg.errors import ECGDataError, OutputPathError

from test_train_export_predict import RECIPE as TINY_MITBIH_RECIPE


@pytest.fixture(scope="module")
def code15(tmp_path_factory):
    """A CODE-15%-layout folder of 240 exams over 3 parts, plus one row whose exam_id is
    in no exams.csv row and an exam labelled ST only (CSV column 5, the paper's 6th)."""
    directory = write_code15_layout(tmp_path_factory.mktemp("data") / "code15", 240, parts=3, seed=1)
    table = pd.read_csv(directory / "exams.csv")
    table.loc[0, ["1dAVb", "RBBB", "LBBB", "SB", "ST", "AF"]] = [False, False, False, False, True, False]
    table.to_csv(directory / "exams.csv", index=False)
    with h5py.File(directory / "exams_part0.hdf5", "a") as handle:
        handle["exam_id"][0] = 999_999_999  # a row no exam matches
    return directory


@pytest.fixture(scope="module")
def code15_shards(code15, tmp_path_factory):
    out = tmp_path_factory.mktemp("shards") / "code15"
    write_source_shards("code15", out, options={"directory": str(code15), "val_fraction": 0.1, "test_fraction": 0.1},
                        shard_mb=2)
    return out


def _part_contents(directory):
    """exam_id -> tracing, over every part."""
    contents = {}
    for part in sorted(directory.glob("exams_part*.hdf5")):
        with h5py.File(part, "r") as handle:
            for exam_id, tracing in zip(handle["exam_id"][:], handle["tracings"][:]):
                contents[int(exam_id)] = tracing
    return contents


def test_code15_exams_are_joined_by_id_and_labels_by_name(code15, code15_shards):
    exams = read_exams(code15)
    tracings = _part_contents(code15)
    expected = {i for i, t in tracings.items() if i in exams.index and np.abs(t).max() > 0}
    splits = ShardedSplits.open(code15_shards)
    seen = {}
    for split in ("train", "val", "test"):
        for x, y in splits.dataset(split, 16):
            for signal, label in zip(x.numpy(), y.numpy()):
                seen.setdefault(split, []).append((signal, label))
    manifest = json.loads((code15_shards / "manifest.json").read_text())
    assert sum(len(v) for v in seen.values()) == len(expected) == sum(c["examples"] for c in manifest["splits"].values())
    assert manifest["skipped"] == {"padding": 3, "not_in_exams_csv": 1,
                                   "no_signal": sum(1 for i, t in tracings.items() if i in exams.index and not np.abs(t).max())}
    # every shard example is its exam's tracing (within half an int16 step <= 0.5 uV) with its labels
    ids = {split: [int(i) for i in values] for split, values in _shard_ids(code15_shards).items()}
    for split, examples in seen.items():
        for exam_id, (signal, label) in zip(ids[split], examples):
            np.testing.assert_allclose(signal, tracings[exam_id], atol=5e-4 + 1e-6)
            np.testing.assert_array_equal(label, exams.loc[exam_id, list(CLASSES)].to_numpy())
    first = int(pd.read_csv(code15 / "exams.csv")["exam_id"][0])
    assert exams.loc[first, list(CLASSES)].tolist() == [0, 0, 0, 0, 0, 1]  # ST is the paper's last class
    # one patient's exams never straddle two splits
    patients = {split: set(exams.loc[ids[split], "patient_id"]) for split in ids}
    assert not patients["train"] & patients["val"] and not patients["train"] & patients["test"]
    assert len(ids["val"]) and len(ids["test"]) and len(manifest["splits"]["train"]["shards"]) > 1


def _shard_ids(directory):
    import tensorflow as tf

    manifest = json.loads((directory / "manifest.json").read_text())
    ids = {}
    for split, content in manifest["splits"].items():
        records = tf.data.TFRecordDataset([str(directory / s["file"]) for s in content["shards"]])
        ids[split] = [tf.train.Example.FromString(r.numpy()).features.feature["id"].bytes_list.value[0].decode()
                      for r in records]
    return ids


def test_int16_keeps_a_microvolt_and_float16_takes_what_it_cannot():
    rng = np.random.default_rng(0)
    signal = rng.normal(scale=1.0, size=(500, 3)).astype(np.float32)
    samples, gain, is_float16 = encode_signal(signal, int16_step_limit("mV"))
    assert not is_float16 and (gain <= 1e-3).all()
    decoded = np.frombuffer(samples, "<i2").reshape(500, 3) * gain
    assert np.abs(decoded - signal).max() <= gain.max() / 2 + 1e-7
    signal[0, 1] = 40.0  # a 40 mV artefact: an int16 step would exceed 1 uV
    assert encode_signal(signal, int16_step_limit("mV"))[2]
    microvolts = rng.normal(scale=1000.0, size=(500, 3)).astype(np.float32)  # uV data: 1 uV steps
    assert not encode_signal(microvolts, int16_step_limit("uV"))[2]
    assert encode_signal(signal * 1000, int16_step_limit("uV"))[2]  # 40,000 uV needs steps above 1 uV too


def test_shard_checks_name_the_file(code15, code15_shards, tmp_path):
    with pytest.raises(OutputPathError, match="exists and is not empty"):
        write_source_shards("code15", code15_shards, options={"directory": str(code15)})
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in code15_shards.iterdir():
        (broken / path.name).write_bytes(path.read_bytes())
    first = sorted(broken.glob("train-*.tfrecord"))[0]
    first.write_bytes(first.read_bytes()[:1000])
    with pytest.raises(ECGDataError, match=f"{first.name}.*truncated or replaced"):
        ShardedSplits.open(broken)
    with pytest.raises(ECGDataError, match="no manifest.json"):
        ShardedSplits.open(tmp_path)


def test_a_failed_conversion_leaves_nothing(code15, tmp_path):
    bad = tmp_path / "code15"
    bad.mkdir()
    for path in code15.iterdir():
        (bad / path.name).write_bytes(path.read_bytes())
    with h5py.File(bad / "exams_part2.hdf5", "a") as handle:
        exam_id = int(handle["exam_id"][5])
        handle["tracings"][5, 100, 3] = np.nan
    out = tmp_path / "out"
    with pytest.raises(ECGDataError, match=rf"exams_part2.hdf5: exam_id {exam_id} \(row 5\) holds NaN"):
        write_source_shards("code15", out, options={"directory": str(bad)})
    assert not out.exists() and not (tmp_path / "out.partial").exists()


@pytest.fixture(scope="module")
def beat_shards(mitdb_dir, tmp_path_factory):
    """Two MIT-BIH records' beats (mitbih_beats), converted through the command line."""
    out = tmp_path_factory.mktemp("shards") / "beats"
    assert main(["data", "shards", "mitbih_beats", "--data-root", str(mitdb_dir.parent), "--out", str(out),
                 "--set", 'data.records=["101", "100"]', "--shard-mb", "0.5"]) == 0
    return out


def test_any_source_converts_and_streams_in_its_order(mitdb_dir, beat_shards):
    splits = load_source({"source": "mitbih_beats", "records": ["101", "100"]}, mitdb_dir.parent)
    sharded = load_source({"source": "shards", "directory": str(beat_shards)})
    assert sharded.output_names == splits.output_names and sharded.input_spec == splits.input_spec
    assert sharded.example_shape == splits.example_shape
    for split in ("val", "test"):
        x, y = (np.concatenate(parts) for parts in zip(*((a.numpy(), b.numpy()) for a, b in sharded.dataset(split, 64))))
        np.testing.assert_array_equal(y, getattr(splits, split)[1])
        np.testing.assert_allclose(x, getattr(splits, split)[0], atol=1e-4)  # 0-1 scaled: steps of 1/32767
    manifest = json.loads((beat_shards / "manifest.json").read_text())
    assert len(manifest["splits"]["train"]["shards"]) > 1
    ids = _shard_ids(beat_shards)
    assert ids["test"] == splits.example_ids("test").tolist() and ids["test"][0].startswith("100:")  # record:R peak
    assert list(manifest["splits"]["train"]["class_counts"].values()) == \
        np.bincount(splits.train[1], minlength=len(splits.output_names)).tolist()


MITBIH_ARRAYS = 'source = "mitbih_beats"\nrecords = ["101", "100"]   # 101 is in DS1 (train/val), 100 in DS2 (test)'


def streamed_recipe(shards) -> str:
    """The tiny MIT-BIH recipe of the training tests, reading ``shards`` instead."""
    recipe = TINY_MITBIH_RECIPE.format(epochs=1)
    assert MITBIH_ARRAYS in recipe
    return recipe.replace(MITBIH_ARRAYS, f'source = "shards"\ndirectory = "{shards}"\nshuffle_buffer = 256')


def test_training_streams_shards_and_records_them(beat_shards, tmp_path):
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(streamed_recipe(beat_shards))
    assert main(["train", str(recipe), "--run-dir", str(tmp_path / "run")]) == 0
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    manifest = json.loads((beat_shards / "manifest.json").read_text())
    assert record["data"]["fingerprint"]["train"]["n"] == manifest["splits"]["train"]["examples"]
    assert len(record["data"]["fingerprint"]["test"]["shards_sha256"]) == 64
    report = json.loads((tmp_path / "run" / "test_metrics.json").read_text())
    assert report["n"] == manifest["splits"]["test"]["examples"] and report["accuracy"] > 0.9
    assert main(["evaluate", str(tmp_path / "run"), "--which", "final"]) == 0
    again = json.loads((tmp_path / "run" / "evaluate_final_test.json").read_text())
    assert again["data_matches_run"] and again["n"] == report["n"] and again["accuracy"] == report["accuracy"]


def test_a_missing_code15_folder_says_where_to_get_it(tmp_path):
    from tf_ecg.data.paths import DATASET_DIRS, HOW_TO_OBTAIN

    with pytest.raises(ECGDataError, match=r"code15: data set 'code15' not found; put exams.csv and "
                                           r"exams_part\*.hdf5 of Zenodo 10.5281/zenodo.4916206 there"):
        write_source_shards("code15", tmp_path / "out", data_root=tmp_path)
    assert not (tmp_path / "out").exists() and set(HOW_TO_OBTAIN) == set(DATASET_DIRS)


def test_what_needs_all_training_arrays_is_refused_on_shards(beat_shards, tmp_path, capsys):
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(streamed_recipe(beat_shards))
    assert main(["train", str(recipe), "--run-dir", str(tmp_path / "run"),
                 "--set", 'training.batch_norm_statistics="recompute"']) == 2
    assert "training.batch_norm_statistics needs the training data in memory" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def _flip_middle_bytes(path) -> bytes:
    """Invert 8 bytes in the middle of ``path`` (same size); returns the original bytes."""
    original = path.read_bytes()
    middle = len(original) // 2
    path.write_bytes(original[:middle] + bytes(b ^ 0xFF for b in original[middle:middle + 8]) + original[middle + 8:])
    return original


def test_a_changed_shard_is_named_and_the_run_resumes_once_it_is_rewritten(beat_shards, tmp_path, capsys):
    shards = tmp_path / "shards"
    shutil.copytree(beat_shards, shards)
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(streamed_recipe(shards).replace("epochs = 1", "epochs = 2"))
    run = tmp_path / "run"
    assert main(["train", str(recipe), "--run-dir", str(run), "--minutes", "0"]) == 3  # paused after epoch 1
    assert json.loads((run / "run.json").read_text())["status"] == "paused"
    assert main(["data", "verify", str(shards)]) == 0
    capsys.readouterr()

    shard = shards / "train-00001.tfrecord"
    original = _flip_middle_bytes(shard)
    assert main(["data", "verify", str(shards)]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bar
    assert error.startswith(f"tf-ecg: error: {shard}: sha256 differs from manifest.json (1 of ")

    assert main(["train", str(recipe), "--run-dir", str(run)]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert re.fullmatch(rf"tf-ecg: error: {re.escape(str(shard))}: corrupted record at byte \d+: the shard's bytes "
                        r"changed since it was written; rewrite it .*", error), error
    assert len(pd.read_csv(run / "history.csv")) == 1  # the failed epoch left no trace
    assert main(["train", str(recipe), "--run-dir", str(run), "--set", "data.verify=true"]) == 2
    assert f"{shard}: sha256 differs from manifest.json" in capsys.readouterr().err

    shard.write_bytes(original)  # rewritten: the run resumes where it paused
    assert main(["train", str(recipe), "--run-dir", str(run)]) == 0
    assert pd.read_csv(run / "history.csv")["epoch"].tolist() == [0, 1]
    assert json.loads((run / "run.json").read_text())["resumed"] is True

    test_shard = shards / "test-00000.tfrecord"
    _flip_middle_bytes(test_shard)
    assert main(["evaluate", str(run)]) == 2
    assert f"{test_shard}: corrupted record at byte" in capsys.readouterr().err


def test_a_changed_shard_of_a_new_run_leaves_no_run_directory(beat_shards, tmp_path, capsys):
    shards = tmp_path / "shards"
    shutil.copytree(beat_shards, shards)
    _flip_middle_bytes(shards / "train-00000.tfrecord")
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(streamed_recipe(shards))
    assert main(["train", str(recipe), "--run-dir", str(tmp_path / "run")]) == 2
    assert "train-00000.tfrecord: corrupted record at byte" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
