"""Pulse2Pulse generator of the DeepFake ECG project (Thambawita et al. 2021), in Keras.

Spec: ``originals/2-ptbxl-inception1d.md``, last section. Input: uniform(-1, 1) noise
(5000, 8); output: (5000, 8) after tanh, leads I, II, V1-V6 at 500 Hz (x 6000 = uV).
Only the modules used in the forward pass are built (6,617,728 parameters); the
checkpoint's unused ``fc1``, ``Conv1dTrans`` and ``ppfilter1`` tensors are ignored.
"""

from __future__ import annotations

import keras
from keras import layers

from tf_ecg.models.initializers import torch_default_bias, torch_default_kernel
from tf_ecg.models.layers import UpsampledConv1D
from tf_ecg.registry import register

SAMPLES = 5000
LEADS = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")
SAMPLING_RATE = 500
MICROVOLTS_PER_UNIT = 6000

KERNEL = 25
PAD = 12
# (name, filters, stride)
ENCODER = (("conv_1", 10, 2), ("conv_2", 25, 5), ("conv_3", 50, 2),
           ("conv_4", 150, 5), ("conv_5", 250, 5), ("conv_6", 250, 5))
# (name, filters, upsampling factor, encoder output concatenated before upsampling)
DECODER = (("deconv_1", 250, 5, None), ("deconv_2", 150, 5, "conv_5"),
           ("deconv_3", 50, 5, "conv_4"), ("deconv_5", 25, 2, "conv_3"),
           ("deconv_6", 10, 5, "conv_2"), ("deconv_7", 8, 2, None))


def _conv(name: str, filters: int, in_channels: int, stride: int = 1) -> layers.Conv1D:
    return layers.Conv1D(filters, KERNEL, strides=stride, padding="valid", name=name,
                         kernel_initializer=torch_default_kernel(),
                         bias_initializer=torch_default_bias(in_channels * KERNEL))


@register("pulse2pulse_generator")
def build_pulse2pulse_generator(name: str = "pulse2pulse_generator") -> keras.Model:
    noise = keras.Input((SAMPLES, len(LEADS)), name="noise")
    x, channels, skips = noise, len(LEADS), {}
    for conv_name, filters, stride in ENCODER:
        x = layers.ZeroPadding1D(PAD, name=f"{conv_name}_pad")(x)
        x = _conv(conv_name, filters, channels, stride)(x)
        x = layers.LeakyReLU(negative_slope=0.01, name=f"{conv_name}_act")(x)
        skips[conv_name], channels = x, filters
    for block, filters, factor, skip in DECODER:
        if skip is not None:
            # Decoder tensor first, then the skip, as the original concatenates.
            x = layers.Concatenate(axis=-1, name=f"{block}_concat")([x, skips[skip]])
            channels += skips[skip].shape[-1]
        # nearest-neighbour upsampling, zero (not reflection) padding of 12, the k=25 conv
        x = UpsampledConv1D(filters, KERNEL, upsampling=factor, name=block, kernel_initializer=torch_default_kernel(),
                            bias_initializer=torch_default_bias(channels * KERNEL))(x)
        activation = "tanh" if block == "deconv_7" else "relu"
        x = layers.Activation(activation, name=f"{block}_act")(x)
        channels = filters
    return keras.Model(noise, x, name=name)
