"""Inception1d of the e18 PTB-XL project (fastai-v1 InceptionTime variant), in Keras.

Spec: ``originals/2-ptbxl-inception1d.md`` section (c). 8 leads x 5000 samples; one
output per regression target (506,369 trainable parameters) or 5 class logits
(506,885). BatchNorm and initialisers follow PyTorch so that trained weights and
training dynamics carry over.
"""

from __future__ import annotations

from pathlib import Path

import keras
from keras import layers

from tf_ecg.errors import RecipeError, WeightFileError
from tf_ecg.models.initializers import torch_batch_norm, torch_default_bias, torch_default_kernel
from tf_ecg.models.layers import BatchNorm, conv1d
from tf_ecg.registry import register

SUPERCLASSES = ("MI", "STTC", "HYP", "NORM", "CD")  # the original's class order
LEADS = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")


def _kernel_sizes(kernel_size: int) -> list[int]:
    # 40 -> 40, 20, 10 -> odd sizes 39, 19, 9 (fastai InceptionBlock1d)
    sizes = [kernel_size // (2 ** i) for i in range(3)]
    return [k - 1 if k % 2 == 0 else k for k in sizes]


def _conv(filters: int, kernel: int, name: str, trainable: bool = True) -> layers.Conv1D:
    return conv1d(filters, kernel, padding="same", use_bias=False, name=name, trainable=trainable,
                  kernel_initializer=torch_default_kernel())


def _dense(units: int, fan_in: int, name: str) -> layers.Dense:
    return layers.Dense(units, name=name, kernel_initializer=torch_default_kernel(),
                        bias_initializer=torch_default_bias(fan_in))


@keras.saving.register_keras_serializable(package="tf_ecg")
class AffineFrozenBatchNormalization(BatchNorm):
    """BatchNorm whose γ and β do not train while it still normalises with batch statistics
    and updates its moving averages in training: what PyTorch does for a BN whose parameters
    have ``requires_grad=False`` (a Keras ``trainable=False`` BN switches to inference mode)."""

    def build(self, input_shape):
        super().build(input_shape)
        for variable in (self.gamma, self.beta):
            variable.trainable = False


def inception_block(x, index: int, kernel_sizes, nb_filters: int, bottleneck_size: int, frozen: bool = False):
    """Bottleneck -> three conv branches + max-pool branch -> concat -> BN -> ReLU.

    ``frozen``: the e18 transfer freezing ("first 7 parameter tensors"): convs frozen, BN
    γ/β frozen but BN statistics still live (AffineFrozenBatchNormalization).
    """
    prefix = f"block{index}"
    trainable = not frozen
    bottleneck = _conv(bottleneck_size, 1, f"{prefix}_bottleneck", trainable)(x)
    branches = [_conv(nb_filters, k, f"{prefix}_conv{k}", trainable)(bottleneck) for k in kernel_sizes]
    pooled = layers.MaxPooling1D(3, strides=1, padding="same", name=f"{prefix}_maxpool")(x)
    branches.append(_conv(nb_filters, 1, f"{prefix}_pool_conv", trainable)(pooled))
    x = layers.Concatenate(axis=-1, name=f"{prefix}_concat")(branches)
    name = f"{prefix}_bn"
    x = (AffineFrozenBatchNormalization(momentum=0.9, epsilon=1e-5, unbiased_moving_variance=True, name=name)
         if frozen else torch_batch_norm(name=name))(x)
    return layers.ReLU(name=f"{prefix}_relu")(x)


def inception1d_backbone(inputs, depth: int = 6, kernel_size: int = 40, nb_filters: int = 32,
                         bottleneck_size: int = 32, use_residual: bool = True, freeze_first_block: bool = False):
    kernel_sizes = _kernel_sizes(kernel_size)
    channels = 4 * nb_filters
    x = residual = inputs
    for d in range(depth):
        x = inception_block(x, d, kernel_sizes, nb_filters, bottleneck_size, frozen=freeze_first_block and d == 0)
        if use_residual and d % 3 == 2:
            shortcut = _conv(channels, 1, f"shortcut{d // 3}_conv")(residual)
            shortcut = torch_batch_norm(name=f"shortcut{d // 3}_bn")(shortcut)
            x = layers.Add(name=f"shortcut{d // 3}_add")([x, shortcut])
            x = residual = layers.ReLU(name=f"shortcut{d // 3}_relu")(x)
    return x


def inception1d_head_features(x, lin_ftrs: int = 128, ps_head: float = 0.5):
    """fastai create_head1d up to (not including) the final Linear: 128 features."""
    channels = x.shape[-1]
    x = layers.Concatenate(axis=-1, name="head_concat_pool")([
        layers.GlobalMaxPooling1D(name="head_max_pool")(x),
        layers.GlobalAveragePooling1D(name="head_avg_pool")(x)])
    x = torch_batch_norm(name="head_bn1")(x)
    x = layers.Dropout(ps_head / 2, name="head_dropout1")(x)
    x = _dense(lin_ftrs, 2 * channels, "head_dense1")(x)
    x = layers.ReLU(name="head_relu")(x)
    x = torch_batch_norm(name="head_bn2")(x)
    return layers.Dropout(ps_head, name="head_dropout2")(x)


@register("inception1d")
def build_inception1d(num_outputs: int = 1, input_length: int = 5000, num_leads: int = 8,
                      depth: int = 6, kernel_size: int = 40, nb_filters: int = 32,
                      bottleneck_size: int = 32, use_residual: bool = True, lin_ftrs: int = 128,
                      ps_head: float = 0.5, freeze_first_block: bool = False,
                      name: str = "inception1d") -> keras.Model:
    """Inception1d with ``num_outputs`` linear outputs (1: a regressor, 5: class logits).

    ``freeze_first_block``: transfer scheme B of e18 (regression -> classification):
    block 0's convolutions and BN γ/β frozen; load the regressor's weights with the
    recipe option ``model.initial_weights`` (the new output layer is left fresh).
    """
    inputs = keras.Input((input_length, num_leads), name="ecg")
    x = inception1d_backbone(inputs, depth, kernel_size, nb_filters, bottleneck_size, use_residual, freeze_first_block)
    features = inception1d_head_features(x, lin_ftrs, ps_head)
    outputs = _dense(num_outputs, lin_ftrs, "head_output")(features)
    return keras.Model(inputs, outputs, name=name)


REGRESSION_TARGETS = ("HR", "QRS", "PR", "QT")


def _feature_extractor(target: str, weights: str | None, input_length: int, num_leads: int) -> keras.Model:
    """A regressor up to its 128 head features, frozen, as a named sub-model."""
    if weights:
        if not Path(weights).is_file():
            raise WeightFileError(weights, f"the trained {target} regressor (.keras) not found")
        regressor = keras.saving.load_model(weights, compile=False)
        if regressor.input_shape[1:] != (input_length, num_leads):
            raise WeightFileError(weights, f"the regressor takes {regressor.input_shape[1:]}, "
                                           f"the combined model {(input_length, num_leads)}")
    else:
        regressor = build_inception1d(1, input_length, num_leads)
    extractor = keras.Model(regressor.input, regressor.get_layer("head_dropout2").output,
                            name=f"{target.lower()}_features")
    extractor.trainable = False
    return extractor


@register("inception1d_combined")
def build_inception1d_combined(regressor_weights: dict | None = None, num_outputs: int = 5,
                               input_length: int = 5000, num_leads: int = 8,
                               mlp_units=(256, 128, 64, 32, 16), dropout: float = 0.5,
                               name: str = "inception1d_combined") -> keras.Model:
    """Transfer scheme A of e18 (``Inception1dCombined`` v1): the four interval regressors
    (HR, QRS, PR, QT), frozen and without their final Linear, each give 128 features; the
    512 concatenated features go through an MLP 512-256-128-64-32-16 (ReLU, Dropout 0.5)
    to ``num_outputs`` logits.

    ``regressor_weights``: {target: path of a trained regressor's .keras}; a missing
    target gets a randomly initialised (still frozen) regressor.
    """
    regressor_weights = regressor_weights or {}
    unknown = set(regressor_weights) - set(REGRESSION_TARGETS)
    if unknown:
        raise RecipeError(None, f"regressor_weights: unknown regression targets {sorted(unknown)}; "
                                f"known: {list(REGRESSION_TARGETS)}")
    inputs = keras.Input((input_length, num_leads), name="ecg")
    features = [_feature_extractor(t, regressor_weights.get(t), input_length, num_leads)(inputs)
                for t in REGRESSION_TARGETS]
    x = layers.Concatenate(name="combined_features")(features)
    fan_in = x.shape[-1]
    for i, units in enumerate(mlp_units):
        x = _dense(units, fan_in, f"combined_dense{i}")(x)
        x = layers.ReLU(name=f"combined_relu{i}")(x)
        x = layers.Dropout(dropout, name=f"combined_dropout{i}")(x)
        fan_in = units
    outputs = _dense(num_outputs, fan_in, "combined_output")(x)
    return keras.Model(inputs, outputs, name=name)
