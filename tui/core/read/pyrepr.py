"""Python's repr()/str() of unpickled attribute values, bounded, and their JSON form.

Values come from the restricted unpickler: plain data, records (`DType`, `Marker`,
tensors) and stand-ins for the file's classes. Rendering never calls anything from
the file and never walks more than a bounded number of items.
"""

from __future__ import annotations

import math
from typing import Any

from tui.core.read.records import (
    DType,
    Flag,
    Marker,
    StandIn,
    TorchSize,
    is_standin,
    is_tensor,
    module_state,
    qualname,
)


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()  # an attribute the pickled module does not have
MAX_ITEMS = 32  # items of a container rendered before "…"
MAX_DEPTH = 6


_SCALARS = frozenset({type(None), bool, float})


def py_repr(v: Any, limit: int = 2000) -> str:
    """repr(v) as Python would print it (cut at `limit` characters)."""
    if type(v) in _SCALARS or (type(v) is int and -(1 << 60) < v < 1 << 60):
        return repr(v)  # the common case: a layer's sizes and flags (short, exact)
    parts: list[str] = []
    _repr(v, parts, 0, [0], limit)
    text = "".join(parts)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def py_str(v: Any, limit: int = 2000) -> str:
    """str(v): strings as they are, everything else as repr."""
    if isinstance(v, str):
        return v if len(v) <= limit else v[: limit - 1] + "…"
    return py_repr(v, limit)


def _repr(v: Any, out: list[str], depth: int, used: list[int], limit: int) -> None:
    if used[0] > limit:
        return
    if isinstance(v, Flag):
        s = "True" if v else "False"
    elif v is None or isinstance(v, (bool, int, float, complex, str, bytes)):
        s = repr(v) if not isinstance(v, int) or v.bit_length() < 4096 else f"<int of {v.bit_length()} bits>"
    elif isinstance(v, DType):
        s = f"torch.{v.name}"
    elif isinstance(v, Marker):
        s = v.name
    elif is_tensor(v):
        s = f"tensor({getattr(v, 'dtype', '?')}{list(getattr(v, 'shape', ()))})"
    elif isinstance(v, type) and issubclass(v, StandIn):
        s = qualname(v)  # a global (class or function) the file names
    elif is_standin(v):
        s = f"<{qualname(type(v))} object>"
    elif isinstance(v, (tuple, list, set, frozenset, dict)):
        _container(v, out, depth, used, limit)
        return
    elif isinstance(v, _Missing):
        s = "<missing>"
    else:
        s = f"<{type(v).__name__}>"
    used[0] += len(s)
    out.append(s)


def _container(v: Any, out: list[str], depth: int, used: list[int], limit: int) -> None:
    if isinstance(v, TorchSize):
        opening, closing = "torch.Size([", "])"
    elif isinstance(v, tuple):
        opening, closing = "(", ",)" if len(v) == 1 else ")"
    elif isinstance(v, list):
        opening, closing = "[", "]"
    elif isinstance(v, dict):
        opening, closing = "{", "}"
    else:
        if not v:
            out.append(f"{type(v).__name__}()")
            return
        opening, closing = ("{", "}") if isinstance(v, set) else ("frozenset({", "})")
    if depth >= MAX_DEPTH:
        out.append(opening + "…" + closing)
        return
    out.append(opening)
    items = list(v.items())[:MAX_ITEMS] if isinstance(v, dict) else list(v)[:MAX_ITEMS]
    for i, item in enumerate(items):
        if i:
            out.append(", ")
        if isinstance(v, dict):
            _repr(item[0], out, depth + 1, used, limit)
            out.append(": ")
            _repr(item[1], out, depth + 1, used, limit)
        else:
            _repr(item, out, depth + 1, used, limit)
        if used[0] > limit:
            break
    if len(v) > len(items):
        out.append(", …")
    out.append(closing)


def is_plain(v: Any) -> bool:
    """Not a tensor, not a module (what print(model) would not show as a child or tensor)."""
    if type(v) in _SCALARS or type(v) is int or type(v) is str:
        return True
    return not is_tensor(v) and module_state(v) is None


def to_json(v: Any, depth: int = 0) -> Any:
    """A JSON value for an attribute: data as data, anything else as its repr text."""
    if isinstance(v, Flag):
        return bool(v)
    if v is None or isinstance(v, (bool, str)):
        return v if not isinstance(v, str) or len(v) <= 2000 else v[:1999] + "…"
    if isinstance(v, int):
        return v if v.bit_length() < 64 else str(v)
    if isinstance(v, float):
        return v if math.isfinite(v) else repr(v)  # NaN/inf are not JSON
    if depth < MAX_DEPTH and not isinstance(v, TorchSize):
        if isinstance(v, (tuple, list)):
            return [to_json(x, depth + 1) for x in v[:MAX_ITEMS]]
        if isinstance(v, dict) and all(isinstance(k, str) for k in v):
            return {k: to_json(x, depth + 1) for k, x in list(v.items())[:MAX_ITEMS]}
    if isinstance(v, TorchSize):
        return list(v)
    return py_repr(v, 200)
