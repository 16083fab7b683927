"""The data-source catalogue a recipe names in ``[data] source = ...``.

A source turns the data root and the recipe's [data] options into train/val/test
arrays plus an :class:`InputSpec` that tells inference how to prepare new recordings.
One module per data set registers its sources here; a source's keyword arguments are the
schema of its recipe section (checked by :mod:`tf_ecg.config`). The DeepFake source needs
the generator model, so it lives one floor up, in :mod:`tf_ecg.deepfake` (registered when
the catalogue is first asked for a source).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from tf_ecg.data.spec import InputSpec
from tf_ecg.errors import RecipeError

SourceFn = Callable[..., "Splits"]
_SOURCES: dict[str, SourceFn] = {}


@dataclass
class Splits:
    """Train / val / test held as arrays (in memory or memory-mapped). A source too large
    for that returns :class:`tf_ecg.data.formats.shards.ShardedSplits`, which answers the same
    questions (``dataset``, ``example_shape``, ``example_input``, ``target_median``,
    ``fingerprint``) from TFRecord shards."""
    train: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    input_spec: InputSpec
    output_names: list[str]         # class names, or target names for regression
    info: dict = field(default_factory=dict)
    ids: dict[str, np.ndarray] | None = None  # per split, what each example came from (record, exam, beat)

    @property
    def example_shape(self) -> tuple:
        return tuple(self.train[0].shape[1:])

    def size(self, split: str) -> int:
        return len(getattr(self, split)[1])

    def example_ids(self, split: str) -> np.ndarray:
        """Where each example of a split came from; "<split>/<row>" where the source does not say."""
        if self.ids is not None and split in self.ids:
            return np.asarray(self.ids[split]).astype(str)
        return np.array([f"{split}/{row}" for row in range(self.size(split))])

    def example_input(self, split: str = "val") -> np.ndarray:
        return getattr(self, split)[0][0]

    def target_median(self) -> np.ndarray:
        """Per target, the median of the training targets."""
        y = np.asarray(self.train[1])
        return np.median(y.reshape(len(y), -1), axis=0)

    def dataset(self, split: str, batch_size: int, shuffle: bool = False, seed: int = 0,
                drop_remainder: bool = False, reshuffle: bool = True):
        """Batches of (x, y) of one split: a tf.data pipeline (a ``PyDataset`` without TensorFlow)."""
        from tf_ecg.data.pipelines import array_dataset  # TensorFlow: only where a dataset is asked for

        return array_dataset(*getattr(self, split), batch_size, shuffle=shuffle, seed=seed,
                             drop_remainder=drop_remainder, reshuffle=reshuffle)

    def naming_read_errors(self):
        """A context for reading the splits: arrays in memory have no read errors to name
        (:class:`~tf_ecg.data.formats.shards.ShardedSplits` names the corrupt shard)."""
        return contextlib.nullcontext()

    def fingerprint(self, names=("train", "val", "test")) -> dict:
        """Split sizes and a hash of each split's labels and inputs: two runs with the same
        fingerprint saw the same data (the hash reads every array once)."""
        result = {}
        for name in names:
            x, y = getattr(self, name)
            labels = hashlib.sha256(np.ascontiguousarray(np.asarray(y)).tobytes()).hexdigest()
            inputs = hashlib.sha256(np.ascontiguousarray(np.asarray(x)).tobytes()).hexdigest()
            result[name] = {"n": int(len(y)), "input_shape": list(np.shape(x)[1:]),
                            "labels_sha256": labels, "inputs_sha256": inputs}
        return result


def register_source(name: str) -> Callable[[SourceFn], SourceFn]:
    def decorator(function: SourceFn) -> SourceFn:
        _SOURCES[name] = function
        return function

    return decorator


# Sources defined above the data floor, because they run a model (the DeepFake ECGs): their
# modules register them when first asked for.
_SOURCES_ABOVE = ("tf_ecg.deepfake",)


def _register_sources_above() -> None:
    for module in _SOURCES_ABOVE:
        importlib.import_module(module)


def source_names() -> list[str]:
    _register_sources_above()
    return sorted(_SOURCES)


def source_function(name: str) -> SourceFn:
    if name not in _SOURCES:
        _register_sources_above()
    if name not in _SOURCES:
        raise KeyError(f"unknown data source {name!r}; known: {source_names()}")
    return _SOURCES[name]


def load_source(options: dict, data_root=None) -> Splits:
    """The splits of ``options["source"]`` with the other options (a recipe's [data])."""
    options = dict(options)
    name = options.pop("source", None)
    try:
        function = source_function(name)
    except KeyError as error:
        raise RecipeError(None, error.args[0]) from None
    return function(data_root=data_root, **options)


def random_split(n: int, fractions=(0.7, 0.1, 0.2), seed: int = 0) -> list[np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    cuts = np.cumsum([int(round(f * n)) for f in fractions[:-1]])
    return np.split(order, cuts)


# Registration: every data set's module adds its sources to the catalogue.
from tf_ecg.data.sources import glucose, heartbeats, mitbih, ptbxl, shards  # noqa: E402,F401
