"""TFRecord shards: a data set larger than memory, written once and streamed by tf.data.

``tf-ecg data shards SOURCE --out DIR`` writes, per split, files ``<split>-00000.tfrecord``
of about ``shard_mb`` megabytes and a ``manifest.json`` (counts per split and class, sha256
per shard, the source and its options, the input contract). Every example holds its
samples, labels and record / exam id:

- ``samples``: 2-byte samples, int16 with a per-lead ``gain`` (value = sample x gain), or
  float16 (``float16`` = 1) where int16 would lose precision: when a lead's range needs a
  step coarser than one microvolt;
- ``label``: a class index (int64) or a vector (float32: multi-label 0/1 or regression);
- ``id``: the record or exam it came from.

A training run reads them with :class:`ShardedSplits` (the ``shards`` source): files are
interleaved, examples shuffled in a bounded buffer and decoded in the ``map``, so memory
does not grow with the data set. Under a multi-worker strategy every worker reads the
shards and keeps its part of each global batch (tf.data's DATA auto-sharding), not whole
files: files hold different numbers of examples, and a worker that runs out first would
step on empty batches, which Keras 3 models cannot take.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from tf_ecg.data.conventions import MILLIVOLTS_PER_UNIT
from tf_ecg.data.paths import sha256_of
from tf_ecg.data.spec import InputSpec
from tf_ecg.errors import ECGDataError, OutputPathError

MANIFEST = "manifest.json"
FORMAT = "tf_ecg shards 1"
SPLITS = ("train", "val", "test")
INT16_MAX = 32767


def int16_step_limit(units: str) -> float:
    """The coarsest int16 step kept: one microvolt in the data's units (min-max scaled data:
    a 1/32767 step of its 0-1 range always passes)."""
    return 1e-3 / MILLIVOLTS_PER_UNIT.get(units, 1.0)


def encode_signal(signal: np.ndarray, step_limit: float) -> tuple[bytes, np.ndarray, bool]:
    """(samples bytes, per-lead gain, is float16) of one (length, leads) float signal."""
    peak = np.abs(signal).max(axis=0)
    gain = np.where(peak > 0, peak / INT16_MAX, 1.0).astype(np.float32)
    if np.all(gain <= step_limit):
        return np.round(signal / gain).astype("<i2").tobytes(), gain, False
    return signal.astype("<f2").tobytes(), np.ones_like(gain), True


def _example(signal: np.ndarray, label, example_id: str, step_limit: float) -> tuple[bytes, bool]:
    """One serialised tf.train.Example, and whether its samples are float16."""
    samples, gain, is_float16 = encode_signal(signal, step_limit)
    label = np.asarray(label)
    label_feature = (tf.train.Feature(int64_list=tf.train.Int64List(value=label.reshape(-1).astype(np.int64)))
                     if label.dtype.kind in "iu" else
                     tf.train.Feature(float_list=tf.train.FloatList(value=label.reshape(-1).astype(np.float32))))
    return tf.train.Example(features=tf.train.Features(feature={
        "samples": tf.train.Feature(bytes_list=tf.train.BytesList(value=[samples])),
        "gain": tf.train.Feature(float_list=tf.train.FloatList(value=gain)),
        "float16": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(is_float16)])),
        "label": label_feature,
        "id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[str(example_id).encode()])),
    })).SerializeToString(), is_float16


class _SplitWriter:
    """Examples of one split into files of about ``shard_bytes``; counts as it goes."""

    def __init__(self, directory: Path, split: str, shard_bytes: int, step_limit: float):
        self.directory, self.split, self.shard_bytes, self.step_limit = directory, split, shard_bytes, step_limit
        self.shards: list[dict] = []
        self.labels: list[np.ndarray] = []  # small: one label per example
        self.float16 = 0
        self._writer = None

    def add(self, signal: np.ndarray, label, example_id) -> None:
        if self._writer is None:
            name = f"{self.split}-{len(self.shards):05d}.tfrecord"
            self._writer = tf.io.TFRecordWriter(str(self.directory / name))
            self.shards.append({"file": name, "examples": 0, "bytes": 0})
        record, is_float16 = _example(signal, label, example_id, self.step_limit)
        self._writer.write(record)
        self.float16 += is_float16
        shard = self.shards[-1]
        shard["examples"] += 1
        shard["bytes"] += len(record) + 16  # TFRecord framing: length, two CRCs
        self.labels.append(np.asarray(label))
        if shard["bytes"] >= self.shard_bytes:
            self._close_file()

    def _close_file(self) -> None:
        self._writer.close()
        self._writer = None
        path = self.directory / self.shards[-1]["file"]
        self.shards[-1]["sha256"] = sha256_of(path)

    def close(self, output_names: list[str]) -> dict:
        if self._writer is not None:
            self._close_file()
        return {"examples": sum(s["examples"] for s in self.shards), "float16_examples": int(self.float16),
                **label_summary(np.array(self.labels), output_names), "shards": self.shards}


def label_summary(labels: np.ndarray, output_names: list[str]) -> dict:
    """Counts per class (class index or 0/1 columns), or the median per target (regression)."""
    if not len(labels):
        return {}
    if labels.dtype.kind in "iu":
        counts = np.bincount(labels.reshape(-1), minlength=len(output_names))
        return {"class_counts": dict(zip(output_names, counts.tolist()))}
    if np.isin(labels, (0.0, 1.0)).all():
        return {"class_counts": dict(zip(output_names, labels.reshape(len(labels), -1).sum(axis=0).astype(int).tolist()))}
    return {"target_median": np.median(labels.reshape(len(labels), -1), axis=0).tolist()}


def write_shards(out: str | Path, examples: Iterable[tuple[str, np.ndarray, object, str]], input_spec: InputSpec,
                 output_names: list[str], source: dict, shard_mb: float = 150, extra: dict | None = None) -> Path:
    """Write ``(split, signal, label, id)`` examples as shards plus a manifest into ``out``.

    The files are written into ``<out>.partial`` and moved into place at the end: an
    interrupted or failed conversion leaves no half-written data set behind."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise OutputPathError(out, "exists and is not empty: choose a new --out (shards are written once)")
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    step_limit = int16_step_limit(input_spec.units)
    writers = {split: _SplitWriter(staging, split, int(shard_mb * 2 ** 20), step_limit) for split in SPLITS}
    shape = None
    try:
        for split, signal, label, example_id in examples:
            shape = shape or tuple(signal.shape)
            writers[split].add(signal, label, example_id)
        manifest = {"format": FORMAT, "source": source, "input_shape": list(shape or ()),
                    "input_spec": input_spec.to_dict(), "output_names": list(output_names),
                    "label": _label_layout(writers), "splits": {s: w.close(output_names) for s, w in writers.items()},
                    **(extra or {})}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1, default=_plain))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if out.exists():
        out.rmdir()
    staging.rename(out)
    return out


def _plain(value):
    """numpy values (a source's info) as JSON."""
    return value.tolist() if hasattr(value, "tolist") else str(value)


def _label_layout(writers: dict) -> dict:
    label = next(np.asarray(w.labels[0]) for w in writers.values() if w.labels)
    return {"dtype": "int64" if label.dtype.kind in "iu" else "float32", "shape": list(label.shape)}


def _check_manifest_layout(manifest: dict, path: Path) -> None:
    """The fields readers use, with their types: a hand-edited or damaged manifest is named,
    not met later as a KeyError."""
    def require(condition, what: str) -> None:
        if not condition:
            raise ECGDataError(path, f"damaged manifest: {what}")

    splits = manifest.get("splits")
    require(isinstance(splits, dict) and set(splits) == set(SPLITS), f"'splits' must hold {list(SPLITS)}")
    for split, content in splits.items():
        require(isinstance(content, dict) and isinstance(content.get("examples"), int)
                and isinstance(content.get("shards"), list), f"split {split!r} lacks 'examples' or 'shards'")
        for shard in content["shards"]:
            require(isinstance(shard, dict) and isinstance(shard.get("file"), str) and "/" not in shard["file"]
                    and isinstance(shard.get("bytes"), int) and isinstance(shard.get("sha256"), str),
                    f"a shard of split {split!r} lacks its file name, bytes or sha256")
    require(isinstance(manifest.get("input_shape"), list) and all(isinstance(d, int) for d in manifest["input_shape"]),
            "'input_shape' must be a list of integers")
    require(isinstance(manifest.get("output_names"), list), "'output_names' must be a list")
    require(isinstance(manifest.get("input_spec"), dict), "'input_spec' must be an object")
    label = manifest.get("label")
    require(isinstance(label, dict) and label.get("dtype") in ("int64", "float32") and isinstance(label.get("shape"), list),
            "'label' must give dtype int64 or float32 and a shape")
    require(isinstance(manifest.get("source"), dict) and isinstance(manifest["source"].get("name"), str),
            "'source' must name the source")


def verify_shards(directory: str | Path, progress: bool = True) -> dict:
    """Every shard of ``directory`` against its manifest (size and sha256): a report, and
    an :class:`ECGDataError` naming the first changed shard if any differs."""
    splits = ShardedSplits.open(directory)  # sizes and presence
    changed = splits.changed_shards(progress)
    if changed:
        raise ECGDataError(changed[0], f"sha256 differs from {MANIFEST} ({len(changed)} of {len(splits.shard_files())} "
                                       f"shard(s) changed: {', '.join(p.name for p in changed[:5])})")
    return {"directory": str(splits.directory), "shards": len(splits.shard_files()),
            "bytes": sum(shard["bytes"] for _, shard in splits.shard_files())}


def examples_from_splits(splits) -> Iterable[tuple[str, np.ndarray, object, str]]:
    """The examples of an in-memory :class:`~tf_ecg.data.sources.Splits`, with the record,
    exam or beat each came from."""
    for split in SPLITS:
        x, y = getattr(splits, split)
        for row, example_id in enumerate(splits.example_ids(split)):
            yield split, x[row], y[row], example_id


# ---------------------------------------------------------------- reading

@dataclass
class ShardedSplits:
    """Train / val / test streamed from a shard directory; the trainer asks it for tf.data
    pipelines (``dataset``) where an in-memory :class:`Splits` hands out arrays."""
    directory: Path
    manifest: dict
    shuffle_buffer: int = 1024

    @classmethod
    def open(cls, directory: str | Path, shuffle_buffer: int = 1024, verify: bool = False) -> "ShardedSplits":
        """``verify``: check every shard's sha256 against the manifest first (reads all of them)."""
        directory = Path(directory)
        path = directory / MANIFEST
        if not path.is_file():
            raise ECGDataError(directory, f"no {MANIFEST}: not a shard directory (write one with tf-ecg data shards)")
        try:
            manifest = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ECGDataError(path, f"not valid JSON ({error.msg}, line {error.lineno})") from None
        except UnicodeDecodeError:
            raise ECGDataError(path, "not a text file") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
            raise ECGDataError(path, f"format {found!r}, expected {FORMAT!r}")
        _check_manifest_layout(manifest, path)
        for split, content in manifest["splits"].items():
            for shard in content["shards"]:
                file = directory / shard["file"]
                if not file.is_file():
                    raise ECGDataError(file, f"shard of split {split!r} missing")
                if file.stat().st_size != shard["bytes"]:
                    raise ECGDataError(file, f"{file.stat().st_size} bytes, the manifest says {shard['bytes']} "
                                             f"(truncated or replaced)")
        splits = cls(directory, manifest, shuffle_buffer)
        if verify:
            changed = splits.changed_shards()
            if changed:
                raise ECGDataError(changed[0], f"sha256 differs from {MANIFEST} ({len(changed)} shard(s) changed: "
                                               f"{', '.join(p.name for p in changed[:5])}); rewrite the shards")
        return splits

    def shard_files(self) -> list[tuple[Path, dict]]:
        return [(self.directory / shard["file"], shard)
                for content in self.manifest["splits"].values() for shard in content["shards"]]

    def changed_shards(self, progress: bool = True) -> list[Path]:
        """The shards whose sha256 differs from the manifest's, reading every byte (progress
        bar in bytes: tens of GB for CODE-15%)."""
        files = self.shard_files()
        changed = []
        with tqdm(total=sum(shard["bytes"] for _, shard in files), unit="B", unit_scale=True,
                  desc=f"verifying {self.directory.name}", disable=not progress) as bar:
            for path, shard in files:
                if sha256_of(path, progress=bar.update) != shard["sha256"]:
                    changed.append(path)
        return changed

    @contextmanager
    def naming_read_errors(self):
        """Inside: a TFRecord read error becomes an :class:`ECGDataError` naming the shard
        file and the offset, instead of TensorFlow's nameless traceback."""
        try:
            yield
        except tf.errors.DataLossError as error:
            raise self.corruption_error(error) from None

    def corruption_error(self, error: Exception) -> ECGDataError:
        """The shard a tf.data ``DataLossError`` came from (TensorFlow names only the offset):
        the first shard that fails to read on its own, else the first whose sha256 changed."""
        offset = re.search(r"corrupted record at (\d+)", str(error))
        where = f"corrupted record at byte {offset.group(1)}" if offset else "unreadable record"
        advice = f"rewrite it (tf-ecg data shards), then run again; tf-ecg data verify {self.directory} checks all"
        for path, _ in self.shard_files():
            try:
                for _ in tf.data.TFRecordDataset(str(path)):
                    pass
            except tf.errors.DataLossError as own:
                own_offset = re.search(r"corrupted record at (\d+)", str(own))
                where = f"corrupted record at byte {own_offset.group(1)}" if own_offset else where
                return ECGDataError(path, f"{where}: the shard's bytes changed since it was written; {advice}")
        changed = self.changed_shards(progress=False)
        if changed:
            return ECGDataError(changed[0], f"{where}: sha256 differs from {MANIFEST}; {advice}")
        return ECGDataError(self.directory, f"{where} in a shard ({error.__class__.__name__}); {advice}")

    @property
    def input_spec(self) -> InputSpec:
        return InputSpec(**self.manifest["input_spec"])

    @property
    def output_names(self) -> list[str]:
        return list(self.manifest["output_names"])

    @property
    def info(self) -> dict:
        return {"origin": f"shards of {self.manifest['source']['name']} in {self.directory}",
                "examples": {s: c["examples"] for s, c in self.manifest["splits"].items()}}

    @property
    def example_shape(self) -> tuple:
        return tuple(self.manifest["input_shape"])

    def size(self, split: str) -> int:
        return self.manifest["splits"][split]["examples"]

    def target_median(self) -> np.ndarray:
        median = self.manifest["splits"]["train"].get("target_median")
        if median is None:
            raise ECGDataError(self.directory / MANIFEST, "no target_median for the training split "
                                                          "(a classification data set?)")
        return np.asarray(median, dtype=np.float32)

    def fingerprint(self, names=SPLITS) -> dict:
        """Per split: size, input shape and the sha256 of its shards (two runs with the same
        fingerprint read the same bytes)."""
        result = {}
        for name in names:
            content = self.manifest["splits"][name]
            digest = hashlib.sha256("".join(s["sha256"] for s in content["shards"]).encode()).hexdigest()
            result[name] = {"n": content["examples"], "input_shape": list(self.example_shape), "shards_sha256": digest}
        return result

    def example_input(self, split: str = "val") -> np.ndarray:
        return next(iter(self.dataset(split, 1)))[0][0].numpy()

    def dataset(self, split: str, batch_size: int, shuffle: bool = False, seed: int = 0,
                drop_remainder: bool = False, reshuffle: bool = True) -> tf.data.Dataset:
        """Batches of (x, y), decoded in parallel. ``shuffle``: the files in a shuffled order,
        four read at once, examples shuffled in a buffer of ``shuffle_buffer``; otherwise
        the examples in the order they were written."""
        files = [str(self.directory / s["file"]) for s in self.manifest["splits"][split]["shards"]]
        if not files:
            raise ECGDataError(self.directory, f"split {split!r} has no examples")
        if shuffle:
            data = tf.data.Dataset.from_tensor_slices(files).shuffle(len(files), seed=seed,
                                                                     reshuffle_each_iteration=reshuffle)
            data = data.interleave(tf.data.TFRecordDataset, cycle_length=min(4, len(files)), block_length=1,
                                   num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            data = data.shuffle(self.shuffle_buffer, seed=seed + 1, reshuffle_each_iteration=reshuffle)
        else:  # the files in order: evaluation sees the examples as they were written
            data = tf.data.TFRecordDataset(files)
        data = data.map(self._decoder(), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        data = data.apply(tf.data.experimental.assert_cardinality(self.size(split)))  # progress bars know the end
        data = data.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        return data.with_options(options)

    def _decoder(self):
        shape, leads = self.example_shape, self.example_shape[-1]
        label = self.manifest["label"]
        features = {"samples": tf.io.FixedLenFeature([], tf.string),
                    "gain": tf.io.FixedLenFeature([leads], tf.float32),
                    "float16": tf.io.FixedLenFeature([], tf.int64),
                    "label": tf.io.FixedLenFeature(label["shape"], tf.as_dtype(label["dtype"]))}

        def decode(record):
            example = tf.io.parse_single_example(record, features)
            # int16 and float16 samples are both two bytes: decode as the example says
            x = tf.cond(example["float16"] > 0,
                        lambda: tf.cast(tf.io.decode_raw(example["samples"], tf.float16), tf.float32),
                        lambda: tf.cast(tf.io.decode_raw(example["samples"], tf.int16), tf.float32))
            x = tf.reshape(x, shape) * example["gain"]
            return x, example["label"]

        return decode
