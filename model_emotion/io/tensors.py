"""Tensors from files someone else wrote, read without trusting them.

``read_tensor_file`` reads ``torch.save`` files (the zip format, and the legacy format torch used
before 1.6) and pickles that hold tensors (the original code's ``pickle.dump`` masks, protocols 0-5),
with one restricted unpickler instead of ``torch.load``: only the globals that such files need are
admitted (tensor rebuilding, the storage types, ``OrderedDict``, plain numpy arrays), so no code in a
file can run. Every tensor is checked *before* it is built:

- its storage comes from the file and holds exactly the bytes the file declares (a zip entry of that
  size, or the legacy record's byte count), so nothing is allocated beyond what the file holds;
- its view lies inside that storage, touches no element twice (no zero, negative or overlapping
  strides: a dense block, a permutation of one or a slice of one), comes from a CPU or CUDA storage
  (``meta`` and other locations are refused; it is read to the CPU), of a documented dtype
  (``STORAGE_DTYPES``);
- it has at most ``element_limit()`` elements (``$ME_MAX_TENSOR_ELEMENTS``, default 2^31).

Torch itself grows a storage that is smaller than its view (``Tensor.set_``), which would expose
uninitialised memory as data; that path is never taken here. ``read_npz`` does the same for ``.npz``
arrays: each header's element count is checked against the bytes of its entry before numpy allocates.
"""

from __future__ import annotations

import io
import math
import os
import pickle
import struct
import sys
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from model_emotion.errors import ToolkitError

LIMIT_ENV = "ME_MAX_TENSOR_ELEMENTS"
DEFAULT_LIMIT = 1 << 31
MAX_DIMS = 8
MAX_DEFLATE_RATIO = 1100  # deflate expands at most about 1032:1; a larger declared size is a lie
STORAGE_DTYPES = {
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "ShortStorage": torch.int16,
    "IntStorage": torch.int32,
    "LongStorage": torch.int64,
    "BoolStorage": torch.bool,
}
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001


class TensorFileError(ToolkitError):
    """A tensor file that is malformed, crafted, or larger than allowed."""


def element_limit() -> int:
    """The most elements one tensor from a file may have: ``$ME_MAX_TENSOR_ELEMENTS`` or 2^31."""
    raw = os.environ.get(LIMIT_ENV)
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isdigit() or int(raw) < 1:
        raise ToolkitError(f"${LIMIT_ENV} is {raw!r}; set it to a positive number of elements")
    return int(raw)


def _too_many(count: int, limit: int) -> str:
    return f"{count} elements, above the limit of {limit} (raise it with ${LIMIT_ENV})"


def _itemsize(dtype: torch.dtype) -> int:
    return torch.empty(0, dtype=dtype).element_size()


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _StorageType:
    def __init__(self, dtype: torch.dtype):
        self.dtype = dtype


class _Pending:
    """A legacy-format storage whose bytes come after the pickle: filled in by ``_read_legacy``."""

    def __init__(self, key: str, dtype: torch.dtype, numel: int):
        self.key, self.dtype, self.numel = key, dtype, numel
        self.flat: torch.Tensor | None = None


class _PendingTensor:
    def __init__(self, storage: _Pending, offset: int, size: tuple[int, ...], stride: tuple[int, ...]):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def build(self) -> torch.Tensor:
        return _view(self.storage.flat, self.offset, self.size, self.stride)


def check_layout(storage_numel: int, offset, size, stride, limit: int, where: str) -> tuple[tuple[int, ...], int]:
    """The view ``size``/``stride`` at ``offset`` must be a dense row-major block inside the storage.
    Returns the size and the element count."""
    if not isinstance(size, (tuple, list, torch.Size)) or not isinstance(stride, (tuple, list)):
        raise TensorFileError(f"{where}: a tensor's size and strides are not tuples")
    size, stride = tuple(size), tuple(stride)
    if len(size) > MAX_DIMS or len(size) != len(stride):
        raise TensorFileError(f"{where}: a tensor has {len(size)} sizes and {len(stride)} strides (at most {MAX_DIMS})")
    if not all(_is_int(v) and v >= 0 for v in size) or not all(_is_int(v) for v in stride) or not _is_int(offset):
        raise TensorFileError(f"{where}: a tensor's size, strides or offset are not non-negative integers")
    numel = math.prod(size)
    if numel > limit:
        raise TensorFileError(f"{where}: a tensor of shape {list(size)} has {_too_many(numel, limit)}")
    # No element twice: ordered by stride, each dim's stride clears the whole extent of the smaller
    # ones (a dense row-major block, any permutation of it, or a slice of one); no zero or negative
    # strides. Dims of size 1 may have any stride.
    order = sorted((i for i in range(len(size)) if size[i] > 1), key=lambda i: stride[i])
    extent = 1
    for i in order:
        if stride[i] < extent:
            raise TensorFileError(
                f"{where}: a tensor of shape {list(size)} has strides {list(stride)}: zero, negative or "
                f"overlapping strides are refused"
            )
        extent = stride[i] * (size[i] - 1) + extent
    last = offset + sum(stride[i] * (size[i] - 1) for i in order) if numel else offset - 1
    if offset < 0 or last >= storage_numel:
        raise TensorFileError(
            f"{where}: a tensor of shape {list(size)} at offset {offset} reaches past its storage of "
            f"{storage_numel} elements"
        )
    return size, numel


class _Unpickler(pickle.Unpickler):
    """Admits only what tensor files need; ``storages(key, dtype, numel)`` supplies storage bytes."""

    def __init__(self, stream, where: str, limit: int, storages=None):
        super().__init__(stream)
        self.where, self.limit, self.storages = where, limit, storages

    def find_class(self, module: str, name: str):
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(STORAGE_DTYPES[name])
        allowed = {
            ("torch._utils", "_rebuild_tensor_v2"): self._rebuild,
            ("torch._utils", "_rebuild_tensor"): self._rebuild,
            ("torch.storage", "_load_from_bytes"): self._from_bytes,
            ("collections", "OrderedDict"): OrderedDict,
            ("_codecs", "encode"): _latin1,
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): _numeric_dtype,
            ("numpy.core.multiarray", "_reconstruct"): _np_reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): _np_reconstruct,
            ("numpy.core.numeric", "_frombuffer"): _np_frombuffer,
            ("numpy._core.numeric", "_frombuffer"): _np_frombuffer,
        }
        if (module, name) not in allowed:
            raise pickle.UnpicklingError(f"refused global {module}.{name}")
        return allowed[(module, name)]

    def persistent_load(self, pid):
        if (
            not isinstance(pid, tuple)
            or len(pid) not in (5, 6)  # the legacy format adds a view record (None)
            or (len(pid) == 6 and pid[5] is not None)
            or pid[0] != "storage"
            or not isinstance(pid[1], _StorageType)
            or not isinstance(pid[2], str)
            or not _is_int(pid[4])
        ):
            raise TensorFileError(f"{self.where}: a storage record is malformed")
        _, kind, key, location, numel = pid[:5]
        if not isinstance(location, str) or not location.startswith(("cpu", "cuda")):
            raise TensorFileError(
                f"{self.where}: a storage on device {location!r} (only cpu or cuda storages are read)"
            )
        if numel < 0 or numel > self.limit:
            raise TensorFileError(f"{self.where}: a storage of {_too_many(numel, self.limit)}")
        if self.storages is None:
            raise TensorFileError(f"{self.where}: a storage where none is expected")
        return self.storages(key, kind.dtype, numel)

    def _from_bytes(self, data):
        if not isinstance(data, bytes):
            raise TensorFileError(f"{self.where}: a storage's bytes are not bytes")
        return _read_legacy(io.BytesIO(data), self.where, self.limit, root_storage=True)

    def _rebuild(self, storage, offset, size, stride, *rest):
        if isinstance(storage, _Pending):
            size, _ = check_layout(storage.numel, offset, size, stride, self.limit, self.where)
            return _PendingTensor(storage, offset, size, tuple(stride))
        if not isinstance(storage, torch.Tensor) or storage.dim() != 1:
            raise TensorFileError(f"{self.where}: a tensor without a storage from the file")
        size, _ = check_layout(storage.numel(), offset, size, stride, self.limit, self.where)
        return _view(storage, offset, size, tuple(stride))


def _view(flat: torch.Tensor, offset: int, size: tuple[int, ...], stride: tuple[int, ...]) -> torch.Tensor:
    """The checked view (``check_layout``) copied out of the file's storage."""
    if not math.prod(size):
        return torch.empty(size, dtype=flat.dtype)
    return flat.as_strided(size, stride, offset).clone()


def _latin1(text, encoding="latin1"):
    """``_codecs.encode`` as protocols 0-2 use it for bytes: latin-1 only."""
    if not isinstance(text, str) or encoding != "latin1":
        raise TensorFileError("a pickle asks for an encoding other than latin1 bytes")
    return text.encode("latin1")


def _numeric_dtype(spec, *args):
    dtype = np.dtype(spec, *args) if isinstance(spec, str) else None
    if dtype is None or dtype.kind not in "biuf":
        raise TensorFileError(f"a numpy array of dtype {spec!r} (only numbers are read)")
    return dtype


def _np_reconstruct(cls, shape, dtype):
    """numpy's pickles build an empty array here and set its shape, dtype and bytes afterwards
    (``__setstate__``, which checks the bytes against the shape): the shape given here is ignored."""
    if cls is not np.ndarray:
        raise TensorFileError("a numpy object that is not a plain array")
    return np.ndarray.__new__(np.ndarray, (0,), np.uint8)


def _np_frombuffer(buffer, dtype, shape, order="C"):
    """numpy's pickle protocol 5 form: the bytes, checked against the shape before the array is made."""
    data = bytes(buffer) if isinstance(buffer, (bytes, bytearray, pickle.PickleBuffer)) else None
    if data is None or not isinstance(dtype, np.dtype) or dtype.kind not in "biuf":
        raise TensorFileError("a numpy array that is not numbers held in bytes")
    if not isinstance(shape, tuple) or not all(_is_int(v) and v >= 0 for v in shape) or order not in ("C", "F"):
        raise TensorFileError("a numpy array with a malformed shape")
    if math.prod(shape) * dtype.itemsize != len(data):
        raise TensorFileError(f"a numpy array of shape {list(shape)} holds {len(data)} bytes")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order=order).copy()


def _flat_from_bytes(data: bytes, dtype: torch.dtype, numel: int, where: str) -> torch.Tensor:
    if len(data) != numel * _itemsize(dtype):
        raise TensorFileError(f"{where}: a storage declares {numel} elements but holds {len(data)} bytes")
    if not numel:
        return torch.empty(0, dtype=dtype)
    return torch.frombuffer(bytearray(data), dtype=dtype)


def _read_zip(path: Path, where: str, limit: int):
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n == "data.pkl" or n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise TensorFileError(f"{where}: not a torch.save file ({len(pickles)} data.pkl entries)")
        prefix = pickles[0][: -len("data.pkl")]
        if f"{prefix}byteorder" in names and archive.read(f"{prefix}byteorder") != sys.byteorder.encode():
            raise TensorFileError(f"{where}: written on a machine of the other byte order")
        loaded: dict[str, torch.Tensor] = {}

        def storage(key: str, dtype: torch.dtype, numel: int) -> torch.Tensor:
            if key not in loaded:
                try:
                    info = archive.getinfo(f"{prefix}data/{key}")
                except KeyError:
                    raise TensorFileError(f"{where}: the storage {key!r} is missing from the file") from None
                if info.file_size != numel * _itemsize(dtype) or info.compress_type != zipfile.ZIP_STORED:
                    raise TensorFileError(
                        f"{where}: the storage {key!r} declares {numel} elements of {dtype} but its entry holds "
                        f"{info.file_size} bytes"
                    )
                loaded[key] = _flat_from_bytes(archive.read(info), dtype, numel, where)
            if loaded[key].dtype != dtype:
                raise TensorFileError(f"{where}: the storage {key!r} is read as two dtypes")
            return loaded[key]

        return _Unpickler(io.BytesIO(archive.read(pickles[0])), where, limit, storage).load()


def _read_legacy(stream: io.BufferedIOBase, where: str, limit: int, root_storage: bool = False):
    """torch.save's format before 1.6 (also the bytes inside ``torch.storage._load_from_bytes``)."""
    plain = _Unpickler(stream, where, limit)
    if plain.load() != LEGACY_MAGIC or plain.load() != LEGACY_PROTOCOL:
        raise TensorFileError(f"{where}: not a torch.save file (bad magic number or protocol)")
    info = plain.load()
    if not isinstance(info, dict) or info.get("little_endian", True) is not (sys.byteorder == "little"):
        raise TensorFileError(f"{where}: written on a machine of the other byte order")
    pending: dict[str, _Pending] = {}

    def storage(key: str, dtype: torch.dtype, numel: int) -> _Pending:
        if key not in pending:
            pending[key] = _Pending(key, dtype, numel)
        if pending[key].dtype != dtype or pending[key].numel != numel:
            raise TensorFileError(f"{where}: the storage {key!r} is declared twice differently")
        return pending[key]

    result = _Unpickler(stream, where, limit, storage).load()
    keys = _Unpickler(stream, where, limit).load()
    if not isinstance(keys, list) or sorted(keys) != sorted(pending):
        raise TensorFileError(f"{where}: the storage list does not match the storages used")
    for key in keys:
        record = pending[key]
        head = stream.read(8)
        if len(head) != 8:
            raise TensorFileError(f"{where}: the file ends inside the storage {key!r}")
        (count,) = struct.unpack("<q", head)
        if count != record.numel:
            raise TensorFileError(f"{where}: the storage {key!r} declares {record.numel} elements, then {count}")
        size = count * _itemsize(record.dtype)
        data = stream.read(size)
        record.flat = _flat_from_bytes(data, record.dtype, count, where)
    if root_storage:
        if not isinstance(result, _Pending):
            raise TensorFileError(f"{where}: the storage bytes hold something else")
        return result.flat
    return _resolve(result)


def _resolve(obj, depth: int = 0):
    """Replace pending tensors in the (dict/list/tuple) structure a legacy file holds."""
    if depth > 64:
        raise TensorFileError("a tensor file nests containers more than 64 deep")
    if isinstance(obj, _PendingTensor):
        return obj.build()
    if isinstance(obj, _Pending):
        raise TensorFileError("a bare storage where a tensor is expected")
    if isinstance(obj, dict):
        return type(obj)((k, _resolve(v, depth + 1)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_resolve(v, depth + 1) for v in obj)
    return obj


def read_tensor_file(path: str | Path, what: str = "tensor file"):
    """The object a tensor file holds (dicts, lists, numbers, strings, CPU tensors, numpy arrays),
    read and checked as the module docstring says. Anything else is one ``ToolkitError``."""
    path = Path(path)
    where = str(path)
    limit = element_limit()
    try:
        if zipfile.is_zipfile(path):
            return _read_zip(path, where, limit)
        with open(path, "rb") as handle:
            head = handle.read(64)
            handle.seek(0)
            if _starts_legacy(head):
                return _read_legacy(handle, where, limit)
            return _resolve(_Unpickler(handle, where, limit).load())
    except TensorFileError:
        raise
    except pickle.UnpicklingError as exc:
        if str(exc).startswith("refused global"):
            raise TensorFileError(f"{where} is not a {what} this toolkit reads safely ({exc})") from None
        raise TensorFileError(f"{where} is not a readable {what} (UnpicklingError)") from None
    except (RecursionError, MemoryError):
        raise TensorFileError(f"{where}: a {what} nested too deeply or too large to read") from None
    except Exception as exc:  # noqa: BLE001 - truncated, garbled: the same user error
        raise TensorFileError(f"{where} is not a readable {what} ({type(exc).__name__})") from None


def _starts_legacy(head: bytes) -> bool:
    """A legacy torch.save file starts with its magic number pickled as a long."""
    try:
        return _Unpickler(io.BytesIO(head), "", 0).load() == LEGACY_MAGIC
    except Exception:  # noqa: BLE001 - not a pickled number: not the legacy format
        return False


def read_npz(path: str | Path, what: str = "npz file") -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` (no pickles), each header's shape checked against its entry's bytes
    and ``element_limit()`` before anything is allocated."""
    path = Path(path)
    limit = element_limit()
    out = {}
    try:
        total = path.stat().st_size
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                stored = info.compress_type == zipfile.ZIP_STORED
                if info.compress_size > total or info.file_size > (
                    info.compress_size if stored else MAX_DEFLATE_RATIO * info.compress_size
                ):
                    raise TensorFileError(
                        f"{path}: {info.filename} declares {info.file_size} bytes from {info.compress_size} stored "
                        f"in a file of {total}"
                    )
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    if version not in ((1, 0), (2, 0), (3, 0)):
                        raise TensorFileError(f"{path}: {info.filename} has npy format version {version}")
                    reader = (
                        np.lib.format.read_array_header_1_0
                        if version == (1, 0)
                        else np.lib.format.read_array_header_2_0
                    )
                    shape, fortran, dtype = reader(member, max_header_size=10000)
                    count = math.prod(shape)
                    if dtype.hasobject:
                        raise TensorFileError(f"{path}: {info.filename} holds Python objects (refused)")
                    if count > limit:
                        raise TensorFileError(
                            f"{path}: {info.filename} of shape {list(shape)} has {_too_many(count, limit)}"
                        )
                    if count * dtype.itemsize > info.file_size:
                        raise TensorFileError(
                            f"{path}: {info.filename} declares shape {list(shape)} ({count * dtype.itemsize} bytes) "
                            f"but its entry holds {info.file_size} bytes"
                        )
                with archive.open(info) as member:
                    out[info.filename[: -len(".npy")]] = np.lib.format.read_array(member, allow_pickle=False)
    except TensorFileError:
        raise
    except MemoryError:
        raise TensorFileError(f"{path}: a {what} too large to read") from None
    except Exception as exc:  # noqa: BLE001 - truncated, garbled, unsupported zip features: the same user error
        reason = " ".join(str(exc).split())[:200]
        raise TensorFileError(f"{path} is not a readable {what} ({type(exc).__name__}: {reason})") from None
    return out
