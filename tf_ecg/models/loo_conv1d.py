"""Small Conv1D beat classifier of the MIT-BIH leave-one-patient-out notebook.

Spec: ``originals/4-mitbih-loo-conv1d.md`` section (c): (160, 2) beats, three
Conv1D(3)+MaxPool(2) layers, Dense(32), Dense(n_classes); 45,246 parameters with 14
classes. The original put a ReLU on the logits (a bug): the default here is linear
logits; ``output_activation="relu"`` reproduces the original.
"""

from __future__ import annotations

import keras
from keras import layers

from tf_ecg.registry import register

WINDOW = 160
LEADS = 2


@register("loo_conv1d")
def build_loo_conv1d(num_classes: int = 14, window: int = WINDOW, num_leads: int = LEADS,
                     output_activation: str | None = None, name: str = "loo_conv1d") -> keras.Model:
    inputs = keras.Input((window, num_leads), name="beat")
    x = inputs
    for i, filters in enumerate((16, 32, 64), start=1):
        x = layers.Conv1D(filters, 3, activation="relu", name=f"conv{i}")(x)
        x = layers.MaxPooling1D(2, name=f"pool{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(32, activation="relu", name="dense")(x)
    outputs = layers.Dense(num_classes, activation=output_activation, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)
