"""Shards: ``tf-ecg data shards`` converts a source into TFRecord shards once
(:func:`write_source_shards`), and the ``shards`` source streams them into training (full
PTB-XL, CODE-15%, or any data set too large for memory)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tf_ecg.data.formats.code import CLASSES
from tf_ecg.data.formats.code15 import CODE15_SPEC, code15_examples
from tf_ecg.data.paths import data_root as resolve_root, dataset_dir
from tf_ecg.data.sources import load_source, register_source, source_names

if TYPE_CHECKING:  # TFRecord shards are TensorFlow's: imported where they are read or written
    from tf_ecg.data.formats.shards import ShardedSplits


@register_source("shards")
def shard_source(directory: str, shuffle_buffer: int = 1024, verify: bool = False, data_root=None) -> ShardedSplits:
    """``directory``: the folder ``tf-ecg data shards`` wrote (relative paths are under the
    data root); ``shuffle_buffer``: examples held for shuffling (memory: this many examples);
    ``verify``: check every shard's sha256 against the manifest before the run starts."""
    path = Path(directory).expanduser()
    from tf_ecg.data.formats.shards import ShardedSplits

    return ShardedSplits.open(path if path.is_absolute() else resolve_root(data_root) / path, shuffle_buffer, verify)


def shardable_sources() -> list[str]:
    return ["code15", *(name for name in source_names() if name != "shards")]


def write_source_shards(source: str, out=None, data_root=None, options: dict | None = None,
                        shard_mb: float = 150) -> Path:
    """Convert ``source`` (with its [data] ``options``) into shards in ``out`` (default
    ``<data root>/shards/<source>``). CODE-15% is read part by part, in bounded memory;
    the other sources build their arrays first, as training from them would."""
    from tf_ecg.data.formats.shards import examples_from_splits, write_shards

    options = dict(options or {})
    out = Path(out) if out else resolve_root(data_root) / "shards" / source
    if source == "code15":
        directory = Path(options.pop("directory")) if "directory" in options else dataset_dir("code15", data_root)
        options = {"val_fraction": 0.02, "test_fraction": 0.02, "seed": 0, **options}
        skipped: dict = {}  # filled while the parts are read
        examples = code15_examples(directory, skipped=skipped, **options)
        return write_shards(out, examples, CODE15_SPEC, list(CLASSES),
                            {"name": "code15", "directory": str(directory), **options}, shard_mb,
                            extra={"skipped": skipped})
    splits = load_source({"source": source, **options}, data_root)
    return write_shards(out, examples_from_splits(splits), splits.input_spec, splits.output_names,
                        {"name": source, **options}, shard_mb, extra={"info": splits.info})
