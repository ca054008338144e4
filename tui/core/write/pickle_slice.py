"""Cut one value out of a pickle as a pickle of its own, byte for byte.

Used to save the model part of a checkpoint (`{'model': <module>, 'epoch': …}`) as a
full model without re-pickling anything: the opcodes that build the value are copied
as they are, so class references stay the original GLOBALs and nothing is imported.

Opcodes are walked with pickletools (never executed) while a shadow stack records
where each value's opcodes start and end. Values the slice refers to through the
memo but that were built before it (a string or class name first used elsewhere, a
config shared with another key) are copied in front of it and memoized under their
original index. A value still being built when the slice starts, or changed later
through a memo reference, can't be copied faithfully: then the slice is refused.
"""

from __future__ import annotations

import gc
import pickletools
import struct
from dataclasses import dataclass
from typing import Any

_KEYS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING",
         "BINSTRING", "STRING", "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4"}
_SPECIAL = {"PROTO", "FRAME", "STOP", "MARK", "PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE", "GET",
            "BINGET", "LONG_BINGET", "POP", "POP_MARK", "DUP"}
# What each opcode does to the stack, precomputed: (kind, items below its mark or
# popped, pops down to a mark, pushes a value). kind: "special", "inplace" (changes the
# object under it and leaves it), "pairs"/"seq" (a new dict/tuple/list), "key", "other".
_OPS: dict[str, tuple[str, int, bool, bool]] = {}
for _op in pickletools.opcodes:
    _before = _op.stack_before
    _mark = pickletools.markobject in _before
    _kind = ("special" if _op.name in _SPECIAL
             else "inplace" if _op.name in ("SETITEM", "SETITEMS", "APPEND", "APPENDS", "ADDITEMS", "BUILD")
             else "pairs" if _op.name == "DICT"
             else "seq" if _op.name.startswith("TUPLE") or _op.name == "LIST"
             else "key" if _op.name in _KEYS else "other")
    _OPS[_op.name] = (_kind, _before.index(pickletools.markobject) if _mark else len(_before),
                      _mark, bool(_op.stack_after))


class SliceError(Exception):
    """The value can't be cut out on its own."""


class _Item:
    """A value: where its opcodes are, and (containers) what went into it."""

    __slots__ = ("start", "end", "value", "parts", "contiguous")

    def __init__(self, start: int, end: int, value: Any = None) -> None:
        self.start, self.end, self.value = start, end, value
        self.parts: list[tuple[str, list, int]] | None = None  # (how, entries, op position)
        self.contiguous = True  # all of its opcodes lie in [start, end)

    def add(self, how: str, entries: list, op_pos: int) -> None:
        if self.parts is None:
            self.parts = []
        self.parts.append((how, entries, op_pos))

    def children(self) -> dict[str, tuple[int, int, _Item]]:
        """key (dict) or index (list/tuple) → (start, end, item) of the value."""
        out: dict[str, tuple[int, int, _Item]] = {}
        for how, flat, op_pos in self.parts or ():
            if how == "build":
                continue
            if how == "pairs":
                for j in range(0, len(flat) - 1, 2):
                    nxt = flat[j + 2][1] if j + 2 < len(flat) else op_pos
                    if flat[j][0].value is not None:
                        out[str(flat[j][0].value)] = (flat[j + 1][1], nxt, flat[j + 1][0])
            else:
                base = len(out)
                for j, (item, start, _via) in enumerate(flat):
                    nxt = flat[j + 1][1] if j + 1 < len(flat) else op_pos
                    out[str(base + j)] = (start, nxt, item)
        return out


_MARK = object()  # stack entries are (item, start, reached via a memo get) or (_MARK, start, False)


@dataclass
class Walk:
    data: bytes
    proto: int
    root: _Item
    gets: list[tuple[int, int, _Item]]  # (op position, memo index, item it fetched)
    rewrites: list[tuple[int, int, bytes]]  # (start, end, new bytes) of FRAME/MEMOIZE opcodes
    puts: dict[int, int]  # id(item) → memo index it was stored under


def walk(data: bytes) -> Walk:
    enabled = gc.isenabled()
    gc.disable()  # one small object per opcode, none of them garbage
    try:
        return _walk(data)
    finally:
        if enabled:
            gc.enable()


def _walk(data: bytes) -> Walk:
    stack: list[tuple[Any, int, bool]] = []
    memo: dict[int, _Item] = {}
    gets: list[tuple[int, int, _Item]] = []
    rewrites: list[tuple[int, int, bytes]] = []
    puts: dict[int, int] = {}
    proto, root = 0, None
    pending: list[_Item] = []  # items whose last opcode ends where the next one starts
    prev = None  # (name, pos) of a FRAME/MEMOIZE opcode whose end is the next position
    for op, arg, pos in pickletools.genops(data):
        for it in pending:
            it.end = max(it.end, pos)
        pending.clear()
        if prev is not None:
            rewrites.append((prev[1], pos, prev[2]))
            prev = None
        name = op.name
        kind, n_below, has_mark, pushes = _OPS[name]
        if kind != "special":
            _generic(name, kind, n_below, has_mark, pushes, arg, pos, stack, pending)
        elif name in ("BINGET", "LONG_BINGET", "GET"):
            item = memo[int(arg)]
            gets.append((pos, int(arg), item))
            stack.append((item, pos, True))
        elif name in ("BINPUT", "LONG_BINPUT", "PUT", "MEMOIZE"):
            idx = len(memo) if name == "MEMOIZE" else int(arg)
            if name == "MEMOIZE":  # its index is the memo's size, which differs in a slice
                prev = (name, pos, _put(idx))
            item = stack[-1][0]
            memo[idx] = item
            puts.setdefault(id(item), idx)
        elif name == "MARK":
            stack.append((_MARK, pos, False))
        elif name == "PROTO":
            proto = int(arg)
        elif name == "FRAME":  # frame lengths would be wrong in a new pickle: drop them
            prev = (name, pos, b"")
        elif name == "STOP":
            root = stack.pop()[0]
            break
        elif name == "POP":
            stack.pop()
        elif name == "POP_MARK":
            while stack.pop()[0] is not _MARK:
                pass
        elif name == "DUP":
            stack.append(stack[-1])
    if root is None or root is _MARK:
        raise SliceError("the pickle has no STOP")
    root.end = len(data)
    return Walk(data, proto, root, gets, rewrites, puts)


def _generic(name: str, kind: str, n_below: int, has_mark: bool, pushes: bool, arg: Any,
             pos: int, stack: list, pending: list) -> None:
    start = pos
    sliced: list = []
    if has_mark:
        i = len(stack) - 1
        while stack[i][0] is not _MARK:
            i -= 1
        sliced = stack[i + 1:]
        start = stack[i][1]
        del stack[i:]
    below: list = []
    if n_below:
        below = stack[-n_below:]
        del stack[-n_below:]
        for e in below:
            if e[1] < start:
                start = e[1]
    if kind == "inplace":
        target = below[0]
        item = target[0]
        if target[2] or target[1] != item.start:
            item.contiguous = False  # changed away from where it was built
        pending.append(item)
        if name in ("SETITEM", "SETITEMS"):
            item.add("pairs", below[1:] + sliced, pos)
        elif name in ("APPEND", "APPENDS"):
            item.add("seq", below[1:] + sliced, pos)
        elif name == "BUILD":
            item.add("build", below[1:], pos)
        stack.append(target)
        return
    if not pushes:
        return
    item = _Item(start, pos, arg if kind == "key" else None)
    pending.append(item)
    if kind == "pairs" or kind == "seq":
        item.add(kind, below + sliced, pos)
    stack.append((item, start, False))


def find(w: Walk, key_path: str) -> tuple[int, int, _Item]:
    """Byte span of the value under a key path like "model" or "a/0/b"."""
    cur: tuple[int, int, _Item] = (w.root.start, w.root.end, w.root)
    for part in key_path.split("/") if key_path else []:
        nxt = cur[2].children().get(part)
        if nxt is None:
            raise SliceError(f"no value under {key_path!r}")
        cur = nxt
    return cur


def find_module(w: Walk, key_path: str, module_path: str) -> tuple[int, int, _Item]:
    """Byte span of a submodule ("encoder.layer1") of the module under key_path: each
    step goes through the module's BUILD state, its `_modules` dict, then the name."""
    cur = find(w, key_path)
    for part in module_path.split(".") if module_path else []:
        builds = [flat for how, flat, _ in cur[2].parts or () if how == "build"]
        state = builds[-1][0][0] if builds and builds[-1] else None
        mods = state.children().get("_modules") if isinstance(state, _Item) else None
        nxt = mods[2].children().get(part) if mods else None
        if nxt is None:
            raise SliceError(f"no submodule {part!r} under {module_path!r}")
        cur = nxt
    return cur


def _put(idx: int) -> bytes:
    return b"q" + bytes([idx]) if idx < 256 else b"r" + struct.pack("<I", idx)


def cut(data: bytes, key_path: str) -> bytes:
    """A complete pickle (same protocol) of the value under key_path."""
    w = walk(data)
    start, end, _ = find(w, key_path)
    return extract(w, start, end)


def extract(w: Walk, start: int, end: int) -> bytes:
    needed: dict[int, _Item] = {}  # id → item to copy in front
    todo = [(start, end)]
    while todo:
        a, b = todo.pop()
        for pos, _idx, item in w.gets:
            if a <= pos < b and item.start < a and id(item) not in needed:
                if not item.contiguous or item.end > a:
                    raise SliceError("the value refers to an object that is still being built "
                                     "or changed elsewhere in the pickle")
                if id(item) not in w.puts:
                    raise SliceError("memo reference without a memo store")
                needed[id(item)] = item
                todo.append((item.start, item.end))
    front: list[_Item] = []
    for item in sorted(needed.values(), key=lambda it: it.start):
        if front and item.start >= front[-1].start and item.end <= front[-1].end:
            continue  # built inside an object already copied (and memoized there)
        front.append(item)
    out = bytearray(b"\x80" + bytes([max(w.proto, 2)]))
    for item in front:
        out += _bytes(w, item.start, item.end)
        out += _put(w.puts[id(item)]) + b"0"  # memoize, then POP: defined, not left on the stack
    out += _bytes(w, start, end)
    out += b"."
    return bytes(out)


def _bytes(w: Walk, a: int, b: int) -> bytes:
    """data[a:b] with FRAME opcodes dropped and MEMOIZE made explicit puts."""
    out = bytearray()
    pos = a
    for ra, rb, new in w.rewrites:
        if rb <= pos or ra >= b:
            continue
        out += w.data[pos:ra] + new
        pos = rb
    out += w.data[pos:b]
    return bytes(out)
