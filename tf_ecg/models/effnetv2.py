"""EfficientNetV2-1D (Fused-MBConv / MBConv-SE) of the Apple Watch glucose study, and its comparator.

Spec: ``originals/5-glucose-comparator.md`` section (c). Input: one beat of 383 samples
(microvolts) + the RR interval, shape (384, 1). Details that make Keras compute what
PyTorch computed: stride-2 k=3 convs pad one sample on both sides (ZeroPadding1D + valid,
not 'same'), BatchNorm momentum 0.9 / eps 1e-5, channel counts through make_divisible
(every configured 4 becomes 8), SE width from the block's input channels.
"""

from __future__ import annotations

import math

import keras
from keras import layers

from tf_ecg.models.initializers import torch_batch_norm
from tf_ecg.models.layers import DepthwiseConv1D, conv1d
from tf_ecg.registry import register

BEAT_INPUT = (384, 1)
# [expansion t, channels c, repeats n, stride s, squeeze-excitation]
SUPERVISED_L_XXXS = ((1, 4, 1, 1, 0), (4, 4, 1, 1, 0), (4, 4, 1, 2, 1), (4, 4, 1, 2, 1),
                     (1, 4, 1, 1, 0), (4, 4, 1, 2, 1), (4, 4, 1, 2, 1), (4, 4, 1, 2, 1))
ENCODER_L_XXXS = ((1, 4, 1, 1, 0), (4, 4, 1, 1, 0), (4, 4, 1, 2, 1), (4, 4, 1, 2, 1))
COMPARATOR_L_XXXS = ((1, 4, 1, 1, 0), (4, 4, 1, 2, 1), (4, 4, 1, 2, 1), (4, 4, 1, 2, 1))
STEM_CHANNELS, HEAD_CHANNELS = 8, 16


def make_divisible(value: float, divisor: int = 8) -> int:
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _conv_init(kernel: int, out_channels: int) -> keras.initializers.Initializer:
    # The original draws N(0, sqrt(2 / (k * out_channels))), untruncated (depthwise: out = h).
    return keras.initializers.RandomNormal(stddev=math.sqrt(2.0 / (kernel * out_channels)))


def _dense_init() -> keras.initializers.Initializer:
    return keras.initializers.RandomNormal(stddev=0.001)


def conv_bn(x, filters: int, kernel: int, stride: int, name: str, activation: bool = True):
    """Conv (no bias) -> BN (-> SiLU); stride 2 pads one sample on each side like PyTorch."""
    if stride > 1:
        x = layers.ZeroPadding1D(kernel // 2, name=f"{name}_pad")(x)
    x = conv1d(filters, kernel, strides=stride, padding="valid" if stride > 1 else "same",
               use_bias=False, kernel_initializer=_conv_init(kernel, filters), name=f"{name}_conv")(x)
    x = torch_batch_norm(name=f"{name}_bn")(x)
    return layers.Activation("silu", name=f"{name}_silu")(x) if activation else x


def squeeze_excite(x, reduced: int, name: str):
    channels = x.shape[-1]
    scale = layers.GlobalAveragePooling1D(name=f"{name}_pool")(x)
    scale = layers.Dense(reduced, activation="silu", kernel_initializer=_dense_init(), name=f"{name}_reduce")(scale)
    scale = layers.Dense(channels, activation="sigmoid", kernel_initializer=_dense_init(), name=f"{name}_expand")(scale)
    scale = layers.Reshape((1, channels), name=f"{name}_reshape")(scale)
    return layers.Multiply(name=f"{name}_scale")([x, scale])


def mbconv_block(x, out_channels: int, expansion: float, stride: int, use_se: bool, name: str):
    """Fused-MBConv (use_se False) or MBConv with squeeze-excitation; residual when shapes allow."""
    in_channels = x.shape[-1]
    hidden = round(in_channels * expansion)
    shortcut = x
    if use_se:
        x = conv_bn(x, hidden, 1, 1, f"{name}_expand")
        if stride > 1:
            x = layers.ZeroPadding1D(1, name=f"{name}_dw_pad")(x)
        x = DepthwiseConv1D(3, strides=stride, padding="valid" if stride > 1 else "same", use_bias=False,
                            depthwise_initializer=_conv_init(3, hidden), name=f"{name}_dw_conv")(x)
        x = torch_batch_norm(name=f"{name}_dw_bn")(x)
        x = layers.Activation("silu", name=f"{name}_dw_silu")(x)
        x = squeeze_excite(x, make_divisible(in_channels // 4, 8), f"{name}_se")
    else:
        x = conv_bn(x, hidden, 3, stride, f"{name}_fused")
    x = conv_bn(x, out_channels, 1, 1, f"{name}_project", activation=False)
    if stride == 1 and in_channels == out_channels:
        x = layers.Add(name=f"{name}_add")([shortcut, x])
    return x


def block_stack(x, config, prefix: str, first_index: int = 1):
    index = first_index
    for expansion, channels, repeats, stride, use_se in config:
        for repeat in range(repeats):
            x = mbconv_block(x, make_divisible(channels, 8), expansion, stride if repeat == 0 else 1,
                             bool(use_se), f"{prefix}{index}")
            index += 1
    return x


def classification_head(x, name_prefix: str = ""):
    x = conv_bn(x, HEAD_CHANNELS, 1, 1, f"{name_prefix}head")
    x = layers.GlobalAveragePooling1D(name=f"{name_prefix}pool")(x)
    return layers.Dense(1, activation="sigmoid", kernel_initializer=_dense_init(), name=f"{name_prefix}classifier")(x)


@register("effnetv2_ecg_l_xxxs")
def build_effnetv2_ecg_l_xxxs(name: str = "effnetv2_ecg_l_xxxs") -> keras.Model:
    """Supervised beat classifier: P(glucose) per beat (8,419 trainable parameters)."""
    beat = keras.Input(BEAT_INPUT, name="beat")
    x = torch_batch_norm(name="input_bn")(beat)
    x = conv_bn(x, STEM_CHANNELS, 3, 1, "stem")
    x = block_stack(x, SUPERVISED_L_XXXS, "block")
    return keras.Model(beat, classification_head(x), name=name)


def build_comparator_encoder(name: str = "encoder") -> keras.Model:
    """Beat (384, 1) -> embedding (96, 8), with the shared input BatchNorm."""
    beat = keras.Input(BEAT_INPUT, name="beat")
    x = torch_batch_norm(name="input_bn")(beat)
    x = conv_bn(x, STEM_CHANNELS, 3, 1, "stem")
    return keras.Model(beat, block_stack(x, ENCODER_L_XXXS, "block"), name=name)


def build_comparator_head(embedding_shape, name: str = "comparator_head") -> keras.Model:
    """(query, reference) embeddings -> P(the two beats belong to different classes)."""
    query = keras.Input(embedding_shape, name="query_embedding")
    reference = keras.Input(embedding_shape, name="reference_embedding")
    x = layers.Concatenate(axis=-1, name="fuse")([query, reference])  # query first, as the original
    x = conv_bn(x, STEM_CHANNELS, 1, 1, "cat")
    x = conv_bn(x, STEM_CHANNELS, 3, 1, "comparator_stem")
    x = block_stack(x, COMPARATOR_L_XXXS, "comparator_block")
    return keras.Model([query, reference], classification_head(x), name=name)


@register("effnetv2_comparator_v5")
def build_effnetv2_comparator_v5(name: str = "effnetv2_comparator_v5") -> keras.Model:
    """Siamese comparator (8,771 trainable parameters): inputs [reference beat, query beat].

    The shared encoder is called once per input (not on a concatenated batch), so each
    call normalises its own half-batch, as the original does in training. For voting
    against a reference bank, use the sub-models ``encoder`` and ``comparator_head``.
    """
    reference = keras.Input(BEAT_INPUT, name="reference")
    query = keras.Input(BEAT_INPUT, name="query")
    encoder = build_comparator_encoder()
    head = build_comparator_head(encoder.output_shape[1:])
    return keras.Model([reference, query], head([encoder(query), encoder(reference)]), name=name)
