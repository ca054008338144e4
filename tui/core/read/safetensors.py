"""safetensors headers and Hugging Face sharded checkpoints: metadata only."""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass

from tui.core.errors import ModelFileError
from tui.core.read import source

MAX_HEADER = 100_000_000  # the format's own cap
ST_DTYPES = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
    "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8",
    "U16": "uint16", "U32": "uint32", "U64": "uint64", "BOOL": "bool",
    "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2", "F8_E8M0": "float8_e8m0fnu",
    "C64": "complex64", "C128": "complex128", "F4": "float4_e2m1fn_x2",
}


@dataclass(frozen=True)
class STEntry:
    name: str
    dtype: str
    shape: tuple[int, ...]
    path: str
    offset: int  # absolute byte offset in `path`
    nbytes: int


def is_safetensors(head: bytes, size: int) -> bool:
    if len(head) < 9:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return n >= 2 and head[8:9] == b"{"  # a header claiming too much: read_header says so


def read_header(path: str) -> tuple[list[STEntry], dict[str, str]]:
    try:
        src = source.open_source(path)
        size = src.size
        with src.fileobj() as f:
            head = f.read(8)
            if len(head) < 8:
                raise ModelFileError(path, "safetensors file is truncated (no header length)")
            (n,) = struct.unpack("<Q", head)
            if n > MAX_HEADER:
                raise ModelFileError(path, f"safetensors header claims {n} bytes (limit 100 MB)")
            if n > size - 8:
                raise ModelFileError(path, f"safetensors header claims {n} bytes but the file has {size - 8}")
            raw = f.read(n)
    except OSError as e:
        raise ModelFileError(path, e.strerror or str(e)) from None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as e:  # bad UTF-8/JSON, 5000-digit ints, [[[[…]]]]
        raise ModelFileError(path, f"safetensors header is not valid JSON ({e.__class__.__name__})") from None
    if not isinstance(header, dict):
        raise ModelFileError(path, "safetensors header is not a JSON object")
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict):
        raise ModelFileError(path, "safetensors __metadata__ is not an object")
    base = 8 + n
    entries = []
    for name, spec in header.items():
        try:
            dtype = ST_DTYPES[spec["dtype"]]
            shape = tuple(int(s) for s in spec["shape"])
            begin, end = (int(x) for x in spec["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise ModelFileError(path, f"safetensors entry {name!r:.60} is malformed") from None
        numel = 1
        for d in shape:
            numel *= d
        if any(d < 0 for d in shape) or numel >= 1 << 63:
            raise ModelFileError(path, f"safetensors entry {name!r:.60} has an impossible shape")
        if not 0 <= begin <= end or base + end > size:
            raise ModelFileError(path, f"safetensors entry {name!r:.60} points outside the file")
        entries.append(STEntry(name, dtype, shape, path, base + begin, end - begin))
    entries.sort(key=lambda e: e.offset)
    return entries, {str(k): str(v) for k, v in meta.items()}


def find_index(path: str) -> str | None:
    """The index.json of a sharded checkpoint directory, if there is one."""
    try:
        names = sorted(source.listdir(path))
    except OSError as e:
        raise ModelFileError(path, e.strerror or str(e)) from None
    for preferred in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if preferred in names:
            return source.join(path, preferred)
    for n in names:
        if n.endswith(".index.json"):
            return source.join(path, n)
    return None


def read_index(path: str) -> tuple[dict[str, str], list[str], dict]:
    """weight_map (name → shard path) and the shard list in first-use order."""
    try:
        doc = json.loads(source.read_all(path, MAX_HEADER).decode("utf-8"))
    except OSError as e:
        raise ModelFileError(path, e.strerror or str(e)) from None
    except (ValueError, RecursionError):
        raise ModelFileError(path, "index file is not valid JSON") from None
    wm = doc.get("weight_map") if isinstance(doc, dict) else None
    if not isinstance(wm, dict) or not wm:
        raise ModelFileError(path, "index file has no weight_map")
    folder = source.dirname(path)
    weight_map: dict[str, str] = {}
    shards: list[str] = []
    full_of: dict[str, str] = {}  # shard name → path; a set, not a scan of weight_map
    for name, shard in wm.items():
        full = full_of.get(shard) if isinstance(shard, str) else None
        if full is None:
            if not isinstance(shard, str) or os.path.basename(shard) != shard:
                raise ModelFileError(path, f"index names a bad shard {shard!r:.60}")
            full = source.join(folder, shard)
            if not source.isfile(full):
                raise ModelFileError(path, f"shard {shard} named in the index is missing")
            full_of[shard] = full
            shards.append(full)
        weight_map[str(name)] = full
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    return weight_map, shards, meta
