"""Attributions: on a model that can only see one known segment they must lie inside it; both
methods through a SavedModel on the user's millivolts; one-line errors, nothing written."""

import json

import keras
import numpy as np
import pytest

import tf_ecg
from tf_ecg.data.spec import InputSpec
from tf_ecg.errors import ECGDataError
from tf_ecg.saved_model import calibrated_serving, export_model
from tf_ecg.serving import serving_contract

SEGMENT = (80, 120)  # the only samples the network sees


def _export(model, tmp_path, name="saved"):
    spec = InputSpec("segment", 100, 200, None, 2, normalisation="none")
    metadata = {"input_spec": spec.to_dict(), "output_names": ["a", "b", "c"], "task": "multiclass",
                "outputs": "logits", "thresholds": 0.5, "serving": serving_contract(spec)}
    serving, endpoints = calibrated_serving(model, spec, "multiclass", "logits", None)
    return export_model(serving, tmp_path / name, metadata, endpoints)


def _segment_model(seed):
    keras.utils.set_random_seed(seed)
    mask = np.zeros((1, 200, 1), "float32")
    mask[:, SEGMENT[0]:SEGMENT[1]] = 1
    x = keras.Input((200, 2))
    features = keras.layers.Conv1D(8, 5, padding="same", activation="relu")(x)
    seen = keras.layers.Lambda(lambda f: f * mask, name="only_the_segment")(features)
    logits = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling1D()(seen))
    return keras.Model(x, logits)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("method", ["integrated_gradients", "grad_cam"])
def test_attributions_lie_in_the_only_segment_the_model_sees(method, seed, tmp_path):
    model = _segment_model(seed)
    saved = _export(model, tmp_path)
    windows = np.random.default_rng(seed).normal(0, 0.5, size=(5, 200, 2)).astype("float32")
    result = tf_ecg.load(saved).explain(windows, tmp_path / "explained", method=method, sampling_rate=100)
    attributions = result["attributions"]
    assert attributions.shape == windows.shape and np.isfinite(attributions).all()
    magnitude = np.abs(attributions).sum(axis=2)
    inside = magnitude[:, SEGMENT[0] - 2:SEGMENT[1] + 2].sum(axis=1) / magnitude.sum(axis=1)  # +-2: the kernel's reach
    assert (inside > 0.9).all(), inside
    assert ((SEGMENT[0] - 2 <= magnitude.argmax(axis=1)) & (magnitude.argmax(axis=1) < SEGMENT[1] + 2)).all()
    written = json.loads((tmp_path / "explained" / "explain.json").read_text())
    assert written["method"] == method and len(written["explained"]) == 5
    np.testing.assert_array_equal(np.load(tmp_path / "explained" / "attributions.npy"), attributions)
    assert (tmp_path / "explained" / "strip_0.png").stat().st_size > 10_000


def test_integrated_gradients_sum_to_the_change_in_output(tmp_path):
    """Completeness: the attributions of a window add up to p(window) - p(0 mV baseline)."""
    model = _segment_model(0)
    saved = _export(model, tmp_path)
    windows = np.random.default_rng(5).normal(0, 0.5, size=(3, 200, 2)).astype("float32")
    loaded = tf_ecg.load(saved)
    result = loaded.explain(windows, method="integrated_gradients", sampling_rate=100, steps=128)
    served = np.asarray(result["outputs"])
    baseline = loaded.exported(np.zeros_like(windows))
    chosen = served.argmax(axis=1)
    expected = served[np.arange(3), chosen] - baseline[np.arange(3), chosen]
    np.testing.assert_allclose(result["attributions"].sum(axis=(1, 2)), expected, atol=2e-3)


def test_explain_bad_requests_are_one_line_errors_and_write_nothing(tmp_path):
    saved = _export(_segment_model(0), tmp_path)
    windows = np.random.default_rng(0).normal(size=(2, 200, 2)).astype("float32")
    model = tf_ecg.load(saved)
    with pytest.raises(ECGDataError, match="'d' is not one of the model's outputs: a, b, c"):
        model.explain(windows, tmp_path / "out", output="d", sampling_rate=100)
    with pytest.raises(ECGDataError, match="unknown method 'shap'"):
        model.explain(windows, tmp_path / "out", method="shap", sampling_rate=100)
    with pytest.raises(ECGDataError, match="shorter than|needs|samples"):
        model.explain(np.random.default_rng(0).normal(size=(150, 2)), tmp_path / "out", sampling_rate=100)
    x = keras.Input((200, 2))
    dense_only = keras.Model(x, keras.layers.Dense(3)(keras.layers.Flatten()(x)))
    without_conv = tf_ecg.load(_export(dense_only, tmp_path, "dense"))
    with pytest.raises(ECGDataError, match="grad_cam needs a convolutional feature map"):
        without_conv.explain(windows, tmp_path / "out", method="grad_cam", sampling_rate=100)
    assert not (tmp_path / "out").exists()
    assert without_conv.explain(windows, method="integrated_gradients", sampling_rate=100)["attributions"].shape == \
        windows.shape  # integrated gradients work on any export


def test_the_automatic_method_is_the_one_the_benchmark_measured_best(tmp_path):
    """Grad-CAM for classifiers, integrated gradients for regressors and for exports without a
    feature map, as benchmarks/explain.py chose them (results/explain.json)."""
    from conftest import REPO
    from tf_ecg.explain import DEFAULT_METHOD

    measured = json.loads((REPO / "benchmarks" / "results" / "explain.json").read_text())["results"]["default"]
    assert DEFAULT_METHOD == {family: measured[family] for family in ("classification", "regression")}
    windows = np.random.default_rng(0).normal(size=(2, 200, 2)).astype("float32")
    classifier = tf_ecg.load(_export(_segment_model(0), tmp_path)).explain(windows, sampling_rate=100)
    assert classifier["method"] == "grad_cam" and classifier["chosen_by"] == "auto"
    x = keras.Input((200, 2))
    dense_only = keras.Model(x, keras.layers.Dense(3)(keras.layers.Flatten()(x)))
    without_conv = tf_ecg.load(_export(dense_only, tmp_path, "dense")).explain(windows, sampling_rate=100)
    assert without_conv["method"] == "integrated_gradients"
