"""extra_repr and attributes per module, computed once per distinct setting.

Many modules share a class and settings (5,000 `Linear(4, 4)`): the text is keyed by
the class, the exact plain attribute values (type included: 1, 1.0 and True compare
equal but print differently) and which parameters/buffers/children are None. A module
with anything else among its attributes (containers of objects, flags, tensors held
as attributes) is not cached and computed as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tui.core.read.layer_repr import attributes_json, extra_repr

_EXACT = frozenset({int, str, bool, type(None)})
_GROUPS = frozenset({"_parameters", "_buffers", "_modules"})
# Their text reads the tensors themselves (shapes, dtypes), not only whether they exist.
_UNCACHED = ("ParameterList", "ParameterDict")
MAX_CACHE = 4096


class _Uncacheable(Exception):
    pass


def _freeze(v: Any, depth: int = 0) -> Any:
    """A hashable stand-in equal only for values that print the same."""
    t = type(v)
    if t in _EXACT:
        return t, v
    if t is float:
        return t, repr(v)  # -0.0 == 0.0 and NaN != NaN: compare the text
    if (t is tuple or t is list) and depth < 4 and len(v) <= 64:
        return t, tuple(_freeze(x, depth + 1) for x in v)
    raise _Uncacheable


def _layout(keys: tuple) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """The public attribute names and the parameter/buffer/child groups of a key set."""
    if any(type(k) is not str for k in keys):
        return None
    return tuple(k for k in keys if k[:1] != "_"), tuple(k for k in keys if k in _GROUPS)


def _key(type_: str | None, state: Mapping, layouts: dict | None = None) -> tuple | None:
    if type(state) is not dict or (type_ or "").endswith(_UNCACHED):
        return None
    keys = tuple(state)  # modules of a class share their key set: its layout is computed once
    if layouts is None:
        layout = _layout(keys)
    elif keys in layouts:
        layout = layouts[keys]
    else:
        layout = layouts[keys] = _layout(keys)
    if layout is None:
        return None
    public, groups = layout
    parts: list[Any] = [type_, keys]
    add = parts.append
    try:
        for k in public:
            v = state[k]
            t = type(v)
            add((t, v) if t in _EXACT else _freeze(v))
        for g in groups:
            v = state[g]
            if v is None:
                add(None)
            elif isinstance(v, dict):
                add((tuple(v), tuple(map(type, v.values()))))
            else:
                return None
    except (_Uncacheable, TypeError):
        return None
    return tuple(parts)


class ReprCache:
    """One per open: (extra_repr, attributes) of a module's class and state."""

    def __init__(self) -> None:
        self._done: dict[tuple, tuple[str, dict[str, Any]]] = {}
        self._layouts: dict[tuple, Any] = {}

    def texts(self, type_: str | None, state: Any) -> tuple[str, dict[str, Any]]:
        key = _key(type_, state, self._layouts) if isinstance(state, Mapping) else None
        hit = self._done.get(key) if key is not None else None
        if hit is not None:
            return hit[0], dict(hit[1])
        out = extra_repr(type_, state), attributes_json(state)
        if key is not None and len(self._done) < MAX_CACHE:
            self._done[key] = (out[0], dict(out[1]))
        return out
