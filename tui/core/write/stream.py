"""Moving tensor bytes from a source file to the file being written, in bounded memory.

Bytes are copied in CHUNK pieces with os.copy_file_range when no checksum is needed
(the kernel copies; nothing passes through this process), else with os.preadv into
one reused buffer. Memory stays at one chunk whatever the file size.
"""

from __future__ import annotations

import errno
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from tui.core.errors import ModelFileError
from tui.core.write.atomic import write_all

CHUNK = 16 << 20
ProgressFn = Callable[[int, int], None]

# Bytes checksummed while copying: tests bound it (a zip entry's known CRC-32 is reused,
# so saving from a torch zip checksums only what is new, never the tensors).
stats = {"crc_bytes": 0, "copied_bytes": 0}


@dataclass(eq=False)
class Blob:
    """Bytes to copy: a range of a file, or bytes in memory (TorchScript tensors)."""

    nbytes: int
    path: str = ""
    offset: int = 0  # absolute offset in `path`
    crc: int | None = None  # CRC-32 of exactly these bytes, when known (copied zip entries)
    data: memoryview | None = None


class Progress:
    """Counts bytes written and calls the callback at least once per chunk."""

    def __init__(self, total: int, callback: ProgressFn | None) -> None:
        self.total = max(int(total), 0)
        self.done = 0
        self.callback = callback

    def add(self, n: int) -> None:
        self.done += n
        if self.callback is not None:
            self.callback(min(self.done, self.total) if self.total else self.done, self.total)

    def finish(self) -> None:
        self.total = max(self.total, self.done)
        if self.callback is not None:
            self.callback(self.done, self.total)


class Sources:
    """Read-only descriptors of the source files, opened once per save."""

    def __init__(self) -> None:
        self._fds: dict[str, int] = {}
        self._buf: bytearray | None = None

    def fd(self, path: str) -> int:
        fd = self._fds.get(path)
        if fd is None:
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError as e:
                raise ModelFileError(path, f"can't read the source again ({e.strerror or e})") from None
            self._fds[path] = fd
        return fd

    def buffer(self) -> memoryview:
        if self._buf is None:
            self._buf = bytearray(CHUNK)
        return memoryview(self._buf)

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        self._buf = None

    def __enter__(self) -> Sources:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- copying ---------------------------------------------------------------
    def copy(self, blob: Blob, dst: int, progress: Progress, start: int = 0,
             length: int | None = None, want_crc: bool = False) -> int | None:
        """Append blob bytes [start, start+length) to dst; return their CRC-32 if asked."""
        n = blob.nbytes - start if length is None else length
        stats["copied_bytes"] += n
        if want_crc:
            stats["crc_bytes"] += n
        if blob.data is not None:
            view = blob.data[start:start + n]
            crc = zlib.crc32(view) if want_crc else None
            for i in range(0, len(view), CHUNK):
                write_all(dst, view[i:i + CHUNK])
                progress.add(min(CHUNK, len(view) - i))
            return crc
        src = self.fd(blob.path)
        off = blob.offset + start
        if not want_crc and _copy_range(src, dst, off, n, progress, blob.path):
            return None
        buf = self.buffer()
        crc, end = 0, off + n
        while off < end:
            got = _pread(src, buf[:min(CHUNK, end - off)], off, blob.path)
            if want_crc:
                crc = zlib.crc32(buf[:got], crc)
            write_all(dst, buf[:got])
            _write_behind(dst, got)
            off += got
            progress.add(got)
        return crc if want_crc else None

    def read(self, blob: Blob, start: int, length: int) -> bytes:
        """A small range into memory (pickles, strided tensors)."""
        if blob.data is not None:
            return bytes(blob.data[start:start + length])
        out = bytearray(length)
        view, pos = memoryview(out), 0
        while pos < length:
            pos += _pread(self.fd(blob.path), view[pos:], blob.offset + start + pos, blob.path)
        return bytes(out)


def _write_behind(fd: int, n: int) -> None:
    """Start writing the chunk just written out to disk now, and let its pages go.

    The final fsync then waits for little more than the last chunk instead of the whole
    file, and a big save doesn't push everything else out of the page cache."""
    if n >= _WRITE_BEHIND and hasattr(os, "posix_fadvise"):
        try:
            end = os.lseek(fd, 0, os.SEEK_CUR)
            os.posix_fadvise(fd, end - n, n, os.POSIX_FADV_DONTNEED)
        except OSError:
            pass


_WRITE_BEHIND = 1 << 20


def _pread(fd: int, view: memoryview, off: int, path: str) -> int:
    try:
        got = os.preadv(fd, [view], off)
    except OSError as e:
        raise ModelFileError(path, f"can't read the source ({e.strerror or e})") from None
    if got <= 0:
        raise ModelFileError(path, "the source file is shorter than its tensors need (truncated?)")
    return got


_NO_CFR = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EBADF, errno.ETXTBSY}
_cfr_ok = hasattr(os, "copy_file_range")


def _copy_range(src: int, dst: int, off: int, n: int, progress: Progress, path: str) -> bool:
    """Kernel-side copy into dst at its position; False (nothing copied) when unsupported."""
    global _cfr_ok
    if not _cfr_ok:
        return False
    end, first = off + n, True
    while off < end:
        try:
            got = os.copy_file_range(src, dst, min(CHUNK, end - off), off)
        except OSError as e:
            if first and e.errno in _NO_CFR:
                _cfr_ok = e.errno not in (errno.ENOSYS,)
                return False
            raise
        if got == 0:
            raise ModelFileError(path, "the source file is shorter than its tensors need (truncated?)")
        first = False
        _write_behind(dst, got)
        off += got
        progress.add(got)
    return True
