"""The tensors a state_dict / safetensors file gets, in model.state_dict() order, with
where each one's bytes are in the source. Nothing is read here but zip directories.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from tui.core.errors import ModelFileError
from tui.core.model import DTYPE_SIZES, ModelFile, contiguous_stride
from tui.core.read.guard import brief
from tui.core.read.locate import Blob, Locator, Storage
from tui.core.read.records import (
    ParamRec,
    TensorRec,
    is_tensor,
    items_of,
    module_state,
    non_persistent,
)

PLAIN = ("torch.Tensor", "torch.nn.parameter.Parameter")  # not a subclass of its own


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
        skip = non_persistent(st)
        for k, p in items_of(st.get("_parameters")) + items_of(st.get("_buffers")):
            if p is not None and not is_tensor(p):  # never a silent drop
                raise ModelFileError(path, f"tensor {prefix}{k} is a {brief(p)}, not a tensor "
                                     "modeltree can write exactly: nothing was written")
            if is_tensor(p) and k not in skip:
                out.append((f"{prefix}{k}", p))
        kids = [(f"{prefix}{k}.", c, chain + (id(mod),)) for k, c in items_of(st.get("_modules"))
                if module_state(c) is not None]
        stack.extend(reversed(kids))
    return out


class _Resolver:
    """Tensor records → OutTensors over the storages the Locator finds in the source."""

    def __init__(self, mf: ModelFile) -> None:
        self.mf = mf
        self.locator = Locator(mf)

    def tensor(self, name: str, rec: Any) -> OutTensor:
        data = rec.data if isinstance(rec, ParamRec) else rec
        if isinstance(data, TensorRec) and data.subclass and data.subclass not in PLAIN:
            raise ModelFileError(self.mf.path, f"tensor {name} is a {data.subclass} (a tensor "
                                 "subclass): this format can't keep its class (the full format "
                                 "keeps it)")
        if isinstance(data, TensorRec) and data.layout != "strided":
            raise ModelFileError(self.mf.path, f"tensor {name} is a {data.note or data.layout}: "
                                 "this format can't hold it exactly (the full format keeps it)")
        if not isinstance(data, TensorRec) or data.storage is None:
            what = data.note if isinstance(data, TensorRec) and data.note else "no data"
            raise ModelFileError(self.mf.path, f"tensor {name} has {what}: it can't be written as weights")
        if data.quantized:
            raise ModelFileError(self.mf.path, f"tensor {name} is quantized ({data.quantized}): "
                                 "only the full format can keep it")
        return checked(self.mf.path, OutTensor(name, self.locator.storage(data.storage, name), data.dtype,
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
    dropped = [k for k, v in (obj.items() if module_state(obj) is None else ())
               if not is_tensor(v) and v is not None]
    if dropped and mf.format == "state_dict":
        raise ModelFileError(mf.path, f"entry {dropped[0]} is not a tensor modeltree can write "
                             "exactly: nothing was written")
    return [r.tensor(k, v) for k, v in entries]


def _from_safetensors(mf: ModelFile) -> list[OutTensor]:
    out = []
    for name, e in mf.source.st_entries.items():  # the file's order (buffers are not moved last)
        st = Storage(Blob(e.nbytes, e.path, e.offset), e.dtype, "cpu")
        out.append(checked(mf.path, OutTensor(name, st, e.dtype, tuple(e.shape),
                                              contiguous_stride(e.shape), 0)))
    return out


def _from_script(mf: ModelFile) -> list[OutTensor]:
    """A TorchScript archive read structurally: its state_dict() entries, from its zip."""
    r = _Resolver(mf)
    return [r.tensor(name, rec) for name, rec in mf.source.script]
