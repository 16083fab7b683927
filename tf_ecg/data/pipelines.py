"""Input pipelines fed from NumPy arrays (in memory or memory-mapped): tf.data where
TensorFlow is installed; a ``keras.utils.PyDataset`` where it is not (JAX or PyTorch alone),
which every Keras backend's ``fit`` takes.

Batches are gathered with one vectorised NumPy call per batch (no per-sample Python
loop), so the pipeline keeps ahead of the model step; see benchmarks/input_pipeline.py.
Shuffling is seeded, so a given seed gives the same batches on every run.
"""

from __future__ import annotations

import copy
import math

import keras
import numpy as np

from tf_ecg.runtime import optional_tensorflow


def array_dataset(x: np.ndarray, y: np.ndarray | None = None, batch_size: int = 32,
                  shuffle: bool = False, seed: int = 0, drop_remainder: bool = False,
                  reshuffle: bool = True):
    """Batches of (x, y) (or x alone) from arrays of equal length: a tf.data pipeline, or
    :class:`ArrayBatches` where TensorFlow is not installed.

    ``reshuffle=False`` keeps one seeded order for every pass (fixed validation pairs).
    """
    n = len(x)
    if y is not None and len(y) != n:
        raise ValueError(f"x has {n} rows but y has {len(y)}")
    tf = optional_tensorflow()
    if tf is None:
        return ArrayBatches(x, y, batch_size, shuffle, seed, drop_remainder, reshuffle)
    indices = tf.data.Dataset.range(n)
    if shuffle:
        indices = indices.shuffle(n, seed=seed, reshuffle_each_iteration=reshuffle)
    indices = indices.batch(batch_size, drop_remainder=drop_remainder)
    x_shape = (None,) + tuple(x.shape[1:])
    arrays = (x,) if y is None else (x, y)

    def to_tensors(batch_index):
        dtypes = [tf.as_dtype(a.dtype) for a in arrays]
        tensors = tf.numpy_function(lambda index: _gather(arrays, index), [batch_index], dtypes, stateful=False)
        tensors[0].set_shape(x_shape)
        if y is None:
            return tensors[0]
        tensors[1].set_shape((None,) + tuple(y.shape[1:]))
        return tensors[0], tensors[1]

    options = tf.data.Options()
    options.deterministic = True
    return (indices.map(to_tensors, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE).with_options(options))


def _gather(arrays: tuple, batch_index: np.ndarray) -> tuple:
    batch_index = np.sort(batch_index)  # sorted reads are faster on memory-mapped files
    return tuple(np.ascontiguousarray(a[batch_index]) for a in arrays)


class ArrayBatches(keras.utils.PyDataset):
    """``array_dataset`` without TensorFlow: the same batching, a seeded shuffle of its own
    (NumPy's generator, so other batches than tf.data's for one seed), reshuffled each epoch
    (``reshuffle``), optionally as Siamese pairs (:func:`pairs_from_halves`)."""

    def __init__(self, x, y, batch_size, shuffle=False, seed=0, drop_remainder=False, reshuffle=True, pairs=False):
        super().__init__()
        self.arrays = (x,) if y is None else (x, y)
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.drop_remainder, self.reshuffle, self.pairs = drop_remainder, reshuffle, pairs
        self.epoch = 0
        self.order = self._order()

    def _order(self) -> np.ndarray:
        n = len(self.arrays[0])
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, self.epoch if self.reshuffle else 0]).permutation(n)

    def __len__(self) -> int:
        n = len(self.arrays[0])
        return n // self.batch_size if self.drop_remainder else math.ceil(n / self.batch_size)

    def __getitem__(self, index: int):
        batch = _gather(self.arrays, self.order[index * self.batch_size:(index + 1) * self.batch_size])
        if self.pairs:
            return _pairs(*batch)
        return batch[0] if len(batch) == 1 else batch

    def on_epoch_end(self):
        self.epoch += 1
        self.order = self._order()


def _pairs(x: np.ndarray, y: np.ndarray):
    half = len(x) // 2
    different = (y[:half] != y[half:2 * half]).astype(np.float32).reshape(-1, 1)
    return (x[:half], x[half:2 * half]), different


def pairs_from_halves(dataset):
    """Siamese pairs as the glucose comparator samples them: each (shuffled) batch is split
    into halves, rows 0..h-1 are the references and rows h..2h-1 the queries; the pair
    label is 1 when the two beats' classes differ, 0 when they are the same."""
    if isinstance(dataset, ArrayBatches):
        paired = copy.copy(dataset)  # the caller's batches stay as they were, as with tf.data
        paired.pairs = True
        return paired
    import tensorflow as tf

    def split(x, y):
        half = tf.shape(x)[0] // 2
        different = tf.cast(tf.not_equal(y[:half], y[half:2 * half]), tf.float32)
        return (x[:half], x[half:2 * half]), tf.reshape(different, (-1, 1))

    return dataset.map(split, num_parallel_calls=tf.data.AUTOTUNE)
