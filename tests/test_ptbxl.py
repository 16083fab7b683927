"""PTB-XL metadata, superclasses and signals on the real 500-record subset."""

from pathlib import Path

import numpy as np
import pytest

from tf_ecg.data import ptbxl
from tf_ecg.errors import ECGDataError

EIGHT_LEADS = ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"]


@pytest.fixture(scope="module")
def metadata(ptbxl_dir):
    return ptbxl.load_metadata(ptbxl_dir)


def test_single_superclass_counts(ptbxl_dir, metadata):
    labels = ptbxl.single_superclass_labels(metadata, ptbxl.load_scp_statements(ptbxl_dir))
    counts = labels.map(dict(enumerate(ptbxl.SUPERCLASSES))).value_counts().to_dict()
    assert len(labels) == 415
    assert counts == {"NORM": 290, "STTC": 51, "CD": 37, "MI": 31, "HYP": 6}


def test_likelihood_threshold_is_optional(ptbxl_dir, metadata):
    statements = ptbxl.load_scp_statements(ptbxl_dir)
    every = ptbxl.diagnostic_superclasses(metadata, statements)
    confident = ptbxl.diagnostic_superclasses(metadata, statements, min_likelihood=50)
    assert (every.apply(len) >= confident.apply(len)).all()
    assert (every.apply(len) > confident.apply(len)).any()


def test_strat_fold_split(metadata):
    split = ptbxl.fold_split(metadata)
    assert sum(len(v) for v in split.values()) == len(metadata) == 500
    assert set(metadata.loc[split["test"], "strat_fold"]) == {10}
    assert set(metadata.loc[split["val"], "strat_fold"]) == {9}


@pytest.mark.parametrize("rate, samples", [(100, 1000), (500, 5000)])
def test_signals_by_lead_name(ptbxl_dir, metadata, rate, samples):
    ids = metadata.index[:3]
    signals = ptbxl.load_signals(ptbxl_dir, metadata, ids, rate, leads=EIGHT_LEADS, progress=False)
    assert signals.shape == (3, samples, 8)
    full = ptbxl.load_signals(ptbxl_dir, metadata, ids, rate, progress=False)
    np.testing.assert_array_equal(signals[..., 2:], full[..., 6:])  # V1-V6 are leads 6-11
    assert np.abs(signals).max() < 20  # millivolts


def test_statement_lookup(metadata):
    assert ptbxl.has_statement(metadata, "NORM").sum() > 0
    assert not ptbxl.has_statement(metadata, "NOT_A_CODE").any()


def test_unsupported_rate_and_empty_csv(ptbxl_dir, metadata, tmp_path):
    with pytest.raises(ECGDataError, match="not 250 Hz"):
        ptbxl.load_signals(ptbxl_dir, metadata, metadata.index[:1], 250)
    (tmp_path / "ptbxl_database.csv").write_text("")
    with pytest.raises(ECGDataError, match=r"ptbxl_database\.csv: empty CSV file"):
        ptbxl.load_metadata(tmp_path)


def test_superclass_source_and_macro_auc_monitor(ptbxl_dir, tmp_path):
    from tf_ecg.config import load_recipe
    from tf_ecg.data.sources import load_source
    from tf_ecg.training.trainer import train

    splits = load_source({"source": "ptbxl_superclass", "sampling_rate": 100}, ptbxl_dir.parent)
    assert sum(len(part[1]) for part in (splits.train, splits.val, splits.test)) == 415
    x, y = splits.train
    assert x.shape[1:] == (1000, 8) and x.min() == 0 and x.max() == 1
    assert splits.output_names == ["MI", "STTC", "HYP", "NORM", "CD"]
    assert np.bincount(np.concatenate([splits.train[1], splits.val[1], splits.test[1]])).tolist() == [31, 51, 6, 290, 37]
    recipe_file = Path(__file__).resolve().parents[1] / "models" / "inception1d_superclass.toml"
    recipe = load_recipe(recipe_file, {"training.epochs": 1, "model.options.input_length": 1000, "model.options.depth": 3})
    result = train(recipe, tmp_path / "run", splits=splits, verbose=0)
    history = (tmp_path / "run" / "history.csv").read_text()
    assert "val_macro_auc" in history.splitlines()[0]
    assert result.test_report["n"] == len(splits.test[1])


def test_interval_sources_label_ptbxl_and_deepfake_ecgs(ptbxl_dir):
    from tf_ecg.data.sources import load_source

    splits = load_source({"source": "ptbxl_intervals", "target": "PR", "sampling_rate": 100}, ptbxl_dir.parent)
    kept = sum(len(part[1]) for part in (splits.train, splits.val, splits.test))
    assert kept + splits.info["dropped_by_quality"] == 415 and kept >= 400
    assert splits.train[0].shape[1:] == (1000, 8) and splits.train[1].shape[1:] == (1,)
    assert 120 <= np.median(splits.train[1]) <= 200 and splits.output_names == ["PR"]
    qt = load_source({"source": "ptbxl_intervals", "target": "QT", "sampling_rate": 100}, ptbxl_dir.parent)
    assert 350 <= np.median(qt.train[1]) <= 460  # same records, labels measured once (cached)
    deepfake = load_source({"source": "deepfake_intervals", "target": "QT", "n_ecgs": 12, "sampling_rate": 100})
    labels = np.concatenate([deepfake.train[1], deepfake.val[1], deepfake.test[1]])
    assert len(labels) + deepfake.info["dropped_by_quality"] == 12 and 330 <= np.median(labels) <= 470
    with pytest.raises(ValueError, match="unknown interval target"):
        load_source({"source": "deepfake_intervals", "target": "QTc", "n_ecgs": 2})
