"""The tensors a state_dict / safetensors file gets, in model.state_dict() order, with
where each one's bytes are in the source. Nothing is read here but zip directories.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from tui.core.errors import ModelFileError
from tui.core.model import DTYPE_SIZES, ModelFile, contiguous_stride
from tui.core.read.records import (
    ParamRec,
    StorageRec,
    TensorRec,
    is_tensor,
    items_of,
    module_state,
    non_persistent,
)
from tui.core.write.stream import Blob


@dataclass(eq=False)
class Storage:
    """One storage: tensors that share it stay views of one block in the output."""

    blob: Blob
    dtype: str  # element type of the storage as the source names it
    location: str


@dataclass(eq=False)
class OutTensor:
    name: str
    storage: Storage
    dtype: str
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    offset: int  # in elements of dtype

    @property
    def itemsize(self) -> int:
        return int(DTYPE_SIZES.get(self.dtype, 1))

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.numel * self.itemsize

    @property
    def contiguous(self) -> bool:
        acc = 1
        for s, st in zip(reversed(self.shape), reversed(self.stride), strict=True):
            if s != 1 and st != acc:
                return False
            acc *= s
        return True

    def extent(self) -> tuple[int, int]:
        """[first, last+1) byte range of the storage this tensor touches."""
        if self.numel == 0:
            return self.offset * self.itemsize, self.offset * self.itemsize
        hi = self.offset + sum((s - 1) * st for s, st in zip(self.shape, self.stride, strict=True))
        return self.offset * self.itemsize, (hi + 1) * self.itemsize


def state_entries(obj: Any, path: str) -> list[tuple[str, Any]]:
    """(key, tensor record) as model.state_dict() lists them: per module (pre-order over
    _modules, shared modules under every name) its parameters, then its persistent buffers."""
    out: list[tuple[str, Any]] = []
    stack: list[tuple[str, Any, tuple[int, ...]]] = [("", obj, ())]
    while stack:
        prefix, mod, chain = stack.pop()
        if id(mod) in chain:
            raise ModelFileError(path, f"module {prefix[:-1]!r} contains itself")
        st = module_state(mod) or {}
        for k, p in items_of(st.get("_parameters")):
            if is_tensor(p):
                out.append((f"{prefix}{k}", p))
        skip = non_persistent(st)
        for k, b in items_of(st.get("_buffers")):
            if is_tensor(b) and k not in skip:
                out.append((f"{prefix}{k}", b))
        kids = [(f"{prefix}{k}.", c, chain + (id(mod),)) for k, c in items_of(st.get("_modules"))
                if module_state(c) is not None]
        stack.extend(reversed(kids))
    return out


class _Resolver:
    """StorageRec → Storage (one per record), with the bytes' place in the source file."""

    def __init__(self, mf: ModelFile) -> None:
        self.mf = mf
        self.storages: dict[int, Storage] = {}
        self.owner: dict[int, Any] = {}  # id(StorageRec) → TorchSource
        self.listings: dict[str, dict] = {}
        src = mf.source
        for ts in ([src.torch] if src.torch is not None else []) + list(src.shards):
            for rec in ts.read.storages.values():
                self.owner[id(rec)] = ts

    def storage(self, rec: StorageRec, name: str) -> Storage:
        got = self.storages.get(id(rec))
        if got is not None:
            return got
        ts = self.owner.get(id(rec))
        if ts is None:
            raise ModelFileError(self.mf.path, f"tensor {name}: storage {rec.key} not found")
        nbytes = int(rec.numel * DTYPE_SIZES.get(rec.dtype, 1))
        if ts.container == "zip":
            from tui.core.write.zipwrite import listing

            if ts.path not in self.listings:
                self.listings[ts.path] = listing(ts.path)[0]
            entry = self.listings[ts.path].get(f"{ts.prefix}data/{rec.key}")
            if entry is None:
                raise ModelFileError(ts.path, f"storage data/{rec.key} is missing from the archive")
            if not entry.stored:
                raise ModelFileError(ts.path, f"storage data/{rec.key} is compressed; torch writes it stored")
            blob = Blob(entry.size, ts.path, entry.data, crc=entry.crc)
        else:
            offsets = ts.storage_offsets()
            if rec.key not in offsets:
                raise ModelFileError(ts.path, f"storage {rec.key} is missing from the file")
            blob = Blob(nbytes, ts.path, offsets[rec.key])
        got = Storage(blob, rec.dtype, rec.location)
        self.storages[id(rec)] = got
        return got

    def tensor(self, name: str, rec: Any) -> OutTensor:
        data = rec.data if isinstance(rec, ParamRec) else rec
        if not isinstance(data, TensorRec) or data.storage is None:
            what = data.note if isinstance(data, TensorRec) and data.note else "no data"
            raise ModelFileError(self.mf.path, f"tensor {name} has {what}: it can't be written as weights")
        if data.quantized:
            raise ModelFileError(self.mf.path, f"tensor {name} is quantized ({data.quantized}): "
                                 "only the full format can keep it")
        return checked(self.mf.path, OutTensor(name, self.storage(data.storage, name), data.dtype,
                                               tuple(data.shape), tuple(data.stride), data.offset))


def checked(path: str, t: OutTensor) -> OutTensor:
    if len(t.shape) != len(t.stride) or min(t.shape, default=0) < 0:
        raise ModelFileError(path, f"tensor {t.name} has a broken shape or stride")
    lo, hi = t.extent()
    if lo < 0 or hi > t.storage.blob.nbytes:
        raise ModelFileError(path, f"tensor {t.name} points outside its storage")
    return t


def collect(mf: ModelFile) -> list[OutTensor]:
    """The model part's tensors as its state_dict would hold them."""
    src = mf.source
    if src is None:
        raise ModelFileError(mf.path, "nothing to save: no model in this file")
    if src.kind == "torchscript":
        return _from_script(mf)
    if src.kind == "safetensors":
        return _from_safetensors(mf)
    obj = src.model_obj
    if obj is None:
        raise ModelFileError(mf.path, "nothing to save: the file holds no model or state_dict")
    r = _Resolver(mf)
    entries = state_entries(obj, mf.path) if module_state(obj) is not None else \
        [(str(k), v) for k, v in obj.items() if is_tensor(v)]
    return [r.tensor(k, v) for k, v in entries]


def _from_safetensors(mf: ModelFile) -> list[OutTensor]:
    out = []
    for name, e in mf.source.st_entries.items():  # the file's order (buffers are not moved last)
        st = Storage(Blob(e.nbytes, e.path, e.offset), e.dtype, "cpu")
        out.append(checked(mf.path, OutTensor(name, st, e.dtype, tuple(e.shape),
                                              contiguous_stride(e.shape), 0)))
    return out


def _from_script(mf: ModelFile) -> list[OutTensor]:
    import torch  # the TorchScript module is torch's object already in memory

    storages: dict[int, Storage] = {}
    out = []
    for name, t in mf.source.script.state_dict().items():
        t = t.detach()
        if t.is_quantized:
            raise ModelFileError(mf.path, f"tensor {name} is quantized: only the full format can keep it")
        us = t.untyped_storage()
        st = storages.get(us.data_ptr())
        if st is None:
            raw = torch.empty(0, dtype=torch.uint8).set_(us, 0, (us.nbytes(),), (1,))
            st = Storage(Blob(us.nbytes(), data=memoryview(raw.numpy())), str(t.dtype)[6:], "cpu")
            storages[us.data_ptr()] = st
        out.append(checked(mf.path, OutTensor(name, st, str(t.dtype)[6:], tuple(t.shape),
                                              tuple(t.stride()), t.storage_offset())))
    return out
