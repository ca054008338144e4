"""safetensors headers and Hugging Face sharded checkpoints: metadata only."""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass

from tui.core.errors import ModelFileError
from tui.core.model import DTYPE_SIZES
from tui.core.read import source

MAX_HEADER = 100_000_000  # the format's own cap
ST_DTYPES = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
    "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8",
    "U16": "uint16", "U32": "uint32", "U64": "uint64", "BOOL": "bool",
    "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2", "F8_E8M0": "float8_e8m0fnu",
    "F8_E4M3FNUZ": "float8_e4m3fnuz", "F8_E5M2FNUZ": "float8_e5m2fnuz",
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
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except _Duplicate as e:
        raise ModelFileError(path, f"safetensors header names {str(e)!r:.60} twice") from None
    except (ValueError, RecursionError) as e:  # bad UTF-8/JSON, 5000-digit ints, [[[[…]]]]
        raise ModelFileError(path, f"safetensors header is not valid JSON ({e.__class__.__name__})") from None
    if not isinstance(header, dict):
        raise ModelFileError(path, "safetensors header is not a JSON object")
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ModelFileError(path, "safetensors __metadata__ is not an object of strings")
    entries = [_entry(path, name, spec, 8 + n, size) for name, spec in header.items()]
    entries.sort(key=lambda e: e.offset)
    end = 8 + n
    for e in entries:  # the format forbids overlapping tensors
        if e.nbytes and e.offset < end:
            raise ModelFileError(path, f"safetensors entry {e.name!r:.60} overlaps another tensor")
        end = max(end, e.offset + e.nbytes)
    return entries, dict(meta)


class _Duplicate(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict:
    out: dict = {}
    for k, v in pairs:
        if k in out:
            raise _Duplicate(k)
        out[k] = v
    return out


def _is_int(x: object) -> bool:
    return type(x) is int  # not bool, not a float such as 1.5 or 1e999


def _entry(path: str, name: str, spec: object, base: int, size: int) -> STEntry:
    """One header entry, every field checked against the format's types."""
    def bad(what: str) -> ModelFileError:
        return ModelFileError(path, f"safetensors entry {name!r:.60} {what}")

    if not isinstance(spec, dict):
        raise bad("is not an object")
    dtype, shape, offsets = spec.get("dtype"), spec.get("shape"), spec.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in ST_DTYPES:
        raise bad(f"has an unknown dtype {str(dtype)!r:.20}")
    if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape) or len(shape) > 64:
        raise bad("has a shape that is not a list of non-negative integers")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(map(_is_int, offsets)):
        raise bad("has data_offsets that are not two integers")
    begin, end = offsets
    numel = 1
    for d in shape:
        numel *= d
    if numel >= 1 << 63:
        raise bad("has an impossible shape")
    if not 0 <= begin <= end or base + end > size:
        raise bad("points outside the file")
    want = numel * DTYPE_SIZES.get(ST_DTYPES[dtype], 1)
    if end - begin != want and not (dtype == "F4" and end - begin == (numel + 1) // 2):
        raise bad(f"holds {end - begin} bytes but its shape and dtype need {int(want)}")
    return STEntry(name, ST_DTYPES[dtype], tuple(shape), path, base + begin, end - begin)


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
    meta = doc.get("metadata", {})
    if not isinstance(meta, dict) or not _is_int(meta.get("total_size", 0)):
        raise ModelFileError(path, "index metadata is not an object with an integer total_size")
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
    return weight_map, shards, meta
