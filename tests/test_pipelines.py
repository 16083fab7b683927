import numpy as np
import pytest

from tf_ecg.data.pipelines import ArrayBatches, array_dataset, pairs_from_halves

# tf.data where TensorFlow is installed; the PyDataset that JAX or PyTorch alone train from
KINDS = ("tf.data", "PyDataset")


def pipeline(kind, x, y=None, batch_size=32, **options):
    if kind == "tf.data":
        return array_dataset(x, y, batch_size, **options)
    return ArrayBatches(x, y, batch_size, **options)


def epoch(dataset):
    """One pass, as ``fit`` makes it (Keras ends a PyDataset's epoch with ``on_epoch_end``)."""
    seen = [tuple(np.asarray(part) for part in batch) for batch in dataset]
    if isinstance(dataset, ArrayBatches):
        dataset.on_epoch_end()
    return seen


@pytest.mark.parametrize("kind", KINDS)
def test_every_sample_once_per_epoch_with_labels_kept_aligned(kind):
    x = np.arange(103, dtype="float32")[:, None, None] * np.ones((1, 4, 2), "float32")
    y = np.arange(103)
    batches = epoch(pipeline(kind, x, y, batch_size=10, shuffle=True, seed=1))
    assert [len(b[1]) for b in batches] == [10] * 10 + [3]
    seen = np.concatenate([b[1] for b in batches])
    assert sorted(seen.tolist()) == list(range(103))
    for xb, yb in batches:
        np.testing.assert_array_equal(xb[:, 0, 0], yb)


@pytest.mark.parametrize("kind", KINDS)
def test_seeded_shuffling_is_reproducible_and_reshuffles_each_epoch(kind):
    # Batches are gathered in sorted index order (fast memory-mapped reads), so the
    # shuffle shows in which samples share a batch.
    x, y = np.zeros((50, 3, 1), "float32"), np.arange(50)
    first = pipeline(kind, x, y, batch_size=10, shuffle=True, seed=3)
    again = pipeline(kind, x, y, batch_size=10, shuffle=True, seed=3)
    epoch_1, epoch_2 = [b[1] for b in epoch(first)], [b[1] for b in epoch(first)]
    assert all(np.array_equal(a, b) for a, b in zip(epoch_1, [b[1] for b in epoch(again)]))
    assert not all(np.array_equal(a, b) for a, b in zip(epoch_1, epoch_2))
    assert not np.array_equal(epoch_1[0], np.arange(10))
    fixed = pipeline(kind, x, y, batch_size=10, shuffle=True, seed=3, reshuffle=False)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(epoch(fixed), epoch(fixed)))


@pytest.mark.parametrize("kind", KINDS)
def test_memory_mapped_input_and_drop_remainder(kind, tmp_path):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((40, 16, 8), dtype="float32"))
    x = np.load(tmp_path / "x.npy", mmap_mode="r")
    dataset = pipeline(kind, x, np.zeros(40, "int64"), batch_size=16, drop_remainder=True)
    if kind == "tf.data":
        assert dataset.element_spec[0].shape.as_list() == [None, 16, 8]
    shapes = [xb.shape for xb, _ in epoch(dataset)]
    assert shapes == [(16, 16, 8), (16, 16, 8)]


@pytest.mark.parametrize("kind", KINDS)
def test_siamese_pairs_from_the_halves_of_each_batch(kind):
    x = np.arange(24, dtype="float32")[:, None, None]
    y = np.array([0, 1, 2] * 8)
    beats = pipeline(kind, x, y, batch_size=8, shuffle=True, seed=0)
    pairs = list(pairs_from_halves(beats))
    assert len(pairs) == 3
    assert len(next(iter(beats))) == 2 and len(next(iter(beats))[0]) == 8  # the beats' own batches stay unpaired
    classes = lambda beats: y[beats[:, 0, 0].astype(int)]  # noqa: E731
    for (references, queries), different in pairs:
        references, queries, different = np.asarray(references), np.asarray(queries), np.asarray(different)
        assert references.shape == queries.shape == (4, 1, 1) and different.shape == (4, 1)
        np.testing.assert_array_equal(different[:, 0], classes(references) != classes(queries))
