"""Records for the tensor kinds beyond a dense strided tensor (sparse, nested, tensors
rebuilt from numpy), and the unpickler's checks that are about code, not data.

Each kind becomes a TensorRec with its layout, so it shows in the tree and `--json`
and a writer that can't write it exactly refuses it by name instead of dropping it.
"""

from __future__ import annotations

import pickle
from typing import Any

from tui.core.read.guard import brief
from tui.core.read.records import (
    DType,
    Marker,
    ParamRec,
    StandIn,
    TensorRec,
    note_suspect,
    qualname,
    shape_arg,
)

LAYOUTS = ("strided", "sparse_coo", "sparse_csr", "sparse_csc", "sparse_bsr", "sparse_bsc",
           "_mkldnn", "jagged")


def _tensor(x: Any) -> TensorRec | None:
    x = x.data if isinstance(x, ParamRec) else x
    return x if isinstance(x, TensorRec) else None


def _add(reader: Any, t: TensorRec) -> TensorRec:
    t.index = len(reader._tensors)
    reader._tensors.append(t)
    return t


def sparse_record(reader: Any, layout: Any, data: Any) -> TensorRec:
    """torch._utils._rebuild_sparse_tensor(layout, data): COO (indices, values, size[,
    coalesced]) or compressed (compressed indices, plain indices, values, size)."""
    name = layout.name if isinstance(layout, Marker) else str(layout)
    name = name.removeprefix("torch.")
    if not isinstance(data, tuple) or len(data) < 3:
        raise pickle.UnpicklingError("a sparse tensor without its parts")
    values = _tensor(data[1] if name == "sparse_coo" else data[2])
    size = data[2] if name == "sparse_coo" else data[3]
    parts = tuple(t for t in map(_tensor, data) if t is not None)
    if values is None:
        raise pickle.UnpicklingError("a sparse tensor without values")
    stored = values.shape[0] if values.shape else 0
    return _add(reader, TensorRec(None, 0, shape_arg(size), (), bool(values.requires_grad),
                                  values.dtype, note=f"{name} tensor ({stored} stored values)",
                                  layout=name, parts=parts))


def nested_record(reader: Any, buffer: Any, sizes: Any) -> TensorRec:
    """torch._utils._rebuild_nested_tensor(buffer, sizes, strides, offsets)."""
    buf, sz = _tensor(buffer), _tensor(sizes)
    if buf is None or sz is None:
        raise pickle.UnpicklingError("a nested tensor without its buffer")
    n = sz.shape[0] if sz.shape else 0
    return _add(reader, TensorRec(None, 0, buf.shape, buf.stride, False, buf.dtype,
                                  note=f"nested tensor of {n} tensors", layout="nested",
                                  parts=(buf, sz)))


def numpy_record(reader: Any, data: Any, dtype: Any, device: Any, requires_grad: Any) -> TensorRec:
    """torch._utils._rebuild_device_tensor_from_numpy(ndarray, dtype, device, rg): the
    bytes are inside the pickle (a numpy array's BUILD state), not in a storage."""
    shape: tuple[int, ...] = ()
    state = data._mt_state if isinstance(data, StandIn) else None
    if isinstance(state, tuple) and len(state) >= 2 and isinstance(state[1], tuple):
        shape = shape_arg(state[1])
    where = device.name if isinstance(device, Marker) else brief(device, 1, 40)
    t = TensorRec(None, 0, shape, (), bool(requires_grad),
                  dtype.name if isinstance(dtype, DType) else "float32",
                  note=f"numpy array inside the pickle ({where})", layout="numpy")
    return _add(reader, t)


def guard_recorders(reader: Any) -> None:
    """BUILD on a recorder would set attributes on torch's own function in torch.load:
    give each one a __setstate__ that records that instead."""
    for (module, name), fn in reader._recorders.items():
        if callable(fn) and hasattr(fn, "__dict__"):
            fn.__setstate__ = (lambda q: lambda state: note_suspect(
                reader, q, "would set attributes on the global itself (BUILD)"))(f"{module}.{name}")


def converting(reader: Any, fn: Any, args: tuple) -> None:
    """A data builtin (str, int, list, …) given an object made from the file runs that
    object's class code (__str__, __index__, __iter__ …) in torch.load."""
    for a in args[:4]:
        if isinstance(a, StandIn) or (isinstance(a, type) and issubclass(a, StandIn)):
            what = qualname(type(a)) if isinstance(a, StandIn) else qualname(a)
            note_suspect(reader, f"{getattr(fn, '__module__', 'builtins')}."
                         f"{getattr(fn, '__name__', 'call')}",
                         f"would convert a {what} object (running its class's code)")
            return

