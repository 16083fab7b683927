"""ResNeXt "kModel" with the proposed connection (MIT-BIH Kaggle heartbeats), in Keras.

Spec: ``originals/3-mitbih-resnext.md`` section (c). A 1-D ResNeXt (cardinality 32) on
187-sample beats. After every sub-stage of stages 1-3 the raw beat, projected by a small
branch, is concatenated with the feature map along the TIME axis (doubling its length),
and the next strided block halves it again. 56,494,277 trainable parameters.

PyTorch conventions kept for an exact port: biases on every conv (even before BN), BN
momentum 0.1 / eps 1e-5, LeakyReLU(0.01), PyTorch default initialisation (fc1/fc2 Xavier).
The original calls each raw-input branch 4 times per forward pass; its output is the same
each time, so it is computed once here and its BNs use momentum 0.9**4, which updates
the moving statistics exactly as four PyTorch calls do.
"""

from __future__ import annotations

import keras
from keras import layers

from tf_ecg.models.initializers import torch_batch_norm, torch_default_bias, torch_default_kernel
from tf_ecg.models.layers import GroupedConv1D, MeanPooling1D, conv1d
from tf_ecg.registry import register

CARDINALITY = 32
BRANCH_CALLS = 4  # sub-stages per stage that each concatenate the raw-input branch
STAGE_WIDTHS = ((64, 256), (128, 512), (256, 1024))  # (mid, out) of stages 1-3
STAGE4 = (512, 2048)


def _conv(filters: int, kernel: int, fan_in: int, name: str, strides: int = 1, groups: int = 1,
          padding: str = "valid") -> layers.Conv1D:
    conv = GroupedConv1D if groups > 1 else conv1d
    return conv(filters, kernel, strides=strides, padding=padding, groups=groups, name=name,
                kernel_initializer=torch_default_kernel(), bias_initializer=torch_default_bias(fan_in * kernel // groups))


def _leaky(name: str) -> layers.LeakyReLU:
    return layers.LeakyReLU(negative_slope=0.01, name=name)


def bottleneck(x, mid: int, out: int, down: bool, name: str):
    """make_conv: 1x1 (stride on it) -> grouped 3x3 -> 1x1; width (mid // 64) * 128."""
    width = (mid // 64) * 128
    channels = x.shape[-1]
    x = _conv(width, 1, channels, f"{name}_conv1", strides=2 if down else 1)(x)
    x = _leaky(f"{name}_act1")(torch_batch_norm(name=f"{name}_bn1")(x))
    x = _conv(width, 3, width, f"{name}_conv2", groups=CARDINALITY, padding="same")(x)
    x = _leaky(f"{name}_act2")(torch_batch_norm(name=f"{name}_bn2")(x))
    x = _conv(out, 1, width, f"{name}_conv3")(x)
    return torch_batch_norm(name=f"{name}_bn3")(x)


def tenant_layer(x, mid: int, out: int, down: bool, name: str):
    """Bottleneck plus an always-projecting shortcut (1x1 conv with the same stride, BN)."""
    shortcut = _conv(out, 1, x.shape[-1], f"{name}_resize_conv", strides=2 if down else 1)(x)
    shortcut = torch_batch_norm(name=f"{name}_resize_bn")(shortcut)
    x = layers.Add(name=f"{name}_add")([bottleneck(x, mid, out, down, name), shortcut])
    return _leaky(f"{name}_out")(x)


def floor_layer(x, mid: int, out: int, start: bool, name: str):
    """Three tenant layers; the first one strided unless ``start``."""
    x = tenant_layer(x, mid, out, down=not start, name=f"{name}_t1")
    for i in (2, 3):
        x = tenant_layer(x, mid, out, down=False, name=f"{name}_t{i}")
    return x


def raw_input_branch(inputs, stage: int, out: int):
    """new_identity: the raw beat projected to ``out`` channels at the stage's length."""
    name = f"branch{stage}"
    momentum = 0.9 ** BRANCH_CALLS
    x = inputs
    if stage == 3:
        x = layers.ZeroPadding1D(2, name=f"{name}_pad1")(x)
    x = _conv(64, 7, 1, f"{name}_conv1")(x)
    x = torch_batch_norm(name=f"{name}_bn1", momentum=momentum)(x)
    if stage == 3:
        x = layers.ZeroPadding1D(2, name=f"{name}_pad2")(x)
    # The original's 1x1 conv -> average pool, computed as pool -> 1x1 conv: both are linear
    # per position (the bias averages to itself), so the outputs are the same, and the conv
    # and its gradient run at the pooled length (a 3-12x shorter sequence).
    x = MeanPooling1D(3 * 2 ** (stage - 1), name=f"{name}_pool")(x)
    x = _conv(out, 1, 64, f"{name}_conv2")(x)
    return torch_batch_norm(name=f"{name}_bn2", momentum=momentum)(x)


def concat_path(x, name: str):
    """layerK_path: AvgPool(2) -> BN -> LeakyReLU -> 1x1 conv (no BN after it)."""
    channels = x.shape[-1]
    x = MeanPooling1D(2, name=f"{name}_pool")(x)
    x = _leaky(f"{name}_act")(torch_batch_norm(name=f"{name}_bn")(x))
    return _conv(channels, 1, channels, f"{name}_conv")(x)


@register("mitbih_resnext")
def build_mitbih_resnext(num_classes: int = 5, input_length: int = 187, dropout: float = 0.3,
                         name: str = "mitbih_resnext") -> keras.Model:
    """kModel(repeat_count=3, label=5): 5 AAMI logits from a (187, 1) beat."""
    inputs = keras.Input((input_length, 1), name="beat")
    x = _conv(64, 7, 1, "stage0_conv")(inputs)
    x = _leaky("stage0_act")(torch_batch_norm(name="stage0_bn")(x))
    x = layers.MaxPooling1D(3, name="stage0_pool")(x)
    for stage, (mid, out) in enumerate(STAGE_WIDTHS, start=1):
        branch = raw_input_branch(inputs, stage, out)
        for sub in range(1, BRANCH_CALLS + 1):
            x = floor_layer(x, mid, out, start=stage == 1 and sub == 1, name=f"stage{stage}_{sub}")
            # the proposed connection: feature map first, raw-input branch second, along time
            x = layers.Concatenate(axis=1, name=f"stage{stage}_{sub}_concat")([x, branch])
        x = concat_path(x, f"layer{stage}_path")
    x = floor_layer(x, *STAGE4, start=False, name="stage4")
    x = MeanPooling1D(x.shape[1], name="avgpool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(32, kernel_initializer="glorot_uniform", bias_initializer=torch_default_bias(x.shape[-1]),
                     name="fc1")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    x = _leaky("fc1_act")(x)
    outputs = layers.Dense(num_classes, kernel_initializer="glorot_uniform", bias_initializer=torch_default_bias(32),
                           name="fc2")(x)
    return keras.Model(inputs, outputs, name=name)
