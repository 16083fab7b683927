"""The plain Keras Conv1D beat classifier that system 3 is measured against (a peer, not a port).

Spec ``originals/3-mitbih-resnext.md`` section (f) cites it as the accuracy anchor on the
Kaggle MIT-BIH test file (98.5 %, macro-F1 0.915, 254,901 parameters; CVxTz's
ECG_Heartbeat_Classification, public). Its architecture: four pairs of unpadded ReLU
convolutions (16 x 5, 32 x 3, 32 x 3, 256 x 3), max pooling by 2 and dropout 0.1 after the
first three pairs, global max pooling, dropout 0.2, two Dense(64) ReLU layers and a softmax
over the classes. Trained by ``models/kaggle_conv1d_baseline.toml`` (Adam 1e-3, batch 32,
early stopping 5 and learning-rate reduction 3 on validation accuracy).
"""

from __future__ import annotations

import keras
from keras import layers

from tf_ecg.registry import register

BEAT_SAMPLES = 187


@register("kaggle_conv1d_baseline")
def build_kaggle_conv1d_baseline(num_classes: int = 5, window: int = BEAT_SAMPLES,
                                 name: str = "kaggle_conv1d_baseline") -> keras.Model:
    inputs = keras.Input((window, 1), name="beat")
    x = inputs
    blocks = ((16, 5), (32, 3), (32, 3), (256, 3))
    for i, (filters, kernel) in enumerate(blocks, start=1):
        x = layers.Conv1D(filters, kernel, activation="relu", name=f"conv{i}a")(x)
        x = layers.Conv1D(filters, kernel, activation="relu", name=f"conv{i}b")(x)
        if i < len(blocks):
            x = layers.MaxPooling1D(2, name=f"pool{i}")(x)
            x = layers.Dropout(0.1, name=f"dropout{i}")(x)
    x = layers.GlobalMaxPooling1D(name="global_max")(x)
    x = layers.Dropout(0.2, name="dropout_head")(x)
    x = layers.Dense(64, activation="relu", name="dense1")(x)
    x = layers.Dense(64, activation="relu", name="dense2")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)
