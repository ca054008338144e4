"""state_dict writer: the pickle torch.save(model.state_dict()) would give, emitted here.

The pickle holds only what `torch.load(weights_only=True)` allows: an OrderedDict of
`torch._utils._rebuild_tensor_v2/_v3` calls over persistent storage ids. Storages are
renumbered 0, 1, … in order of first use (as torch does); tensors that shared a
storage (tied weights, views) share it again, offsets and strides kept. Storage bytes
are copied from the source as they are, so values are bitwise-identical.
"""

from __future__ import annotations

import struct
from typing import Any

from tui.core.errors import ModelFileError
from tui.core.model import DTYPE_SIZES
from tui.core.read.locate import Storage
from tui.core.read.records import STORAGE_DTYPES
from tui.core.write.stream import Progress, Sources
from tui.core.write.tensors_out import OutTensor
from tui.core.write.zipwrite import archive_name, default_meta, torch_zip

# dtype → the legacy typed-storage class torch.save names for it.
TYPED = {d: n for n, d in STORAGE_DTYPES.items() if n not in ("UntypedStorage", "TypedStorage")}


class Emitter:
    """A protocol-2 pickle writer for the few shapes a state_dict needs."""

    def __init__(self) -> None:
        self.out = bytearray(b"\x80\x02")
        self.memo: dict[Any, int] = {}

    def _put(self, key: Any) -> None:
        idx = self.memo[key] = len(self.memo)
        self.out += b"q" + bytes([idx]) if idx < 256 else b"r" + struct.pack("<I", idx)

    def _get(self, key: Any) -> bool:
        idx = self.memo.get(key)
        if idx is None:
            return False
        self.out += b"h" + bytes([idx]) if idx < 256 else b"j" + struct.pack("<I", idx)
        return True

    def glob(self, module: str, name: str) -> None:
        if not self._get(("g", module, name)):
            self.out += f"c{module}\n{name}\n".encode()
            self._put(("g", module, name))

    def str(self, s: str) -> None:
        if not self._get(("s", s)):
            raw = s.encode("utf-8", "surrogatepass")
            self.out += b"X" + struct.pack("<I", len(raw)) + raw
            self._put(("s", s))

    def int(self, n: int) -> None:
        if 0 <= n < 256:
            self.out += b"K" + bytes([n])
        elif 0 <= n < 65536:
            self.out += b"M" + struct.pack("<H", n)
        elif -(2**31) <= n < 2**31:
            self.out += b"J" + struct.pack("<i", n)
        else:
            raw = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
            self.out += b"\x8a" + bytes([len(raw)]) + raw

    def ints(self, xs: tuple[int, ...]) -> None:
        if len(xs) > 3:
            self.out += b"("
        for x in xs:
            self.int(x)
        self.out += {0: b")", 1: b"\x85", 2: b"\x86", 3: b"\x87"}.get(len(xs), b"t")

    def value(self, v: Any, depth: int = 0) -> None:
        """Plain data only (the `_metadata` of a state_dict)."""
        if depth > 50:
            raise ValueError("nested too deep")
        if v is None:
            self.out += b"N"
        elif isinstance(v, bool):
            self.out += b"\x88" if v else b"\x89"
        elif isinstance(v, int):
            self.int(int(v))
        elif isinstance(v, float):
            self.out += b"G" + struct.pack(">d", v)
        elif isinstance(v, str):
            self.str(v)
        elif isinstance(v, dict):
            self.glob("collections", "OrderedDict")
            self.out += b")R("
            for k, x in v.items():
                self.value(k, depth + 1)
                self.value(x, depth + 1)
            self.out += b"u"
        elif isinstance(v, (list, tuple)):
            self.out += b"]" if isinstance(v, list) else b""
            self.out += b"("
            for x in v:
                self.value(x, depth + 1)
            self.out += b"e" if isinstance(v, list) else b"t"
        else:
            raise ValueError(f"can't write {type(v).__name__}")


def _plan_storages(tensors: list[OutTensor]) -> dict[int, tuple[str, str | None]]:
    """id(Storage) → (new key, typed dtype or None for an untyped storage)."""
    keys: dict[int, tuple[str, str | None]] = {}
    dtypes: dict[int, set[str]] = {}
    for t in tensors:
        dtypes.setdefault(id(t.storage), set()).add(t.dtype)
        if id(t.storage) not in keys:
            keys[id(t.storage)] = (str(len(keys)), None)
    for t in tensors:
        key, _ = keys[id(t.storage)]
        ds = dtypes[id(t.storage)]
        typed = t.dtype if len(ds) == 1 and t.dtype in TYPED and t.storage.dtype == t.dtype else None
        keys[id(t.storage)] = (key, typed)
    return keys


def state_dict_pickle(tensors: list[OutTensor], metadata: Any = None,
                      cpu: bool = False) -> tuple[bytes, list[Storage]]:
    """The pickle, and the storages in key order (`cpu`: every location 'cpu')."""
    e = Emitter()
    plan = _plan_storages(tensors)
    order: list[Storage] = []
    seen: set[int] = set()
    e.glob("collections", "OrderedDict")
    e.out += b")R"
    e._put(("root",))
    e.out += b"("
    for t in tensors:
        key, typed = plan[id(t.storage)]
        e.str(t.name)
        e.glob("torch._utils", "_rebuild_tensor_v2" if typed else "_rebuild_tensor_v3")
        e.out += b"("
        if not e._get(("pid", key)):
            e.out += b"("
            e.str("storage")
            if typed:
                e.glob("torch", TYPED[typed])
                e.str(key)
                e.str("cpu" if cpu else t.storage.location)
                e.int(t.storage.blob.nbytes // int(DTYPE_SIZES[typed]))
            else:
                e.glob("torch.storage", "UntypedStorage")
                e.str(key)
                e.str("cpu" if cpu else t.storage.location)
                e.int(t.storage.blob.nbytes)
            e.out += b"t"
            e._put(("pid", key))
        e.out += b"Q"
        if id(t.storage) not in seen:
            seen.add(id(t.storage))
            order.append(t.storage)
        e.int(t.offset)
        e.ints(t.shape)
        e.ints(t.stride)
        e.out += b"\x89"  # requires_grad: a state_dict holds detached tensors
        e.glob("collections", "OrderedDict")
        e.out += b")R"  # backward hooks: empty
        if not typed:
            e.glob("torch", t.dtype)
        e.out += b"tR"
    e.out += b"u"
    if metadata:
        e.out += b"}("  # state for BUILD: {"_metadata": …}, as OrderedDict.__reduce__ gives it
        e.str("_metadata")
        e.value(metadata)
        e.out += b"ub"
    e.out += b"."
    return bytes(e.out), order


def write(fd: int, tensors: list[OutTensor], out_path: str, sources: Sources,
          progress: Progress, metadata: Any = None, cpu: bool = False) -> int:
    """Write the state_dict archive to fd; returns its size."""
    try:
        data, order = state_dict_pickle(tensors, metadata, cpu)
    except ValueError:
        if metadata is None:
            raise
        data, order = state_dict_pickle(tensors, None, cpu)  # odd _metadata: leave it out
    keys = _plan_storages(tensors)
    storages = [(keys[id(s)][0], s.blob) for s in order]
    return torch_zip(fd, sources, progress, archive_name(out_path), data, storages, default_meta())


def total_bytes(tensors: list[OutTensor]) -> int:
    seen: dict[int, int] = {}
    for t in tensors:
        seen[id(t.storage)] = t.storage.blob.nbytes
    return sum(seen.values())


def check_dtypes(path: str, tensors: list[OutTensor]) -> None:
    for t in tensors:
        if t.dtype not in DTYPE_SIZES or t.dtype.startswith(("q", "bits")):
            raise ModelFileError(path, f"tensor {t.name} has dtype {t.dtype}, which a state_dict "
                                 "file can't hold here")
