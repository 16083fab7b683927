"""Exports carry what was fitted on the run's validation split: temperature-scaled
probabilities (argmax unchanged, the raw ones one flag away), the confidence for a target
accuracy, and split-conformal intervals for regressors; older exports still predict."""

import json

import numpy as np
import pytest
from scipy.special import softmax

import tf_ecg
from tf_ecg.data.sources import Splits
from tf_ecg.data.spec import InputSpec
from tf_ecg.errors import ECGDataError
from tf_ecg.evaluation.calibration import conformal_half_width

RECIPE = """
[data]
source = "deepfake_intervals"
[model]
name = "loo_conv1d"
options = {{ num_classes = {outputs}, window = 64, num_leads = 1 }}
[training]
task = "{task}"
outputs = "{kind}"
loss = "{loss}"
optimizer = {{ name = "adam", learning_rate = 0.003 }}
batch_size = 16
epochs = 4
"""


def _splits(task: str) -> Splits:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 64, 1)).astype("float32")
    signal = x[:, :8, 0].mean(axis=1)
    y = ((signal * 10 + 60)[:, None].astype("float32") if task == "regression"
         else np.digitize(signal, [-0.2, 0.2]).astype("int64"))
    return Splits((x[:240], y[:240]), (x[240:320], y[240:320]), (x[320:], y[320:]),
                  InputSpec("segment", 100, 64, ["II"], 1, normalisation="none"), ["HR"] if task == "regression" else ["a", "b", "c"])


def _export(tmp_path, task):
    recipe = tmp_path / f"{task}.toml"
    recipe.write_text(RECIPE.format(task=task, outputs=1 if task == "regression" else 3,
                                    kind="values" if task == "regression" else "logits",
                                    loss="mean_absolute_error" if task == "regression"
                                    else "sparse_categorical_crossentropy"))
    splits = _splits(task)
    result = tf_ecg.train(recipe, tmp_path / "run", splits=splits, verbose=0)
    return result, splits, tf_ecg.export(tmp_path / "run", tmp_path / "saved")


def test_a_classifier_serves_calibrated_probabilities_and_flags_unsure_windows(tmp_path):
    result, splits, saved = _export(tmp_path, "multiclass")
    metadata = json.loads((saved / "assets.extra" / "tf_ecg.json").read_text())
    calibration = metadata["calibration"]
    assert calibration["method"] == "temperature scaling" and len(calibration["temperature"]) == 1
    assert calibration["val_ece_after"] <= calibration["val_ece_before"] + 1e-9
    assert metadata["endpoints"] == ["serve", "features", "head"]  # features, head: Grad-CAM

    model = tf_ecg.load(saved)
    windows = splits.test[0]
    served = model.predict(windows, sampling_rate=100)
    raw = model.predict(windows, sampling_rate=100, raw=True)
    assert served["calibration"]["served"] == "calibrated" and raw["calibration"]["served"] == "raw"
    # raw: the network's own softmax, the temperature undone
    np.testing.assert_allclose(raw["outputs"], softmax(result.model.predict(windows, verbose=0), axis=1), atol=1e-5)
    assert served["predicted"] == raw["predicted"]  # a temperature never changes an argmax
    assert not np.allclose(served["outputs"], raw["outputs"], atol=1e-4)

    table = calibration["risk_coverage"]
    strict = model.predict(windows, sampling_rate=100, target_accuracy=max(table["accuracy"]))
    loose = model.predict(windows, sampling_rate=100, target_accuracy=min(table["accuracy"]))
    assert loose["summary"]["flagged"]["windows"] == 0  # every coverage reached the lowest accuracy
    assert sum(strict["flagged"]) >= sum(loose["flagged"])
    with pytest.raises(ECGDataError, match="drop --raw"):
        model.predict(windows, sampling_rate=100, raw=True, target_accuracy=0.9)


def test_a_regressor_serves_a_split_conformal_interval(tmp_path):
    result, splits, saved = _export(tmp_path, "regression")
    metadata = json.loads((saved / "assets.extra" / "tf_ecg.json").read_text())
    val_predictions = result.model.predict(splits.val[0], verbose=0)
    expected = conformal_half_width(splits.val[1] - val_predictions, 0.9)[0]
    assert metadata["calibration"]["half_width"]["HR"] == pytest.approx(expected, rel=1e-4)
    prediction = tf_ecg.load(saved).predict(splits.test[0], sampling_rate=100)
    values = np.asarray(prediction["outputs"])
    np.testing.assert_allclose(np.asarray(prediction["intervals"]["upper"]) - values, expected, rtol=1e-4)
    np.testing.assert_allclose(values - np.asarray(prediction["intervals"]["lower"]), expected, rtol=1e-4)
    assert prediction["intervals"]["level"] == 0.9
    interval = json.loads((tmp_path / "run" / "test_metrics.json").read_text())["interval"]["per_target"]["HR"]
    covered = np.abs(splits.test[1] - result.model.predict(splits.test[0], verbose=0)) <= expected
    assert interval["half_width"] == pytest.approx(expected, rel=1e-4)
    assert interval["coverage"] == pytest.approx(covered.mean(), abs=1e-6)


def test_an_export_from_before_calibration_still_predicts_and_says_so(tmp_path):
    _, splits, saved = _export(tmp_path, "multiclass")
    metadata_file = saved / "assets.extra" / "tf_ecg.json"
    metadata = json.loads(metadata_file.read_text())
    del metadata["calibration"], metadata["endpoints"]
    metadata_file.write_text(json.dumps(metadata))
    prediction = tf_ecg.load(saved).predict(splits.test[0], sampling_rate=100)
    assert prediction["calibration"].startswith("none: exported before") and len(prediction["outputs"]) == 80
    with pytest.raises(ECGDataError, match="no validation risk-coverage table"):
        tf_ecg.load(saved).predict(splits.test[0], sampling_rate=100, target_accuracy=0.9)


def test_a_preset_calibrates_on_labelled_windows_and_keeps_its_decisions(originals, shared_data, tmp_path):
    """The glucose network with the original checkpoint, calibrated on the validation dates'
    beats: its temperature sharpens an under-confident network, decisions stay the same."""
    from tf_ecg.cli import main
    from tf_ecg.data.glucose import DATE_SPLIT, cached_study_beats
    from tf_ecg.published import get_preset
    from tf_ecg.serving import serving_windows

    study = cached_study_beats(str(shared_data / "applewatch-glucose"))
    spec = get_preset("glucose_supervised").input_spec
    val, test = study.dates(DATE_SPLIT["val"]), study.dates(DATE_SPLIT["test"])
    np.savez(tmp_path / "labelled.npz", windows=serving_windows(val.beats[:, :, None], spec), labels=val.labels[:, None])
    weights = originals / "weights" / "glucose" / "effnetv2_ecg_l_xxxs_20240111_epoch150_1e-4.pth"
    assert main(["export", "--preset", "glucose_supervised", "--weights", str(weights), "--out", str(tmp_path / "cal"),
                 "--calibration-data", str(tmp_path / "labelled.npz")]) == 0
    calibration = json.loads((tmp_path / "cal" / "assets.extra" / "tf_ecg.json").read_text())["calibration"]
    assert calibration["val_ece_after"] < calibration["val_ece_before"] and calibration["temperature"][0] < 1
    windows = serving_windows(test.beats[:200, :, None], spec)
    model = tf_ecg.load(tmp_path / "cal")
    calibrated, raw = model.predict(windows, units="mV"), model.predict(windows, units="mV", raw=True)
    assert calibrated["predicted"] == raw["predicted"]  # the 0.5 threshold is logit 0 at any temperature
    assert np.abs(np.asarray(calibrated["outputs"]) - 0.5).mean() > np.abs(np.asarray(raw["outputs"]) - 0.5).mean()

    np.savez(tmp_path / "unlabelled.npz", windows=windows)
    assert main(["export", "--preset", "glucose_supervised", "--weights", str(weights), "--out", str(tmp_path / "x"),
                 "--calibration-data", str(tmp_path / "unlabelled.npz")]) == 2
    assert not (tmp_path / "x").exists()
