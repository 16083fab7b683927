"""tf_ecg.models.layers: each layer computes what its Keras counterpart computes (outputs,
gradients, moving statistics) and round-trips through a saved model."""

import importlib.util

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_ecg.models import layers as ecg_layers
from tf_ecg.models.layers import BatchNorm, GroupedConv1D, MeanPooling1D, PointwiseConv1D, UpsampledConv1D

RNG = np.random.default_rng(7)


def _outputs_and_gradients(layer, x, training=False):
    """Outputs, and gradients of a fixed random projection of them w.r.t. input and weights."""
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=training) if training else layer(x)
        projection = tf.constant(np.random.default_rng(0).normal(size=y.shape).astype("float32"))
        loss = tf.reduce_sum(y * projection)
    return y.numpy(), [g.numpy() for g in tape.gradient(loss, [x, *layer.trainable_weights])]


def _assert_same(reference, ours, x, training=False, rtol=2e-5):
    y_ref, g_ref = _outputs_and_gradients(reference, x, training)
    y, g = _outputs_and_gradients(ours, x, training)
    scale = np.abs(y_ref).max()
    np.testing.assert_allclose(y, y_ref, atol=rtol * scale)
    for a, b in zip(g, g_ref):
        np.testing.assert_allclose(a, b, atol=rtol * np.abs(b).max())


def _round_trip(layer, x, tmp_path):
    inputs = keras.Input(x.shape[1:])
    model = keras.Model(inputs, layer(inputs))
    model.save(tmp_path / "layer.keras")
    loaded = keras.models.load_model(tmp_path / "layer.keras")
    assert type(loaded.layers[1]) is type(layer)
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)


@pytest.mark.parametrize("onednn", [True, False])
@pytest.mark.parametrize("shape", [(8, 50, 6), (8, 6), (4, 5, 7, 6), (4, 9, 64)])
def test_batch_norm_equals_keras_batch_normalization(monkeypatch, onednn, shape):
    """Both formulations (the fused kernel; Keras' element-wise operations, which Eigen runs
    faster below 64 channels): training outputs, gradients, moving statistics, inference."""
    monkeypatch.setattr(ecg_layers, "onednn_enabled", lambda: onednn)
    x = RNG.normal(2.0, 3.0, shape).astype("float32")
    reference = keras.layers.BatchNormalization(momentum=0.7, epsilon=1e-5)
    ours = BatchNorm(momentum=0.7, epsilon=1e-5)
    for layer in (reference, ours):
        layer.build(shape)
    reference.gamma.assign(RNG.normal(1.0, 0.2, shape[-1]))
    reference.beta.assign(RNG.normal(0.0, 0.2, shape[-1]))
    ours.set_weights(reference.get_weights())
    _assert_same(reference, ours, x, training=True)
    for ref, mine in zip(reference.get_weights(), ours.get_weights()):  # moving statistics updated alike
        np.testing.assert_allclose(mine, ref, rtol=1e-5, atol=1e-6)
    assert not np.allclose(ours.moving_variance.numpy(), 1.0)
    _assert_same(reference, ours, x)  # inference: the moving statistics


@pytest.mark.parametrize("onednn", [True, False])
def test_unbiased_moving_variance_is_pytorchs_running_variance(monkeypatch, onednn):
    monkeypatch.setattr(ecg_layers, "onednn_enabled", lambda: onednn)
    x = RNG.normal(1.0, 2.0, (5, 4, 3)).astype("float32")  # n = 20: biased and unbiased differ by 5 %
    layer = BatchNorm(momentum=0.9, epsilon=1e-5, unbiased_moving_variance=True)
    layer(x, training=True)
    values = x.reshape(-1, 3)
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.1 * values.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(layer.moving_variance.numpy(), 0.9 + 0.1 * values.var(axis=0, ddof=1), rtol=1e-5)
    if importlib.util.find_spec("torch"):
        import torch

        norm = torch.nn.BatchNorm1d(3).train()
        norm(torch.from_numpy(x.transpose(0, 2, 1).copy()))
        np.testing.assert_allclose(layer.moving_variance.numpy(), norm.running_var.numpy(), rtol=1e-5)


@pytest.mark.parametrize("onednn", [True, False])
def test_a_batch_of_one_leaves_pytorchs_moving_statistics_finite(monkeypatch, onednn):
    """One value per channel (the last batch of one, after pooling) has no spread: PyTorch
    refuses it in training; the port keeps its moving statistics instead of storing 0 / 0."""
    monkeypatch.setattr(ecg_layers, "onednn_enabled", lambda: onednn)
    layer = BatchNorm(momentum=0.9, epsilon=1e-5, unbiased_moving_variance=True)
    x = RNG.normal(1.0, 2.0, (6, 3)).astype("float32")
    layer(x, training=True)
    mean, variance = layer.moving_mean.numpy(), layer.moving_variance.numpy()
    outputs = layer(x[:1], training=True)
    assert np.isfinite(np.asarray(outputs)).all()
    np.testing.assert_array_equal(layer.moving_mean.numpy(), mean)
    np.testing.assert_array_equal(layer.moving_variance.numpy(), variance)
    assert np.isfinite(np.asarray(layer(x))).all()


def test_batch_norm_round_trips(tmp_path):
    layer = BatchNorm(unbiased_moving_variance=True)
    _round_trip(layer, RNG.normal(size=(2, 7, 3)).astype("float32"), tmp_path)
    assert keras.models.load_model(tmp_path / "layer.keras").layers[1].unbiased_moving_variance


@pytest.mark.parametrize("strides", [1, 2, 3])
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_pointwise_conv_equals_conv1d(strides, padding):
    x = RNG.normal(size=(3, 11, 5)).astype("float32")
    reference = keras.layers.Conv1D(4, 1, strides=strides, padding=padding, activation="relu")
    ours = PointwiseConv1D(4, 1, strides=strides, padding=padding, activation="relu")
    for layer in (reference, ours):
        layer.build(x.shape)
    ours.set_weights(reference.get_weights())
    _assert_same(reference, ours, x)


def test_conv1d_picks_the_pointwise_layer_and_it_round_trips(tmp_path):
    assert type(ecg_layers.conv1d(4, 1)) is PointwiseConv1D
    assert type(ecg_layers.conv1d(4, 3)) is keras.layers.Conv1D
    assert type(ecg_layers.conv1d(4, 1, groups=2)) is keras.layers.Conv1D
    _round_trip(PointwiseConv1D(4, 1, strides=2), RNG.normal(size=(2, 9, 3)).astype("float32"), tmp_path)
    with pytest.raises(ValueError, match="kernel size 1"):
        PointwiseConv1D(4, 3).build((None, 9, 3))


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_grouped_conv_equals_keras_grouped_conv(padding):
    x = RNG.normal(size=(2, 15, 64)).astype("float32")
    reference = keras.layers.Conv1D(64, 3, padding=padding, groups=32)
    ours = GroupedConv1D(64, 3, padding=padding, groups=32)
    for layer in (reference, ours):
        layer.build(x.shape)
    ours.set_weights(reference.get_weights())
    _assert_same(reference, ours, x)


def test_grouped_conv_round_trips(tmp_path):
    _round_trip(GroupedConv1D(64, 3, padding="same", groups=32), RNG.normal(size=(2, 15, 64)).astype("float32"),
                tmp_path)
    with pytest.raises(ValueError, match="stride 1"):
        GroupedConv1D(64, 3, strides=2, groups=32).build((None, 15, 64))


@pytest.mark.parametrize("pool", [2, 3, 8, 15])
def test_mean_pooling_equals_average_pooling(pool, tmp_path):
    x = RNG.normal(size=(2, 17, 3)).astype("float32")  # a remainder for every pool but 17
    _assert_same(keras.layers.AveragePooling1D(pool), MeanPooling1D(pool), x)
    _round_trip(MeanPooling1D(pool), x, tmp_path)


@pytest.mark.parametrize("factor, kernel", [(5, 25), (2, 25), (3, 7)])
def test_upsampled_conv_equals_upsampling_padding_conv(factor, kernel, tmp_path):
    x = RNG.normal(size=(2, 10, 6)).astype("float32")
    conv = keras.layers.Conv1D(4, kernel, activation="relu")
    inputs = keras.Input(x.shape[1:])
    chain = keras.layers.UpSampling1D(factor)(inputs)
    chain = keras.Model(inputs, conv(keras.layers.ZeroPadding1D((kernel - 1) // 2)(chain)))
    ours = UpsampledConv1D(4, kernel, upsampling=factor, activation="relu")
    ours.build(x.shape)
    ours.set_weights(conv.get_weights())
    assert ours(x).shape == (2, 10 * factor, 4)
    _assert_same(chain, ours, x)
    _round_trip(UpsampledConv1D(4, kernel, upsampling=factor), x, tmp_path)
