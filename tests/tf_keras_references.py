"""The Ribeiro et al. 2020 ResNet in tf-keras 2 (the original's framework), written from
``originals/1-ribeiro-autoecg.md`` section (c), to time the original's computation beside
the port (``benchmarks/throughput.py``). Needs ``pip install --no-deps tf-keras==2.21.0``;
imported only where tf_keras is installed.
"""

from __future__ import annotations

import tf_keras
from tf_keras import layers

UNITS = ((1024, 128), (256, 196), (64, 256), (16, 320))  # (samples out, filters out)


def _conv(filters: int, kernel: int, strides: int = 1):
    return layers.Conv1D(filters, kernel, strides=strides, padding="same", use_bias=False, kernel_initializer="he_normal")


def ribeiro_resnet(num_classes: int = 6, kernel: int = 16, dropout: float = 0.2) -> tf_keras.Model:
    signal = layers.Input((4096, 12))
    x = y = layers.Activation("relu")(layers.BatchNormalization()(_conv(64, kernel)(signal)))
    for samples, filters in UNITS:
        downsample = y.shape[1] // samples
        y = layers.MaxPooling1D(downsample, strides=downsample, padding="same")(y)
        y = _conv(filters, 1)(y)
        x = layers.Dropout(dropout)(layers.Activation("relu")(layers.BatchNormalization()(_conv(filters, kernel)(x))))
        x = y = layers.Add()([_conv(filters, kernel, downsample)(x), y])
        x = layers.Dropout(dropout)(layers.Activation("relu")(layers.BatchNormalization()(x)))
    outputs = layers.Dense(num_classes, activation="sigmoid", kernel_initializer="he_normal")(layers.Flatten()(x))
    return tf_keras.Model(signal, outputs)
