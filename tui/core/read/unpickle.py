"""A restricted unpickler: builds stand-ins instead of running anything.

`find_class` never returns a real callable from the file's say-so, except a
few pure-data builtins. Every other global becomes a stand-in *class* (pickle's
NEWOBJ needs a type), so REDUCE/NEWOBJ/BUILD only record arguments and state.
Tensor rebuild functions map to recorders that note shape, dtype, stride and
storage without touching bytes. Dangerous globals are remembered so the file
can be reported for what `torch.load(weights_only=False)` would have run.
"""

from __future__ import annotations

import _compat_pickle
import collections
import io
import pickle
from typing import Any

from tui.core.model import DTYPE_SIZES
from tui.core.read.fastguard import fast_check
from tui.core.read.guard import brief, check_hashable, check_pickle, check_size
from tui.core.read.kinds import (
    LAYOUTS,
    converting,
    guard_recorders,
    nested_record,
    numpy_record,
    sparse_record,
)
from tui.core.read.records import (
    MAX_COUNT,
    STORAGE_DTYPES,
    TORCH_DTYPE_ALIASES,
    DType,
    Flag,
    HashById,
    Marker,
    ParamRec,
    ReadResult,
    StandIn,
    StorageRec,
    StorageType,
    TensorRec,
    TorchSize,
    count_arg,
    int_tuple,
    note_suspect,
    plain_ints,
    plain_shape,
    qualname,
    shape_arg,
)


class _Restricted:
    """find_class/persistent_load shared by the C and the pure-Python unpicklers."""

    def _setup(self) -> None:
        self._standins: dict[tuple[str, str], type] = {}
        self._storages: dict[str, StorageRec] = {}
        self._tensors: list[TensorRec] = []
        self._params: list[ParamRec] = []
        self._calls: list[StandIn] = []
        self._suspect: list[tuple[str, str]] = []
        self._recorders = self._make_recorders()
        guard_recorders(self)

    # -- globals ---------------------------------------------------------------
    def find_class(self, module: str, name: str) -> Any:  # noqa: D401
        # Protocol 0-2 pickles name Python 2 modules (__builtin__, commands, copy_reg…);
        # the real unpickler maps them, so report what would actually be called.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        rec = self._recorders.get((module, name))
        if rec is not None:
            return rec
        if module == "torch" and name.endswith("Storage") and name in STORAGE_DTYPES:
            return StorageType(STORAGE_DTYPES[name], name)
        if module in ("torch.storage",) and name in STORAGE_DTYPES:
            return StorageType(STORAGE_DTYPES[name], name)
        if module == "torch":
            dname = TORCH_DTYPE_ALIASES.get(name, name)
            if dname in DTYPE_SIZES:
                return DType(dname)
            if name.startswith("per_") or name in LAYOUTS:
                return Marker(f"torch.{name}")
        key = (module, name)
        cls = self._standins.get(key)
        if cls is None:
            cls = type(name if name.isidentifier() else "StandIn", (StandIn,), {
                "_mt_module": module, "_mt_name": name, "_mt_reducer": self,
                "__module__": "tui.core.read.unpickle.standins",
            })
            self._standins[key] = cls
        return cls

    def persistent_load(self, pid: Any) -> Any:
        # torch.save's own ids first (10,000 on a 10k-tensor file): checks at C speed.
        if type(pid) is tuple and len(pid) == 5 and pid[0] == "storage":
            _, stype, key, location, numel = pid
            if (type(key) is str and type(location) is str and type(numel) is int
                    and 0 <= numel < MAX_COUNT):
                rec = self._storages.get(key)
                if rec is None:
                    dtype = stype.dtype if type(stype) is StorageType else "uint8"
                    rec = self._storages[key] = StorageRec(key, dtype, location, numel)
                return rec
        if not isinstance(pid, tuple) or not pid:
            raise pickle.UnpicklingError(f"unexpected persistent id {brief(pid)}")
        typename = pid[0].decode("latin-1") if isinstance(pid[0], bytes) else pid[0]
        if typename == "module":  # legacy: ('module', class, source file, source)
            # Only a class: anything else of the file's (a tuple) could reach a dict key.
            return pid[1] if len(pid) > 1 and isinstance(pid[1], type) else None
        if (typename != "storage" or len(pid) < 5 or not isinstance(pid[2], (str, int))
                or not isinstance(pid[3], str)):
            raise pickle.UnpicklingError(f"unexpected persistent id {brief(pid)}")
        stype, key, location, numel = pid[1], str(pid[2]), pid[3], pid[4]
        dtype = stype.dtype if isinstance(stype, StorageType) else "uint8"
        rec = self._storages.get(key)
        if rec is None:
            rec = StorageRec(key, dtype, location, count_arg(numel), pid[5] if len(pid) > 5 else None)
            self._storages[key] = rec
        return rec

    # -- recorders -------------------------------------------------------------
    def _tensor(self, storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any,
                dtype: str | None = None, **extra: Any) -> TensorRec:
        if not isinstance(storage, StorageRec):
            raise pickle.UnpicklingError("tensor without a storage record")
        t = TensorRec(storage, count_arg(offset), shape_arg(size), int_tuple(stride), bool(requires_grad),
                      dtype or storage.dtype, index=len(self._tensors), **extra)
        if dtype and storage.dtype == "uint8" and dtype != "uint8":
            # Untyped storage: numel was counted in bytes; re-express in elements.
            size_ = DTYPE_SIZES.get(dtype, 1)
            storage.dtype, storage.numel = dtype, int(storage.numel // size_)
        self._tensors.append(t)
        return t

    def _make_recorders(self) -> dict[tuple[str, str], Any]:
        tensors = self._tensors

        def v2(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
            # torch.save's common case, checked at C speed; anything else takes _tensor.
            if (type(storage) is StorageRec and type(offset) is int and type(size) is tuple
                    and type(stride) is tuple and 0 <= offset < MAX_COUNT
                    and plain_shape(size) and plain_ints(stride)):
                t = TensorRec(storage, offset, size, stride, bool(requires_grad), storage.dtype,
                              index=len(tensors))
                tensors.append(t)
                return t
            return self._tensor(storage, offset, size, stride, requires_grad)

        def v1(storage, offset, size, stride):
            return self._tensor(storage, offset, size, stride, False)

        def v3(storage, offset, size, stride, requires_grad, hooks, dtype, metadata=None):
            return self._tensor(storage, offset, size, stride, requires_grad,
                                dtype=dtype.name if isinstance(dtype, DType) else None)

        def qtensor(storage, offset, size, stride, qparams, requires_grad, hooks):
            scheme = qparams[0] if isinstance(qparams, tuple) and qparams else None
            return self._tensor(storage, offset, size, stride, requires_grad,
                                quantized=getattr(scheme, "name", str(scheme)),
                                qparams=tuple(qparams[1:4]) if isinstance(qparams, tuple) else ())

        params = self._params

        def param(data, requires_grad, hooks=None, state=None):
            if type(data) is TensorRec and type(requires_grad) is bool:  # the common case
                p = ParamRec(data, requires_grad, len(params))
                params.append(p)
                return p
            if isinstance(data, ParamRec):
                data = data.data
            if not isinstance(data, TensorRec):
                raise pickle.UnpicklingError("parameter without tensor data")
            return new_param(data, requires_grad)

        def new_param(data: TensorRec, requires_grad: Any, lazy: bool = False) -> ParamRec:
            p = ParamRec(data, bool(requires_grad), index=len(self._params), lazy=lazy)
            if isinstance(requires_grad, Flag):  # tracing: where the flag's byte sits
                p.__dict__["flag_pos"] = requires_grad.pos
            self._params.append(p)
            return p

        def uninit_param(requires_grad=True, *args, **kwargs):
            t = TensorRec(None, 0, (0,), (1,), bool(requires_grad), "float32",
                          note="uninitialized (lazy)", index=len(self._tensors))
            self._tensors.append(t)
            return new_param(t, requires_grad, lazy=True)

        def uninit_buffer(requires_grad=False, *args, **kwargs):
            t = TensorRec(None, 0, (0,), (1,), bool(requires_grad), "float32",
                          note="uninitialized (lazy)", index=len(self._tensors))
            self._tensors.append(t)
            return t

        def from_type(func, new_type, args, state):
            obj = func(*args)
            if isinstance(obj, TensorRec) and isinstance(new_type, type):
                obj.subclass = qualname(new_type)
            return obj

        def meta(dtype, size, stride, requires_grad):
            t = TensorRec(None, 0, shape_arg(size), int_tuple(stride), bool(requires_grad),
                          dtype.name if isinstance(dtype, DType) else "float32",
                          note="meta tensor (no data)", index=len(self._tensors))
            self._tensors.append(t)
            return t

        def wrapper(cls, dtype, size, stride, offset, layout, device, requires_grad):
            t = TensorRec(None, count_arg(offset), shape_arg(size), int_tuple(stride), bool(requires_grad),
                          dtype.name if isinstance(dtype, DType) else "float32",
                          note="tensor subclass without storage", index=len(self._tensors))
            self._tensors.append(t)
            return t

        def device_from_cpu(data, dtype, device, requires_grad):
            if isinstance(data, TensorRec):
                data.requires_grad = bool(requires_grad)
                return data
            return meta(dtype, (), (), requires_grad)

        def sparse(layout, data):
            return sparse_record(self, layout, data)

        def nested(buffer, sizes, strides, offsets):
            return nested_record(self, buffer, sizes)

        def from_numpy(data, dtype, device, requires_grad):
            return numpy_record(self, data, dtype, device, requires_grad)

        def size(*args):
            return TorchSize(int_tuple(args[0])) if args else TorchSize()

        def device(*args):
            return Marker("device(" + ", ".join(brief(a) for a in args) + ")")

        def odict(*args):
            if not args:  # torch pickles every OrderedDict empty, then SETITEMS (75k on wide)
                return collections.OrderedDict()
            converting(self, collections.OrderedDict, args)
            return collections.OrderedDict(keyed(args[0], True))

        def codecs_encode(obj, encoding="utf-8", errors="strict"):
            if not isinstance(obj, str) or encoding not in ("latin1", "latin-1", "utf-8", "ascii"):
                raise pickle.UnpicklingError("refused _codecs.encode call")
            return obj.encode(encoding)

        def reconstructor(cls, base, state=None):
            if isinstance(cls, type) and issubclass(cls, StandIn):
                if qualname(base) not in ("builtins.object", "builtins.dict", "builtins.list"):
                    note_suspect(self, qualname(base) if isinstance(base, type) else brief(base),
                                 f"would run its __init__ on a new {qualname(cls)} object")
                return cls.__new__(cls)
            if cls in (collections.OrderedDict, dict, list, set):
                return cls()
            raise pickle.UnpicklingError("refused copyreg._reconstructor call")

        def safe(fn, sized=False):
            def call(*args):
                converting(self, fn, args)
                for a in args:  # bytes(10**12), list(range(10**12)): refuse, don't allocate
                    if sized or isinstance(a, range):
                        check_size(a)
                return fn(*args)
            return call

        def keyed(src, pairs):
            # dict/set/frozenset hash what they're given: refuse costly tuples first.
            check_size(src)
            items = list(src.items() if isinstance(src, dict) else src)
            check_hashable(i[0] if pairs and isinstance(i, (tuple, list)) and i else i
                           for i in items)
            return items

        def hashed(fn, pairs=False):
            def call(*args):
                converting(self, fn, args)
                return fn(keyed(args[0], pairs)) if args else fn()
            return call

        def str_(*args):
            converting(self, str, args)
            # str() of a container is a repr walk: of shared tuples, exponential. Bound it.
            if args and not isinstance(args[0], (str, bytes, int, float, complex, type(None))):
                return brief(args[0])
            return str(*args)

        def tuple_(*args):
            t = HashById(safe(tuple)(*args))
            check_hashable([t])  # it may be printed: keep it small as a tree
            return t

        u = "torch._utils"
        return {
            (u, "_rebuild_tensor"): v1, (u, "_rebuild_tensor_v2"): v2,
            (u, "_rebuild_tensor_v3"): v3, (u, "_rebuild_qtensor"): qtensor,
            (u, "_rebuild_parameter"): param, (u, "_rebuild_parameter_with_state"): param,
            (u, "_rebuild_meta_tensor_no_storage"): meta,
            (u, "_rebuild_wrapper_subclass"): wrapper,
            (u, "_rebuild_device_tensor_from_cpu_tensor"): device_from_cpu,
            ("torch._tensor", "_rebuild_from_type_v2"): from_type,
            ("torch._tensor", "_rebuild_from_type"): lambda f, t, a, d: from_type(f, t, a, d),
            ("torch.nn.parameter", "UninitializedParameter"): uninit_param,
            ("torch.nn.parameter", "UninitializedBuffer"): uninit_buffer,
            (u, "_rebuild_sparse_tensor"): sparse, (u, "_rebuild_nested_tensor"): nested,
            (u, "_rebuild_device_tensor_from_numpy"): from_numpy,
            ("torch.serialization", "_get_layout"): lambda name: Marker(str(name)),
            ("torch", "Size"): size, ("torch", "device"): device,
            ("collections", "OrderedDict"): odict,
            ("builtins", "set"): hashed(set), ("builtins", "frozenset"): hashed(frozenset),
            ("builtins", "complex"): safe(complex), ("builtins", "slice"): safe(slice),
            ("builtins", "bytearray"): safe(bytearray, True), ("builtins", "bytes"): safe(bytes, True),
            ("builtins", "list"): safe(list), ("builtins", "tuple"): tuple_,
            ("builtins", "dict"): hashed(dict, True), ("builtins", "range"): safe(range),
            ("builtins", "float"): safe(float), ("builtins", "int"): safe(int),
            ("builtins", "str"): str_, ("builtins", "bool"): safe(bool),
            ("_codecs", "encode"): codecs_encode,
            ("copyreg", "_reconstructor"): reconstructor,
        }

    def result(self, root: Any) -> ReadResult:
        return ReadResult(root, self._storages, self._tensors, self._params,
                          {f"{m}.{n}": c for (m, n), c in self._standins.items()}, self._calls,
                          self._suspect)


class Unpickler(_Restricted, pickle.Unpickler):
    """The fast (C) restricted unpickler used to open files."""

    def __init__(self, data: bytes) -> None:
        self._file = io.BytesIO(data)
        super().__init__(self._file)
        self._setup()


class TracingUnpickler(_Restricted, pickle._Unpickler):  # type: ignore[name-defined]
    """Pure-Python twin that notes where each Parameter's requires_grad byte sits.

    Used only by the full-model writer, which flips those bytes in place.
    """

    def __init__(self, data: bytes) -> None:
        self._file = io.BytesIO(data)
        super().__init__(self._file)
        self._setup()
        self.dispatch = dict(pickle._Unpickler.dispatch)
        self.dispatch[pickle.NEWTRUE[0]] = self._load_flag(True, 1)
        self.dispatch[pickle.NEWFALSE[0]] = self._load_flag(False, 1)

    def _load_flag(self, value: bool, width: int):
        def load(unpickler: TracingUnpickler) -> None:
            flag = Flag(value)
            flag.pos = unpickler._file.tell() - width
            frame = getattr(getattr(unpickler, "_unframer", None), "current_frame", None)
            if frame is not None:  # protocol 4+: the frame was read ahead as a whole
                flag.pos += frame.tell() - len(frame.getbuffer())
            unpickler.append(flag)
        return load


def load_pickle(data: bytes, tracing: bool = False) -> ReadResult:
    """Unpickle `data` into stand-ins. Raises pickle/our errors on bad input."""
    # Refuse hash bombs and absurd length claims before the C code runs: the fast scan
    # proves torch's own pickles safe at C speed, the full guard walks the rest.
    proven = fast_check(data) is not None or check_pickle(data) >= 0
    u = TracingUnpickler(data) if tracing else Unpickler(data)
    try:
        read = u.result(u.load())
    except Exception as e:
        e.partial = u.result(None)  # what was read before the error: the scan reports it
        if proven:  # word the error as the full guard does (the scan proved safety only)
            check_pickle(data)
        raise
    read.end = u._file.tell()  # where STOP was: anything after it torch never reads
    return read
