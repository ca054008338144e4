"""A zip archive's central directory read in one go, as zipfile reads it.

zipfile builds a ZipInfo object per entry: ~22 ms for the 10,000 entries of a
10,000-tensor torch file. Here the directory is one read, walked with struct at fixed
offsets (46-byte header + name + extra + comment), and an entry's full record is only
unpacked when asked for.

`read_dir` answers None for anything it would not read exactly as zipfile does: bad
signatures, a directory cut short or running past its stated size, data before the
archive, a comment whose stated length is wrong, spanned disks, an entry count that
disagrees, NUL in a name, a name that does not decode, a corrupt zip64 field. The
caller then opens the archive with zipfile, so users see zipfile's errors, as before.
"""

from __future__ import annotations

import struct
import zlib
from typing import BinaryIO, NamedTuple

EOCD_SIG, LOC64_SIG, EOCD64_SIG = b"PK\x05\x06", b"PK\x06\x07", b"PK\x06\x06"
CENTRAL_SIG, LOCAL_SIG = b"PK\x01\x02", b"PK\x03\x04"
_EOCD = struct.Struct("<4s4H2LH")  # 22 bytes + comment
_LOC64 = struct.Struct("<4sLQL")  # 20 bytes, just before the EOCD
_EOCD64 = struct.Struct("<4sQ2H2L4Q")  # 56 bytes, before the locator
_WALK = struct.Struct("<4s2xB21xHHH")  # signature, version needed, name/extra/comment lengths
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")  # all 46 bytes (zipfile's structCentralDir)
_LOCAL = struct.Struct("<4s2B4HL2L2H")  # 30-byte local header
_COMMENT_MAX = (1 << 16) - 1
TAIL = _COMMENT_MAX + 1 + _EOCD.size + _LOC64.size + _EOCD64.size  # bytes that hold every EOCD
MAX_EXTRACT_VERSION = 63  # zipfile refuses entries needing more
STORED = 0  # compression method: none
UTF8_NAME = 0x800
# encrypted (0), compressed patched data (5), strong encryption (6): zipfile's errors
_NOT_PLAIN = 0x01 | 0x20 | 0x40
_U32, _U64 = 0xFFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFF


class ZipEntry(NamedTuple):
    """One central-directory record, with zip64 sizes and offset already applied."""

    name: str
    header_offset: int
    compress_type: int
    compress_size: int
    file_size: int
    crc: int
    flags: int


class ZipDir:
    """The entries of an archive in file order (`names[i]` is entry i's name)."""

    def __init__(self, names: list[str], start_dir: int, cd: bytes = b"",
                 starts: list[int] | None = None, wide: dict[int, tuple[int, int, int]] | None = None,
                 entries: list[ZipEntry] | None = None) -> None:
        self.names = names
        self.start_dir = start_dir  # where the central directory starts
        self._cd, self._starts, self._wide = cd, starts or [], wide or {}
        self._entries = entries

    @classmethod
    def of(cls, entries: list[ZipEntry], start_dir: int) -> ZipDir:
        """A directory someone else read (zipfile, for archives read_dir leaves to it)."""
        return cls([e.name for e in entries], start_dir, entries=entries)

    def __len__(self) -> int:
        return len(self.names)

    def entry(self, i: int) -> ZipEntry:
        if self._entries is not None:
            return self._entries[i]
        c = _CENTRAL.unpack_from(self._cd, self._starts[i])
        size, csize, offset = self._wide.get(i) or (c[11], c[10], c[18])
        return ZipEntry(self.names[i], offset, c[6], csize, size, c[9], c[5])

    def entries(self) -> list[ZipEntry]:
        if self._entries is not None:
            return list(self._entries)
        return [self.entry(i) for i in range(len(self.names))]

    def first(self, name: str) -> ZipEntry | None:
        """The first entry of that name: the one torch reads."""
        try:
            return self.entry(self.names.index(name))
        except ValueError:
            return None

    def duplicates(self) -> list[str]:
        """Names held more than once, in the order their second copy appears."""
        if len(set(self.names)) == len(self.names):
            return []
        seen: set[str] = set()
        dups: list[str] = []
        for n in self.names:
            if n in seen and n not in dups:
                dups.append(n)
            seen.add(n)
        return dups


def read_dir(f: BinaryIO) -> ZipDir | None:
    """The directory of the zip in `f` (a seekable binary file), in at most two reads
    (the tail, then the directory if the tail does not hold it); None: ask zipfile."""
    size = f.seek(0, 2)
    at = max(size - TAIL, 0)
    f.seek(at)
    tail = f.read(size - at)
    if size < _EOCD.size or len(tail) != size - at:
        return None
    if tail[-22:-18] == EOCD_SIG and tail[-2:] == b"\0\0":
        end = size - _EOCD.size  # no comment: the record ends the file (zipfile's first try)
    else:  # zipfile's search: the last signature within a comment's reach of the end
        k = tail.rfind(EOCD_SIG, max(size - _COMMENT_MAX - 1 - _EOCD.size, 0) - at)
        if k < 0:
            return None
        end = at + k
    if end + _EOCD.size > size:
        return None
    _sig, disk, disk_dir, here, total, cd_size, cd_offset, comment = _EOCD.unpack_from(tail, end - at)
    if end + _EOCD.size + comment != size or end < _LOC64.size:
        return None
    before = 0
    if tail[end - _LOC64.size - at:end - _LOC64.size - at + 4] == LOC64_SIG:
        _sig, disk64, where, disks = _LOC64.unpack_from(tail, end - _LOC64.size - at)
        before = _LOC64.size + _EOCD64.size
        if disk64 != 0 or disks > 1 or end < before or where != end - before:
            return None
        (sig64, _size, _made, _need, disk, disk_dir, here, total, cd_size,
         cd_offset) = _EOCD64.unpack_from(tail, end - before - at)
        if sig64 != EOCD64_SIG:
            return None
    if disk or disk_dir or here != total or cd_offset + cd_size != end - before:
        return None  # spanned, miscounted, or data before the archive (zipfile's "concat")
    if cd_offset >= at:
        cd = tail[cd_offset - at:cd_offset - at + cd_size]
    else:
        f.seek(cd_offset)
        cd = f.read(cd_size)
    if len(cd) != cd_size:
        return None
    d = _walk(cd, cd_offset)
    return d if d is not None and len(d.names) == total else None


def _walk(cd: bytes, start_dir: int) -> ZipDir | None:
    """Every record of the directory, each right after the last, ending at its end."""
    text = cd.decode("latin-1")  # one decode; names sliced from it are right when ASCII
    names: list[str] = []
    starts: list[int] = []
    wide: dict[int, tuple[int, int, int]] = {}
    name, start, unpack, n = names.append, starts.append, _WALK.unpack_from, len(cd)
    pos = 0
    try:
        while pos < n:
            sig, need, nlen, elen, clen = unpack(cd, pos)
            if sig != CENTRAL_SIG or need > MAX_EXTRACT_VERSION:
                return None
            start(pos)
            s = pos + 46
            name(text[s:s + nlen])
            if elen:  # zip64 sizes and offsets live in the extra field
                c = _CENTRAL.unpack_from(cd, pos)
                got = _zip64(cd[s + nlen:s + nlen + elen], c[11], c[10], c[18])
                if got is None:
                    return None
                if got != (c[11], c[10], c[18]):
                    wide[len(starts) - 1] = got
            pos = s + nlen + elen + clen
    except struct.error:
        return None
    if pos != n:
        return None
    joined = "".join(names)
    if "\0" in joined:
        return None  # zipfile cuts such names at the NUL
    if not joined.isascii() and not _decode_names(cd, names, starts):
        return None
    return ZipDir(names, start_dir, cd, starts, wide)


def _decode_names(cd: bytes, names: list[str], starts: list[int]) -> bool:
    """Non-ASCII names decoded as zipfile does: UTF-8 under flag bit 11, else cp437."""
    for i, nm in enumerate(names):
        if nm.isascii():
            continue
        c = _CENTRAL.unpack_from(cd, starts[i])
        raw = cd[starts[i] + 46:starts[i] + 46 + c[12]]
        try:
            names[i] = raw.decode("utf-8" if c[5] & UTF8_NAME else "cp437")
        except UnicodeDecodeError:
            return False
    return True


def _zip64(extra: bytes, size: int, csize: int, offset: int) -> tuple[int, int, int] | None:
    """zipfile's reading of the extra fields (ZipInfo._decodeExtra); None where it raises."""
    while len(extra) >= 4:
        kind, ln = struct.unpack("<HH", extra[:4])
        if ln + 4 > len(extra):
            return None
        if kind == 1:  # in zipfile's order; each only where the header says 0xFFFFFFFF
            data, got = extra[4:ln + 4], [size, csize, offset]
            for j, value in enumerate(got):
                if value == _U32 or (j == 0 and value == _U64):
                    if len(data) < 8:
                        return None
                    got[j], data = int.from_bytes(data[:8], "little"), data[8:]
            size, csize, offset = got
        extra = extra[ln + 4:]
    return size, csize, offset


def read_stored(f: BinaryIO, e: ZipEntry) -> bytes | None:
    """A stored entry's bytes, checked as zipfile checks them (local header, name, CRC-32);
    None for anything else (compressed, encrypted, a mismatch): zipfile then reads it."""
    if e.compress_type != STORED or e.flags & _NOT_PLAIN or e.compress_size != e.file_size:
        return None
    f.seek(e.header_offset)
    head = f.read(_LOCAL.size)
    if len(head) != _LOCAL.size:
        return None
    sig, _v, _s, flags, _m, _t, _d, _crc, _cs, _sz, nlen, elen = _LOCAL.unpack(head)
    if sig != LOCAL_SIG:
        return None
    raw = f.read(nlen + elen)
    try:
        name = raw[:nlen].decode("utf-8" if flags & UTF8_NAME else "cp437")
    except UnicodeDecodeError:
        return None
    if len(raw) != nlen + elen or name != e.name:
        return None
    data = f.read(e.file_size)
    if len(data) != e.file_size or zlib.crc32(data) != e.crc:
        return None
    return data
