"""PyTorch's default initialisation, for ports of PyTorch originals.

``nn.Conv1d``/``nn.Linear`` draw weights from kaiming-uniform with a = sqrt(5), i.e.
U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and biases from the same interval. Keras' fan-in
for a conv kernel (k, in/groups, out) is k * in/groups, as in PyTorch.
"""

from __future__ import annotations

import math

import keras

from tf_ecg.models.layers import BatchNorm


def torch_default_kernel() -> keras.initializers.Initializer:
    return keras.initializers.VarianceScaling(scale=1.0 / 3.0, mode="fan_in", distribution="uniform")


def torch_default_bias(fan_in: int) -> keras.initializers.Initializer:
    bound = 1.0 / math.sqrt(fan_in)
    return keras.initializers.RandomUniform(-bound, bound)


def torch_batch_norm(**kwargs) -> BatchNorm:
    """BatchNorm as PyTorch's: momentum 0.1 there = 0.9 here, eps 1e-5, and the unbiased
    batch variance in the running variance."""
    kwargs.setdefault("momentum", 0.9)
    kwargs.setdefault("epsilon", 1e-5)
    return BatchNorm(unbiased_moving_variance=True, **kwargs)
