"""What the restricted unpickler builds: stand-ins for the file's classes and
records of storages, tensors and parameters (no bytes, no torch)."""

from __future__ import annotations

import math
import pickle
from dataclasses import dataclass, field
from typing import Any

from tui.core.read.guard import brief

# Storage classes name their dtype.
STORAGE_DTYPES = {
    "DoubleStorage": "float64", "FloatStorage": "float32", "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32",
    "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8",
    "BoolStorage": "bool", "ComplexDoubleStorage": "complex128",
    "ComplexFloatStorage": "complex64", "QInt8Storage": "qint8", "QUInt8Storage": "quint8",
    "QInt32Storage": "qint32", "QUInt4x2Storage": "quint4x2", "QUInt2x4Storage": "quint2x4",
    "UntypedStorage": "uint8", "TypedStorage": "uint8",
}
# torch.<name> dtype globals, as `_rebuild_tensor_v3` and attributes refer to them.
TORCH_DTYPE_ALIASES = {
    "float": "float32", "double": "float64", "half": "float16", "long": "int64",
    "int": "int32", "short": "int16", "cfloat": "complex64", "cdouble": "complex128",
    "chalf": "complex32",
}

class StandIn:
    """Base of every stand-in class. Instances only record how they were made."""

    _mt_module = ""
    _mt_name = ""
    _mt_reducer: Any = None  # the unpickler that made the class; it logs instances

    def __new__(cls, *args: Any, **kwargs: Any) -> StandIn:
        obj = object.__new__(cls)
        obj.__dict__["_mt_args"] = args
        obj.__dict__["_mt_kwargs"] = kwargs
        obj.__dict__["_mt_state"] = None
        obj.__dict__["_mt_items"] = None
        if cls._mt_reducer is not None:
            cls._mt_reducer._calls.append(obj)
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Only a call of the class (REDUCE, INST/OBJ with arguments) gets here; NEWOBJ
        # and copyreg._reconstructor make instances with __new__ alone.
        self.__dict__["_mt_init"] = True

    def __setstate__(self, state: Any) -> None:
        self.__dict__["_mt_state"] = state

    def __getinitargs__(self) -> tuple:
        # Present so that INST/OBJ without arguments *call* the global (and reach __init__)
        # as they do for a function in torch.load, instead of a bare __new__ like NEWOBJ.
        return ()

    def __setitem__(self, key: Any, value: Any) -> None:
        hash(key)  # as a real dict would: an unhashable key fails here, never reaches str()
        if self.__dict__["_mt_items"] is None:
            self.__dict__["_mt_items"] = []
        self.__dict__["_mt_items"].append((key, value))

    def append(self, value: Any) -> None:
        self.__setitem__(None, value)

    def extend(self, values: Any) -> None:
        for v in values:
            self.append(v)

    def __call__(self, *args: Any, **kwargs: Any) -> StandIn:
        # REDUCE with an object as the callable: functools.partial(...)(), getattr(...)(…).
        # Record the call on the object (findings report it) and return the object.
        calls = self.__dict__.setdefault("_mt_called", [])
        if len(calls) < 20:
            calls.append(args)
        return self

    def __repr__(self) -> str:
        return f"<{qualname(type(self))}>"

    def __reduce__(self):  # never re-pickle a stand-in by accident
        raise TypeError("stand-ins are not picklable")


class _BuildOnClass:
    """BUILD on a global itself (not on an instance) would set attributes on a module's
    class or function in the loading process: recorded for the scan, never applied."""

    def __get__(self, obj: Any, cls: type) -> Any:
        if obj is not None:
            return obj._mt_setstate
        return lambda state: note_suspect(cls._mt_reducer, qualname(cls),
                                          "would set attributes on the global itself (BUILD)")


StandIn._mt_setstate = StandIn.__setstate__  # type: ignore[attr-defined]
StandIn.__setstate__ = _BuildOnClass()  # type: ignore[assignment,method-assign]


def note_suspect(reader: Any, callable_: str, detail: str) -> None:
    """Something the unpickler saw that torch.load would do and that is code, not data."""
    if reader is not None and len(reader._suspect) < 200:
        reader._suspect.append((callable_, detail))


def qualname(cls: type) -> str:
    return f"{cls._mt_module}.{cls._mt_name}" if issubclass(cls, StandIn) else cls.__qualname__


def is_standin(obj: Any) -> bool:
    return isinstance(obj, StandIn)


def type_name(obj: Any) -> str:
    return qualname(type(obj))


@dataclass(eq=False)
class StorageRec:
    key: str
    dtype: str
    location: str
    numel: int  # elements of dtype (bytes for untyped storages)
    view: Any = None  # legacy view metadata


@dataclass(eq=False)
class TensorRec:
    storage: StorageRec | None
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    requires_grad: bool
    dtype: str
    quantized: str | None = None
    qparams: tuple = ()  # (scale, zero_point) or (scales, zero_points, axis) as pickled
    note: str = ""
    subclass: str | None = None
    index: int = 0  # creation order, stable between readers of the same bytes
    layout: str = "strided"  # sparse_coo, sparse_csr…, nested, numpy: no storage of its own
    parts: tuple = ()  # the component tensors of a sparse/nested tensor


@dataclass(eq=False)
class ParamRec:
    data: TensorRec
    requires_grad: bool
    index: int = 0  # creation order of parameters
    lazy: bool = False

    # Parameters read like their data for shape/dtype purposes.
    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["data"], name)


@dataclass(frozen=True)
class DType:
    name: str


@dataclass(frozen=True)
class StorageType:
    dtype: str
    name: str


@dataclass(frozen=True)
class Marker:
    """A harmless torch global kept as its name (torch.device, qschemes, layouts)."""

    name: str


class Flag(int):
    """A bool that remembers where it sat in the pickle (for in-place rewriting)."""

    pos: int = -1

    def __repr__(self) -> str:
        return "True" if self else "False"


def _no_build(self: Any, state: Any) -> None:
    raise pickle.UnpicklingError(f"the pickle sets attributes on a {type(self).__name__} record")


# BUILD on a record the unpickler made would overwrite its fields (shape, storage…) with
# anything; torch never does that, so refuse it.
for _cls in (StorageRec, TensorRec, ParamRec, DType, StorageType, Marker):
    _cls.__setstate__ = _no_build  # type: ignore[attr-defined]


_INT = {int}


def int_tuple(x: Any) -> tuple[int, ...]:
    if type(x) is tuple and (not x or set(map(type, x)) == _INT):
        return x  # the common case, checked at C speed
    if is_standin(x) and x._mt_args:  # torch.Size((…)) stand-in never happens, but be lenient
        x = x._mt_args[0]
    t = tuple(int(v) for v in x)
    return t


MAX_COUNT = 1 << 63  # torch counts elements and offsets in int64


def plain_ints(t: tuple) -> bool:
    """A tuple of plain ints (as torch.save writes sizes and strides)."""
    return not t or set(map(type, t)) == _INT


def plain_shape(t: tuple) -> bool:
    """A tuple of plain ints that shape_arg would take as it is (no conversion needed)."""
    return not t or (set(map(type, t)) == _INT and min(t) >= 0 and max(t) < MAX_COUNT
                     and math.prod(t) < MAX_COUNT)


def count_arg(x: Any) -> int:
    v = int(x)
    if not 0 <= v < MAX_COUNT:
        raise pickle.UnpicklingError(f"impossible element count or offset {brief(v)}")
    return v


def shape_arg(x: Any) -> tuple[int, ...]:
    shape = int_tuple(x)
    numel = 1
    for d in shape:
        numel *= count_arg(d)
    if numel >= MAX_COUNT:
        raise pickle.UnpicklingError(f"impossible tensor shape of {len(shape)} dims")
    return shape


class HashById(tuple):
    """Tuples the recorders make: hashed by identity, so nesting them is never costly."""

    __slots__ = ()
    __hash__ = object.__hash__


class TorchSize(HashById):
    """A torch.Size (a tuple that prints as `torch.Size([…])`)."""

    __slots__ = ()


@dataclass
class ReadResult:
    root: Any
    storages: dict[str, StorageRec]
    tensors: list[TensorRec]
    params: list[ParamRec]
    globals: dict[str, type]  # every stand-in class the file named
    calls: list[StandIn]  # every stand-in instance made (in order)
    suspect: list[tuple[str, str]] = field(default_factory=list)  # (callable, what it would do)
    end: int = -1  # offset just past the pickle's STOP


# -- what is what ----------------------------------------------------------------
def module_state(obj: Any) -> dict | None:
    """The __dict__ of a pickled nn.Module stand-in, or None if obj isn't one."""
    if not is_standin(obj):
        return None
    state = obj._mt_state
    if isinstance(state, tuple) and state and isinstance(state[0], dict):
        state = state[0]
    if isinstance(state, dict) and "_modules" in state and "_parameters" in state:
        return state
    return None


def is_tensor(obj: Any) -> bool:
    return isinstance(obj, (TensorRec, ParamRec))


def is_state_dict(obj: Any) -> bool:
    return (
        isinstance(obj, dict)
        and len(obj) > 0
        and all(isinstance(k, str) for k in obj)
        and all(is_tensor(v) for v in obj.values())
    )


def items_of(d: Any) -> list[tuple[Any, Any]]:
    if isinstance(d, dict):
        return list(d.items())
    if is_standin(d) and d._mt_items:  # a dict subclass we don't have
        return [(k, v) for k, v in d._mt_items if k is not None]
    return []


def non_persistent(state: dict) -> set[str]:
    """A module's non-persistent buffer names (state_dict() leaves them out)."""
    names = state.get("_non_persistent_buffers_set") or ()
    if not isinstance(names, (set, frozenset, list, tuple)):
        return set()
    return {x for x in names if isinstance(x, str)}
