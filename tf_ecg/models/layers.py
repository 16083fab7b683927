"""Layers shared by the ports: the same weights and outputs as their Keras counterparts,
computed the way that is fastest on a CPU.

Measured on 2-core AMD EPYC machines (``benchmarks/throughput.py``, ``docs/speed.md``):

- ``BatchNorm``: Keras 3 normalises with about fifteen element-wise operations per layer
  in training (moments, scale, shift, moving averages) and twice as many in the gradient;
  TensorFlow's fused kernel (``FusedBatchNormV3``) does each direction in one.
- ``PointwiseConv1D``: a kernel-size-1 convolution is a matrix product over channels.
  TensorFlow's convolution kernels compute its gradient 2-6x slower than a matrix product
  does, most of all with the Eigen kernels that TensorFlow uses on CPUs without AVX-512
  VNNI (oneDNN is off there by default).
- ``GroupedConv1D``: TensorFlow's grouped convolution has no fast CPU kernel (7-20x slower
  than this); here it is one batched matrix product with the groups as the batch.
- ``MeanPooling1D``: average pooling with stride = pool size as a mean over a reshape,
  whose gradient is a broadcast instead of TensorFlow's ``AvgPoolGrad``.
- ``UpsampledConv1D``: nearest upsampling -> zero padding -> convolution, polyphase.
"""

from __future__ import annotations

import functools

import keras
import numpy as np
from keras import layers, ops

EIGEN_FUSED_MIN_CHANNELS = 64


@functools.lru_cache(maxsize=1)
def onednn_enabled() -> bool:
    """Whether TensorFlow runs its oneDNN CPU kernels in this process: by default only on
    CPUs with AVX-512 VNNI / BF16, AVX-VNNI or AMX (Linux), else its Eigen kernels;
    ``TF_ENABLE_ONEDNN_OPTS=0/1``, set before TensorFlow starts, overrides."""
    try:
        from tensorflow.python.util import _pywrap_util_port  # no public API tells
    except ImportError:
        return False
    return bool(_pywrap_util_port.IsMklEnabled())


@keras.saving.register_keras_serializable(package="tf_ecg")
class BatchNorm(layers.BatchNormalization):
    """``keras.layers.BatchNormalization``, computed by TensorFlow's fused kernel where that
    is faster: with oneDNN, or with Eigen from 64 channels on (below that, Eigen's fused
    kernel is slower than Keras' element-wise operations: 7-12 % of a glucose training step).

    The same variables, batch statistics, outputs and moving-average updates:
    ``moving = momentum * moving + (1 - momentum) * batch``. ``unbiased_moving_variance``
    chooses which batch variance enters the moving variance: Keras (and tf.keras) use the
    biased one (divided by n), PyTorch the unbiased one (divided by n - 1); normalisation
    always uses the biased one. On JAX and PyTorch the batch variance is taken in two passes
    (the mean, then the mean squared distance from it), as ``tf.nn.moments`` and PyTorch do:
    Keras' moments there take E[x^2] - E[x]^2, which loses digits where the mean is large
    next to the spread. Masks, renorm, synchronised statistics or another channel axis take
    the Keras path unchanged (whose moving variance is the biased one).
    """

    def __init__(self, unbiased_moving_variance: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.unbiased_moving_variance = unbiased_moving_variance

    def _own_path_applies(self, inputs, mask) -> bool:
        return (mask is None and not self.renorm and not self.synchronized
                and self.axis in (-1, len(inputs.shape) - 1) and 2 <= len(inputs.shape) <= 4)

    def call(self, inputs, training=None, mask=None):
        training = bool(training and self.trainable)
        if not self._own_path_applies(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        if keras.backend.backend() == "tensorflow" and (
                onednn_enabled() or inputs.shape[-1] >= EIGEN_FUSED_MIN_CHANNELS):
            return self._fused(inputs, training)
        if not training:
            return super().call(inputs, training=False)
        x = ops.cast(inputs, "float32")
        axes = list(range(len(inputs.shape) - 1))
        mean = ops.mean(x, axes)
        variance = ops.mean(ops.square(x - ops.stop_gradient(mean)), axes)  # tf.nn.moments' two passes
        self._update_moving_statistics(mean, variance, ops.cast(ops.size(x) // inputs.shape[-1], "float32"))
        outputs = ops.batch_normalization(x, mean, variance, axis=-1, offset=self._beta(inputs),
                                          scale=self._gamma(inputs), epsilon=self.epsilon)
        return ops.cast(outputs, self.compute_dtype)

    def _gamma(self, inputs):
        return ops.cast(self.gamma, "float32") if self.scale else ops.ones((inputs.shape[-1],), "float32")

    def _beta(self, inputs):
        return ops.cast(self.beta, "float32") if self.center else ops.zeros((inputs.shape[-1],), "float32")

    def _update_moving_statistics(self, mean, biased_variance, count):
        momentum = ops.cast(self.momentum, "float32")
        moving_mean, moving_variance = ops.convert_to_tensor(self.moving_mean), ops.convert_to_tensor(self.moving_variance)
        new_mean = moving_mean * momentum + mean * (1.0 - momentum)
        if not self.unbiased_moving_variance:
            new_variance = moving_variance * momentum + biased_variance * (1.0 - momentum)
        else:
            # One value per channel (a batch of one after pooling) has no spread: PyTorch refuses
            # it in training; here the moving statistics stay as they were instead of taking 0 / 0.
            informative = count >= 2.0
            variance = biased_variance * count / ops.maximum(count - 1.0, 1.0)
            new_variance = ops.where(informative, moving_variance * momentum + variance * (1.0 - momentum),
                                     moving_variance)
            new_mean = ops.where(informative, new_mean, moving_mean)
        self.moving_mean.assign(ops.cast(new_mean, self.moving_mean.dtype))
        self.moving_variance.assign(ops.cast(new_variance, self.moving_variance.dtype))

    def _fused(self, inputs, training: bool):
        import tensorflow as tf

        shape, rank, channels = ops.shape(inputs), len(inputs.shape), inputs.shape[-1]
        x = ops.cast(inputs, "float32")
        if rank < 4:  # the kernel takes NHWC: (batch, length, 1, channels) or (batch, 1, 1, channels)
            x = ops.reshape(x, (shape[0], shape[1] if rank == 3 else 1, 1, channels))
        if training:
            empty = tf.constant([], tf.float32)
            result = tf.raw_ops.FusedBatchNormV3(x=x, scale=self._gamma(inputs), offset=self._beta(inputs),
                                                 mean=empty, variance=empty, epsilon=self.epsilon,
                                                 exponential_avg_factor=1.0, data_format="NHWC", is_training=True)
            count = tf.cast(tf.size(x) // channels, tf.float32)
            # the kernel returns the unbiased batch variance
            self._update_moving_statistics(result.batch_mean, result.batch_variance * (count - 1.0) / count, count)
        else:
            result = tf.raw_ops.FusedBatchNormV3(x=x, scale=self._gamma(inputs), offset=self._beta(inputs),
                                                 mean=ops.cast(self.moving_mean, "float32"),
                                                 variance=ops.cast(self.moving_variance, "float32"),
                                                 epsilon=self.epsilon, exponential_avg_factor=1.0,
                                                 data_format="NHWC", is_training=False)
        outputs = result.y if rank == 4 else ops.reshape(result.y, shape)
        return ops.cast(outputs, self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "unbiased_moving_variance": self.unbiased_moving_variance}


@keras.saving.register_keras_serializable(package="tf_ecg")
class PointwiseConv1D(layers.Conv1D):
    """``Conv1D`` with kernel size 1 (any stride) as one matrix product over channels.

    Same kernel ``(1, in, out)``, bias, outputs and config as ``layers.Conv1D``; a stride
    keeps every ``stride``-th sample first, which is what the convolution samples for any
    padding (a size-1 kernel pads nothing, or one sample at the end)."""

    def build(self, input_shape):
        if self.kernel_size != (1,) or self.groups != 1 or self.dilation_rate != (1,):
            raise ValueError(f"{self.name}: PointwiseConv1D takes kernel size 1, groups 1, dilation 1")
        super().build(input_shape)

    def call(self, inputs):
        stride = self.strides[0]
        if stride > 1:  # every stride-th sample, as a reshape and a slice (a strided slice's gradient is slow)
            batch, length, channels = ops.shape(inputs)[0], inputs.shape[1], inputs.shape[-1]
            kept = -(-length // stride)
            inputs = ops.pad(inputs, [[0, 0], [0, kept * stride - length], [0, 0]])
            inputs = ops.reshape(inputs, (batch, kept, stride, channels))
            inputs = ops.reshape(ops.slice(inputs, (0, 0, 0, 0), (batch, kept, 1, channels)), (batch, kept, channels))
        shape = ops.shape(inputs)
        kernel = ops.reshape(self.kernel, self.kernel.shape[1:])  # a reshape's gradient is free, a slice's is not
        outputs = ops.matmul(ops.reshape(inputs, (-1, inputs.shape[-1])), kernel)
        if self.use_bias:
            outputs = ops.add(outputs, self.bias)
        outputs = ops.reshape(outputs, (shape[0], shape[1], self.filters))
        return self.activation(outputs) if self.activation is not None else outputs


def conv1d(filters: int, kernel_size: int, **kwargs) -> layers.Conv1D:
    """``layers.Conv1D``, or ``PointwiseConv1D`` where the kernel size is 1 (no groups)."""
    pointwise = kernel_size == 1 and kwargs.get("groups", 1) == 1 and kwargs.get("dilation_rate", 1) in (1, (1,))
    return (PointwiseConv1D if pointwise else layers.Conv1D)(filters, kernel_size, **kwargs)


@keras.saving.register_keras_serializable(package="tf_ecg")
class GroupedConv1D(layers.Conv1D):
    """``Conv1D`` (stride 1) with ``groups > 1``, as one batched matrix product.

    Same kernel ``(taps, in / groups, out)``, bias and outputs as
    ``layers.Conv1D(groups=...)``: the ``taps`` shifted copies of each group's inputs are
    laid side by side ``(group, batch x length, taps x in / groups)`` and multiplied by each
    group's kernel ``(group, taps x in / groups, out / groups)``; the shifts are plain
    slices (their gradient is a pad). On TensorFlow and JAX, whose CPU grouped convolutions
    train several times slower (``benchmarks/backend_layers.py``); PyTorch runs its own."""

    def build(self, input_shape):
        if self.strides != (1,) or self.dilation_rate != (1,) or self.padding not in ("same", "valid"):
            raise ValueError(f"{self.name}: GroupedConv1D takes stride 1, dilation 1, 'same' or 'valid' padding")
        super().build(input_shape)

    def call(self, inputs):
        if keras.backend.backend() not in ("tensorflow", "jax"):
            return super().call(inputs)
        taps, groups = self.kernel_size[0], self.groups
        channels_in, channels_out = inputs.shape[-1] // groups, self.filters // groups
        if self.padding == "same":
            left = (taps - 1) // 2
            inputs = ops.pad(inputs, [[0, 0], [left, taps - 1 - left], [0, 0]])
        batch, padded = ops.shape(inputs)[0], ops.shape(inputs)[1]
        length = padded - taps + 1
        grouped = ops.reshape(inputs, (batch, padded, groups, channels_in))
        shifted = ops.concatenate([ops.slice(grouped, (0, tap, 0, 0), (batch, length, groups, channels_in))
                                   for tap in range(taps)], axis=-1)  # (batch, length, group, tap x in)
        shifted = ops.reshape(ops.transpose(shifted, (2, 0, 1, 3)), (groups, -1, taps * channels_in))
        kernel = ops.reshape(self.kernel, (taps, channels_in, groups, channels_out))
        kernel = ops.reshape(ops.transpose(kernel, (2, 0, 1, 3)), (groups, taps * channels_in, channels_out))
        outputs = ops.reshape(ops.matmul(shifted, kernel), (groups, batch, length, channels_out))
        outputs = ops.reshape(ops.transpose(outputs, (1, 2, 0, 3)), (batch, length, self.filters))
        if self.use_bias:
            outputs = ops.add(outputs, self.bias)
        return self.activation(outputs) if self.activation is not None else outputs


@keras.saving.register_keras_serializable(package="tf_ecg")
class DepthwiseConv1D(layers.DepthwiseConv1D):
    """``layers.DepthwiseConv1D`` (dilation 1), on JAX as a sum over the kernel's taps of
    each tap's (strided) slice of the input times its weights: XLA's CPU depthwise
    convolution trains several times slower (``benchmarks/backend_layers.py``). Same kernel,
    bias, outputs and config; TensorFlow and PyTorch run their own."""

    def call(self, inputs):
        if keras.backend.backend() != "jax" or self.dilation_rate != (1,):
            return super().call(inputs)
        taps, stride = self.kernel_size[0], self.strides[0]
        if self.padding == "same":  # TensorFlow's rule: the extra sample of an odd total on the right
            length = inputs.shape[1]
            total = max((-(-length // stride) - 1) * stride + taps - length, 0)
            inputs = ops.pad(inputs, [[0, 0], [total // 2, total - total // 2], [0, 0]])
        length = (inputs.shape[1] - taps) // stride + 1
        outputs = sum(ops.expand_dims(inputs[:, tap:tap + (length - 1) * stride + 1:stride], -1) * self.kernel[tap]
                      for tap in range(taps))  # (batch, length, channels, depth multiplier)
        outputs = ops.reshape(outputs, (-1, length, inputs.shape[-1] * self.depth_multiplier))
        if self.use_bias:
            outputs = ops.add(outputs, self.bias)
        return self.activation(outputs) if self.activation is not None else outputs


@keras.saving.register_keras_serializable(package="tf_ecg")
class MeanPooling1D(layers.AveragePooling1D):
    """``AveragePooling1D(pool_size)`` with stride = pool size and 'valid' padding (a
    trailing remainder shorter than the pool is dropped, as there), as a mean over
    ``(length / pool, pool)``."""

    def __init__(self, pool_size, **kwargs):
        super().__init__(pool_size, **kwargs)
        if self.strides != self.pool_size or self.padding != "valid" or self.data_format != "channels_last":
            raise ValueError(f"{self.name}: MeanPooling1D takes stride = pool size, 'valid', channels last")

    def call(self, inputs):
        pool = self.pool_size[0]
        windows = inputs.shape[1] // pool if inputs.shape[1] is not None else ops.shape(inputs)[1] // pool
        batch = ops.shape(inputs)[0]
        kept = ops.slice(inputs, (0, 0, 0), (batch, windows * pool, inputs.shape[-1]))
        return ops.mean(ops.reshape(kept, (batch, windows, pool, inputs.shape[-1])), axis=2)


@keras.saving.register_keras_serializable(package="tf_ecg")
class UpsampledConv1D(layers.Conv1D):
    """Nearest-neighbour upsampling by ``upsampling``, zero padding of ``(kernel - 1) / 2``
    on both sides, then this ``Conv1D`` ('valid', stride 1): the same kernel, bias and
    outputs (``upsampling`` x the input length) as those three layers in a row.

    Computed polyphase: output sample ``upsampling * q + p`` sees, through the repeated
    samples, only a few input samples around ``q``; the kernel taps that fall on one input
    sample are summed first. One convolution over the input with ``upsampling x filters``
    outputs then does ~``kernel / taps`` fewer multiplications (25 taps over a 5x upsampled
    signal: 7 taps, 3.6x fewer)."""

    def __init__(self, filters, kernel_size, upsampling: int = 2, **kwargs):
        super().__init__(filters, kernel_size, **kwargs)
        self.upsampling = int(upsampling)
        if self.kernel_size[0] % 2 == 0 or self.strides != (1,) or self.dilation_rate != (1,) \
                or self.groups != 1 or self.padding != "valid":
            raise ValueError(f"{self.name}: UpsampledConv1D takes an odd kernel, stride 1, 'valid', no groups")
        half = (self.kernel_size[0] - 1) // 2
        # input offset of every (phase p, tap j): floor((p + j - half) / upsampling)
        self._offsets = [[(p + j - half) // self.upsampling for j in range(self.kernel_size[0])]
                         for p in range(self.upsampling)]
        self._first = min(min(row) for row in self._offsets)
        self._last = max(max(row) for row in self._offsets)

    def polyphase_kernel(self):
        """(taps, in, upsampling x filters): per phase, the kernel taps summed per input offset
        (TensorFlow's unsorted segment sum there; each backend's own elsewhere)."""
        taps = self._last - self._first + 1
        phases = [ops.segment_sum(self.kernel, np.asarray([d - self._first for d in row], "int32"), taps)
                  for row in self._offsets]
        return ops.reshape(ops.stack(phases, axis=2), (taps, self.kernel.shape[1], self.upsampling * self.filters))

    def call(self, inputs):
        batch, length = ops.shape(inputs)[0], ops.shape(inputs)[1]
        padded = ops.pad(inputs, [[0, 0], [-self._first, self._last], [0, 0]])
        outputs = ops.conv(padded, self.polyphase_kernel(), strides=1, padding="valid")
        outputs = ops.reshape(outputs, (batch, length * self.upsampling, self.filters))
        if self.use_bias:
            outputs = ops.add(outputs, self.bias)
        return self.activation(outputs) if self.activation is not None else outputs

    def compute_output_shape(self, input_shape):
        length = None if input_shape[1] is None else input_shape[1] * self.upsampling
        return (input_shape[0], length, self.filters)

    def get_config(self):
        return {**super().get_config(), "upsampling": self.upsampling}
