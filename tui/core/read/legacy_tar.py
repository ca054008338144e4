"""The oldest torch.save format: a tar of `sys_info`, `pickle`, `storages`, `tensors`.

torch.load still tries it first on any non-zip file, unpickling every record in
`storages` and `tensors` and then `pickle` with the full unpickler. Here each of those
pickles is read the restricted way and scanned; the object graph is shown with its
tensors by key (their layout in this format is not decoded), and saving is refused.
"""

from __future__ import annotations

import struct
import tarfile

from tui.core.errors import ModelFileError
from tui.core.model import DTYPE_SIZES, Finding
from tui.core.read.guard import GuardError, check_pickle
from tui.core.read.loading import broken, load
from tui.core.read.records import Marker, ReadResult, StorageType
from tui.core.read.unpickle import Unpickler

MAX_RECORDS = 1_000_000


def is_tar(path: str) -> bool:
    try:
        with tarfile.open(path, mode="r:"):
            return True
    except (tarfile.TarError, OSError, ValueError, EOFError):
        return False


def open_tar(path: str) -> tuple[bytes, ReadResult, list[ReadResult], list[Finding]]:
    """The main pickle's bytes and read, the other pickles' reads, and a note."""
    reads: list[ReadResult] = []
    try:
        with tarfile.open(path, mode="r:") as tar:
            storages = _member(tar, "storages")
            tensors = _member(tar, "tensors")
            main = _member(tar, "pickle")
            pos = _records(path, storages, reads, skip=_storage_bytes)
            _one(path, storages, pos, reads)  # storage views
            _records(path, tensors, reads, skip=_tensor_bytes)
            data = main
            read = _main(path, main)
    except ModelFileError as e:
        raise broken(path, e.problem, reads, getattr(e, "findings", [])) from None
    except (tarfile.TarError, OSError, EOFError, struct.error, ValueError) as e:
        raise broken(path, f"broken legacy tar file ({type(e).__name__})", reads) from None
    note = Finding("info", "legacy tar format", "torch < 0.4's tar layout: every pickle in it is "
                   "read and scanned; tensors are shown by key only and it can't be saved")
    return data, read, reads, [note]


def _member(tar: tarfile.TarFile, name: str) -> bytes:
    try:
        f = tar.extractfile(name)
    except KeyError:
        raise ModelFileError(tar.name or "", f"legacy tar file without '{name}'") from None
    if f is None:
        raise ModelFileError(tar.name or "", f"legacy tar member '{name}' is not a file")
    return f.read()


def _one(path: str, data: bytes, pos: int, reads: list[ReadResult]) -> tuple[object, int]:
    try:
        end = check_pickle(data, pos)
    except GuardError as e:
        raise ModelFileError(path, f"legacy tar file has a broken pickle ({e})") from None
    read = load(path, data[pos:end])
    reads.append(read)
    return read.root, end


def _records(path: str, data: bytes, reads: list[ReadResult], skip) -> int:
    count, pos = _one(path, data, 0, reads)
    if type(count) is not int or not 0 <= count <= MAX_RECORDS:
        raise ModelFileError(path, "legacy tar file with a broken record count")
    for _ in range(count):
        args, pos = _one(path, data, pos, reads)
        pos = skip(path, data, pos, args)
    return pos


def _storage_bytes(path: str, data: bytes, pos: int, args: object) -> int:
    stype = args[2] if isinstance(args, tuple) and len(args) == 3 else None
    size = DTYPE_SIZES.get(stype.dtype, 1) if isinstance(stype, StorageType) else 1
    (n,) = struct.unpack_from("<q", data, pos)
    return pos + 8 + int(n * size)


def _tensor_bytes(path: str, data: bytes, pos: int, args: object) -> int:
    (ndim,) = struct.unpack_from("<i", data, pos)
    if not 0 <= ndim <= 64:
        raise ModelFileError(path, "legacy tar file with a broken tensor record")
    return pos + 8 + 16 * ndim + 8


def _main(path: str, data: bytes) -> ReadResult:
    try:
        check_pickle(data)
    except GuardError:
        return load(path, data)  # the same error, with what it names
    u = Unpickler(data)
    u.persistent_load = lambda pid: (Marker(f"tensor {pid} (legacy tar)")
                                     if not isinstance(pid, tuple) else None)
    try:
        return u.result(u.load())
    except Exception:  # noqa: BLE001 - let the common path word the error
        return load(path, data)

