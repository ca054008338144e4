"""Byte-level access to torch.save files: zip (torch ≥ 1.6) and legacy (< 1.6).

Only the pickle is read on open. Storage byte offsets are located on demand
(a local-header read per storage) so writers can stream tensor bytes.
"""

from __future__ import annotations

import io
import mmap
import pickle
import struct
import zipfile
from dataclasses import dataclass

from tui.core.errors import ModelFileError
from tui.core.model import DTYPE_SIZES
from tui.core.read.bytesource import RangeFile, RangeView
from tui.core.read.fastguard import fast_check
from tui.core.read.guard import GuardError, brief, check_pickle
from tui.core.read.records import ReadResult
from tui.core.read.source import fileobj, is_url, size_of
from tui.core.read.unpickle import load_pickle

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
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
    for n in names:
        if n.endswith("data.pkl") and n.count("/") <= 1:
            return n[: -len("data.pkl")]
    raise ModelFileError(path, "zip archive without data.pkl: not a torch.save file")


def open_zip(path: str, zipped: tuple[zipfile.ZipFile, str, list[str]] | None = None) -> TorchSource:
    """`zipped`: read_zip(path) already done by the caller (closed here)."""
    z, prefix, names = zipped or read_zip(path)
    with z:
        info = z.getinfo(prefix + "data.pkl")
        if info.file_size > MAX_PICKLE:
            raise ModelFileError(path, "data.pkl is larger than 2 GiB")
        if info.compress_type != zipfile.ZIP_STORED and info.file_size > 1000 * info.compress_size + (1 << 20):
            raise ModelFileError(path, f"compressed data.pkl would expand to {info.file_size} bytes "
                                 f"from {info.compress_size} (a zip bomb?)")
        try:
            data = z.read(info)
        except Exception as e:  # noqa: BLE001 - bad CRC, zlib/lzma errors, unknown methods…
            raise ModelFileError(path, f"can't read data.pkl ({_short(e)})") from None
    read = _load(path, data)
    return TorchSource(path, "zip", data, read, prefix=prefix)


def _load(path: str, data: bytes) -> ReadResult:
    try:
        return load_pickle(data)
    except ModelFileError:
        raise
    except RecursionError:
        raise ModelFileError(path, "the pickle nests too deeply to read") from None
    except MemoryError:
        raise ModelFileError(path, "the pickle is too large to read") from None
    except GuardError as e:
        raise ModelFileError(path, f"refused to unpickle: {e}") from None
    except Exception as e:  # noqa: BLE001 - any failure of a hostile/broken pickle
        raise ModelFileError(path, f"not a readable pickle ({_short(e)})") from None


def _short(e: BaseException) -> str:
    text = str(e).splitlines()[0] if str(e) else ""
    text = text[:120]
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def open_pickle_stream(path: str) -> TorchSource:
    """A non-zip file: the legacy torch format, or a bare pickle."""
    size = size_of(path)
    with fileobj(path) as f:
        start = _legacy_magic_len(f.read(32))
        if not start:
            if size > MAX_PICKLE:
                raise ModelFileError(path, "not a PyTorch file (a pickle larger than 2 GiB)")
            f.seek(0)
            data = f.read()
            read = _load(path, data)
            return TorchSource(path, "pickle", data, read, pickle_span=(0, len(data)))
        protocol, start = _header_pickle(path, f, start, "protocol version")
        if protocol != 1001:
            raise ModelFileError(path, f"legacy torch file with unknown protocol {brief(protocol)}")
        _sys_info, start = _header_pickle(path, f, start, "system info")
        data = _read_one_pickle(path, f, start)
        read = _load(path, data)
        # torch.load unpickles the storage-key list that follows with the full unpickler
        # too: read it the same restricted way so what it names is reported as well.
        keys = _load(path, _read_one_pickle(path, f, start + len(data)))
        read.globals.update(keys.globals)
        read.calls.extend(keys.calls)
        src = TorchSource(path, "legacy", data, read, pickle_span=(start, start + len(data)))
        if isinstance(keys.root, list):
            src.storage_offsets()  # tensor data cut short: say so on open, not on save
        return src


# The legacy magic number as torch pickles it (protocol 2; PROTO/FRAME may precede it).
_MAGIC_OP = b"\x8a\n" + LEGACY_MAGIC.to_bytes(10, "little") + b"."


def _legacy_magic_len(head: bytes) -> int:
    """Bytes taken by the legacy magic-number pickle at the start, or 0 if it isn't there.
    Compared as bytes: nothing of an unknown file is unpickled to find out what it is."""
    i = 2 if head[:1] == b"\x80" else 0
    if head[i:i + 1] == b"\x95":  # FRAME (protocol 4+)
        i += 9
    return i + len(_MAGIC_OP) if head[i:i + len(_MAGIC_OP)] == _MAGIC_OP else 0


def _header_pickle(path: str, f: io.BufferedReader, start: int, what: str) -> tuple[object, int]:
    """A small legacy-format pickle (ints, strs, lists, dicts; no globals) at `start`:
    its value and the offset after it."""
    data = _read_one_pickle(path, f, start)
    try:
        return _HeaderUnpickler(io.BytesIO(data)).load(), start + len(data)
    except Exception as e:  # noqa: BLE001 - any failure of a hostile/broken pickle
        raise ModelFileError(path, f"legacy torch file with a broken {what} ({_short(e)})") from None


class _HeaderUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(f"unexpected global {module}.{name}")


def _read_one_pickle(path: str, f: io.BufferedReader, start: int) -> bytes:
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
        raise ModelFileError(path, f"legacy torch file {problem}") from None
    except (OSError, ValueError) as e:
        raise ModelFileError(path, f"can't read the file ({_short(e)})") from None
