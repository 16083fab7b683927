"""Run directories record what made them: resolved recipe, run.json, resume rules,
evaluate and export from the resolved recipe, TensorBoard summaries of the whole run."""

import json

import numpy as np
import pandas as pd
import pytest
import tomllib

from tf_ecg.cli import main
from tf_ecg.config import load_recipe
from tf_ecg.training.trainer import train
from test_train_export_predict import RECIPE as TINY_MITBIH_RECIPE

RECIPE = TINY_MITBIH_RECIPE.format(epochs=2)


@pytest.fixture
def recipe_file(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(RECIPE)
    return path


def strict_json(path):
    def refuse(constant):
        raise AssertionError(f"{path} holds a bare {constant}")

    return json.loads(path.read_text(), parse_constant=refuse)


def tensorboard_values(log_dir):
    import tensorflow as tf

    tags = {}
    for event_file in log_dir.rglob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            for value in event.summary.value:
                tags[value.tag] = value
    return tags


def test_overrides_are_recorded_and_evaluate_uses_them(mitdb_dir, recipe_file, tmp_path, capsys):
    root, run_dir = str(mitdb_dir.parent), tmp_path / "run"
    # The case: a window other than the recipe's 80 + 80 samples.
    assert main(["train", str(recipe_file), "--data-root", root, "--run-dir", str(run_dir),
                 "--set", "data.before=40", "--set", "data.after=120", "--epochs", "1"]) == 0
    resolved = tomllib.loads((run_dir / "recipe.toml").read_text())
    assert resolved["data"]["before"] == 40 and resolved["data"]["after"] == 120
    assert resolved["training"]["epochs"] == 1
    assert resolved["data"]["val_fraction"] == 0.1  # defaults are filled in, not left implicit

    record = strict_json(run_dir / "run.json")
    assert record["status"] == "finished" and record["seed"] == 0
    assert record["overrides"] == {"data.before": 40, "data.after": 120, "training.epochs": 1}
    assert record["machine"]["tensorflow"] and record["machine"]["keras"] and record["machine"]["tf_ecg"]
    assert record["machine"]["cpu"]["model_name"]
    fingerprint = record["data"]["fingerprint"]
    assert fingerprint["test"]["input_shape"] == [160, 2] and fingerprint["test"]["n"] > 2000
    assert len(fingerprint["test"]["labels_sha256"]) == 64
    trained = strict_json(run_dir / "test_metrics.json")

    capsys.readouterr()
    assert main(["evaluate", str(run_dir), "--data-root", root]) == 0
    evaluated = strict_json(run_dir / "evaluate_best_test.json")
    assert evaluated["data_matches_run"] is True
    assert evaluated["accuracy"] == pytest.approx(trained["accuracy"])
    assert evaluated["n"] == trained["n"]
    assert "warning" not in capsys.readouterr().err


def test_a_run_directory_refuses_another_recipe_and_a_finished_run(mitdb_dir, recipe_file, tmp_path, capsys):
    root, run_dir = str(mitdb_dir.parent), tmp_path / "run"
    assert main(["train", str(recipe_file), "--data-root", root, "--run-dir", str(run_dir), "--epochs", "1"]) == 0
    history = (run_dir / "history.csv").read_text()
    capsys.readouterr()

    assert main(["train", str(recipe_file), "--data-root", root, "--run-dir", str(run_dir), "--epochs", "1",
                 "--set", "training.optimizer.learning_rate=0.01", "--set", "data.after=90"]) == 2
    error = capsys.readouterr().err
    assert "data.after" in error and "training.optimizer.learning_rate" in error and "--restart" in error

    assert main(["train", str(recipe_file), "--data-root", root, "--run-dir", str(run_dir), "--epochs", "1"]) == 2
    assert "has finished" in capsys.readouterr().err
    assert (run_dir / "history.csv").read_text() == history  # no duplicated rows

    assert main(["train", str(recipe_file), "--data-root", root, "--run-dir", str(run_dir), "--epochs", "1",
                 "--set", "data.after=90", "--restart"]) == 2  # a 170-sample window for a 160-sample model
    assert "takes inputs of shape (160, 2), the data are (170, 2)" in capsys.readouterr().err
    assert (run_dir / "history.csv").read_text() == history  # refused before anything was removed
    assert main(["train", str(recipe_file), "--data-root", root, "--run-dir", str(run_dir), "--epochs", "1",
                 "--set", "data.after=90", "--set", "model.options.window=170", "--restart"]) == 0
    assert tomllib.loads((run_dir / "recipe.toml").read_text())["data"]["after"] == 90
    assert len(pd.read_csv(run_dir / "history.csv")) == 1


def test_train_leaves_nothing_behind_when_it_fails_and_never_takes_a_foreign_folder(
        mitdb_dir, recipe_file, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["train", str(recipe_file), "--data-root", str(tmp_path / "nowhere"), "--run-dir", str(run_dir)]) == 2
    assert "data set 'mitdb' not found" in capsys.readouterr().err
    assert not run_dir.exists()

    wrong_outputs = tmp_path / "wrong.toml"
    wrong_outputs.write_text(RECIPE.replace("num_classes = 5", "num_classes = 3"))
    assert main(["train", str(wrong_outputs), "--data-root", str(mitdb_dir.parent), "--run-dir", str(run_dir)]) == 2
    assert "3 outputs, the data has 5" in capsys.readouterr().err
    assert not run_dir.exists()

    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert main(["train", str(recipe_file), "--data-root", str(mitdb_dir.parent), "--run-dir", str(foreign)]) == 2
    assert "not a tf_ecg run" in capsys.readouterr().err
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]


def test_export_never_deletes_what_it_did_not_write(mitdb_dir, recipe_file, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["train", str(recipe_file), "--data-root", str(mitdb_dir.parent), "--run-dir", str(run_dir),
                 "--epochs", "1"]) == 0
    before = sorted(p.relative_to(run_dir) for p in run_dir.rglob("*"))
    capsys.readouterr()

    assert main(["export", str(run_dir), "--out", str(run_dir)]) == 2  # the lost run
    assert "overlap" in capsys.readouterr().err
    assert sorted(p.relative_to(run_dir) for p in run_dir.rglob("*")) == before

    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    assert main(["export", str(run_dir), "--out", str(other)]) == 2
    assert "did not write" in capsys.readouterr().err
    assert (other / "notes.txt").read_text() == "keep me"

    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert main(["export", str(run_dir), "--out", str(a_file)]) == 2
    assert a_file.read_text() == "x"

    saved = tmp_path / "saved"
    assert main(["export", str(run_dir), "--out", str(saved)]) == 0
    assert main(["export", str(run_dir), "--out", str(saved)]) == 0  # an earlier export is replaced
    metadata = strict_json(saved / "assets.extra" / "tf_ecg.json")
    assert metadata["recipe"]["data"]["source"] == "mitbih_beats" and metadata["thresholds"] == 0.5

    assert main(["export", str(tmp_path / "no_run"), "--out", str(tmp_path / "never")]) == 2
    assert "run directory not found" in capsys.readouterr().err
    assert not (tmp_path / "never").exists()


def test_tensorboard_shows_the_whole_run(mitdb_dir, tmp_path):
    run_dir, recipe_file = tmp_path / "run", tmp_path / "two_classes.toml"
    recipe_file.write_text(RECIPE.replace('"101"', '"119"'))  # 119: N and V beats, so AUCs are defined
    train(load_recipe(recipe_file), run_dir, data_root=mitdb_dir.parent, verbose=0)
    history = pd.read_csv(run_dir / "history.csv")
    for column in ("val_macro_f1", "val_macro_auc", "val_accuracy"):
        assert history[column].between(0, 1).all(), column
    values = tensorboard_values(run_dir / "logs")
    assert {"recipe", "test_metrics", "test/accuracy", "test/macro_f1", "test/macro_auc"} <= set(values)
    assert {"epoch_macro_f1", "epoch_macro_auc"} <= set(tensorboard_values(run_dir / "logs" / "validation"))
    recipe_text = values["recipe"].tensor.string_val[0].decode()
    assert 'source = "mitbih_beats"' in recipe_text
    hparams = [v for v in values.values() if v.metadata.plugin_data.plugin_name == "hparams"]
    assert hparams, "no HParams summary"
    from tensorboard.plugins.hparams import plugin_data_pb2

    session = plugin_data_pb2.HParamsPluginData.FromString(hparams[0].metadata.plugin_data.content)
    assert session.session_start_info.hparams["training.optimizer.learning_rate"].number_value == pytest.approx(1e-3)
    assert session.session_start_info.hparams["data.source"].string_value == "mitbih_beats"


def test_regression_runs_log_rmse_and_r2_not_mae_twice(tmp_path):
    from tf_ecg.data.sources import Splits
    from tf_ecg.data.spec import InputSpec

    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 64, 1)).astype("float32")
    y = (x[:, :8, 0].mean(axis=1, keepdims=True) * 10 + 60).astype("float32")
    splits = Splits((x[:64], y[:64]), (x[64:80], y[64:80]), (x[80:], y[80:]),
                    InputSpec("segment", 100, 64, ["II"], 1), ["HR"])
    recipe_path = tmp_path / "regression.toml"
    recipe_path.write_text("""
[data]
source = "deepfake_intervals"
[model]
name = "loo_conv1d"
options = { num_classes = 1, window = 64, num_leads = 1 }
[training]
task = "regression"
outputs = "values"
loss = "mean_absolute_error"
optimizer = { name = "adam", learning_rate = 0.001 }
batch_size = 16
epochs = 2
""")
    train(load_recipe(recipe_path), tmp_path / "run", splits=splits, verbose=0)
    columns = set(pd.read_csv(tmp_path / "run" / "history.csv").columns)
    assert {"loss", "rmse", "val_loss", "val_rmse", "val_r2"} <= columns
    assert not {"mae", "val_mae"} & columns  # the L1 loss is the MAE already


def test_a_seeded_run_does_not_depend_on_what_the_process_drew_before(tmp_path, monkeypatch):
    """The model's initial weights come from the recipe's seed alone, although a data source
    may draw random numbers only on its first use (the DeepFake generator is built once)."""
    import keras

    import tf_ecg.training.trainer as trainer
    from tf_ecg.data.sources import Splits
    from tf_ecg.data.spec import InputSpec

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(48, 160, 2)).astype("float32"), rng.integers(0, 5, 48)
    splits = Splits((x[:32], y[:32]), (x[32:40], y[32:40]), (x[40:], y[40:]),
                    InputSpec("beat", 360, 160, None, 2, before=80, after=80), list("NSVFQ"))
    calls = []

    def source_that_builds_a_network_once(options, data_root=None):
        if not calls:
            keras.layers.Dense(8).build((None, 4))  # draws from the global seed generator
        calls.append(options)
        return splits

    monkeypatch.setattr(trainer, "load_source", source_that_builds_a_network_once)
    recipe_path = tmp_path / "tiny.toml"
    recipe_path.write_text(RECIPE.replace("epochs = 2", "epochs = 1"))
    first = train(load_recipe(recipe_path), tmp_path / "a", verbose=0).model
    second = train(load_recipe(recipe_path), tmp_path / "b", verbose=0).model
    assert len(calls) == 2
    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_history_gains_the_columns_a_newer_version_logs_without_breaking(tmp_path):
    """A run resumed by a tf_ecg that logs more metrics: history.csv is rewritten with every
    column (earlier epochs empty there), not appended under the old header."""
    from tf_ecg.training.callbacks import HistoryCSV

    path = tmp_path / "history.csv"
    path.write_text("epoch,accuracy,loss\n0,0.5,1.0\n")  # written by an older version
    HistoryCSV(path).on_epoch_end(1, {"loss": 0.8, "accuracy": 0.6, "val_ece": 0.1})
    history = pd.read_csv(path)
    assert list(history.columns) == ["epoch", "accuracy", "loss", "val_ece"]
    assert history["epoch"].tolist() == [0, 1] and history["loss"].tolist() == [1.0, 0.8]
    assert np.isnan(history["val_ece"][0]) and history["val_ece"][1] == 0.1
