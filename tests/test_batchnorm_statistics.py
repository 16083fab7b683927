"""Recomputed BatchNorm statistics ("precise BN") for the quickstart's training."""

import keras
import numpy as np
import pytest

from tf_ecg.training.callbacks import BatchNormStatistics, recompute_batch_norm_statistics


def small_model():
    inputs = keras.Input((16, 2))
    x = keras.layers.Conv1D(3, 1, name="conv")(inputs)
    x = keras.layers.BatchNormalization(momentum=0.9, name="bn")(x)
    x = keras.layers.Dropout(0.5, name="drop")(x)
    x = keras.layers.BatchNormalization(momentum=0.9, name="bn2")(x)
    outputs = keras.layers.Dense(1)(keras.layers.Flatten()(x))
    return keras.Model(inputs, outputs)


def test_statistics_are_those_of_the_current_weights_and_settings_come_back():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(128, 16, 2)).astype("float32")
    model = small_model()
    model.compile(keras.optimizers.Adam(0.1), "mae")
    model.fit(x, rng.normal(size=(128, 1)), batch_size=16, epochs=1, verbose=0)  # weights move a lot
    recompute_batch_norm_statistics(model, x, chunk=64)
    conv = keras.Model(model.input, model.get_layer("conv").output)(x).numpy()
    bn = model.get_layer("bn")
    np.testing.assert_allclose(bn.moving_mean.numpy(), conv.mean(axis=(0, 1)), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(), conv.var(axis=(0, 1)), rtol=0.05)
    # the second BN saw the first one's batch-normalised output without dropout: mean beta, variance gamma^2
    np.testing.assert_allclose(model.get_layer("bn2").moving_mean.numpy(), bn.beta.numpy(), atol=1e-4)
    np.testing.assert_allclose(model.get_layer("bn2").moving_variance.numpy(), bn.gamma.numpy() ** 2, rtol=0.02)
    assert bn.momentum == 0.9 and model.get_layer("drop").rate == 0.5


def test_the_callback_runs_after_the_last_step_of_each_epoch_before_validation():
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(1)
    x = rng.normal(1.0, 3.0, size=(96, 16, 2)).astype("float32")
    y = x[:, :, 0].mean(axis=1, keepdims=True)
    model = small_model()
    model.compile(keras.optimizers.Adam(0.05), "mae")
    callback = BatchNormStatistics(x, samples=96, chunk=32)
    history = model.fit(x, y, batch_size=16, epochs=2, validation_data=(x, y), callbacks=[callback], verbose=0)
    after_fit = [v.numpy() for v in model.non_trainable_variables]
    recompute_batch_norm_statistics(model, callback.x, 32)
    for before, variable in zip(after_fit, model.non_trainable_variables):
        np.testing.assert_allclose(before, variable.numpy(), rtol=1e-5, atol=1e-6)
    # validation of the last epoch was scored with these statistics
    assert history.history["val_loss"][-1] == pytest.approx(model.evaluate(x, y, batch_size=16, verbose=0), rel=1e-5)
