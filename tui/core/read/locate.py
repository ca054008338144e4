"""Where a tensor's bytes are: one storage → one byte range of one file (or memory).

Shared by the writers (which copy the bytes) and the value reader (which decodes them).
Nothing is read here but zip directories and legacy storage headers.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tui.core.errors import ModelFileError
from tui.core.model import DTYPE_SIZES, ModelFile, TensorInfo
from tui.core.read.containers import Entry, TorchSource, listing
from tui.core.read.records import StorageRec


@dataclass(eq=False)
class Blob:
    """Bytes of a storage: a range of a file, or bytes in memory (TorchScript tensors)."""

    nbytes: int
    path: str = ""
    offset: int = 0  # absolute offset in `path`
    crc: int | None = None  # CRC-32 of exactly these bytes, when known (copied zip entries)
    data: memoryview | None = None
    parts: list[Blob] | None = None  # the bytes are these blobs one after the other
    make: Callable[[Any], bytes] | None = None  # bytes computed when needed (from a write.stream.Sources)
    # (source dtype, written dtype): `parts[0]` holds the source bytes, converted on the way;
    # nbytes counts the written bytes.
    cast: tuple[str, str] | None = None

    def source_range(self, start: int, length: int) -> tuple[int, int]:
        """The source bytes behind written bytes [start, start+length) (whole elements)."""
        if self.cast is None:
            return start, length
        si, di = int(DTYPE_SIZES[self.cast[0]]), int(DTYPE_SIZES[self.cast[1]])
        return start // di * si, length // di * si


class FileReader:
    """Read-only descriptors of local source files, opened once each; ranges read with
    pread, so readers never share a file position. The writers and the value reader both
    read tensor bytes through it."""

    def __init__(self) -> None:
        self._fds: dict[str, int] = {}

    def fd(self, path: str) -> int:
        fd = self._fds.get(path)
        if fd is None:
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError as e:
                raise ModelFileError(path, f"can't read the file ({e.strerror or e})") from None
            self._fds[path] = fd
        return fd

    def pread(self, path: str, view: memoryview, off: int) -> int:
        """Some bytes at `off` into `view`: how many (never 0: a short file is an error)."""
        try:
            got = os.preadv(self.fd(path), [view], off)
        except OSError as e:
            raise ModelFileError(path, f"can't read tensor data ({e.strerror or e})") from None
        if got <= 0:
            raise ModelFileError(path, "the file is shorter than its tensors need (truncated?)")
        return got

    def read_into(self, path: str, view: memoryview, off: int) -> None:
        """Fill `view` with the bytes at `off`."""
        pos = 0
        while pos < len(view):
            pos += self.pread(path, view[pos:], off + pos)

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


@dataclass(eq=False)
class Storage:
    """One storage: tensors that share it stay views of one block."""

    blob: Blob
    dtype: str  # element type of the storage as the source names it
    location: str


class Locator:
    """StorageRec / TensorInfo → Storage (one per storage), with the bytes' place."""

    def __init__(self, mf: ModelFile) -> None:
        self.mf = mf
        src = mf.source
        if src is None:
            raise ModelFileError(mf.path, "no tensor data in this file")
        if getattr(src, "stale", False):
            raise ModelFileError(mf.path, "the file was replaced by a save since it was opened: "
                                 "open it again")
        self.storages: dict[int, Storage] = {}
        self.owner: dict[int, TorchSource] = {}  # id(StorageRec) → its file
        self.by_key: dict[tuple[str, str], StorageRec] = {}  # (file, key) → record
        self.listings: dict[str, dict[str, Entry]] = {}
        for ts in ([src.torch] if src.torch is not None else []) + list(src.shards):
            for rec in ts.read.storages.values():
                self.owner[id(rec)] = ts
                self.by_key[(ts.path, rec.key)] = rec

    def storage(self, rec: StorageRec, name: str) -> Storage:
        got = self.storages.get(id(rec))
        if got is not None:
            return got
        ts = self.owner.get(id(rec))
        if ts is None:
            raise ModelFileError(self.mf.path, f"tensor {name}: storage {rec.key} not found")
        nbytes = int(rec.numel * DTYPE_SIZES.get(rec.dtype, 1))
        if ts.container == "zip":
            if ts.path not in self.listings:
                self.listings[ts.path] = listing(ts.path)[0]
            entry = self.listings[ts.path].get(f"{ts.prefix}data/{rec.key}")
            if entry is None:
                raise ModelFileError(ts.path, f"storage data/{rec.key} is missing from the archive")
            if not entry.stored:
                raise ModelFileError(ts.path, f"storage data/{rec.key} is compressed; torch writes it stored")
            blob = Blob(entry.size, ts.path, entry.data, crc=entry.crc)
        else:
            offsets = ts.storage_offsets()
            if rec.key not in offsets:
                raise ModelFileError(ts.path, f"storage {rec.key} is missing from the file")
            blob = Blob(nbytes, ts.path, offsets[rec.key])
        got = Storage(blob, rec.dtype, rec.location)
        self.storages[id(rec)] = got
        return got

    def of_info(self, t: TensorInfo) -> Storage:
        """The storage of a tensor shown in the tree (any container)."""
        ref = t.storage
        if ref is None:
            raise ModelFileError(self.mf.path, f"tensor {t.name} has {t.note or 'no data'}")
        src = self.mf.source
        if src.kind == "safetensors":
            e = src.st_entries[t.name]
            key = id(e)
            if key not in self.storages:
                self.storages[key] = Storage(Blob(e.nbytes, e.path, e.offset), e.dtype, "cpu")
            return self.storages[key]
        rec = self.by_key.get((ref.path, ref.key))
        if rec is None:
            raise ModelFileError(self.mf.path, f"tensor {t.name}: storage {ref.key} not found")
        return self.storage(rec, t.name)
