"""Read PyTorch checkpoints (``.pt``/``.pth``) into NumPy arrays without importing torch.

Both serialisations that ``torch.save`` has used are supported:

* the zip format (torch >= 1.6): a zip archive ``<stem>/data.pkl`` + ``<stem>/data/<key>``;
* the legacy format: a run of pickles in one file (magic number, protocol version,
  sys-info, payload, storage keys) followed by the raw storages, each prefixed by its
  element count as a little-endian int64.

Tensors come back as C-contiguous NumPy arrays. Objects other than tensors and plain
containers (optimizer classes, for example) come back as :class:`OpaqueObject` so that
reading a whole training checkpoint never fails on a class we do not care about.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tf_ecg.errors import WeightFileError

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001

# torch storage class name -> NumPy dtype (little-endian, as torch writes them).
STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": np.dtype("<u2"),  # raw bits; converted in _as_float32_if_bfloat16
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


SAFE_BUILTINS = {"set": set, "frozenset": frozenset, "slice": slice, "complex": complex}


class StorageType:
    """Stand-in for ``torch.<X>Storage`` classes referenced by a checkpoint pickle."""

    def __init__(self, name: str):
        if name not in STORAGE_DTYPES:
            raise KeyError(name)
        self.name = name
        self.dtype = STORAGE_DTYPES[name]


class OpaqueObject:
    """Any pickled object of a class we do not reconstruct (kept for inspection only)."""

    def __init__(self, qualified_name: str, *args, **kwargs):
        self.qualified_name = qualified_name
        self.args = args
        self.state = None

    def __setstate__(self, state):
        self.state = state

    def __repr__(self) -> str:
        return f"OpaqueObject({self.qualified_name})"


def _opaque_class(qualified_name: str):
    return type(qualified_name.rsplit(".", 1)[-1], (OpaqueObject,), {
        "__new__": lambda cls, *a, **k: OpaqueObject.__new__(cls),
        "__init__": lambda self, *a, **k: OpaqueObject.__init__(self, qualified_name, *a),
    })


def _rebuild_tensor(storage: np.ndarray, offset: int, size, stride, *_ignored) -> np.ndarray:
    size = tuple(int(s) for s in size)
    if not size:
        return np.array(storage[offset], dtype=storage.dtype)
    itemsize = storage.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=size, strides=tuple(int(s) * itemsize for s in stride)
    )
    return np.ascontiguousarray(view)


def _rebuild_parameter(data, requires_grad, backward_hooks, *_ignored):
    return data


class _CheckpointUnpickler(pickle.Unpickler):
    """Unpickler that maps the few torch globals a state dict needs onto NumPy."""

    def __init__(self, file, load_storage: Callable[[tuple], np.ndarray] | None):
        super().__init__(file)
        self._load_storage = load_storage

    def find_class(self, module: str, name: str):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in STORAGE_DTYPES:
            return StorageType(name)
        if module in ("builtins", "__builtin__") and name in SAFE_BUILTINS:
            return SAFE_BUILTINS[name]
        return _opaque_class(f"{module}.{name}")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        return self._load_storage(pid)


def _storage_type(pid: tuple) -> StorageType:
    storage_type = pid[1]
    if not isinstance(storage_type, StorageType):
        raise pickle.UnpicklingError(f"unsupported storage type {storage_type!r}")
    return storage_type


def _read_zip_checkpoint(path: Path) -> Any:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if not pickles:
            raise WeightFileError(path, "zip archive without data.pkl: not a torch checkpoint")
        prefix = pickles[0][: -len("data.pkl")]

        def load_storage(pid):
            storage_type, key = _storage_type(pid), str(pid[2])
            raw = archive.read(f"{prefix}data/{key}")
            return np.frombuffer(raw, dtype=storage_type.dtype)

        with archive.open(pickles[0]) as handle:
            return _CheckpointUnpickler(io.BytesIO(handle.read()), load_storage).load()


def _resolve_legacy_storages(obj: Any, data: dict[str, np.ndarray]) -> Any:
    """Replace the placeholders left by the legacy payload pickle with real arrays."""
    if isinstance(obj, _PendingTensor):
        return obj.resolve(data)
    if isinstance(obj, dict):
        resolved = type(obj)() if isinstance(obj, collections.OrderedDict) else {}
        for key, value in obj.items():
            resolved[key] = _resolve_legacy_storages(value, data)
        return resolved
    if isinstance(obj, (list, tuple)):
        return type(obj)(_resolve_legacy_storages(v, data) for v in obj)
    return obj


class _PendingTensor:
    def __init__(self, key: str, offset: int, size, stride):
        self.key, self.offset, self.size, self.stride = key, offset, size, stride

    def resolve(self, data: dict[str, np.ndarray]) -> np.ndarray:
        return _rebuild_tensor(data[self.key], self.offset, self.size, self.stride)


class _LegacyUnpickler(_CheckpointUnpickler):
    """In the legacy format the storage bytes come after the payload: defer tensors."""

    def __init__(self, file):
        super().__init__(file, load_storage=None)
        self.storage_types: dict[str, StorageType] = {}

    def find_class(self, module: str, name: str):
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return lambda storage, offset, size, stride, *rest: _PendingTensor(
                storage, offset, size, stride)
        return super().find_class(module, name)

    def persistent_load(self, pid):
        _storage_type(pid)
        self.storage_types[str(pid[2])] = pid[1]
        return str(pid[2])


def _read_legacy(path: Path) -> Any:
    with open(path, "rb") as handle:
        def plain_load():
            return _CheckpointUnpickler(handle, load_storage=None).load()

        try:
            magic = plain_load()
        except Exception as exc:  # noqa: BLE001 - any unpickling failure means "not torch"
            raise WeightFileError(path, f"not a torch checkpoint ({exc})") from None
        if magic != LEGACY_MAGIC_NUMBER:
            raise WeightFileError(path, "not a torch checkpoint (wrong magic number)")
        protocol = plain_load()
        if protocol != LEGACY_PROTOCOL_VERSION:
            raise WeightFileError(path, f"unsupported legacy protocol version {protocol}")
        sys_info = plain_load()
        if not sys_info.get("little_endian", True):
            raise WeightFileError(path, "big-endian checkpoints are not supported")
        unpickler = _LegacyUnpickler(handle)
        payload = unpickler.load()
        keys = plain_load()
        data: dict[str, np.ndarray] = {}
        for key in keys:
            key = str(key)
            dtype = unpickler.storage_types[key].dtype
            count_bytes = handle.read(8)
            if len(count_bytes) < 8:
                raise WeightFileError(path, f"truncated file: storage {key} is missing")
            (count,) = struct.unpack("<q", count_bytes)
            raw = handle.read(count * dtype.itemsize)
            if len(raw) < count * dtype.itemsize:
                raise WeightFileError(path, f"truncated file: storage {key} is incomplete")
            data[key] = np.frombuffer(raw, dtype=dtype)
    return _resolve_legacy_storages(payload, data)


def read_torch_checkpoint(path: str | Path) -> Any:
    """Return the object that ``torch.load(path)`` would, with tensors as NumPy arrays."""
    path = Path(path)
    if not path.is_file():
        raise WeightFileError(path, "file not found")
    try:
        if zipfile.is_zipfile(path):
            return _read_zip_checkpoint(path)
        return _read_legacy(path)
    except DAMAGED_CHECKPOINT as error:
        raise WeightFileError(path, f"damaged or not a torch checkpoint ({type(error).__name__}: {error})") from None


# What reading a damaged or foreign file raises: zip and pickle framing, a member the archive
# lacks (KeyError), truncated or garbled pickle opcodes and their arguments.
DAMAGED_CHECKPOINT = (zipfile.BadZipFile, pickle.UnpicklingError, ValueError, EOFError, KeyError, IndexError,
                      struct.error, zlib.error, OverflowError)


def find_state_dict(checkpoint: Any, path: str | Path = "<checkpoint>") -> dict[str, np.ndarray]:
    """Pick the state dict out of a checkpoint: bare, or under a usual key.

    Keys are returned with a ``module.`` prefix (``nn.DataParallel``) removed.
    """
    candidates = [checkpoint]
    if isinstance(checkpoint, dict):
        candidates += [checkpoint[k] for k in ("state_dict", "stat_dict", "model", "model_state_dict")
                       if k in checkpoint]
    for candidate in reversed(candidates):
        if isinstance(candidate, dict) and candidate and all(
                isinstance(v, np.ndarray) for v in candidate.values()):
            return collections.OrderedDict(
                (k[len("module."):] if k.startswith("module.") else k, v)
                for k, v in candidate.items())
    raise WeightFileError(path, "no state dict of tensors found in the checkpoint")
