"""Byte sources: a local file or a remote object, read by (offset, length).

Readers reach every file through these few calls, so one code path opens a path or a
URL. A local path keeps its old, fast means (the OS file, mmap, os.pread); a URL
(http(s)://, s3://, hf://, anything fsspec knows) goes to tui.core.read.remote, which
fetches only the ranges asked for, through a block cache in memory and on disk.

    src = open_source(path_or_url)
    src.size, src.read_at(offset, n), src.fileobj()  # a seekable file for zipfile
"""

from __future__ import annotations

import io
import os
import re
import stat as _stat
from typing import BinaryIO

from tui.core.errors import ModelFileError

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(path: str) -> bool:
    """A URL (scheme://…) rather than a local path; file:// counts as local."""
    return bool(_URL.match(path)) and not path.startswith("file://")


def local_path(path: str) -> str:
    return path[len("file://"):] if path.startswith("file://") else path


class ByteSource:
    """Random access to the bytes of one file."""

    name: str = ""
    size: int = 0

    def read_at(self, offset: int, n: int) -> bytes:
        raise NotImplementedError

    def fileobj(self) -> BinaryIO:
        """A seekable binary file over the source (zipfile reads through it)."""
        return RangeFile(self)  # type: ignore[return-value]

    def close(self) -> None:
        pass


class LocalSource(ByteSource):
    def __init__(self, path: str) -> None:
        self.name = path
        self._fd = -1
        try:
            self.size = os.path.getsize(path)
        except OSError as e:
            raise ModelFileError(path, e.strerror or str(e)) from None

    def read_at(self, offset: int, n: int) -> bytes:
        try:
            if self._fd < 0:
                self._fd = os.open(self.name, os.O_RDONLY)
            out = b""
            while len(out) < n:  # pread may return less than asked
                got = os.pread(self._fd, n - len(out), offset + len(out))
                if not got:
                    break
                out += got
            return out
        except OSError as e:
            raise ModelFileError(self.name, e.strerror or str(e)) from None

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:
        self.close()

    def fileobj(self) -> BinaryIO:
        try:
            return open(self.name, "rb")
        except OSError as e:
            raise ModelFileError(self.name, e.strerror or str(e)) from None


class RangeFile(io.RawIOBase):
    """A read-only, seekable file over a ByteSource (no read-ahead beyond the source's own)."""

    def __init__(self, src: ByteSource) -> None:
        super().__init__()
        self.src = src
        self.pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.src.size}[whence]
        self.pos = max(base + offset, 0)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def read(self, n: int = -1) -> bytes:
        end = self.src.size if n is None or n < 0 else min(self.pos + n, self.src.size)
        if end <= self.pos:
            return b""
        data = self.src.read_at(self.pos, end - self.pos)
        self.pos += len(data)
        return data

    def readinto(self, b) -> int:  # type: ignore[override]
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)


class RangeView:
    """bytes-like indexing over a source (the pickle guard walks a legacy file with it)."""

    def __init__(self, src: ByteSource) -> None:
        self.src = src

    def __len__(self) -> int:
        return self.src.size

    def __getitem__(self, i: int | slice) -> int | bytes:
        if isinstance(i, slice):
            start, stop, _ = i.indices(self.src.size)
            return self.src.read_at(start, max(stop - start, 0))
        if i < 0:
            i += self.src.size
        if not 0 <= i < self.src.size:
            raise IndexError(i)
        return self.src.read_at(i, 1)[0]

    def find(self, sub: bytes, start: int = 0) -> int:
        step, pos = 1 << 16, start
        while pos < self.src.size:
            piece = self.src.read_at(pos, step + len(sub) - 1)
            i = piece.find(sub)
            if i >= 0:
                return pos + i
            pos += step
        return -1


class Window(ByteSource):
    """Bytes [offset, offset+length) of another source, as a source of their own."""

    def __init__(self, src: ByteSource, offset: int, length: int) -> None:
        self.src, self.base = src, offset
        self.name = src.name
        self.size = max(min(length, src.size - offset), 0)

    def read_at(self, offset: int, n: int) -> bytes:
        n = max(min(n, self.size - offset), 0)
        return self.src.read_at(self.base + offset, n) if n else b""


def open_source(path: str) -> ByteSource:
    if is_url(path):
        from tui.core.read.remote import remote_source

        return remote_source(path)
    return LocalSource(local_path(path))


def fileobj(path: str) -> BinaryIO:
    return open_source(path).fileobj()


def size_of(path: str) -> int:
    return open_source(path).size


def kind(path: str) -> tuple[str, int]:
    """("dir" | "file" | "other", size in bytes) of a path or URL; ModelFileError if missing."""
    if is_url(path):
        from tui.core.read.remote import remote_kind

        return remote_kind(path)
    path = local_path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ModelFileError(path, "no such file or directory") from None
    except OSError as e:
        raise ModelFileError(path, e.strerror or str(e)) from None
    if _stat.S_ISDIR(st.st_mode):
        return "dir", 0
    return ("file" if _stat.S_ISREG(st.st_mode) else "other"), st.st_size


def listdir(path: str) -> list[str]:
    """Names (not paths) in a folder or under a remote prefix."""
    if is_url(path):
        from tui.core.read.remote import remote_listdir

        return remote_listdir(path)
    try:
        return os.listdir(local_path(path))
    except OSError as e:
        raise ModelFileError(path, e.strerror or str(e)) from None


def join(folder: str, name: str) -> str:
    if is_url(folder):
        return folder.rstrip("/") + "/" + name
    return os.path.join(folder, name)


def dirname(path: str) -> str:
    if is_url(path):
        return path.rstrip("/").rsplit("/", 1)[0]
    return os.path.dirname(os.path.abspath(path))


def basename(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1] if is_url(path) else os.path.basename(path)


def isfile(path: str) -> bool:
    if is_url(path):
        try:
            return kind(path)[0] == "file"
        except ModelFileError:
            return False
    return os.path.isfile(local_path(path))


def read_all(path: str, limit: int) -> bytes:
    """A whole small file (an index, DCP .metadata); refuses one larger than `limit`."""
    src = open_source(path)
    if src.size > limit:
        raise ModelFileError(path, f"is larger than {limit >> 20} MB")
    return src.read_at(0, src.size)
