"""Zip archives the way torch.save writes them, streamed.

Entries are stored (never compressed), each entry's data starts on a 64-byte
boundary (torch's PyTorchStreamWriter pads the local header's extra field with an
"FB" record, so `torch.load(mmap=True)` can map tensors in place), and ZIP64
records are written so archives past 4 GiB work. Sizes are known before each
entry is written; a CRC-32 that is not known up front (bytes that never were a zip
entry) is computed while copying and patched into the local header afterwards.
"""

from __future__ import annotations

import os
import struct
import zlib

from tui.core.errors import ModelFileError
from tui.core.read.locate import Blob
from tui.core.read.source import fileobj
from tui.core.write.atomic import write_all
from tui.core.write.stream import Progress, Sources
from tui.core.write.stream import stats as stream_stats

ALIGN = 64
_U32 = 0xFFFFFFFF
_DOS_DATE = (0 << 9) | (1 << 5) | 1  # 1980-01-01: reproducible output
_VERSION = 45  # ZIP64


def central_offsets(path: str, start_dir: int, count: int) -> dict[str, int]:
    """name → offset of its central directory record (to patch a CRC in place)."""
    out: dict[str, int] = {}
    with fileobj(path) as f:
        f.seek(start_dir)
        pos = start_dir
        for _ in range(count):
            head = f.read(46)
            if len(head) < 46 or head[:4] != b"PK\x01\x02":
                raise ModelFileError(path, "broken zip central directory")
            n, m, k = struct.unpack("<HHH", head[28:34])
            raw = f.read(n)
            flags = struct.unpack("<H", head[8:10])[0]
            name = raw.decode("utf-8" if flags & 0x800 else "cp437")
            out[name] = pos
            f.seek(m + k, os.SEEK_CUR)
            pos += 46 + n + m + k
    return out


class ZipWriter:
    """Writes entries at the fd's current position, which must be the file's start."""

    def __init__(self, fd: int, sources: Sources, progress: Progress) -> None:
        self.fd = fd
        self.sources = sources
        self.progress = progress
        self.pos = 0
        self.records: list[tuple[bytes, int, int, int]] = []  # name, crc, size, header offset

    def _local_header(self, name: bytes, crc: int, size: int) -> bytes:
        big = size >= _U32
        extra = struct.pack("<HHQQ", 1, 16, size, size) if big else b""
        fixed = 30 + len(name) + len(extra)
        pad = -(self.pos + fixed + 4) % ALIGN  # +4: the padding record's own header
        extra += struct.pack("<HH", 0x4246, pad) + b"Z" * pad  # "FB", as torch writes it
        s32 = _U32 if big else size
        return struct.pack("<IHHHHHIIIHH", 0x04034B50, _VERSION, 0x800, 0, 0, _DOS_DATE,
                           crc, s32, s32, len(name), len(extra)) + name + extra

    def _begin(self, name: str, crc: int, size: int) -> int:
        raw = name.encode("utf-8")
        header = self._local_header(raw, crc, size)
        start = self.pos
        write_all(self.fd, header)
        self.pos += len(header)
        self.records.append((raw, crc, size, start))
        return start

    def add_bytes(self, name: str, data: bytes) -> None:
        stream_stats["crc_bytes"] += len(data)
        self._begin(name, zlib.crc32(data), len(data))
        write_all(self.fd, data)
        self.pos += len(data)
        self.progress.add(len(data))

    def add_blob(self, name: str, blob: Blob) -> None:
        """Copy a blob; its CRC is reused when known, else computed on the way."""
        start = self._begin(name, blob.crc or 0, blob.nbytes)
        crc = self.sources.copy(blob, self.fd, self.progress, want_crc=blob.crc is None)
        self.pos += blob.nbytes
        if blob.crc is None:
            assert crc is not None
            os.pwrite(self.fd, struct.pack("<I", crc), start + 14)
            raw, _, size, off = self.records[-1]
            self.records[-1] = (raw, crc, size, off)

    def finish(self) -> None:
        cd_start = self.pos
        parts = []
        for raw, crc, size, off in self.records:
            big_size, big_off = size >= _U32, off >= _U32
            extra = b""
            if big_size or big_off:
                vals = ([size, size] if big_size else []) + ([off] if big_off else [])
                extra = struct.pack("<HH", 1, 8 * len(vals)) + struct.pack(f"<{len(vals)}Q", *vals)
            s32 = _U32 if big_size else size
            parts.append(struct.pack(
                "<IHHHHHHIIIHHHHHII", 0x02014B50, 0x0300 | _VERSION, _VERSION, 0x800, 0, 0,
                _DOS_DATE, crc, s32, s32, len(raw), len(extra), 0, 0, 0, 0o100644 << 16,
                min(off, _U32)) + raw + extra)
        cd = b"".join(parts)
        n, cd_size = len(self.records), len(cd)
        eocd64_at = cd_start + cd_size
        tail = struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 0x0300 | _VERSION, _VERSION, 0, 0,
                           n, n, cd_size, cd_start)
        tail += struct.pack("<IIQI", 0x07064B50, 0, eocd64_at, 1)
        tail += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, min(n, 0xFFFF), min(n, 0xFFFF),
                            min(cd_size, _U32), min(cd_start, _U32), 0)
        write_all(self.fd, cd + tail)
        self.pos += len(cd) + len(tail)


def torch_zip(fd: int, sources: Sources, progress: Progress, prefix: str, pickle_bytes: bytes,
              storages: list[tuple[str, Blob]], meta: dict[str, bytes]) -> int:
    """A torch.save archive: data.pkl, the small records, data/<key>, version, serialization id.

    `meta` maps record names (".format_version", "byteorder", "version", …) to contents.
    Returns the archive size.
    """
    w = ZipWriter(fd, sources, progress)
    w.add_bytes(prefix + "data.pkl", pickle_bytes)
    for name in (".format_version", ".storage_alignment", "byteorder"):
        if name in meta:
            w.add_bytes(prefix + name, meta[name])
    for key, blob in storages:
        w.add_blob(f"{prefix}data/{key}", blob)
    for name, data in meta.items():
        if name not in (".format_version", ".storage_alignment", "byteorder"):
            w.add_bytes(prefix + name, data)
    w.finish()
    return w.pos


def default_meta() -> dict[str, bytes]:
    """The small records torch 2.x writes beside data.pkl."""
    return {
        ".format_version": b"1",
        ".storage_alignment": b"64",
        "byteorder": b"little",
        "version": b"3\n",
        ".data/serialization_id": str(int.from_bytes(os.urandom(16), "big")).rjust(40, "0")[-40:].encode(),
    }


def archive_name(out_path: str) -> str:
    """torch.save names the archive's top folder after the file; odd names get 'archive'."""
    stem = os.path.splitext(os.path.basename(out_path))[0]
    ok = stem and all(c.isalnum() or c in "._-" for c in stem) and stem.isascii()
    return (stem if ok else "archive") + "/"
