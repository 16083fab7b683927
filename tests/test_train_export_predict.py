"""Recipe -> train (interrupted, resumed) -> evaluate -> export -> predict, on real MIT-BIH beats."""

import json

import keras
import numpy as np
import pandas as pd
import pytest

from conftest import assert_explains
from tf_ecg.cli import main
from tf_ecg.data.formats.recording import read_recording
from tf_ecg.predict import predict_file
from tf_ecg.config import load_recipe
from tf_ecg.training.trainer import train

RECIPE = """
name = "tiny-mitbih"
[data]
source = "mitbih_beats"
records = ["101", "100"]   # 101 is in DS1 (train/val), 100 in DS2 (test)
[model]
name = "loo_conv1d"
options = {{ num_classes = 5 }}
[training]
task = "multiclass"
outputs = "logits"
loss = {{ name = "SparseCategoricalCrossentropy", from_logits = true }}
optimizer = {{ name = "adam", learning_rate = 0.001 }}
batch_size = 64
epochs = {epochs}
seed = 0
"""


def image_tags(log_dir):
    import tensorflow as tf

    tags = set()
    for event_file in log_dir.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            tags |= {value.tag for value in event.summary.value}
    return tags


class Interrupt(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise RuntimeError("power cut")


@pytest.fixture
def recipe_file(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(RECIPE.format(epochs=3))
    return path


def test_training_resumes_after_an_interruption(mitdb_dir, recipe_file, tmp_path, monkeypatch):
    import tf_ecg.training.trainer as trainer

    run_dir = tmp_path / "run"
    original = trainer._callbacks
    monkeypatch.setattr(trainer, "_callbacks", lambda *a: original(*a) + [Interrupt()])
    with pytest.raises(RuntimeError, match="power cut"):
        train(load_recipe(recipe_file), run_dir, data_root=mitdb_dir.parent, verbose=0)
    monkeypatch.setattr(trainer, "_callbacks", original)
    result = train(load_recipe(recipe_file), run_dir, data_root=mitdb_dir.parent, verbose=0)
    history = pd.read_csv(run_dir / "history.csv")
    assert history["epoch"].tolist() == [0, 1, 2]  # epochs 0-1 before the cut, 2 after resuming
    assert result.test_report["n"] > 2000
    assert result.test_report["accuracy"] > 0.5


def test_a_run_cut_after_its_patience_ran_out_is_scored_without_another_epoch(mitdb_dir, tmp_path, monkeypatch):
    """The early stopping the cut interrupted counts the epochs before it (ResumedMonitors)."""
    import tf_ecg.training.trainer as trainer

    recipe_file, run_dir = tmp_path / "patient.toml", tmp_path / "run"
    recipe_file.write_text(RECIPE.format(epochs=5) + "early_stopping = { patience = 1 }\n")
    original = trainer._callbacks
    monkeypatch.setattr(trainer, "_callbacks", lambda *a: original(*a) + [Interrupt()])
    with pytest.raises(RuntimeError, match="power cut"):
        train(load_recipe(recipe_file), run_dir, data_root=mitdb_dir.parent, verbose=0)
    monkeypatch.setattr(trainer, "_callbacks", original)
    history = pd.read_csv(run_dir / "history.csv")
    history["val_loss"] = [0.1, 0.9]  # the second epoch no better: patience 1 is spent
    history.to_csv(run_dir / "history.csv", index=False)
    result = train(load_recipe(recipe_file), run_dir, data_root=mitdb_dir.parent, verbose=0)
    assert len(pd.read_csv(run_dir / "history.csv")) == 2 and not (run_dir / "backup").exists()
    assert json.loads((run_dir / "run.json").read_text())["status"] == "finished"
    assert result.test_report["n"] > 2000


def test_cli_train_evaluate_export_predict(mitdb_dir, recipe_file, tmp_path, capsys):
    root, run_dir, saved = str(mitdb_dir.parent), tmp_path / "run", tmp_path / "saved_models" / "tiny"
    assert main(["train", str(recipe_file), "--data-root", root, "--run-dir", str(run_dir), "--epochs", "2"]) == 0
    for name in ("best.keras", "final.keras", "history.csv", "test_metrics.json",
                 "plots/test_metrics_confusion_matrix.png", "plots/test_metrics_roc.png"):
        assert (run_dir / name).is_file(), name
    events = list((run_dir / "logs").rglob("events.out.tfevents.*"))
    assert {p.parent.name for p in events} >= {"train", "validation", "images"}
    assert image_tags(run_dir / "logs" / "images") == {
        "input/example_ecg", "validation/confusion_matrix", "validation/roc", "validation/reliability",
        "validation/attributions_0", "validation/attributions_1", "validation/attributions_2"}
    report = json.loads((run_dir / "test_metrics.json").read_text())
    assert report["class_names"] == ["N", "S", "V", "F", "Q"]
    assert np.array(report["confusion_matrix"]).sum() == report["n"]

    assert main(["evaluate", str(run_dir), "--data-root", root]) == 0
    again = json.loads((run_dir / "evaluate_best_test.json").read_text())
    assert again["accuracy"] == pytest.approx(report["accuracy"])

    assert main(["export", str(run_dir), "--out", str(saved)]) == 0
    assert (saved / "saved_model.pb").is_file() and (saved / "assets.extra" / "tf_ecg.json").is_file()

    result = predict_file(saved, mitdb_dir / "100")
    assert result["kind"] == "beat" and len(result["outputs"]) > 2000
    probabilities = np.array(result["outputs"])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-5)  # softmax in the export
    assert sum(result["summary"]["votes"].values()) == len(probabilities)

    windows = np.random.default_rng(0).normal(size=(5, 160, 2)).astype("float32")
    np.save(tmp_path / "beats.npy", windows)
    assert main(["predict", str(saved), str(tmp_path / "beats.npy"), "--out", str(tmp_path / "p.json")]) == 0
    assert len(json.loads((tmp_path / "p.json").read_text())["outputs"]) == 5
    for method in ("integrated_gradients", "grad_cam"):
        assert_explains(saved, tmp_path / "beats.npy", tmp_path / method, method).shape == (5, 160, 2)


def test_cli_bad_inputs_are_clear_errors(mitdb_dir, recipe_file, tmp_path, capsys):
    run_dir, saved = tmp_path / "run", tmp_path / "saved"
    assert main(["train", str(recipe_file), "--data-root", str(mitdb_dir.parent), "--run-dir", str(run_dir),
                 "--epochs", "1"]) == 0
    assert main(["export", str(run_dir), "--out", str(saved)]) == 0
    capsys.readouterr()

    csv = tmp_path / "watch.csv"
    csv.write_text("\n".join(["1.0"] * 5000))
    assert main(["predict", str(saved), str(csv)]) == 2  # one lead at 512 Hz for a two-lead model
    assert "watch.csv: single-lead file: the model needs 2 lead(s)" in capsys.readouterr().err

    np.save(tmp_path / "one_lead.npy", np.zeros(5000, "float32"))
    assert main(["predict", str(saved), str(tmp_path / "one_lead.npy")]) == 2
    assert "one_lead.npy: single-lead file: the model needs 2 lead(s)" in capsys.readouterr().err

    assert main(["predict", str(saved), str(tmp_path / "missing")]) == 2
    assert "missing.hea: WFDB header not found" in capsys.readouterr().err

    bad_recipe = tmp_path / "bad.toml"
    bad_recipe.write_text(RECIPE.format(epochs=1).replace('name = "loo_conv1d"', 'name = "no_such_net"'))
    assert main(["train", str(bad_recipe), "--data-root", str(mitdb_dir.parent),
                 "--run-dir", str(tmp_path / "bad")]) == 2
    assert "unknown model 'no_such_net'" in capsys.readouterr().err

    assert main(["export", str(tmp_path / "no_run"), "--out", str(tmp_path / "never")]) == 2
    assert not (tmp_path / "never").exists()


def test_prediction_inputs_are_read_with_their_rate_and_leads(shared_data, mitdb_dir):
    watch = read_recording(shared_data / "applewatch-glucose" / "0921" / "glucose1" / "ecg_2023-09-21_13.csv")
    assert watch.signal.shape == (15_360, 1) and watch.sampling_rate == 512 and watch.leads == ("I",)
    assert 0.2 < np.ptp(watch.signal) < 5  # microvolts in the file, millivolts here
    record = read_recording(mitdb_dir / "100.hea")
    assert record.signal.shape == (650_000, 2) and record.sampling_rate == 360 and record.leads == ("MLII", "V5")


def test_predict_resamples_a_recording_to_the_model_rate(mitdb_dir, recipe_file, tmp_path):
    """A 250 Hz copy of record 100 gives about the beats (R peaks are detected anew at the
    model's rate) and the same majority class as the 360 Hz original."""
    from conftest import write_record
    from tf_ecg.data.resample import resample
    from tf_ecg.data.formats.wfdb_records import read_record

    run_dir, saved = tmp_path / "run", tmp_path / "saved"
    assert main(["train", str(recipe_file), "--data-root", str(mitdb_dir.parent), "--run-dir", str(run_dir),
                 "--epochs", "1"]) == 0
    assert main(["export", str(run_dir), "--out", str(saved)]) == 0
    record = read_record(mitdb_dir / "100")
    minutes = slice(0, 360 * 120)
    write_record(tmp_path, "rec250", resample(record.signal[minutes], 360, 250), 250, list(record.leads))
    write_record(tmp_path, "rec360", record.signal[minutes], 360, list(record.leads))
    at_250, at_360 = predict_file(saved, tmp_path / "rec250"), predict_file(saved, tmp_path / "rec360")
    assert abs(len(at_250["outputs"]) - len(at_360["outputs"])) <= 0.1 * len(at_360["outputs"])
    assert at_250["positions"][-1] < 360 * 120  # positions are samples at the model's rate
    assert at_250["summary"]["majority"] == at_360["summary"]["majority"]
