"""Byte-level access to torch.save files: zip (torch ≥ 1.6) and legacy (< 1.6).

Only the pickle is read on open. Storage byte offsets are located on demand
(a local-header read per storage) so writers can stream tensor bytes.
"""

from __future__ import annotations

import io
import mmap
import pickletools
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO

from tui.core.errors import ModelFileError
from tui.core.model import DTYPE_SIZES, Finding
from tui.core.read.bytesource import RangeFile, RangeView
from tui.core.read.fastguard import fast_check
from tui.core.read.guard import GuardError, brief, check_pickle
from tui.core.read.legacy_tar import is_tar, open_tar
from tui.core.read.loading import broken, load, short
from tui.core.read.records import ReadResult
from tui.core.read.source import fileobj, is_url, size_of
from tui.core.read.zipdir import STORED, ZipDir, ZipEntry, read_dir, read_stored

if TYPE_CHECKING:
    import zipfile  # imported where used: only irregular archives need it (~1 ms at start-up)

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
    import zipfile

    try:
        with fileobj(path) as f:
            d = _fast_dir(f)
            if d is None:  # anything irregular: zipfile reads it (and words its errors)
                with zipfile.ZipFile(f) as z:
                    d = _zipfile_dir(z)
            out: dict[str, Entry] = {}
            for e in d.entries():
                f.seek(e.header_offset)
                head = f.read(30)
                if len(head) < 30 or head[:4] != b"PK\x03\x04":
                    raise ModelFileError(path, f"broken zip entry {e.name}")
                name_len, extra_len = struct.unpack("<HH", head[26:30])
                if e.name in out:
                    continue  # a duplicate name: torch reads the first (the scan reports it)
                out[e.name] = Entry(e.name, e.header_offset, e.header_offset + 30 + name_len + extra_len,
                                    e.file_size, e.crc, e.flags, e.compress_type == STORED)
            return out, d.start_dir
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


@dataclass(eq=False)
class Zipped:
    """A zip open for reading: its directory, torch's top folder, and what reads entries
    (our own file for the fast path, or zipfile's reader for archives left to zipfile)."""

    dir: ZipDir
    prefix: str
    fp: BinaryIO | None = None
    zf: zipfile.ZipFile | None = None

    @property
    def names(self) -> list[str]:
        return self.dir.names

    def reader(self) -> zipfile.ZipFile:
        import zipfile

        if self.zf is None:
            self.zf = zipfile.ZipFile(self.fp)  # type: ignore[arg-type]
        return self.zf

    def close(self) -> None:
        if self.zf is not None:
            self.zf.close()
        if self.fp is not None:
            self.fp.close()

    def __enter__(self) -> Zipped:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def read_zip(path: str) -> Zipped:
    """The archive's directory, read once (a 10k-tensor file has 10k entries)."""
    zipped = _fast_zip(path)
    if zipped is None:  # anything irregular: zipfile reads it and words the errors, as before
        import zipfile

        try:
            z = zipfile.ZipFile(fileobj(path) if is_url(path) else path)
            zipped = Zipped(_zipfile_dir(z), "", zf=z)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as e:
            raise ModelFileError(path, f"broken zip archive ({e})") from None
    try:
        zipped.prefix = _prefix(path, zipped.names)
    except ModelFileError:
        zipped.close()
        raise
    return zipped


def _fast_zip(path: str) -> Zipped | None:
    try:  # the file zipfile would open (a remote source's errors are the user's, as before)
        f = fileobj(path) if is_url(path) else open(path, "rb")
    except OSError:
        return None
    d = _fast_dir(f)
    if d is None:
        f.close()
        return None
    return Zipped(d, "", fp=f)


def _fast_dir(f: BinaryIO) -> ZipDir | None:
    try:
        return read_dir(f)
    except ModelFileError:
        raise  # a remote read that failed: zipfile would have met it too
    except Exception:  # noqa: BLE001 - zipfile's path meets the problem and words it
        return None


def _zipfile_dir(z: zipfile.ZipFile) -> ZipDir:
    return ZipDir.of([ZipEntry(i.filename, i.header_offset, i.compress_type, i.compress_size,
                               i.file_size, i.CRC, i.flag_bits) for i in z.infolist()], z.start_dir)


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


def open_zip(path: str, zipped: Zipped | None = None) -> TorchSource:
    """`zipped`: read_zip(path) already done by the caller (closed here)."""
    zp = zipped or read_zip(path)
    with zp:
        # torch reads the first of duplicate names (zipfile's getinfo gives the last).
        try:
            index = zp.names.index(zp.prefix + "data.pkl")
        except ValueError:  # a TorchScript archive (constants.pkl) without one
            raise ModelFileError(path, "zip archive without data.pkl") from None
        info = zp.dir.entry(index)
        notes = zip_duplicates(zp.dir)
        if info.file_size > MAX_PICKLE:
            raise ModelFileError(path, "data.pkl is larger than 2 GiB")
        if info.compress_type != STORED and info.file_size > 1000 * info.compress_size + (1 << 20):
            raise ModelFileError(path, f"compressed data.pkl would expand to {info.file_size} bytes "
                                 f"from {info.compress_size} (a zip bomb?)")
        data = _read_entry(path, zp, index, "data.pkl")
    read = load(path, data)
    notes += after_stop(data, read)
    return TorchSource(path, "zip", data, read, prefix=zp.prefix, notes=notes)


def _read_entry(path: str, zp: Zipped, index: int, label: str) -> bytes:
    """Entry `index`'s bytes: read here when stored and regular, else by zipfile (its checks,
    its errors: bad CRC, zlib/lzma errors, unknown methods, encryption…)."""
    if zp.fp is not None and zp.zf is None:
        try:
            data = read_stored(zp.fp, zp.dir.entry(index))
        except ModelFileError:
            raise
        except Exception:  # noqa: BLE001 - zipfile meets the same problem and words it
            data = None
        if data is not None:
            return data
    import zipfile

    try:
        z = zp.reader()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as e:
        raise ModelFileError(path, f"broken zip archive ({e})") from None
    try:
        return z.read(z.infolist()[index])
    except Exception as e:  # noqa: BLE001 - bad CRC, zlib/lzma errors, unknown methods…
        raise ModelFileError(path, f"can't read {label} ({short(e)})") from None


def zip_duplicates(d: ZipDir) -> list[Finding]:
    """Two entries of one name: torch reads the first, other tools (and earlier versions of
    modeltree) the last — a way to show a scanner one pickle and torch another."""
    return [Finding("danger", f"duplicate zip entry {n}", "the archive holds this name more than "
                    "once: torch.load reads the first, other readers another (a way to hide a "
                    "payload from scanners); modeltree reads what torch reads") for n in d.duplicates()[:10]]


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
