"""Exact layer and parameter counts from the specs, and per-block behaviour."""

import keras
import numpy as np
import pytest

import tf_ecg
from tf_ecg.models.inception1d import _kernel_sizes, inception_block


def trainable(model) -> int:
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


@pytest.mark.parametrize("num_outputs, expected_trainable, expected_total", [
    (1, 506_369, 509_185), (5, 506_885, 509_701)])
def test_inception1d_parameter_counts(num_outputs, expected_trainable, expected_total):
    model = tf_ecg.build_model("inception1d", num_outputs=num_outputs)
    assert trainable(model) == expected_trainable
    assert model.count_params() == expected_total
    assert model.input_shape == (None, 5000, 8) and model.output_shape == (None, num_outputs)


def test_inception1d_kernel_sizes_and_block_shapes():
    assert _kernel_sizes(40) == [39, 19, 9]
    inputs = keras.Input((50, 8))
    block = keras.Model(inputs, inception_block(inputs, 0, [39, 19, 9], 32, 32))
    assert block.output_shape == (None, 50, 128)
    assert trainable(block) == 69_376  # spec: block 0 with ni = 8


def test_inception1d_runs_on_short_input_and_pytorch_batch_norm():
    model = tf_ecg.build_model("inception1d", input_length=64)
    out = model(np.random.default_rng(0).random((2, 64, 8), dtype="float32"))
    assert out.shape == (2, 1) and np.isfinite(np.asarray(out)).all()
    bn = model.get_layer("block0_bn")
    assert bn.momentum == 0.9 and bn.epsilon == 1e-5


def test_pulse2pulse_generator_parameter_count_and_shapes():
    model = tf_ecg.build_model("pulse2pulse_generator")
    assert trainable(model) == 6_617_728
    assert model.input_shape == (None, 5000, 8) and model.output_shape == (None, 5000, 8)
    encoder = {f"conv_{i}": shape for i, shape in
               zip(range(1, 7), [(2500, 10), (500, 25), (250, 50), (50, 150), (10, 250), (2, 250)])}
    for name, shape in encoder.items():
        assert model.get_layer(name).output.shape[1:] == shape


@pytest.mark.parametrize("num_classes, expected", [(14, 45_246), (15, 45_279)])
def test_loo_conv1d_parameter_count(num_classes, expected):
    model = tf_ecg.build_model("loo_conv1d", num_classes=num_classes)
    assert model.count_params() == expected == trainable(model)
    assert len(model.layers) == 10


def test_loo_conv1d_logits_are_linear_unless_the_original_relu_is_asked_for():
    x = np.random.default_rng(1).random((64, 160, 2), dtype="float32")
    linear = tf_ecg.build_model("loo_conv1d")
    relu = tf_ecg.build_model("loo_conv1d", output_activation="relu")
    assert (np.asarray(linear(x)) < 0).any()
    assert (np.asarray(relu(x)) >= 0).all()


@pytest.mark.parametrize("name", ["loo_conv1d", "inception1d"])
def test_config_round_trip_rebuilds_the_same_architecture(name):
    model = tf_ecg.build_model(name)
    clone = keras.Model.from_config(model.get_config())
    assert clone.count_params() == model.count_params()
    assert [layer.name for layer in clone.layers] == [layer.name for layer in model.layers]


def test_inception1d_transfer_b_freezes_block0_like_pytorch(tmp_path):
    import keras

    from tf_ecg.training.compiling import copy_matching_weights

    regressor = tf_ecg.build_model("inception1d", input_length=64, num_outputs=1)
    regressor.save(tmp_path / "regressor.keras")
    model = tf_ecg.build_model("inception1d", input_length=64, num_outputs=5, freeze_first_block=True)
    assert copy_matching_weights(model, tmp_path / "regressor.keras") == ["head_output"]
    # frozen: block 0 convs (4 x ...) and BN gamma/beta = the first 7 PyTorch tensors = 69,376 values
    assert trainable(model) == 506_885 - 69_376
    model.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    bn = model.get_layer("block0_bn")
    before = {w.path: np.array(w) for w in model.get_layer("block0_conv39").weights + bn.weights}
    x = np.random.default_rng(0).normal(size=(8, 64, 8)).astype("float32")
    model.train_on_batch(x, np.arange(8) % 5)
    after = {w.path: np.array(w) for w in model.get_layer("block0_conv39").weights + bn.weights}
    for path in before:
        moved = not np.array_equal(before[path], after[path])
        assert moved == ("moving" in path), path  # only BN statistics move, as in PyTorch
    model.save(tmp_path / "transfer.keras")
    assert trainable(keras.models.load_model(tmp_path / "transfer.keras")) == trainable(model)


def test_inception1d_combined_scheme_a_uses_four_frozen_trained_regressors(tmp_path):
    import keras

    from tf_ecg.models.inception1d import REGRESSION_TARGETS

    paths = {}
    for i, target in enumerate(REGRESSION_TARGETS):
        regressor = tf_ecg.build_model("inception1d", input_length=64)
        for weight in regressor.weights:
            weight.assign(np.random.default_rng(i).normal(0, 0.05, weight.shape).astype("float32") + (
                1.0 if "moving_variance" in weight.path else 0.0))
        paths[target] = str(tmp_path / f"{target}.keras")
        regressor.save(paths[target])
    model = tf_ecg.build_model("inception1d_combined", regressor_weights=paths, input_length=64)
    assert trainable(model) == 175_173  # the MLP 512-256-128-64-32-16-5
    assert model.count_params() - trainable(model) == 4 * (506_369 - 129 + 2_816)
    x = np.random.default_rng(9).normal(size=(3, 64, 8)).astype("float32")
    qt = keras.models.load_model(paths["QT"])
    expected = keras.Model(qt.input, qt.get_layer("head_dropout2").output)(x, training=False)
    np.testing.assert_allclose(model.get_layer("qt_features")(x, training=False), expected, atol=1e-5)
    frozen_before = [np.array(w) for w in model.get_layer("hr_features").weights]
    model.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.train_on_batch(x, np.arange(3))
    for before, after in zip(frozen_before, model.get_layer("hr_features").weights):
        np.testing.assert_array_equal(before, np.array(after))  # weights and BN statistics
    model.save(tmp_path / "combined.keras")
    reloaded = keras.models.load_model(tmp_path / "combined.keras")
    np.testing.assert_allclose(reloaded(x, training=False), model(x, training=False), atol=1e-5)


def test_inception1d_combined_rejects_unknown_targets():
    with pytest.raises(ValueError, match="unknown regression targets"):
        tf_ecg.build_model("inception1d_combined", regressor_weights={"QTc": "x.keras"}, input_length=64)
