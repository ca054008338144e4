"""Shared plumbing of the torch file builders (tests helper, not a test file).

:class:`Built`, the seeded/quiet/save helpers every builder uses, and the opcode-level pickle
helpers (:func:`read_data_pkl`, :func:`pickle_globals`, :func:`rewrite_storage_location`).
Import the builders through the ``torch_models`` façade.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickletools
import struct
import sys
import warnings
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

_REPO_ROOT = Path(__file__).resolve().parents[1]
if str(_REPO_ROOT) not in sys.path:  # make ``sample_models`` importable under plain pytest
    sys.path.insert(0, str(_REPO_ROOT))


@dataclass(frozen=True)
class Built:
    """What a builder wrote: the main ``path``, the saved ``obj``, all ``files``, ``expected``."""

    path: Path
    obj: Any = None
    files: tuple[Path, ...] = ()
    expected: dict[str, Any] | None = field(default=None, compare=False)


# --------------------------------------------------------------------------------------------
# helpers


@contextlib.contextmanager
def _seeded(seed: int = 0) -> Iterator[None]:
    """Seed torch's CPU RNG for the block, restoring the caller's RNG state afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence torch's deprecation chatter (torch.ao.quantization, TypedStorage …)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _dir(target: Path) -> Path:
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    return target


def _save(obj: Any, path: Path, **kwargs: Any) -> Built:
    with _quiet():
        torch.save(obj, path, **kwargs)
    return Built(path=path, obj=obj, files=(path,))


# --------------------------------------------------------------------------------------------
# pickle helpers (opcodes only; nothing is executed)


def read_data_pkl(path: Path) -> bytes:
    """The object pickle of a torch file: ``*/data.pkl`` of a zip, or the 4th legacy pickle."""
    path = Path(path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            name = next(n for n in zf.namelist() if n.endswith("data.pkl"))
            return zf.read(name)
    data = path.read_bytes()
    starts = _legacy_pickle_bounds(data)
    return data[starts[3][0] : starts[3][1]]


def pickle_globals(path_or_bytes: Path | bytes) -> set[str]:
    """The set of ``"module name"`` globals a pickle (or a torch file's data.pkl) refers to.

    Reads opcodes only (``pickletools.genops``); nothing is executed. Handles ``GLOBAL`` and
    protocol-4 ``STACK_GLOBAL`` (whose operands are the two preceding string pushes/memo gets).
    """
    data = path_or_bytes if isinstance(path_or_bytes, bytes) else read_data_pkl(path_or_bytes)
    found: set[str] = set()
    memo: dict[int, Any] = {}
    strings: list[Any] = []
    last: Any = None
    for op, arg, _pos in pickletools.genops(data):
        if op.name == "GLOBAL":
            found.add(arg)
            last = None
        elif op.name in _STRING_OPS:
            last = arg
            strings.append(arg)
        elif op.name in ("BINPUT", "LONG_BINPUT", "PUT"):
            memo[int(arg)] = last
        elif op.name == "MEMOIZE":
            memo[len(memo)] = last
        elif op.name in ("BINGET", "LONG_BINGET", "GET"):
            last = memo.get(int(arg))
            strings.append(last)
        elif op.name == "STACK_GLOBAL":
            found.add(f"{strings[-2]} {strings[-1]}")
            last = None
        else:
            last = None
    return found


_STRING_OPS = {
    "SHORT_BINUNICODE",
    "BINUNICODE",
    "BINUNICODE8",
    "UNICODE",
    "SHORT_BINSTRING",
    "BINSTRING",
    "STRING",
}
_PUT_OPS = {"BINPUT", "LONG_BINPUT", "PUT", "MEMOIZE"}
_GET_OPS = {"BINGET", "LONG_BINGET", "GET"}


def _legacy_pickle_bounds(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of the five pickles at the head of a legacy torch file."""
    bounds = []
    pos = 0
    for _ in range(5):
        end = pos
        for op, _arg, op_pos in pickletools.genops(io.BytesIO(data[pos:])):
            if op.name == "STOP":
                end = pos + op_pos + 1
                break
        bounds.append((pos, end))
        pos = end
    return bounds


def _binunicode(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw  # BINUNICODE: valid in every protocol


def _rewrite_pickle_locations(data: bytes, old: str, new: str) -> tuple[bytes, int]:
    """Replace the location in every storage persistent id ``('storage', type, key, LOC, …)``.

    Works on opcodes, so the rest of the pickle stays byte-identical and uses only opcodes the
    original used plus BINUNICODE (so ``weights_only=True`` still loads a rewritten
    state_dict). A memoized location string is replaced in place, memo put kept; any memo
    reference to it outside a storage id (some other ``'cpu'`` string of the object) is
    replaced by the old string literal, so it keeps its value.
    """
    ops = list(pickletools.genops(data))
    ends = [pos for _op, _arg, pos in ops[1:]] + [len(data)]
    memo: dict[int, Any] = {}
    last: Any = None
    values: list[Any] = []  # value pushed by each op (strings only; None otherwise)
    for op, arg, _pos in ops:
        if op.name in _STRING_OPS:
            last = arg
        elif op.name in _GET_OPS:
            last = memo.get(int(arg))
        elif op.name in _PUT_OPS:
            memo[len(memo) if op.name == "MEMOIZE" else int(arg)] = last
        else:
            last = None
        values.append(last if op.name in _STRING_OPS | _GET_OPS else None)

    def after_element(i: int) -> int:
        i += 1
        while i < len(ops) and ops[i][0].name in _PUT_OPS:
            i += 1
        return i

    def memo_index(i: int, count: int) -> int:
        return count if ops[i][0].name == "MEMOIZE" else int(ops[i][1])

    replace: dict[int, bytes] = {}
    slots: set[int] = set()
    rewritten_memo: set[int] = set()
    memo_count = 0
    put_index: dict[int, int] = {}  # op index of a put -> memo index it writes
    for i, (op, _arg, _pos) in enumerate(ops):
        if op.name in _PUT_OPS:
            put_index[i] = memo_index(i, memo_count)
            memo_count += 1
    for i, (op, _arg, _pos) in enumerate(ops):
        if op.name != "MARK" or i + 1 >= len(ops) or values[i + 1] != "storage":
            continue
        j = after_element(i + 1)  # -> storage type
        j = after_element(j)  # -> key
        k = after_element(j)  # -> location
        if k >= len(ops) or values[k] != old:
            continue
        slots.add(k)
        replace[k] = _binunicode(new)
        if ops[k][0].name in _STRING_OPS:
            rewritten_memo.update(put_index[p] for p in range(k + 1, after_element(k)))
    for i, (op, arg, _pos) in enumerate(ops):
        if op.name in _GET_OPS and i not in slots and int(arg) in rewritten_memo:
            replace[i] = _binunicode(old)
    out = bytearray()
    for i, (op, _arg, pos) in enumerate(ops):
        if op.name == "FRAME":  # frames are optional; their lengths would be stale
            continue
        out += replace.get(i, data[pos : ends[i]])
    return bytes(out), len(slots)


def _rewrite_zip(path: Path, replacements: Mapping[str, bytes]) -> None:
    """Rewrite entries of a torch zip, keeping entry order and 64-byte data alignment."""
    with zipfile.ZipFile(path) as zin:
        entries = [(info, zin.read(info)) for info in zin.infolist()]
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED) as zout:
        for info, payload in entries:
            payload = replacements.get(info.filename, payload)
            zi = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            zi.compress_type = zipfile.ZIP_STORED
            data_start = fh.tell() + 30 + len(info.filename.encode()) + 4
            pad = -data_start % 64
            zi.extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
            zout.writestr(zi, payload)
    os.replace(tmp, path)


def rewrite_storage_location(path: Path, old: str = "cpu", new: str = "cuda:0") -> int:
    """Make a CPU-saved torch file look saved on another device (zip or legacy format).

    Rewrites the location of each storage persistent id in the object pickle, at opcode
    level. Returns how many persistent ids were changed. Intended for files we wrote.
    """
    path = Path(path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            name = next(n for n in zf.namelist() if n.endswith("data.pkl"))
            pkl = zf.read(name)
        new_pkl, count = _rewrite_pickle_locations(pkl, old, new)
        _rewrite_zip(path, {name: new_pkl})
        return count
    data = path.read_bytes()
    start, end = _legacy_pickle_bounds(data)[3]
    new_pkl, count = _rewrite_pickle_locations(data[start:end], old, new)
    path.write_bytes(data[:start] + new_pkl + data[end:])
    return count
