"""The structural model of an opened file: plain dataclasses, no torch, no UI.

A `ModelFile` holds a tree of `ModuleNode`s (what `named_children` would give),
the unique `TensorInfo`s they bind (tied weights are one object with several
names), the non-tensor content as a `ValueNode` tree, and `Finding`s about
anything in the file that would run code under a plain `torch.load`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

TensorKind = Literal["parameter", "buffer", "unknown"]
Status = Literal["trainable", "frozen", "partial", "unknown", "empty"]

# Bytes per element for every dtype torch can save (names as torch prints them).
DTYPE_SIZES: dict[str, float] = {
    "float64": 8, "float32": 4, "float16": 2, "bfloat16": 2,
    "float8_e4m3fn": 1, "float8_e5m2": 1, "float8_e4m3fnuz": 1, "float8_e5m2fnuz": 1,
    "float8_e8m0fnu": 1, "float4_e2m1fn_x2": 1,
    "complex128": 16, "complex64": 8, "complex32": 4,
    "int64": 8, "int32": 4, "int16": 2, "int8": 1, "uint8": 1,
    "uint16": 2, "uint32": 4, "uint64": 8, "bool": 1,
    "qint8": 1, "quint8": 1, "qint32": 4, "quint4x2": 1, "quint2x4": 1,
    "bits8": 1, "bits16": 2, "bits1x8": 1, "bits2x4": 1, "bits4x2": 1,
}
FLOATING = {d for d in DTYPE_SIZES if d.startswith(("float", "bfloat", "complex"))}


def contiguous_stride(shape: tuple[int, ...] | list[int]) -> tuple[int, ...]:
    """Row-major strides of a dense tensor of `shape` (what torch gives a fresh tensor)."""
    stride, acc = [], 1
    for s in reversed(shape):
        stride.append(acc)
        acc *= s
    return tuple(reversed(stride))


@dataclass(frozen=True)
class StorageRef:
    """Where a storage's bytes live. Nothing here has been read."""

    key: str
    dtype: str
    location: str  # device the file was saved on: "cpu", "cuda:0", …
    numel: int  # elements of `dtype` in the storage
    path: str = ""  # file holding the bytes
    offset: int = -1  # byte offset of the storage in `path`; -1 until located

    @property
    def nbytes(self) -> int:
        return int(self.numel * DTYPE_SIZES.get(self.dtype, 1))


@dataclass(frozen=True)
class QParams:
    """How a quantized tensor's integers map to reals: (q - zero_point) * scale."""

    scheme: str  # per_tensor_affine, per_channel_affine, …
    scale: float | None = None  # per-tensor schemes
    zero_point: int | None = None
    axis: int | None = None  # per-channel schemes: one scale per index along `axis`
    scales: TensorInfo | None = None
    zero_points: TensorInfo | None = None


@dataclass(eq=False)
class TensorInfo:
    """One tensor object. Tied weights are one TensorInfo with several names."""

    names: list[str]  # qualified names; names[0] is the one named_parameters() reports
    shape: tuple[int, ...]
    dtype: str
    kind: TensorKind
    requires_grad: bool | None  # None: the format does not store it
    device: str = "cpu"
    storage: StorageRef | None = None  # None: no data (lazy/uninitialized, meta)
    storage_offset: int = 0
    stride: tuple[int, ...] = ()
    quantized: str | None = None  # qscheme for quantized tensors
    qparams: QParams | None = None  # scale and zero point(s) of a quantized tensor
    note: str = ""  # e.g. "uninitialized (lazy)"
    original_requires_grad: bool | None = None  # as on disk, for dirty tracking
    uid: int = 0  # index in ModelFile.tensors
    param_index: int = -1  # creation order of its Parameter in the pickle (ParamRec.index); -1: none
    layout: str = "strided"  # sparse_coo/csr/csc/bsr/bsc, nested, numpy (bytes in the pickle)
    inferred: bool = False  # kind guessed from name/dtype (a file without architecture)

    @property
    def name(self) -> str:
        return self.names[0]

    @property
    def aliases(self) -> list[str]:
        return self.names[1:]

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return int(self.numel * DTYPE_SIZES.get(self.dtype, 1))

    @property
    def can_require_grad(self) -> bool:
        return self.dtype in FLOATING and self.quantized is None


@dataclass
class Counts:
    """Totals over the unique parameter tensors of a subtree (buffers apart)."""

    numel: int = 0
    trainable: int = 0  # numel of trainable parameters
    frozen: int = 0
    unknown: int = 0
    tensors: int = 0
    trainable_tensors: int = 0
    frozen_tensors: int = 0
    nbytes: int = 0  # parameter bytes
    buffer_numel: int = 0
    buffer_nbytes: int = 0
    buffers: int = 0

    @property
    def status(self) -> Status:
        if self.tensors == 0:
            return "empty"
        if self.trainable_tensors == self.tensors:
            return "trainable"
        if self.frozen_tensors == self.tensors:
            return "frozen"
        if self.trainable_tensors == 0 and self.frozen_tensors < self.tensors:
            return "unknown"  # flags not stored (integer tensors are known frozen)
        return "partial"

    def shift(self, rg: bool | None, numel: int, tensors: int) -> None:
        """Add `numel` elements and `tensors` tensors (negative: remove) to rg's bucket."""
        if rg is True:
            self.trainable += numel
            self.trainable_tensors += tensors
        elif rg is False:
            self.frozen += numel
            self.frozen_tensors += tensors
        else:
            self.unknown += numel

    def add_flags(self, d: Counts) -> None:
        """Add the flag buckets of `d` (an edit's delta); sizes and tensor counts stay."""
        self.trainable += d.trainable
        self.frozen += d.frozen
        self.unknown += d.unknown
        self.trainable_tensors += d.trainable_tensors
        self.frozen_tensors += d.frozen_tensors


@dataclass(eq=False)
class ModuleNode:
    name: str  # qualified name, "" for the root
    key: str  # attribute name in the parent ("" for the root)
    type: str | None  # class's qualified name; None when the file does not say
    parent: ModuleNode | None = None
    children: list[ModuleNode] = field(default_factory=list)
    params: list[tuple[str, TensorInfo]] = field(default_factory=list)  # own, by local name
    buffers: list[tuple[str, TensorInfo]] = field(default_factory=list)
    none_params: list[str] = field(default_factory=list)  # registered as None
    none_children: list[str] = field(default_factory=list)
    non_persistent: list[str] = field(default_factory=list)  # buffer names not in state_dict
    counts: Counts = field(default_factory=Counts)
    depth: int = 0
    extra_repr: str = ""  # what print(model) shows inside Class(...)
    attributes: dict[str, Any] = field(default_factory=dict)  # plain attributes, as JSON values

    @property
    def short_type(self) -> str:
        if self.type is None:
            return "?"
        return self.type.rsplit(".", 1)[-1]

    @property
    def status(self) -> Status:
        return self.counts.status

    def qualify(self, local: str) -> str:
        return f"{self.name}.{local}" if self.name else local

    def walk(self):
        """Pre-order, iterative (models can be hundreds of levels deep)."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))


@dataclass(eq=False)
class ValueNode:
    """A browsable view of non-tensor content (epoch, hyper-parameters, …)."""

    key: str
    type: str  # "int", "dict", "tensor", "module", "object (transformers…Config)", …
    summary: str  # short one-line rendering
    children: list[ValueNode] = field(default_factory=list)
    path: str = ""  # key path from the top, e.g. "hyper_parameters.lr"


@dataclass(frozen=True)
class Finding:
    """Something in the file that a plain torch.load(weights_only=False) would do."""

    severity: Literal["danger", "unknown-class", "info"]
    callable: str  # qualified name, e.g. "posix.system"
    detail: str  # human sentence, includes constant arguments where known
    where: str = ""  # key path in the object graph where it sits

    def line(self) -> str:
        where = f" at {self.where}" if self.where else ""
        return f"{self.severity}: {self.callable}{where}: {self.detail}"


@dataclass(eq=False)
class ModelFile:
    path: str
    format: str  # full_model | state_dict | checkpoint | torchscript | safetensors | value
    container: str  # zip | legacy | torchscript | safetensors | sharded-safetensors | sharded-torch
    root: ModuleNode | None
    tensors: list[TensorInfo]  # unique tensors: parameters (named_parameters order) then buffers
    values: ValueNode
    warnings: list[Finding] = field(default_factory=list)
    model_keys: list[str] = field(default_factory=list)  # where models sit in a checkpoint
    model_key: str | None = None  # the one shown ("" when the whole file is the model)
    requires_grad_stored: bool = True  # False for state_dict / safetensors
    freeze_plan: str | None = None  # path of a freeze plan applied on open
    file_size: int = 0
    source: Any = None  # reader-private data the writers need (raw graph, byte locations)
    modules: dict[str, ModuleNode] = field(default_factory=dict)  # by qualified name

    @property
    def totals(self) -> Counts:
        return self.root.counts if self.root is not None else Counts()

    def parameters(self) -> list[TensorInfo]:
        return [t for t in self.tensors if t.kind != "buffer"]

    def buffers(self) -> list[TensorInfo]:
        return [t for t in self.tensors if t.kind == "buffer"]


def ancestors_union(owners: Iterable[ModuleNode]) -> list[ModuleNode]:
    """Every node on the owners' paths to the root, each once (a pure tree walk: the
    editor uses it without importing the read layer)."""
    out: dict[int, ModuleNode] = {}
    for node in owners:
        n: ModuleNode | None = node
        while n is not None and id(n) not in out:
            out[id(n)] = n
            n = n.parent
    return list(out.values())
