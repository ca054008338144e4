"""Byte-level access to torch.save files: zip (torch ≥ 1.6) and legacy (< 1.6).

Only the pickle is read on open. Storage byte offsets are located on demand
(a local-header read per storage) so writers can stream tensor bytes.
"""

from __future__ import annotations

import io
import mmap
import pickletools
import struct
import zipfile
from dataclasses import dataclass, field

from tui.core.errors import ModelFileError
from tui.core.model import DTYPE_SIZES, Finding
from tui.core.read.bytesource import RangeFile, RangeView
from tui.core.read.fastguard import fast_check
from tui.core.read.guard import GuardError, brief, check_pickle
from tui.core.read.legacy_tar import is_tar, open_tar
from tui.core.read.loading import broken, load, short
from tui.core.read.records import ReadResult
from tui.core.read.source import fileobj, is_url, size_of

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
# Bytes a pickle can start with (any opcode: torch.load accepts them all).
PICKLE_OPCODES = frozenset(ord(op.code.encode("latin-1")) for op in pickletools.opcodes)
MAX_PICKLE = 2 << 30  # a data.pkl beyond 2 GiB is not a model we can show


@dataclass(eq=False)
class TorchSource:
    """Where the pickle and the storages of a torch file are."""

    path: str
    container: str  # "zip" | "legacy" | "pickle"
    pickle_bytes: bytes
    read: ReadResult
    prefix: str = ""  # zip: top folder ("archive/")
    pickle_span: tuple[int, int] = (0, 0)  # legacy: byte range of the main pickle
    _offsets: dict[str, int] | None = None
    extra: list[ReadResult] = field(default_factory=list)  # other pickles torch.load reads
    notes: list[Finding] = field(default_factory=list)  # what the container itself shows

    def findings(self) -> list[Finding]:
        """What torch.load would do with this file: every pickle it reads, and the zip."""
        from tui.core.read import scan

        out = list(self.notes)
        for r in (self.read, *self.extra):
            out += scan.findings(r)
        return out

    def storage_offsets(self) -> dict[str, int]:
        """key → absolute byte offset of the storage's first byte in the file."""
        if self._offsets is None:
            if self.container == "zip":
                self._offsets = _zip_data_offsets(self.path, self.prefix)
            elif self.container == "legacy":
                self._offsets = _legacy_offsets(self.path, self.pickle_span[1], self.read)
            else:
                self._offsets = {}
        return self._offsets


@dataclass(frozen=True)
class Entry:
    """One entry of a zip archive, with where its data starts."""

    name: str
    header: int  # offset of the local header
    data: int  # offset of the first data byte
    size: int
    crc: int
    flags: int
    stored: bool


def listing(path: str) -> tuple[dict[str, Entry], int]:
    """Every entry of a zip (with its data offset), and where the central directory starts."""
    try:
        with fileobj(path) as f, zipfile.ZipFile(f) as z:
            out: dict[str, Entry] = {}
            for info in z.infolist():
                f.seek(info.header_offset)
                head = f.read(30)
                if len(head) < 30 or head[:4] != b"PK\x03\x04":
                    raise ModelFileError(path, f"broken zip entry {info.filename}")
                name_len, extra_len = struct.unpack("<HH", head[26:30])
                if info.filename in out:
                    continue  # a duplicate name: torch reads the first (the scan reports it)
                out[info.filename] = Entry(
                    info.filename, info.header_offset, info.header_offset + 30 + name_len + extra_len,
                    info.file_size, info.CRC, info.flag_bits, info.compress_type == zipfile.ZIP_STORED)
            return out, z.start_dir
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise ModelFileError(path, f"broken zip archive ({e})") from None


def _zip_data_offsets(path: str, prefix: str) -> dict[str, int]:
    head = prefix + "data/"
    return {name[len(head):]: e.data for name, e in listing(path)[0].items() if name.startswith(head)}


def _legacy_offsets(path: str, after_pickle: int, read: ReadResult) -> dict[str, int]:
    """Legacy layout after the main pickle: a pickled key list, then per key an
    int64 element count and the raw bytes."""
    out: dict[str, int] = {}
    size = size_of(path)
    with fileobj(path) as f:
        keys, pos = _header_pickle(path, f, after_pickle, "storage key list")
        if not isinstance(keys, list) or not all(isinstance(k, (str, int)) for k in keys):
            raise ModelFileError(path, "legacy file: storage key list is missing")
        for key in keys:
            f.seek(pos)
            head = f.read(8)
            if len(head) < 8:
                raise ModelFileError(path, "legacy file is truncated (storage data missing)")
            (count,) = struct.unpack("<q", head)
            if count < 0:
                raise ModelFileError(path, "legacy file has a negative storage size")
            rec = read.storages.get(str(key))
            elem = DTYPE_SIZES.get(rec.dtype, 1) if rec else 1
            out[str(key)] = pos + 8
            pos += 8 + int(count * elem)
            if pos > size:
                raise ModelFileError(path, "legacy file is truncated (storage data cut short)")
    return out


def is_zip(head: bytes) -> bool:
    return head[:4] in (b"PK\x03\x04", b"PK\x05\x06")


def read_zip(path: str) -> tuple[zipfile.ZipFile, str, list[str]]:
    try:
        z = zipfile.ZipFile(fileobj(path) if is_url(path) else path)
        names = z.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as e:
        raise ModelFileError(path, f"broken zip archive ({e})") from None
    return z, _prefix(path, names), names


def _prefix(path: str, names: list[str]) -> str:
    """The archive's top folder as torch finds it: the folder of the zip's first entry
    (another folder's data.pkl, which torch never reads, must not be what is shown)."""
    first = names[0] if names else ""
    prefix = first.split("/", 1)[0] + "/" if "/" in first else ""
    if prefix and prefix + "data.pkl" in names:
        return prefix
    if prefix and prefix + "constants.pkl" in names:
        return prefix  # TorchScript: reports its own missing data.pkl
    raise ModelFileError(path, "zip archive without data.pkl: not a torch.save file")


def open_zip(path: str, zipped: tuple[zipfile.ZipFile, str, list[str]] | None = None) -> TorchSource:
    """`zipped`: read_zip(path) already done by the caller (closed here)."""
    z, prefix, names = zipped or read_zip(path)
    with z:
        # zipfile's getinfo gives the last of duplicate names; torch reads the first.
        infos = [i for i in z.infolist() if i.filename == prefix + "data.pkl"]
        info = infos[0]
        notes = zip_duplicates(z)
        if info.file_size > MAX_PICKLE:
            raise ModelFileError(path, "data.pkl is larger than 2 GiB")
        if info.compress_type != zipfile.ZIP_STORED and info.file_size > 1000 * info.compress_size + (1 << 20):
            raise ModelFileError(path, f"compressed data.pkl would expand to {info.file_size} bytes "
                                 f"from {info.compress_size} (a zip bomb?)")
        try:
            data = z.read(info)
        except Exception as e:  # noqa: BLE001 - bad CRC, zlib/lzma errors, unknown methods…
            raise ModelFileError(path, f"can't read data.pkl ({short(e)})") from None
    read = load(path, data)
    notes += after_stop(data, read)
    return TorchSource(path, "zip", data, read, prefix=prefix, notes=notes)


def zip_duplicates(z: zipfile.ZipFile) -> list[Finding]:
    """Two entries of one name: torch reads the first, other tools (and earlier versions of
    modeltree) the last — a way to show a scanner one pickle and torch another."""
    seen: set[str] = set()
    dups: list[str] = []
    for i in z.infolist():
        if i.filename in seen and i.filename not in dups:
            dups.append(i.filename)
        seen.add(i.filename)
    return [Finding("danger", f"duplicate zip entry {n}", "the archive holds this name more than "
                    "once: torch.load reads the first, other readers another (a way to hide a "
                    "payload from scanners); modeltree reads what torch reads") for n in dups[:10]]


def after_stop(data: bytes, read: ReadResult) -> list[Finding]:
    """Bytes after the pickle's STOP: torch never reads them; say so, and what they name."""
    end = getattr(read, "end", len(data))
    if end >= len(data) or not data[end:].strip(b"\0\n "):
        return []
    from tui.core.read import scan

    named = scan.static_findings(data, end, "named after the pickle's end (torch never reads it)")
    return [Finding("info", "data after the pickle", f"{len(data) - end} bytes follow the pickle's "
                    "STOP; torch.load never reads them")] + [
        Finding("info", f.callable, f.detail) for f in named]


def open_pickle_stream(path: str) -> TorchSource:
    """A non-zip file as torch.load reads it: a legacy tar if it is one; else its first
    pickle, which torch unpickles and compares with the legacy magic number (as a value:
    any pickle that evaluates to it). Every pickle torch would read is read and scanned."""
    if is_tar(path):
        tar, notes = open_tar(path)
        return TorchSource(path, "legacy-tar", tar.data, tar.read, pickle_span=tar.span,
                           _offsets=tar.offsets, extra=tar.extra, notes=notes)
    size = size_of(path)
    with fileobj(path) as f:
        if size > MAX_PICKLE and f.read(1) != b"\x80":
            raise ModelFileError(path, "not a PyTorch file (a pickle larger than 2 GiB)")
        first = _read_one_pickle(path, f, 0, bare=True)
        head = load(path, first)
        if not (type(head.root) is int and head.root == LEGACY_MAGIC):
            # A bare pickle: torch.load would run it, then fail on the magic number.
            return TorchSource(path, "pickle", first, head, pickle_span=(0, len(first)),
                               notes=after_stop_file(path, len(first), size))
        extra = [head]
        start = len(first)
        protocol, start = _header_pickle(path, f, start, "protocol version", extra)
        if not (type(protocol) is int and protocol == 1001):
            raise broken(path, f"legacy torch file with unknown protocol {brief(protocol)}", extra)
        _sys_info, start = _header_pickle(path, f, start, "system info", extra)
        data = _read_one_pickle(path, f, start)
        try:
            read = load(path, data)
        except ModelFileError as e:
            raise broken(path, e.problem, extra, getattr(e, "findings", [])) from None
        # torch.load unpickles the storage-key list that follows with the full unpickler
        # too: read it the same restricted way so what it names is reported as well.
        keys = load(path, _read_one_pickle(path, f, start + len(data)))
        src = TorchSource(path, "legacy", data, read, pickle_span=(start, start + len(data)),
                          extra=[*extra, keys])
        if isinstance(keys.root, list):
            src.storage_offsets()  # tensor data cut short: say so on open, not on save
        return src


def after_stop_file(path: str, end: int, size: int) -> list[Finding]:
    if end >= size:
        return []
    return [Finding("info", "data after the pickle", f"{size - end} bytes follow the first "
                    "pickle's STOP; torch.load never reads them")]


def _header_pickle(path: str, f: io.BufferedReader, start: int, what: str,
                   reads: list[ReadResult] | None = None) -> tuple[object, int]:
    """One of the legacy format's small pickles at `start`, read (and later scanned) like
    any other — torch unpickles each with the full unpickler: its value, the offset after it."""
    data = _read_one_pickle(path, f, start)
    try:
        read = load(path, data)
    except ModelFileError as e:
        raise broken(path, f"legacy torch file with a broken {what} ({e.problem})", reads or [],
                      getattr(e, "findings", [])) from None
    if reads is not None:
        reads.append(read)
    return read.root, start + len(data)


def _read_one_pickle(path: str, f: io.BufferedReader, start: int, bare: bool = False) -> bytes:
    """Bytes of the pickle at `start`, found by walking its opcodes over a map of the
    file (never executing them; length claims are checked against the file's size)."""
    try:
        if isinstance(f, RangeFile):  # a remote file: the blocks the walk touches are fetched
            view = RangeView(f.src)
            return view[start:check_pickle(view, start)]  # type: ignore[arg-type, misc]
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            end = fast_check(mm, start) or check_pickle(mm, start)  # type: ignore[arg-type]
            return mm[start:end]
    except GuardError as e:
        problem = "is truncated" if "truncated" in str(e) else f"has a broken pickle ({e})"
        err = ModelFileError(path, f"{'file' if bare else 'legacy torch file'} {problem}")
        from tui.core.read import scan

        err.findings = scan.static_findings(mm_copy(path, start))  # type: ignore[attr-defined]
        raise err from None
    except (OSError, ValueError) as e:
        raise ModelFileError(path, f"can't read the file ({short(e)})") from None


def mm_copy(path: str, start: int, limit: int = 64 << 20) -> bytes:
    """Up to `limit` bytes of the file from `start` (for a static look at a broken pickle)."""
    with fileobj(path) as f:
        f.seek(start)
        return f.read(limit)
