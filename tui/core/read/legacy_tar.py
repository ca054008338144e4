"""The oldest torch.save format: a tar of `sys_info`, `pickle`, `storages`, `tensors`.

torch.load still tries it first on any non-zip file, unpickling every record in
`storages` and `tensors` and then `pickle` with the full unpickler. Here each of those
pickles is read the restricted way (and scanned), and the binary parts are decoded:

- `storages`: a count, then per storage a pickled (key, location, storage type), an
  int64 element count and the raw bytes; then a pickled list of views
  (view key, root key, offset, numel).
- `tensors`: a count, then per tensor a pickled (key, storage key, tensor type), an
  int32 ndim (+4 bytes), ndim int64 sizes, ndim int64 strides, an int64 offset.
- `pickle`: the object; persistent ids are those keys (tuples: module source checks).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tui.core.errors import ModelFileError
from tui.core.model import DTYPE_SIZES, Finding
from tui.core.read.guard import GuardError, check_pickle
from tui.core.read.loading import broken, load
from tui.core.read.records import (
    ReadResult,
    StorageRec,
    StorageType,
    TensorRec,
    count_arg,
    int_tuple,
    shape_arg,
)
from tui.core.read.source import fileobj
from tui.core.read.unpickle import Unpickler

if TYPE_CHECKING:
    import tarfile

MAX_RECORDS = 1_000_000


@dataclass
class TarModel:
    data: bytes  # the `pickle` member
    read: ReadResult
    extra: list[ReadResult] = field(default_factory=list)
    span: tuple[int, int] = (0, 0)  # the `pickle` member's bytes in the file
    offsets: dict[str, int] = field(default_factory=dict)  # storage key → byte offset in the file


def is_tar(path: str) -> bool:
    import tarfile  # only files that are neither zip nor safetensors get here

    try:
        with fileobj(path) as f, tarfile.open(fileobj=f, mode="r:"):
            return True
    except (tarfile.TarError, OSError, ValueError, EOFError):
        return False


def open_tar(path: str) -> tuple[TarModel, list[Finding]]:
    """The object with its tensors as records, every other pickle's read, and a note."""
    import tarfile

    m = TarModel(b"", ReadResult(None, {}, [], [], {}, []))
    try:
        with fileobj(path) as f, tarfile.open(fileobj=f, mode="r:") as tar:
            storages, s_at = _member(path, tar, "storages")
            tensors, _ = _member(path, tar, "tensors")
            main, main_at = _member(path, tar, "pickle")
            recs = _storages(path, storages, s_at, m)
            tensor_recs = _tensors(path, tensors, recs, m)
            m.data, m.span = main, (main_at, main_at + len(main))
            m.read = _main(path, main, {**recs, **tensor_recs})
            m.read.storages.update({str(k): r for k, r in recs.items() if isinstance(r, StorageRec)})
    except ModelFileError as e:
        raise broken(path, e.problem, m.extra, getattr(e, "findings", [])) from None
    except (tarfile.TarError, OSError, EOFError, struct.error, ValueError, TypeError) as e:
        raise broken(path, f"broken legacy tar file ({type(e).__name__})", m.extra) from None
    note = Finding("info", "legacy tar format", "torch < 0.4's tar layout: every pickle in it is "
                   "read and scanned like the others")
    return m, [note]


def _member(path: str, tar: tarfile.TarFile, name: str) -> tuple[bytes, int]:
    try:
        info = tar.getmember(name)
    except KeyError:
        raise ModelFileError(path, f"legacy tar file without '{name}'") from None
    f = tar.extractfile(info)
    if f is None:
        raise ModelFileError(path, f"legacy tar member '{name}' is not a file")
    return f.read(), info.offset_data


def _one(path: str, data: bytes, pos: int, m: TarModel) -> tuple[Any, int]:
    try:
        end = check_pickle(data, pos)
    except GuardError as e:
        raise ModelFileError(path, f"legacy tar file has a broken pickle ({e})") from None
    read = load(path, data[pos:end])
    m.extra.append(read)
    return read.root, end


def _count(path: str, data: bytes, m: TarModel) -> tuple[int, int]:
    count, pos = _one(path, data, 0, m)
    if type(count) is not int or not 0 <= count <= MAX_RECORDS:
        raise ModelFileError(path, "legacy tar file with a broken record count")
    return count, pos


def _storages(path: str, data: bytes, at: int, m: TarModel) -> dict[int, Any]:
    count, pos = _count(path, data, m)
    recs: dict[int, Any] = {}
    for _ in range(count):
        args, pos = _one(path, data, pos, m)
        if not (isinstance(args, tuple) and len(args) == 3 and isinstance(args[2], StorageType)):
            raise ModelFileError(path, "legacy tar file with a broken storage record")
        key, location, stype = args
        (n,) = struct.unpack_from("<q", data, pos)
        size = DTYPE_SIZES.get(stype.dtype, 1)
        if n < 0 or pos + 8 + n * size > len(data):
            raise ModelFileError(path, "legacy tar file with storage data cut short")
        rec = StorageRec(str(key), stype.dtype, str(location), n)
        recs[int(key)] = rec
        m.offsets[str(key)] = at + pos + 8
        pos += 8 + int(n * size)
    views, pos = _one(path, data, pos, m)
    for view in views if isinstance(views, list) else ():
        target, root, offset, _numel = view
        recs[int(target)] = (recs[int(root)], count_arg(offset))  # a view: root + element offset
    return recs


def _tensors(path: str, data: bytes, storages: dict[int, Any], m: TarModel) -> dict[int, Any]:
    count, pos = _count(path, data, m)
    out: dict[int, Any] = {}
    for _ in range(count):
        args, pos = _one(path, data, pos, m)
        if not (isinstance(args, tuple) and len(args) == 3):
            raise ModelFileError(path, "legacy tar file with a broken tensor record")
        key, storage_id, _ttype = args
        (ndim,) = struct.unpack_from("<i", data, pos)
        if not 0 <= ndim <= 64:
            raise ModelFileError(path, "legacy tar file with a broken tensor record")
        pos += 8
        shape = shape_arg(struct.unpack_from(f"<{ndim}q", data, pos))
        stride = int_tuple(struct.unpack_from(f"<{ndim}q", data, pos + 8 * ndim))
        (offset,) = struct.unpack_from("<q", data, pos + 16 * ndim)
        pos += 16 * ndim + 8
        storage = storages.get(int(storage_id))
        if isinstance(storage, tuple):  # a view of a root storage
            storage, extra = storage
            offset += extra
        if not isinstance(storage, StorageRec):
            raise ModelFileError(path, f"legacy tar tensor {key} without its storage")
        out[int(key)] = TensorRec(storage, count_arg(offset), shape, stride, False, storage.dtype)
    return out


class _TarUnpickler(Unpickler):
    """Persistent ids are the keys of the `storages` and `tensors` records."""

    def __init__(self, path: str, data: bytes, objects: dict[int, Any]) -> None:
        super().__init__(data)
        self.path, self.objects = path, objects

    def persistent_load(self, pid: Any) -> Any:
        if isinstance(pid, tuple):  # ('module', class, source file, source): the class
            return pid[0] if pid else None
        key = str(pid)
        obj = self.objects.get(int(key)) if key.isdigit() else None
        if obj is None:
            raise ModelFileError(self.path, f"legacy tar object refers to unknown key {key!r:.40}")
        return obj[0] if isinstance(obj, tuple) else obj


def _main(path: str, data: bytes, objects: dict[int, Any]) -> ReadResult:
    try:
        check_pickle(data)
    except GuardError:
        return load(path, data)  # the same error, worded, with what it names
    u = _TarUnpickler(path, data, objects)
    try:
        read = u.result(u.load())
    except ModelFileError:
        raise
    except Exception:  # noqa: BLE001 - let the common path word the error
        return load(path, data)
    read.tensors.extend(t for t in objects.values() if isinstance(t, TensorRec))
    return read
