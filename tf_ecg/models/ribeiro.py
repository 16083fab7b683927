"""Ribeiro et al. 2020 12-lead ResNet, and the autoECG variants built on it.

Spec: ``originals/1-ribeiro-autoecg.md`` section (c). Layers are created in the
original's order, so ``model.layers`` has the original's 50 layers at the same indices
(autoECG cuts the network at ``layers[45]``), and the layer names are those of a fresh
tf.keras build. 'same' padding with the even kernel 16 pads 7 left / 8 right, as the
TF backend always did: weight-compatible with the released ``model.hdf5``.
"""

from __future__ import annotations

import keras
from keras import layers

from tf_ecg.models.layers import BatchNorm, conv1d
from tf_ecg.registry import register

INPUT_SHAPE = (4096, 12)
CLASSES = ("1dAVb", "RBBB", "LBBB", "SB", "AF", "ST")
# Thresholds of Table 2 ("from validation, rounded"); positive iff score > threshold.
TABLE2_THRESHOLDS = (0.124, 0.07, 0.05, 0.278, 0.390, 0.174)
UNITS = ((1024, 128), (256, 196), (64, 256), (16, 320))  # (samples out, filters out)
TRANSFER_CUT = 45          # batch_normalization_8: BN after the last residual Add
TRANSFER_FROZEN = 5        # layers 0-4: input, stem conv/BN/ReLU, first conv of unit 1


def _suffix(name: str, index: int) -> str:
    return name if index == 0 else f"{name}_{index}"


def _conv(filters: int, kernel: int, index: int, strides: int = 1) -> layers.Conv1D:
    return conv1d(filters, kernel, strides=strides, padding="same", use_bias=False,
                  kernel_initializer="he_normal", name=_suffix("conv1d", index))


def residual_unit(x, y, unit: int, samples_out: int, filters_out: int, kernel: int, dropout: float):
    """Pre-activation residual unit ``[x, y] -> [x, y]`` (y: the pre-BN sum, the next skip)."""
    downsample = y.shape[1] // samples_out
    if downsample < 1:
        raise ValueError(f"unit {unit}: {y.shape[1]} samples cannot be reduced to {samples_out}")
    conv, norm = 3 * unit + 1, 2 * unit + 1  # name counters of a fresh build
    if downsample > 1:  # skip branch first: its layers precede the main convs, as in the original
        y = layers.MaxPooling1D(downsample, strides=downsample, padding="same",
                                name=_suffix("max_pooling1d", unit))(y)
    if y.shape[-1] != filters_out:
        y = _conv(filters_out, 1, conv)(y)
    x = _conv(filters_out, kernel, conv + 1)(x)
    x = BatchNorm(name=_suffix("batch_normalization", norm))(x)
    x = layers.Activation("relu", name=_suffix("activation", norm))(x)
    x = layers.Dropout(dropout, name=_suffix("dropout", 2 * unit))(x)
    x = _conv(filters_out, kernel, conv + 2, strides=downsample)(x)
    x = y = layers.Add(name=_suffix("add", unit))([x, y])
    x = BatchNorm(name=_suffix("batch_normalization", norm + 1))(x)
    x = layers.Activation("relu", name=_suffix("activation", norm + 1))(x)
    x = layers.Dropout(dropout, name=_suffix("dropout", 2 * unit + 1))(x)
    return x, y


def resnet_backbone(signal, kernel: int, dropout: float):
    x = _conv(64, kernel, 0)(signal)
    x = BatchNorm(name="batch_normalization")(x)
    x = y = layers.Activation("relu", name="activation")(x)
    for unit, (samples, filters) in enumerate(UNITS):
        x, y = residual_unit(x, y, unit, samples, filters, kernel, dropout)
    return layers.Flatten(name="flatten")(x)


@register("ribeiro_resnet")
def build_ribeiro_resnet(num_classes: int = 6, kernel_size: int = 16, dropout: float = 0.2,
                         name: str = "ribeiro_resnet") -> keras.Model:
    """Ribeiro et al. 2020: 50 layers, 6,425,638 parameters with 6 sigmoid outputs.

    Input: (4096, 12) at 400 Hz in millivolts, leads DI, DII, DIII, AVR, AVL, AVF, V1-V6.
    """
    signal = keras.Input(INPUT_SHAPE, name="signal")
    features = resnet_backbone(signal, kernel_size, dropout)
    outputs = layers.Dense(num_classes, activation="sigmoid", kernel_initializer="he_normal", name="dense")(features)
    return keras.Model(signal, outputs, name=name)


@register("autoecg_single")
def build_autoecg_single(name: str = "autoecg_single") -> keras.Model:
    """autoECG's "modified structure": kernel 8, Dropout(0.5), one sigmoid unit (3,288,993 parameters)."""
    signal = keras.Input(INPUT_SHAPE, name="signal")
    features = resnet_backbone(signal, kernel=8, dropout=0.5)
    outputs = layers.Dense(1, activation="sigmoid", name="dense")(features)
    return keras.Model(signal, outputs, name=name)


@register("autoecg_transfer", base_model="ribeiro_resnet")
def build_autoecg_transfer(base: keras.Model | None = None, name: str = "autoecg_transfer") -> keras.Model:
    """autoECG transfer model: the Ribeiro network cut after ``layers[45]`` with a new head.

    ``base``: a ``ribeiro_resnet`` to cut, e.g. with Ribeiro's released ``model.hdf5``
    loaded (``tf_ecg.build_model(..., base_weights=...)``, a recipe's ``model.options.base_weights``). Without it
    the base starts from random initialisation. Layers 0-4 are frozen; 54 layers,
    6,489,665 parameters (6,342,449 trainable).
    """
    base = base if base is not None else build_ribeiro_resnet()
    for layer in base.layers[:TRANSFER_FROZEN]:
        layer.trainable = False
    x = base.layers[TRANSFER_CUT].output
    for i in range(3):
        x = layers.Conv1D(64, 2, activation="relu", name=f"transfer_conv{i + 1}")(x)
    x = layers.Flatten(name="transfer_flatten")(x)
    for i, units in enumerate((32, 64, 128)):
        x = layers.Dense(units, activation="relu", name=f"transfer_dense{i + 1}")(x)
    outputs = layers.Dense(1, activation="sigmoid", name="transfer_output")(x)
    return keras.Model(base.input, outputs, name=name)
