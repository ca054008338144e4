"""Byte-level access to torch.save files: zip (torch ≥ 1.6) and legacy (< 1.6).

Only the pickle is read on open. Storage byte offsets are located on demand
(a local-header read per storage) so writers can stream tensor bytes.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import zipfile
from dataclasses import dataclass, field

from tui.core.errors import ModelFileError
from tui.core.model import DTYPE_SIZES
from tui.core.unpickle import ReadResult, load_pickle

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
    entries: list[str] = field(default_factory=list)  # zip: every entry name, in order
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


def _zip_data_offsets(path: str, prefix: str) -> dict[str, int]:
    out: dict[str, int] = {}
    with open(path, "rb") as f, zipfile.ZipFile(f) as z:
        for info in z.infolist():
            if not info.filename.startswith(prefix + "data/"):
                continue
            f.seek(info.header_offset)
            head = f.read(30)
            if len(head) < 30 or head[:4] != b"PK\x03\x04":
                raise ModelFileError(path, f"broken zip entry {info.filename}")
            name_len, extra_len = struct.unpack("<HH", head[26:30])
            key = info.filename[len(prefix) + 5:]
            out[key] = info.header_offset + 30 + name_len + extra_len
    return out


def _legacy_offsets(path: str, after_pickle: int, read: ReadResult) -> dict[str, int]:
    """Legacy layout after the main pickle: a pickled key list, then per key an
    int64 element count and the raw bytes."""
    out: dict[str, int] = {}
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        f.seek(after_pickle)
        keys = pickle.Unpickler(f).load()  # a list of str; no globals involved
        if not isinstance(keys, list):
            raise ModelFileError(path, "legacy file: storage key list is missing")
        pos = f.tell()
        for key in keys:
            f.seek(pos)
            head = f.read(8)
            if len(head) < 8:
                raise ModelFileError(path, "legacy file is truncated (storage data missing)")
            (count,) = struct.unpack("<q", head)
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
        z = zipfile.ZipFile(path)
        names = z.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise ModelFileError(path, f"broken zip archive ({e})") from None
    return z, _prefix(path, names), names


def _prefix(path: str, names: list[str]) -> str:
    for n in names:
        if n.endswith("data.pkl") and n.count("/") <= 1:
            return n[: -len("data.pkl")]
    raise ModelFileError(path, "zip archive without data.pkl: not a torch.save file")


def open_zip(path: str) -> TorchSource:
    z, prefix, names = read_zip(path)
    with z:
        info = z.getinfo(prefix + "data.pkl")
        if info.file_size > MAX_PICKLE:
            raise ModelFileError(path, "data.pkl is larger than 2 GiB")
        try:
            data = z.read(info)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
            raise ModelFileError(path, f"can't read data.pkl ({e})") from None
    read = _load(path, data)
    return TorchSource(path, "zip", data, read, prefix=prefix, entries=names)


def _load(path: str, data: bytes) -> ReadResult:
    try:
        return load_pickle(data)
    except ModelFileError:
        raise
    except RecursionError:
        raise ModelFileError(path, "the pickle nests too deeply to read") from None
    except MemoryError:
        raise ModelFileError(path, "the pickle is too large to read") from None
    except Exception as e:  # noqa: BLE001 - any failure of a hostile/broken pickle
        raise ModelFileError(path, f"not a readable pickle ({_short(e)})") from None


def _short(e: BaseException) -> str:
    text = str(e).splitlines()[0] if str(e) else ""
    text = text[:120]
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def open_pickle_stream(path: str) -> TorchSource:
    """A non-zip file: the legacy torch format, or a bare pickle."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        try:
            magic = _small_pickle(f)
        except Exception as e:  # noqa: BLE001
            raise ModelFileError(path, f"not a PyTorch file ({_short(e)})") from None
        if magic != LEGACY_MAGIC:
            if size > MAX_PICKLE:
                raise ModelFileError(path, "not a PyTorch file (a pickle larger than 2 GiB)")
            f.seek(0)
            data = f.read()
            read = _load(path, data)
            return TorchSource(path, "pickle", data, read, pickle_span=(0, len(data)))
        try:
            protocol = _small_pickle(f)
            _small_pickle(f)  # sys info
        except Exception as e:  # noqa: BLE001
            raise ModelFileError(path, f"legacy torch file with a broken header ({_short(e)})") from None
        if protocol != 1001:
            raise ModelFileError(path, f"legacy torch file with unknown protocol {protocol!r:.20}")
        start = f.tell()
        data = _read_one_pickle(path, f)
        read = _load(path, data)
        return TorchSource(path, "legacy", data, read, pickle_span=(start, start + len(data)))


def _small_pickle(f: io.BufferedReader) -> object:
    """Header pickles of the legacy format hold only ints and dicts of str/ints."""
    return _HeaderUnpickler(f).load()


class _HeaderUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(f"unexpected global {module}.{name}")


def _read_one_pickle(path: str, f: io.BufferedReader) -> bytes:
    """Bytes of the pickle starting at f's position, found by walking opcodes
    (never executing them)."""
    import pickletools

    start = f.tell()
    end = None
    try:
        for op, _arg, pos in pickletools.genops(f):
            if op.name == "STOP":
                end = f.tell()
                break
    except Exception as e:  # noqa: BLE001
        raise ModelFileError(path, f"legacy torch file with a broken pickle ({_short(e)})") from None
    if end is None:
        raise ModelFileError(path, "legacy torch file is truncated")
    f.seek(start)
    return f.read(end - start)
