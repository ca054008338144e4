"""Refuse pickles that would hang or crash the (C) unpickler before it runs.

Even without running any global, unpickling can be made to hang or crash:
a dict key or set member that is a tuple of shared tuples nested 60 deep costs
2**60 steps to hash ("billion laughs"), and one nested 200 000 deep overflows
the C stack (a segfault). The C unpickler hashes such keys inside SETITEM(S),
DICT, ADDITEMS and FROZENSET with no hook for us, so this pass walks the opcodes
once, tracking only the size and depth of what each stack slot could hold, and
rejects oversized keys and absurd length claims. It also holds `brief()`, a
bounded repr for values that may be such structures.
"""

from __future__ import annotations

import mmap
import pickle
import pickletools
import struct
from collections.abc import Callable
from typing import Any

MAX_KEY_NODES = 10_000  # a hashable key built of more parts than this is refused
MAX_KEY_DEPTH = 100
MAX_LONG_BYTES = 1024  # ints beyond ~2400 digits can't even be printed (int max_str_digits)

# What the C unpickler can hash is what can make it hang: tuples built by TUPLE
# opcodes (the recorders that return tuples make ones that hash by identity, and
# lists/dicts/sets/objects are unhashable or hash by identity). So each stack slot
# is one int: a tuple's size as a tree and its depth, packed as parts << 12 | depth;
# everything else is a leaf of one part.
_LEAF = 1 << 12
_DEPTH_MASK = (1 << 12) - 1
_CAP = (MAX_KEY_NODES + 1) << 12

# Per opcode: 0 = pushes a leaf, 1 = no stack effect, 2.. = see check_pickle.
(_PUSH, _NOP, _TUPLE_N, _TUPLE, _MARK_POP_PUSH, _KEYS_POP_PUSH, _POP1, _POP2_KEY,
 _MARK_POP, _MARK_KEYS, _MARK_ALL_KEYS, _POP, _DUP, _MARK, _GET, _PUT, _MEMOIZE,
 _POP2_PUSH, _POP3_PUSH, _POP1_PUSH, _FROZENSET, _STOP) = range(22)
_ACTIONS = {
    "TUPLE1": _TUPLE_N, "TUPLE2": _TUPLE_N, "TUPLE3": _TUPLE_N, "TUPLE": _TUPLE,
    "LIST": _MARK_POP_PUSH, "OBJ": _MARK_POP_PUSH, "INST": _MARK_POP_PUSH,
    "DICT": _KEYS_POP_PUSH, "FROZENSET": _FROZENSET,
    "APPEND": _POP1, "BUILD": _POP1, "SETITEM": _POP2_KEY,
    "APPENDS": _MARK_POP, "SETITEMS": _MARK_KEYS, "ADDITEMS": _MARK_ALL_KEYS,
    "POP": _POP, "DUP": _DUP, "MARK": _MARK, "POP_MARK": _MARK_POP,
    "GET": _GET, "BINGET": _GET, "LONG_BINGET": _GET, "PUT": _PUT, "BINPUT": _PUT,
    "LONG_BINPUT": _PUT, "MEMOIZE": _MEMOIZE,
    "STACK_GLOBAL": _POP2_PUSH, "REDUCE": _POP2_PUSH, "NEWOBJ": _POP2_PUSH,
    "NEWOBJ_EX": _POP3_PUSH, "BINPERSID": _POP1_PUSH, "STOP": _STOP,
    "PROTO": _NOP, "FRAME": _NOP, "READONLY_BUFFER": _NOP,
}
_ACT = [-1] * 256
_ARG = [0] * 256
for _op in pickletools.opcodes:
    _c = ord(_op.code.encode("latin-1"))
    _ACT[_c] = _ACTIONS.get(_op.name, _PUSH)
    _ARG[_c] = _op.arg.n if _op.arg is not None else 0
    if _op.name in ("GLOBAL", "INST"):
        _ARG[_c] = -9  # two newline-terminated lines
_TUPLE_LEN = {0x85: 1, 0x86: 2, 0x87: 3}
_MARK_ACTS = frozenset((_TUPLE, _MARK_POP_PUSH, _KEYS_POP_PUSH, _FROZENSET, _MARK_POP,
                        _MARK_KEYS, _MARK_ALL_KEYS))
_SCALARS = frozenset(b")K\x88\x89NGJM")  # fixed-size pushes, the common ones
_LEN_FMT = {-2: ("<B", 1), -3: ("<i", 4), -4: ("<I", 4), -5: ("<Q", 8)}


class GuardError(pickle.UnpicklingError):
    """The pickle is malformed or built to exhaust the reader."""


def check_pickle(data: bytes | mmap.mmap, start: int = 0,
                 prefix: Callable[[int, list, list, dict], bool] | None = None) -> int:
    """Walk the opcodes of the pickle at `start` (never executing them); raise GuardError
    on a trap. Returns the offset just past its STOP (data after it is not looked at).

    `prefix(pos, stack, meta, memo)` is asked before each LONG_BINPUT of an index >= 256
    whether to stop there (then -1 is returned): the fast scan (fastguard.py) takes over."""
    n = len(data)
    pos = start
    stack: list[int] = []
    meta: list[list[int]] = []
    memo: dict[int, int] = {}
    act_of, arg_of, scalars, leaf, cap = _ACT, _ARG, _SCALARS, _LEAF, _CAP
    try:
        while pos < n:
            code = data[pos]
            pos += 1
            # Fast paths for the opcodes that make up most of a torch pickle.
            if code == 0x68:  # BINGET
                stack.append(memo[data[pos]])
                pos += 1
                continue
            if code == 0x72:  # LONG_BINPUT
                idx = int.from_bytes(data[pos:pos + 4], "little")
                if idx > n:  # the C unpickler sizes its memo array by the largest index
                    raise GuardError(f"the pickle stores memo entry {idx}, more than it could hold")
                if idx >= 256 and prefix is not None and prefix(pos - 1, stack, meta, memo):
                    return -1
                memo[idx] = stack[-1]
                pos += 4
                continue
            if code == 0x52:  # REDUCE
                del stack[-1]
                stack[-1] = leaf
                continue
            if code in scalars:
                stack.append(leaf)
                pos += arg_of[code]
                continue
            if code == 0x28:  # MARK
                meta.append(stack)
                stack = []
                continue
            if code == 0x74:  # TUPLE
                items, stack = stack, meta.pop()
                stack.append(_tuple_of(items))
                continue
            if code == 0x85:  # TUPLE1
                v = stack[-1]
                parts = (v >> 12) + 1
                stack[-1] = (parts << 12 if parts <= MAX_KEY_NODES else cap) | (
                    (v & _DEPTH_MASK) + 1 if (v & _DEPTH_MASK) < MAX_KEY_DEPTH else MAX_KEY_DEPTH + 1)
                continue
            if code == 0x51:  # BINPERSID
                stack[-1] = leaf
                continue
            if code == 0x58:  # BINUNICODE
                size = int.from_bytes(data[pos:pos + 4], "little")
                pos += 4 + size
                if pos > n:
                    raise GuardError(f"the pickle claims a {size}-byte string at byte "
                                     f"{pos - size - 5} but the data ends before it")
                stack.append(leaf)
                continue
            act = act_of[code]
            argn = arg_of[code]
            arg = b""
            if argn:
                pos, arg = _arg(data, pos, code, argn)
            if act == _PUSH:
                stack.append(leaf)
            elif act == _PUT:
                idx = _memo_index(code, arg)
                if idx > n:
                    raise GuardError(f"the pickle stores memo entry {idx}, more than it could hold")
                memo[idx] = stack[-1]
            elif act == _GET:
                stack.append(memo[_memo_index(code, arg)])
            elif act == _MEMOIZE:
                memo[len(memo)] = stack[-1]
            elif act == _TUPLE_N:
                k = _TUPLE_LEN[code]
                if len(stack) < k:
                    raise IndexError
                items = stack[-k:]
                del stack[-k:]
                stack.append(_tuple_of(items))
            elif act in _MARK_ACTS:  # ops that pop back to the last MARK
                items, stack = stack, meta.pop()
                if act == _TUPLE:
                    stack.append(_tuple_of(items))
                    continue
                if act == _KEYS_POP_PUSH or act == _MARK_KEYS:
                    _check_keys(items[0::2])
                elif act == _FROZENSET or act == _MARK_ALL_KEYS:
                    _check_keys(items)
                if act in (_MARK_POP_PUSH, _KEYS_POP_PUSH, _FROZENSET):
                    stack.append(leaf)
                elif act != _MARK_POP:
                    stack[-1]  # noqa: B018 - the container they fill must exist
            elif act == _POP1:
                del stack[-1]
                stack[-1]  # noqa: B018
            elif act == _POP2_KEY:
                _check_keys(stack[-2:-1])
                del stack[-2:]
                stack[-1]  # noqa: B018
            elif act in (_POP2_PUSH, _POP3_PUSH, _POP1_PUSH):
                k = 2 if act == _POP2_PUSH else 3 if act == _POP3_PUSH else 1
                if len(stack) < k:
                    raise IndexError
                del stack[-k:]
                stack.append(leaf)
            elif act == _POP:
                if stack:
                    del stack[-1]
                else:
                    stack = meta.pop()
            elif act == _DUP:
                stack.append(stack[-1])
            elif act == _STOP:
                return pos
            elif act < 0:
                raise GuardError(f"invalid pickle opcode {code:#04x} at byte {pos - 1}")
    except IndexError:
        raise GuardError("the pickle's stack underflows (a malformed pickle)") from None
    except KeyError as e:
        raise GuardError(f"the pickle refers to memo entry {e} before defining it") from None
    raise GuardError("the pickle is truncated (no STOP opcode)")


def _arg(data: bytes, pos: int, code: int, argn: int) -> tuple[int, bytes]:
    """Skip an opcode's argument: the new position and the argument's bytes (short ones)."""
    n = len(data)
    if argn > 0:
        if pos + argn > n:
            raise GuardError("the pickle is truncated")
        return pos + argn, data[pos:pos + argn]
    if argn == -1 or argn == -9:
        arg = b""
        for _ in range(2 if argn == -9 else 1):
            nl = data.find(b"\n", pos)
            if nl < 0:
                raise GuardError("the pickle is truncated")
            arg, pos = data[pos:nl], nl + 1
        return pos, arg
    fmt, width = _LEN_FMT[argn]
    if pos + width > n:
        raise GuardError("the pickle is truncated")
    (size,) = struct.unpack(fmt, data[pos:pos + width])  # a slice: bytes, mmap or RangeView
    pos += width
    if size < 0 or pos + size > n:
        raise GuardError(f"the pickle claims a {size}-byte value at byte {pos - width - 1} "
                         f"but has {max(n - pos, 0)} bytes left")
    if code == 0x8B and size > MAX_LONG_BYTES:
        raise GuardError(f"the pickle holds an integer of {size} bytes")
    return pos + size, b""


def _tuple_of(items: list[int]) -> int:
    parts, depth = 1, 0
    for v in items:
        parts += v >> 12
        d = v & _DEPTH_MASK
        if d > depth:
            depth = d
    v = min(parts << 12, _CAP)
    return v | min(depth + 1, _DEPTH_MASK)


def _memo_index(code: int, arg: bytes) -> int:
    if code in (0x67, 0x70):  # GET/PUT: decimal text
        try:
            return int(arg)
        except ValueError:
            raise GuardError("the pickle has a malformed memo index") from None
    return int.from_bytes(arg, "little")


def _check_keys(keys: list[int]) -> None:
    for k in keys:
        if (k >> 12) > MAX_KEY_NODES or (k & _DEPTH_MASK) > MAX_KEY_DEPTH:
            raise GuardError("a dict key or set member is nested too deeply or shares itself too "
                             "often to hash (a 'billion laughs' pickle)")


# -- Python-side checks for the few real builtins the unpickler may call ----------------
def check_hashable(values: Any) -> None:
    """Refuse tuples that would be too costly to hash (the unpickler's own recorders)."""
    for v in values:
        if isinstance(v, tuple) and _tuple_parts(v) > MAX_KEY_NODES:
            raise GuardError("a set member or dict key is too large to hash")


def _tuple_parts(root: tuple) -> int:
    """Size of the tuple as a tree (shared parts counted each time), capped; iterative."""
    sizes: dict[int, int] = {}
    stack: list[tuple[tuple, int]] = [(root, 0)]
    while stack:
        t, depth = stack.pop()
        if depth > MAX_KEY_DEPTH:
            return MAX_KEY_NODES + 1
        if id(t) in sizes:
            continue
        pending = [c for c in t if isinstance(c, tuple) and id(c) not in sizes]
        if pending:
            stack.append((t, depth))
            stack.extend((c, depth + 1) for c in pending)
            continue
        total = 1 + sum(sizes.get(id(c), 1) if isinstance(c, tuple) else 1 for c in t)
        sizes[id(t)] = min(total, MAX_KEY_NODES + 1)
    return sizes[id(root)]


def check_size(obj: Any) -> None:
    """Arguments of builtins that allocate: bytes(n), list(range(n)) …"""
    if isinstance(obj, bool):
        return
    if isinstance(obj, int) and obj > 1 << 24:
        raise GuardError(f"the pickle asks for a {obj}-byte buffer")
    if isinstance(obj, range) and len(obj) > 1 << 20:
        raise GuardError("the pickle asks to expand a range of more than a million numbers")


def brief(obj: Any, depth: int = 2, width: int = 80) -> str:
    """A short repr that never walks more than a handful of items."""
    if isinstance(obj, (str, bytes)):
        r = repr(obj[:width])
        return r if len(obj) <= width else r + "…"
    if obj is None or isinstance(obj, (bool, float, complex)):
        return repr(obj)
    if isinstance(obj, int):
        return repr(obj) if obj.bit_length() < 256 else f"<int of {obj.bit_length()} bits>"
    if isinstance(obj, (tuple, list, set, frozenset, dict)):
        if depth <= 0:
            return f"<{type(obj).__name__} of {len(obj)}>"
        items = list(obj.items())[:6] if isinstance(obj, dict) else list(obj)[:6]
        if isinstance(obj, dict):
            body = ", ".join(f"{brief(k, depth - 1)}: {brief(v, depth - 1)}" for k, v in items)
        else:
            body = ", ".join(brief(v, depth - 1) for v in items)
        more = ", …" if len(obj) > 6 else ""
        open_, close = {"tuple": "()", "list": "[]", "dict": "{}"}.get(type(obj).__name__, "{}")
        if isinstance(obj, tuple) and len(obj) == 1:
            body += ","
        return f"{open_}{body}{more}{close}"
    name = getattr(type(obj), "_mt_name", None)
    if name is not None:  # a stand-in instance
        return f"<{type(obj)._mt_module}.{name} object>"
    if isinstance(obj, type) and getattr(obj, "_mt_name", None):
        return f"{obj._mt_module}.{obj._mt_name}"
    return f"<{type(obj).__name__}>"
