"""Make every storage of a torch pickle say 'cpu', so plain torch.load works anywhere.

torch.save records where each storage lived as the 4th item of its persistent id,
`('storage', <type>, key, 'cuda:0', numel)`, and torch.load puts it back there (failing
on a machine without that device unless given map_location). The opcodes are walked
with pickletools (never executed) while a shadow stack follows which string opcode
became which persistent id's location; those strings are rewritten to 'cpu' and
nothing else changes. FRAME opcodes are dropped (their lengths would no longer hold;
framing is optional for the unpickler).
"""

from __future__ import annotations

import pickletools
import struct
from typing import Any

_STRINGS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING",
            "BINSTRING", "STRING"}
_MARK = ("mark",)
_OTHER = ("other",)
_CPU = b"X" + struct.pack("<I", 3) + b"cpu"  # BINUNICODE 'cpu' (read by every protocol)
_INPLACE = {"SETITEM", "SETITEMS", "APPEND", "APPENDS", "ADDITEMS", "BUILD"}
# name → (pops down to a mark, items popped (below the mark), pushes)
_EFFECT: dict[str, tuple[bool, int, bool]] = {}
for _op in pickletools.opcodes:
    _m = pickletools.markobject in _op.stack_before
    _EFFECT[_op.name] = (_m, _op.stack_before.index(pickletools.markobject) if _m
                         else len(_op.stack_before), bool(_op.stack_after))


def location_spans(data: bytes) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """([(start, end)] of string opcodes that are a non-'cpu' storage location,
    [(start, end)] of FRAME opcodes)."""
    ops = list(pickletools.genops(data))
    ends = [pos for _, _, pos in ops[1:]] + [len(data)]
    stack: list[tuple[Any, ...]] = []
    memo: dict[int, tuple[Any, ...]] = {}
    spans: dict[int, tuple[int, int]] = {}
    frames: list[tuple[int, int]] = []
    for i, (op, arg, pos) in enumerate(ops):
        name = op.name
        if name in _STRINGS:
            value = arg.decode("latin-1") if isinstance(arg, bytes) else arg
            stack.append(("str", pos, ends[i], value))
        elif name == "MARK":
            stack.append(_MARK)
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[int(arg)] = stack[-1]
        elif name == "MEMOIZE":
            memo[len(memo)] = stack[-1]
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            stack.append(memo[int(arg)])
        elif name == "POP":
            stack.pop()
        elif name == "POP_MARK":
            _to_mark(stack)
        elif name == "DUP":
            stack.append(stack[-1])
        elif name == "FRAME":
            frames.append((pos, ends[i]))
        elif name == "STOP":
            break
        elif name in ("PROTO",):
            continue
        elif name == "BINPERSID":
            pid = stack.pop()
            _note(pid, spans)
            stack.append(_OTHER)
        else:
            has_mark, n_below, pushes = _EFFECT[name]
            sliced = _to_mark(stack) if has_mark else []
            below = [stack.pop() for _ in range(n_below)][::-1] if n_below else []
            if name in _INPLACE:
                stack.append(below[0])
            elif name == "TUPLE":
                stack.append(("tuple", sliced))
            elif name in ("TUPLE1", "TUPLE2", "TUPLE3", "EMPTY_TUPLE"):
                stack.append(("tuple", below))
            elif pushes:
                stack.append(_OTHER)
    return sorted(spans.values()), frames


def _to_mark(stack: list) -> list:
    i = len(stack) - 1
    while stack[i] is not _MARK:
        i -= 1
    sliced = stack[i + 1:]
    del stack[i:]
    return sliced


def _note(pid: tuple, spans: dict[int, tuple[int, int]]) -> None:
    if pid[0] != "tuple" or len(pid[1]) < 5:
        return
    head, loc = pid[1][0], pid[1][3]
    if head[0] == "str" and head[3] == "storage" and loc[0] == "str" and loc[3] != "cpu":
        spans[loc[1]] = (loc[1], loc[2])


def to_cpu(data: bytes) -> tuple[bytes, int]:
    """The pickle with every storage location 'cpu', and how many locations changed."""
    spans, frames = location_spans(data)
    if not spans:
        return data, 0
    edits = sorted([(a, b, _CPU) for a, b in spans] + [(a, b, b"") for a, b in frames])
    out = bytearray()
    pos = 0
    for a, b, new in edits:
        out += data[pos:a] + new
        pos = b
    out += data[pos:]
    return bytes(out), len(spans)
