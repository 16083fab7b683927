"""tf.data input pipelines fed from NumPy arrays (in memory or memory-mapped).

Batches are gathered with one vectorised NumPy call per batch (no per-sample Python
loop), so the pipeline keeps ahead of the model step; see benchmarks/input_pipeline.py.
Shuffling is seeded, so a given seed gives the same batches on every run.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def array_dataset(x: np.ndarray, y: np.ndarray | None = None, batch_size: int = 32,
                  shuffle: bool = False, seed: int = 0, drop_remainder: bool = False,
                  reshuffle: bool = True) -> tf.data.Dataset:
    """Batches of (x, y) (or x alone) from arrays of equal length.

    ``reshuffle=False`` keeps one seeded order for every pass (fixed validation pairs).
    """
    n = len(x)
    if y is not None and len(y) != n:
        raise ValueError(f"x has {n} rows but y has {len(y)}")
    indices = tf.data.Dataset.range(n)
    if shuffle:
        indices = indices.shuffle(n, seed=seed, reshuffle_each_iteration=reshuffle)
    indices = indices.batch(batch_size, drop_remainder=drop_remainder)
    x_shape = (None,) + tuple(x.shape[1:])
    arrays = (x,) if y is None else (x, y)

    def gather(batch_index):
        batch_index = np.sort(batch_index)  # sorted reads are faster on memory-mapped files
        return tuple(np.ascontiguousarray(a[batch_index]) for a in arrays)

    def to_tensors(batch_index):
        dtypes = [tf.as_dtype(a.dtype) for a in arrays]
        tensors = tf.numpy_function(gather, [batch_index], dtypes, stateful=False)
        tensors[0].set_shape(x_shape)
        if y is None:
            return tensors[0]
        tensors[1].set_shape((None,) + tuple(y.shape[1:]))
        return tensors[0], tensors[1]

    options = tf.data.Options()
    options.deterministic = True
    return (indices.map(to_tensors, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE).with_options(options))


def pairs_from_halves(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Siamese pairs as the glucose comparator samples them: each (shuffled) batch is split
    into halves, rows 0..h-1 are the references and rows h..2h-1 the queries; the pair
    label is 1 when the two beats' classes differ, 0 when they are the same."""

    def split(x, y):
        half = tf.shape(x)[0] // 2
        different = tf.cast(tf.not_equal(y[:half], y[half:2 * half]), tf.float32)
        return (x[:half], x[half:2 * half]), tf.reshape(different, (-1, 1))

    return dataset.map(split, num_parallel_calls=tf.data.AUTOTUNE)
