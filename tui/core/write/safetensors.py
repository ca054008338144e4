"""safetensors writer, streamed.

The safetensors library serializes from tensors held in memory (its serialize_file
takes raw pointers to every tensor at once), which would cost the whole file in RAM.
So the file is laid out here exactly as the library lays it out — 8-byte header
length, JSON header padded with spaces to 8 bytes, tensors sorted by dtype (the
library's dtype order, last first) then name, data contiguous with no gaps —
and the bytes are copied from the source one tensor at a time. Before the rename the
result is opened with the library (`safe_open`), which validates header and offsets.

The format can't alias: tied weights (the same view under several names) are written
once under the first name, and the other names are listed in the metadata key
"modeltree.aliases" (JSON {alias: kept name}), which is what `safetensors.torch.
save_model` does too (it drops the duplicate names; `load_model` re-ties them).
A view that is not identical to another one gets its own copy of its bytes.
"""

from __future__ import annotations

import json
import struct

from tui.core.errors import ModelFileError
from tui.core.write.atomic import write_all
from tui.core.write.stream import Progress, Sources
from tui.core.write.tensors_out import OutTensor

# dtypes the safetensors library (0.4 … 0.8) reads, by its names, in the order of its
# Dtype enum (the library writes tensors sorted by that order, descending, then name).
ST_NAMES = {
    "bool": "BOOL", "uint8": "U8", "int8": "I8", "float8_e5m2": "F8_E5M2",
    "float8_e4m3fn": "F8_E4M3", "float8_e8m0fnu": "F8_E8M0", "int16": "I16", "uint16": "U16",
    "float16": "F16", "bfloat16": "BF16", "int32": "I32", "uint32": "U32", "float32": "F32",
    "complex64": "C64", "float64": "F64", "int64": "I64", "uint64": "U64",
}

_ORDER = {d: i for i, d in enumerate(ST_NAMES)}


def plan(path: str, tensors: list[OutTensor]) -> tuple[list[OutTensor], dict[str, str]]:
    """The tensors to write (sorted as the library sorts them) and the dropped aliases."""
    kept: dict[tuple, OutTensor] = {}
    aliases: dict[str, str] = {}
    for t in tensors:
        if t.dtype not in ST_NAMES:
            raise ModelFileError(path, f"tensor {t.name} has dtype {t.dtype}, which safetensors "
                                 "can't store")
        view = (id(t.storage), t.offset, t.shape, t.stride, t.dtype)
        first = kept.setdefault(view, t)
        if first is not t:
            aliases[t.name] = first.name
    out = sorted(kept.values(), key=lambda t: (-_ORDER[t.dtype], t.name))
    return out, aliases


def header(tensors: list[OutTensor], metadata: dict[str, str]) -> bytes:
    doc: dict = {"__metadata__": metadata} if metadata else {}
    pos = 0
    for t in tensors:
        doc[t.name] = {"dtype": ST_NAMES[t.dtype], "shape": list(t.shape),
                       "data_offsets": [pos, pos + t.nbytes]}
        pos += t.nbytes
    raw = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw


def total_bytes(tensors: list[OutTensor]) -> int:
    return sum(t.nbytes for t in tensors)


def write(fd: int, tensors: list[OutTensor], metadata: dict[str, str], sources: Sources,
          progress: Progress) -> int:
    head = header(tensors, metadata)
    write_all(fd, head)
    size = len(head)
    for t in tensors:
        if t.contiguous:
            start = t.offset * t.itemsize
            sources.copy(t.storage.blob, fd, progress, start=start, length=t.nbytes)
        else:
            data = _gather(t, sources)
            write_all(fd, data)
            progress.add(len(data))
        size += t.nbytes
    return size


def _gather(t: OutTensor, sources: Sources) -> bytes:
    """A strided view made contiguous: read the range it spans, then let numpy copy.

    Memory: the storage range the view spans (views are seldom big)."""
    import numpy as np

    lo, hi = t.extent()
    raw = sources.read(t.storage.blob, lo, hi - lo)
    # Only byte movement matters: any numpy type of the right width will do.
    unit = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}.get(t.itemsize)
    base = np.frombuffer(raw, dtype=unit if unit else np.dtype((np.void, t.itemsize)))
    view = np.lib.stride_tricks.as_strided(
        base, shape=t.shape, strides=tuple(s * t.itemsize for s in t.stride), writeable=False)
    return np.ascontiguousarray(view).tobytes()


def validate(path: str, target: str, names: list[str]) -> None:
    """Let the library check the file before it replaces the target."""
    from safetensors import safe_open

    try:
        with safe_open(path, framework="numpy") as f:
            got = set(f.keys())
    except Exception as e:  # noqa: BLE001 - the library raises its own error types
        raise ModelFileError(target, f"the safetensors library rejects the written file ({e})") from None
    if got != set(names):
        raise ModelFileError(target, "the safetensors library reads other tensor names back")
