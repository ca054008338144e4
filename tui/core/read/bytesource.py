"""Random access to the bytes of one file: the base every reader's source follows, the
local file, and views over any source (a file object for zipfile, bytes-like indexing
for the pickle guard, a window onto part of a file).

    src.size, src.read_at(offset, n), src.fileobj()
"""

from __future__ import annotations

import io
import os
from typing import BinaryIO

from tui.core.errors import ModelFileError


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
    """bytes-like indexing over a source (the pickle guard walks a legacy file with it).

    The guard reads one opcode at a time: bytes come from a 64 KiB window kept here."""

    WINDOW = 1 << 16

    def __init__(self, src: ByteSource) -> None:
        self.src = src
        self._at, self._win = 0, b""

    def __len__(self) -> int:
        return self.src.size

    def _fill(self, start: int, stop: int) -> bytes:
        if not (self._at <= start and stop <= self._at + len(self._win)):
            self._at = start
            self._win = self.src.read_at(start, max(self.WINDOW, stop - start))
        return self._win[start - self._at:stop - self._at]

    def __getitem__(self, i: int | slice) -> int | bytes:
        if isinstance(i, slice):
            start, stop, _ = i.indices(self.src.size)
            return self._fill(start, max(stop, start))
        if i < 0:
            i += self.src.size
        if not 0 <= i < self.src.size:
            raise IndexError(i)
        if self._at <= i < self._at + len(self._win):
            return self._win[i - self._at]
        return self._fill(i, i + 1)[0]

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
