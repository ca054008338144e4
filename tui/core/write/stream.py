"""Moving tensor bytes from a source file to the file being written, in bounded memory.

Bytes are copied in CHUNK pieces with os.copy_file_range when no checksum is needed
(the kernel copies; nothing passes through this process), else with os.preadv into
one reused buffer. Memory stays at one chunk whatever the file size. A remote source
(a URL) is read by ranges of CHUNK bytes; a Blob made of parts (a DCP tensor gathered
from its chunks) is copied part by part.
"""

from __future__ import annotations

import errno
import os
import zlib
from collections.abc import Callable, Iterator

from tui.core.errors import ModelFileError
from tui.core.read.locate import Blob, FileReader
from tui.core.read.source import is_url, open_source
from tui.core.write.atomic import write_all

CHUNK = 16 << 20
ProgressFn = Callable[[int, int], None]

# Bytes checksummed while copying: tests bound it (a zip entry's known CRC-32 is reused,
# so saving from a torch zip checksums only what is new, never the tensors).
stats = {"crc_bytes": 0, "copied_bytes": 0}


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


class Sources(FileReader):
    """Read-only descriptors of the source files, opened once per save."""

    def __init__(self) -> None:
        super().__init__()
        self._buf: bytearray | None = None

    def buffer(self) -> memoryview:
        if self._buf is None:
            self._buf = bytearray(CHUNK)
        return memoryview(self._buf)

    def close(self) -> None:
        super().close()
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
        return self._copy(blob, dst, progress, start, n, 0 if want_crc else None)

    def _copy(self, blob: Blob, dst: int, progress: Progress, start: int, n: int,
              crc: int | None) -> int | None:
        """`crc`: the running CRC-32 to continue (None: none wanted)."""
        if blob.cast is not None:
            return self._copy_cast(blob, dst, progress, start, n, crc)
        if blob.parts is not None:
            for part, p_start, p_len in _part_ranges(blob, start, n):
                crc = self._copy(part, dst, progress, p_start, p_len, crc)
            return crc
        if blob.data is not None or blob.make is not None or is_url(blob.path):
            if blob.data is not None:
                view = blob.data[start:start + n]
                pieces = (view[i:i + CHUNK] for i in range(0, len(view), CHUNK))
            elif blob.make is not None:
                data = blob.make(self)
                if len(data) != blob.nbytes:
                    raise ModelFileError(blob.path or "(source)", "assembled bytes have the wrong size")
                pieces = iter([memoryview(data)[start:start + n]])
            else:
                pieces = self._remote_pieces(blob, start, n)
            for piece in pieces:
                if crc is not None:
                    crc = zlib.crc32(piece, crc)
                write_all(dst, piece)
                progress.add(len(piece))
            return crc
        src = self.fd(blob.path)
        off = blob.offset + start
        if crc is None and _copy_range(src, dst, off, n, progress, blob.path):
            return None
        buf = self.buffer()
        end = off + n
        while off < end:
            got = self.pread(blob.path, buf[:min(CHUNK, end - off)], off)
            if crc is not None:
                crc = zlib.crc32(buf[:got], crc)
            write_all(dst, buf[:got])
            _write_behind(dst, got)
            off += got
            progress.add(got)
        return crc

    def _remote_pieces(self, blob: Blob, start: int, n: int):
        src = open_source(blob.path)
        off, end = blob.offset + start, blob.offset + start + n
        while off < end:
            data = src.read_uncached(off, min(CHUNK, end - off))  # type: ignore[attr-defined]
            if not data:
                raise ModelFileError(blob.path, "the remote file is shorter than its tensors need")
            off += len(data)
            yield data

    def _copy_cast(self, blob: Blob, dst: int, progress: Progress, start: int, n: int,
                   crc: int | None) -> int | None:
        """Read source elements a chunk at a time, convert, write (memory: ~3 chunks)."""
        from tui.core.write.cast import convert, itemsize

        src_dt, dst_dt = blob.cast
        unit = itemsize(src_dt) * itemsize(dst_dt)
        step = max(CHUNK // 2 // unit * unit, unit)
        s_start, s_len = blob.source_range(start, n)
        pos, end = s_start, s_start + s_len
        while pos < end:
            take = min(step, end - pos)
            out = convert(self.read(blob.parts[0], pos, take), src_dt, dst_dt)
            if crc is not None:
                crc = zlib.crc32(out, crc)
            write_all(dst, out)
            progress.add(len(out))
            pos += take
        return crc

    def read(self, blob: Blob, start: int, length: int) -> bytes:
        """A small range into memory (pickles, strided tensors); cast blobs come converted."""
        if blob.cast is not None:
            from tui.core.write.cast import convert

            s_start, s_len = blob.source_range(start, length)
            return convert(self.read(blob.parts[0], s_start, s_len), *blob.cast)
        if blob.parts is not None or blob.make is not None or is_url(blob.path):
            out = bytearray()
            if blob.parts is not None:
                for part, p_start, p_len in _part_ranges(blob, start, length):
                    out += self.read(part, p_start, p_len)
            elif blob.make is not None:
                out += blob.make(self)[start:start + length]
            else:
                for piece in self._remote_pieces(blob, start, length):
                    out += piece
            return bytes(out)
        if blob.data is not None:
            return bytes(blob.data[start:start + length])
        out = bytearray(length)
        self.read_into(blob.path, memoryview(out), blob.offset + start)
        return bytes(out)


def _part_ranges(blob: Blob, start: int, n: int) -> Iterator[tuple[Blob, int, int]]:
    """(part, start in it, length) of the parts behind blob bytes [start, start+n)."""
    pos = 0
    for part in blob.parts or ():
        lo, hi = max(start, pos), min(start + n, pos + part.nbytes)
        if lo < hi:
            yield part, lo - pos, hi - lo
        pos += part.nbytes


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
