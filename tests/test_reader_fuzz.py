"""Every reader, fed random bytes, truncated prefixes and mutated copies of real files, raises
nothing but the project's input error naming the file, and writes nothing (hypothesis).

CI runs a bounded number of examples per reader; ``pytest -m slow`` runs many more."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tf_ecg.errors import TfEcgInputError

FUZZ = settings(max_examples=12, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
LONG_FUZZ = settings(FUZZ, max_examples=300)


def damaged(original: bytes) -> st.SearchStrategy[bytes]:
    """Random bytes, a truncated prefix of the real file, or the file with bytes overwritten."""
    changes = st.lists(st.tuples(st.integers(0, max(len(original) - 1, 0)), st.integers(0, 255)),
                       min_size=1, max_size=8)

    def overwrite(edits) -> bytes:
        data = bytearray(original)
        for index, value in edits:
            data[index] = value
        return bytes(data)

    return st.one_of(st.binary(max_size=2048), st.integers(0, len(original)).map(lambda n: original[:n]),
                     changes.map(overwrite))


def read_raises_only_input_errors(read, path: Path) -> None:
    """``read()`` succeeds or raises TfEcgInputError naming ``path`` (its record, a file it
    names in its folder, or the folder), and adds nothing to the folder."""
    before = sorted(p.name for p in path.parent.iterdir())
    try:
        read()
    except TfEcgInputError as error:
        assert str(path.with_suffix("")) in str(error) or (error.path or "").startswith(str(path.parent)), \
            f"{error!r} does not name {path}"
    assert sorted(p.name for p in path.parent.iterdir()) == before


# ---------------------------------------------------------------- readers, as the library uses them

def read_wfdb(path: Path, fixtures) -> None:
    from tf_ecg.data.formats.wfdb_records import read_record

    read_record(path.with_suffix(""))


def read_apple_csv(path: Path, fixtures) -> None:
    from tf_ecg.data.formats.applewatch import read_applewatch_csv

    read_applewatch_csv(path)


def read_npy(path: Path, fixtures) -> None:
    from tf_ecg.data.formats.recording import read_recording

    read_recording(path, sampling_rate=100)


def read_hdf5(path: Path, fixtures) -> None:
    from tf_ecg.data.formats.code import open_tracings, read_exams

    handle, tracings = open_tracings(path, num_leads=12)
    with handle:
        read_exams(tracings, 0, len(tracings), path)


def read_labels(path: Path, fixtures) -> None:
    from tf_ecg.evaluation.label_files import evaluate_label_files

    evaluate_label_files(path, fixtures["scores_file"])


def read_scores(path: Path, fixtures) -> None:
    from tf_ecg.evaluation.label_files import evaluate_label_files

    evaluate_label_files(fixtures["labels_file"], path)


def read_recipe(path: Path, fixtures) -> None:
    from tf_ecg.config import load_recipe

    load_recipe(path)


def read_weights(path: Path, fixtures) -> None:
    from tf_ecg.weights import load_original_weights

    load_original_weights(fixtures["glucose_model"], path)


def read_manifest(path: Path, fixtures) -> None:
    from tf_ecg.data.formats.shards import ShardedSplits

    ShardedSplits.open(path.parent)


READERS = {  # name -> (the real file damaged, what reads it)
    "wfdb_header": ("00001_lr.hea", read_wfdb),
    "wfdb_signal": ("00001_lr.dat", read_wfdb),
    "apple_csv": ("ecg_2023-09-21_1.csv", read_apple_csv),
    "npy": ("signal.npy", read_npy),
    "hdf5": ("exams.hdf5", read_hdf5),
    "labels_csv": ("gold_standard.csv", read_labels),
    "scores_npy": ("model.npy", read_scores),
    "recipe_toml": ("quickstart_mitbih.toml", read_recipe),
    "weights_pth": ("weights.pth", read_weights),
    "shard_manifest": ("manifest.json", read_manifest),
}


@pytest.fixture(scope="module")
def real(shared_data, originals, mitdb_dir, tmp_path_factory):
    """The real bytes each reader is fed damaged, and what the readers need beside them."""
    import tf_ecg
    from tf_ecg.data.sources.shards import write_source_shards
    from tf_ecg.data.formats.wfdb_records import read_record

    ptbxl = shared_data / "ptbxl" / "records100" / "00000"
    folder = tmp_path_factory.mktemp("real")
    signal = read_record(ptbxl / "00001_lr").signal
    np.save(folder / "signal.npy", signal)
    with h5py.File(folder / "exams.hdf5", "w") as handle:
        handle.create_dataset("tracings", data=signal[None].astype(np.float32))
        handle.create_dataset("exam_id", data=np.array([7]))
    shards = write_source_shards("mitbih_beats", folder / "shards", mitdb_dir.parent, {"records": ["101", "100"]},
                                 shard_mb=0.2)
    scores = np.load(shared_data / "code-test" / "dnn_predicts" / "model.npy")
    np.save(folder / "scores.npy", scores)
    labels = shared_data / "code-test" / "annotations" / "gold_standard.csv"
    files = {"wfdb_header": ptbxl / "00001_lr.hea", "wfdb_signal": ptbxl / "00001_lr.dat",
             "apple_csv": sorted((shared_data / "applewatch-glucose").rglob("*.csv"))[0],
             "npy": folder / "signal.npy", "hdf5": folder / "exams.hdf5", "labels_csv": labels,
             "scores_npy": folder / "scores.npy",
             "recipe_toml": Path(__file__).resolve().parents[1] / "models" / "quickstart_mitbih.toml",
             "weights_pth": originals / "weights" / "glucose" / "effnetv2_ecg_l_xxxs_20240111_epoch150_1e-4.pth",
             "shard_manifest": shards / "manifest.json"}
    return {"bytes": {name: path.read_bytes() for name, path in files.items()},
            "fixtures": {"scores_file": folder / "scores.npy", "labels_file": labels, "shards": shards,
                         "glucose_model": tf_ecg.build_model("effnetv2_ecg_l_xxxs")},
            "wfdb": files["wfdb_header"]}


def _fuzz(name: str, real, tmp_path_factory, fuzz_settings) -> None:
    file_name, read = READERS[name]

    @fuzz_settings
    @given(data=st.data())
    def run(data):
        path = tmp_path_factory.mktemp("fuzz") / file_name
        path.write_bytes(data.draw(damaged(real["bytes"][name])))
        if name.startswith("wfdb_"):  # the other half of the record, intact
            other = path.with_suffix(".dat" if path.suffix == ".hea" else ".hea")
            shutil.copy(real["wfdb"].with_suffix(other.suffix), other)
        if name == "shard_manifest":  # beside the real shards
            for shard in real["fixtures"]["shards"].glob("*.tfrecord"):
                (path.parent / shard.name).symlink_to(shard)
        read_raises_only_input_errors(lambda: read(path, real["fixtures"]), path)

    run()


@pytest.mark.parametrize("name", sorted(READERS))
def test_damaged_files_raise_only_input_errors(name, real, tmp_path_factory):
    _fuzz(name, real, tmp_path_factory, FUZZ)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(READERS))
def test_damaged_files_raise_only_input_errors_long(name, real, tmp_path_factory):
    _fuzz(name, real, tmp_path_factory, LONG_FUZZ)
