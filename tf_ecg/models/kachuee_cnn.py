"""Kachuee et al.'s residual CNN, the second peer system 3 is measured against (not a port).

Kachuee, Fazeli, Sarrafzadeh, "ECG Heartbeat Classification: A Deep Transferable
Representation" (IEEE ICHI 2018, arXiv 1805.00794) introduced the Kaggle heartbeat format the
ResNeXt reads; spec ``originals/3-mitbih-resnext.md`` lists its 93.4 % average accuracy on the
authors' own balanced test set as not comparable. Here it is trained on the same splits as the
ResNeXt and the Conv1D peer instead, so the three are measured on one test file.

The paper's figure 2: a 32 x 5 convolution, five residual blocks (32 x 5 convolution, ReLU,
32 x 5 convolution, the block's input added, ReLU, max pooling of width 5 and stride 2), then
FC 32, ReLU, FC 32 and the softmax (its FC over the classes). The paper gives no padding: the
convolutions keep the length ("same", which the residual additions need) and the pooling is
unpadded, 187 -> 92 -> 44 -> 20 -> 8 -> 2 samples, 55,013 parameters for 5 classes.
Trained by ``models/kachuee_residual_cnn.toml`` (the paper's Adam 1e-3, beta 0.9 / 0.999, the
learning rate x0.75 every 10,000 iterations).
"""

from __future__ import annotations

import keras
from keras import layers

from tf_ecg.models.kaggle_conv1d import BEAT_SAMPLES
from tf_ecg.registry import register

FILTERS, KERNEL, BLOCKS = 32, 5, 5


@register("kachuee_residual_cnn")
def build_kachuee_residual_cnn(num_classes: int = 5, window: int = BEAT_SAMPLES,
                               name: str = "kachuee_residual_cnn") -> keras.Model:
    inputs = keras.Input((window, 1), name="beat")
    x = layers.Conv1D(FILTERS, KERNEL, padding="same", name="conv_in")(inputs)
    for i in range(1, BLOCKS + 1):
        y = layers.Conv1D(FILTERS, KERNEL, padding="same", activation="relu", name=f"block{i}_conv1")(x)
        y = layers.Conv1D(FILTERS, KERNEL, padding="same", name=f"block{i}_conv2")(y)
        x = layers.ReLU(name=f"block{i}_relu")(layers.Add(name=f"block{i}_add")([x, y]))
        x = layers.MaxPooling1D(KERNEL, strides=2, name=f"block{i}_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(FILTERS, activation="relu", name="fc1")(x)
    x = layers.Dense(FILTERS, name="fc2")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)
