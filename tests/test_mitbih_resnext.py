import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_ecg
from tf_ecg.models.mitbih_resnext import BRANCH_CALLS
from tf_ecg.training.losses import FocalLoss
from tf_ecg.training.optimizers import AdaBound


def _trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.fixture(scope="module")
def resnext():
    return tf_ecg.build_model("mitbih_resnext")


def test_the_peers_parameter_counts_and_shapes():
    """The Conv1D peer's published 254,901; Kachuee et al.'s CNN as its figure 2 draws it."""
    assert tf_ecg.build_model("kaggle_conv1d_baseline").count_params() == 254_901
    kachuee = tf_ecg.build_model("kachuee_residual_cnn")
    assert kachuee.count_params() == 55_013
    assert [tuple(kachuee.get_layer(f"block{i}_pool").output.shape[1:]) for i in range(1, 6)] == \
        [(92, 32), (44, 32), (20, 32), (8, 32), (2, 32)]
    assert kachuee.output_shape == (None, 5)


def test_resnext_parameter_counts_and_stage_shapes(resnext):
    assert _trainable(resnext) == 56_494_277
    assert resnext.count_params() == 56_667_845  # + BN moving statistics
    shapes = {name: tuple(resnext.get_layer(name).output.shape[1:]) for name in
              ("stage0_pool", "stage1_1_concat", "layer1_path_conv", "layer2_path_conv", "layer3_path_conv",
               "stage4_t3_out")}
    assert shapes == {"stage0_pool": (60, 64), "stage1_1_concat": (120, 256), "layer1_path_conv": (60, 256),
                      "layer2_path_conv": (30, 512), "layer3_path_conv": (15, 1024), "stage4_t3_out": (8, 2048)}


def test_resnext_blocks_match_the_module_table(resnext):
    def count(prefix):
        return sum(int(np.prod(w.shape)) for layer in resnext.layers if layer.name.startswith(prefix)
                   for w in layer.trainable_weights)

    assert count("stage0_") == 640
    assert count("stage1_1_") == 331_008 and count("stage1_2_") == 404_736
    assert count("stage2_1_") == 1_408_512 and count("stage3_4_") == 6_392_832
    assert count("stage4_") == 22_370_304
    assert (count("branch1_"), count("branch2_"), count("branch3_")) == (17_792, 34_944, 69_248)
    assert (count("layer1_path"), count("layer3_path")) == (66_304, 1_051_648)
    assert resnext.get_layer("stage2_1_t1_conv2").groups == 32
    assert resnext.get_layer("stage0_act").negative_slope == pytest.approx(0.01)


def test_resnext_forward_gives_five_logits_per_beat(resnext):
    beats = np.random.default_rng(0).uniform(size=(2, 187, 1)).astype("float32")
    logits = resnext(beats, training=False)
    assert logits.shape == (2, 5) and np.isfinite(np.asarray(logits)).all()


def test_one_branch_batch_norm_update_equals_the_originals_four():
    """The raw-input branch is computed once; its BN momentum 0.9**4 updates the moving
    statistics as PyTorch's four calls per forward pass (momentum 0.1 each) do."""
    x = np.random.default_rng(1).normal(2.0, 3.0, size=(16, 20, 4)).astype("float32")
    four_calls = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)
    once = keras.layers.BatchNormalization(momentum=0.9 ** BRANCH_CALLS, epsilon=1e-5)
    for _ in range(BRANCH_CALLS):
        four_calls(x, training=True)
    once(x, training=True)
    for a, b in zip(four_calls.non_trainable_weights, once.non_trainable_weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5)


def test_focal_loss_values_and_detached_modulating_factor():
    alpha = [0.15, 0.75, 0.65, 0.75, 0.25]
    logits = tf.constant(np.random.default_rng(2).normal(size=(6, 5)), tf.float32)
    labels = tf.constant([0, 1, 2, 3, 4, 1])
    loss = FocalLoss(alpha=alpha, gamma=2.0)
    probabilities = tf.nn.softmax(logits).numpy()
    pt = probabilities[np.arange(6), labels.numpy()]
    expected = np.mean(-np.take(alpha, labels.numpy()) * (1 - pt) ** 2 * np.log(pt))
    with tf.GradientTape() as tape:
        tape.watch(logits)
        value = loss(labels, logits)
    assert float(value) == pytest.approx(expected, rel=1e-5)
    # with pt detached, d/dlogits = -alpha (1 - pt)^gamma (onehot - softmax) / batch
    onehot = np.eye(5)[labels.numpy()]
    weights = (np.take(alpha, labels.numpy()) * (1 - pt) ** 2)[:, None]
    np.testing.assert_allclose(tape.gradient(value, logits).numpy(), -weights * (onehot - probabilities) / 6,
                               rtol=1e-4, atol=1e-7)


def _adabound_reference(theta, gradients, lr=1e-3, final_lr=0.1, b1=0.9, b2=0.999, gamma=1e-3, eps=1e-8):
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    for t, g in enumerate(gradients, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        step = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        eta = np.clip(step / (np.sqrt(v) + eps), final_lr * (1 - 1 / (gamma * t + 1)), final_lr * (1 + 1 / (gamma * t)))
        theta = theta - eta * m
    return theta


@pytest.mark.parametrize("lr, final_lr, gamma", [(1e-3, 0.1, 1e-3), (0.05, 0.01, 0.5)])
def test_adabound_follows_its_update_rule(lr, final_lr, gamma):
    rng = np.random.default_rng(3)
    start = rng.normal(size=(4, 3)).astype(np.float32)
    gradients = [rng.normal(scale=s, size=(4, 3)).astype(np.float32) for s in (1.0, 0.01, 5.0, 0.3, 1e-4, 2.0)]
    variable = keras.Variable(start)
    optimizer = AdaBound(learning_rate=lr, final_lr=final_lr, gamma=gamma)
    for g in gradients:
        optimizer.apply_gradients([(tf.constant(g), variable)])
    expected = _adabound_reference(start.astype(np.float64), gradients, lr, final_lr, gamma=gamma)
    np.testing.assert_allclose(variable.numpy(), expected, rtol=1e-5, atol=1e-6)
    # the bounds bite: it is not Adam
    assert not np.allclose(expected, _adabound_reference(start.astype(np.float64), gradients, lr, 1e6, gamma=1e-9),
                           atol=1e-6)


def test_adabound_and_focal_loss_train_and_round_trip(tmp_path):
    model = tf_ecg.build_model("loo_conv1d", num_classes=5)
    model.compile(AdaBound(learning_rate=1e-3), FocalLoss(alpha=[0.15, 0.75, 0.65, 0.75, 0.25]))
    rng = np.random.default_rng(4)
    x, y = rng.uniform(size=(64, 160, 2)).astype("float32"), rng.integers(0, 5, 64)
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=5, batch_size=16, verbose=0)
    assert model.evaluate(x, y, verbose=0) < before
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert isinstance(loaded.optimizer, AdaBound) and loaded.loss.gamma == 2.0
