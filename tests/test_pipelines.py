import numpy as np

from tf_ecg.data.pipelines import array_dataset


def batches(dataset):
    return [(np.asarray(x), np.asarray(y)) for x, y in dataset]


def test_every_sample_once_per_epoch_with_labels_kept_aligned():
    x = np.arange(103, dtype="float32")[:, None, None] * np.ones((1, 4, 2), "float32")
    y = np.arange(103)
    epoch = batches(array_dataset(x, y, batch_size=10, shuffle=True, seed=1))
    assert [len(b[1]) for b in epoch] == [10] * 10 + [3]
    seen = np.concatenate([b[1] for b in epoch])
    assert sorted(seen.tolist()) == list(range(103))
    for xb, yb in epoch:
        np.testing.assert_array_equal(xb[:, 0, 0], yb)


def test_seeded_shuffling_is_reproducible_and_reshuffles_each_epoch():
    # Batches are gathered in sorted index order (fast memory-mapped reads), so the
    # shuffle shows in which samples share a batch.
    x, y = np.zeros((50, 3, 1), "float32"), np.arange(50)
    first = array_dataset(x, y, batch_size=10, shuffle=True, seed=3)
    again = array_dataset(x, y, batch_size=10, shuffle=True, seed=3)
    epoch_1, epoch_2 = [b[1] for b in batches(first)], [b[1] for b in batches(first)]
    assert all(np.array_equal(a, b) for a, b in zip(epoch_1, [b[1] for b in batches(again)]))
    assert not all(np.array_equal(a, b) for a, b in zip(epoch_1, epoch_2))
    assert not np.array_equal(epoch_1[0], np.arange(10))


def test_memory_mapped_input_and_drop_remainder(tmp_path):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((40, 16, 8), dtype="float32"))
    x = np.load(tmp_path / "x.npy", mmap_mode="r")
    dataset = array_dataset(x, np.zeros(40, "int64"), batch_size=16, drop_remainder=True)
    assert dataset.element_spec[0].shape.as_list() == [None, 16, 8]
    shapes = [xb.shape for xb, _ in batches(dataset)]
    assert shapes == [(16, 16, 8), (16, 16, 8)]
