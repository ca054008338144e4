"""Fuzz: mutated valid files of every format either open or raise ModelFileError.

Seeds are small valid files (torch.save zip and legacy, safetensors, plain pickles);
mutations are byte flips, overwrites, truncation, insertion, deletion and int-field
rewrites, applied to the whole file or to the pickle/JSON header inside it. Whatever
opens is also turned into --json and --print output, where odd values would surface.
Hypothesis runs derandomized with a fixed budget so CI is stable; scripts/fuzz_long.py
runs the same check on many more inputs.
"""

from __future__ import annotations

import atexit
import io
import json
import pickle
import random
import shutil
import signal
import struct
import tempfile
import zipfile
from collections import OrderedDict
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from tui.core.errors import ModelFileError
from tui.core.read.reader import open_model
from tui.core.report import to_json
from tui.printing import print_model

EXAMPLES_PER_SEED = 40  # x 8 seeds: a few hundred inputs, well under a minute
HANG_SECONDS = 20


# -- seeds -----------------------------------------------------------------------------------
def _model():
    import torch
    from torch import nn

    torch.manual_seed(0)
    m = nn.Sequential(OrderedDict(conv=nn.Conv2d(1, 2, 3), bn=nn.BatchNorm2d(2),
                                  fc=nn.Linear(2, 2)))
    m.fc.weight.requires_grad_(False)
    m.note = {"epochs": 3, "sizes": (1, 28, 28), "name": "seed"}
    return m


def _tsave(obj, **kw) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf, **kw)
    return buf.getvalue()


@cache
def seeds() -> dict[str, bytes]:
    """format -> valid file bytes (built once per process)."""
    from safetensors.torch import save as st_save

    model = _model()
    sd = model.state_dict()
    plain = {"a": [1, 2.5, "x", None, True], "b": {"c": (1, 2), "d": b"\x00\x01"},
             "e": frozenset({1, 2}), "f": OrderedDict(z=1), "g": 10**30}
    return {
        "zip_full": _tsave(model),
        "zip_state_dict": _tsave(sd),
        "zip_checkpoint": _tsave({"epoch": 1, "model_state_dict": sd, "loss": 0.5}),
        "legacy_full": _tsave(model, _use_new_zipfile_serialization=False),
        "legacy_state_dict": _tsave(sd, _use_new_zipfile_serialization=False),
        "safetensors": st_save({k: v.contiguous() for k, v in sd.items()},
                               metadata={"format": "pt"}),
        "pickle_p2": pickle.dumps(plain, protocol=2),
        "pickle_p5": pickle.dumps(plain, protocol=5),
    }


# -- mutations ---------------------------------------------------------------------------------
# Zero-argument opcodes a pickle-aware mutation swaps for one another: the pickle stays
# parseable often enough to reach the tree builder with values of the wrong kind.
_SWAP0 = b")]}N\x88\x89\x85\x86\x87Rbas\x81ed(t2\x940\x8f\x90\x91\x93"
_SWAP = {**{c: _SWAP0 for c in _SWAP0}, ord("h"): b"hq", ord("q"): b"hq", ord("j"): b"jr",
         ord("r"): b"jr", ord("K"): b"KCU\x8c\x82", ord("X"): b"XBT"}


@cache
def _zip_entries(data: bytes) -> tuple[tuple[str, bytes], ...]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return tuple((i.filename, z.read(i)) for i in z.infolist())


@cache
def _ops(data: bytes, skip: int = 0) -> tuple[tuple[int, int, int], ...]:
    """(position, opcode byte, argument length) of the opcodes of the pickle that follows
    `skip` others at the start of `data`."""
    import pickletools

    stream = io.BytesIO(data)
    out: list[tuple[int, int, int]] = []
    for n in range(skip + 1):
        last = None
        for op, _arg, pos in pickletools.genops(stream):
            if n == skip:
                if last is not None:
                    out.append((last[0], last[1], pos - last[0] - 1))
                last = (pos, op.code.encode("latin-1")[0])
            if op.name == "STOP":
                break
    return tuple(out)


def _edit_ops(buf: bytearray, ops: tuple[tuple[int, int, int], ...], rng: random.Random) -> None:
    """Swap an opcode for a compatible one, or rewrite a byte of an argument."""
    for _ in range(rng.randint(1, 3)):
        pos, code, argn = rng.choice(ops)
        if code in _SWAP and rng.random() < 0.6:
            buf[pos] = rng.choice(_SWAP[code])
        elif argn > 0:
            buf[pos + 1 + rng.randrange(argn)] = rng.choice([0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)])


def _edit_bytes(buf: bytearray, lo: int, hi: int, rng: random.Random) -> None:
    """1-4 byte-level edits, mostly between lo and hi."""
    for _ in range(rng.randint(1, 4)):
        a, b = (lo, hi) if rng.random() < 0.8 else (0, len(buf))
        b = max(min(b, len(buf)), a + 1)
        pos = rng.randrange(a, b) if a < len(buf) else len(buf)
        kind = rng.choice(["flip", "byte", "byte", "truncate", "insert", "delete", "int", "dup"])
        if kind == "flip" and pos < len(buf):
            buf[pos] ^= 1 << rng.randrange(8)
        elif kind == "byte" and pos < len(buf):
            buf[pos] = rng.choice([0, 0xFF, 0x80, ord("."), ord("("), ord("R"), ord("t"),
                                   ord("}"), ord("s"), ord("q"), ord("h"), rng.randrange(256)])
        elif kind == "truncate":
            del buf[pos:]
        elif kind == "insert":
            buf[pos:pos] = rng.randbytes(rng.randint(1, 16))
        elif kind == "delete":
            del buf[pos:pos + rng.randint(1, 16)]
        elif kind == "int":
            value = rng.choice([0, 1, 2**31, 2**32 - 1, 2**63 - 1, rng.getrandbits(64)])
            buf[pos:pos + 8] = struct.pack("<Q", value)[: min(8, max(len(buf) - pos, 0))]
        elif kind == "dup":
            buf[pos:pos] = buf[pos:pos + rng.randint(1, 64)]


def _mutate_pickle(data: bytes, rng: random.Random, skip: int = 0) -> bytes:
    buf = bytearray(data)
    if rng.random() < 0.5:
        _edit_ops(buf, _ops(data, skip), rng)
    else:
        _edit_bytes(buf, 0, len(buf), rng)
    return bytes(buf)


def mutate(fmt: str, data: bytes, rng: random.Random) -> bytes:
    """A mutated copy of a seed file. Zips: usually data.pkl is mutated and the archive
    rebuilt (so CRCs and sizes match and the pickle itself is exercised), sometimes the
    raw archive. safetensors: mostly the JSON header. Pickles: opcode-aware or raw edits."""
    if fmt.startswith("zip") and rng.random() < 0.8:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as z:
            for name, blob in _zip_entries(data):
                z.writestr(name, _mutate_pickle(blob, rng) if name.endswith("data.pkl") else blob)
        return out.getvalue()
    if fmt.startswith(("legacy", "pickle")):
        return _mutate_pickle(data, rng, skip=3 if fmt.startswith("legacy") else 0)
    buf = bytearray(data)
    lo, hi = (8, 8 + struct.unpack("<Q", data[:8])[0]) if fmt == "safetensors" else (0, len(data))
    _edit_bytes(buf, lo, hi, rng)
    return bytes(buf)


# -- the property --------------------------------------------------------------------------------
class Hang(Exception):
    pass


@contextmanager
def hang_guard(seconds: int = HANG_SECONDS):
    """Turn a Python-level hang into an exception (a hang inside C code would stall the
    process instead; scripts/fuzz_long.py watches for that from a parent process)."""
    def fire(*_):
        raise Hang(f"no answer in {seconds} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def check_file(path: str, deep: bool = False) -> str:
    """Open `path`; 'ok' or 'error'. Anything but a ModelFile/ModelFileError propagates.
    `deep` (the long run) also freezes everything and saves in the default format."""
    try:
        mf = open_model(path)
    except ModelFileError as e:
        assert "\n" not in str(e), "error messages are one line"
        return "error"
    json.dumps(to_json(mf))
    print_model(mf, console=Console(file=io.StringIO(), width=100))
    if deep and mf.root is not None:
        _save_check(mf, path)
    return "ok"


def _save_check(mf, path: str) -> None:
    import os

    from tui.core.edit import Editor
    from tui.core.write.save import save

    editor = Editor(mf)
    if mf.requires_grad_stored:
        editor.set_subtree(mf.root, False)
    out = path + ".saved"
    try:
        save(mf, out, force=True)
    except ModelFileError as e:
        assert "\n" not in str(e), "error messages are one line"
        return
    size, written = os.path.getsize(path), os.path.getsize(out)
    assert written <= 4 * size + (1 << 20), f"a {size}-byte file saved as {written} bytes"


@cache
def _workdir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="modeltree-fuzz-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def check_bytes(fmt: str, data: bytes, deep: bool = False) -> str:
    path = _workdir() / f"input_{fmt}{'.safetensors' if fmt == 'safetensors' else '.pth'}"
    path.write_bytes(data)
    with hang_guard():
        return check_file(str(path), deep)


@pytest.mark.parametrize("fmt", list(seeds()))
def test_seed_is_valid(fmt):
    assert check_bytes(fmt, seeds()[fmt]) == "ok"


@pytest.mark.parametrize("fmt", list(seeds()))
def test_mutated_files_open_or_raise_model_file_error(fmt):
    seed = seeds()[fmt]

    @settings(max_examples=EXAMPLES_PER_SEED, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.randoms(use_true_random=False))  # hypothesis-driven choices: failures shrink
    def run(rng: random.Random) -> None:
        check_bytes(fmt, mutate(fmt, seed, rng))

    run()


# -- the guard never refuses what Python's own pickler writes ---------------------------------
_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8) \
    | st.binary(max_size=8)
_hashable = st.recursive(_scalars, lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=3),
                         max_leaves=12)
_values = st.recursive(_hashable, lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(_hashable, inner, max_size=4) | st.sets(_hashable, max_size=3)
                       | st.tuples(inner, inner), max_leaves=30)


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(_values, st.integers(0, pickle.HIGHEST_PROTOCOL))
def test_guard_accepts_ordinary_pickles(value, protocol):
    from tui.core.read.guard import check_pickle

    data = pickle.dumps([value, value], protocol=protocol)  # the second is a memo reference
    assert check_pickle(data + b"trailing bytes") == len(data)


# -- safetensors headers and indexes: every field of every type --------------------------------
_json_any = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False)
    | st.sampled_from([1.5, 1e999, -1e999, 2.0**64]) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8)
_dtype = st.sampled_from(["F32", "F16", "I64", "BOOL", "U8", "F4", "X9", ""]) | _json_any
_offsets = st.lists(st.integers(-4, 80) | _json_any, min_size=0, max_size=3)
_shape = st.lists(st.integers(-2, 6) | _json_any, max_size=3) | _json_any
_entry = st.fixed_dictionaries({}, optional={"dtype": _dtype, "shape": _shape,
                                              "data_offsets": _offsets, "extra": _json_any})
_header = st.dictionaries(st.text(max_size=5), _entry | _json_any, max_size=4).map(dict) \
    | st.dictionaries(st.just("__metadata__"), _json_any, max_size=1)


def _st_file(header: object, data_len: int) -> bytes:
    raw = json.dumps(header, allow_nan=True).encode()
    return struct.pack("<Q", len(raw)) + raw + b"\x00" * data_len


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(_header, st.integers(0, 64))
def test_safetensors_header_fields_are_validated(header, data_len):
    """Any header: opens (every entry an int range inside the file, sizes matching, no
    overlaps) or a one-line ModelFileError; never OverflowError/TypeError/silent truncation."""
    from tui.core.read.safetensors import read_header

    path = _workdir() / "h.safetensors"
    path.write_bytes(_st_file(header, data_len))
    try:
        entries, meta = read_header(str(path))
    except ModelFileError as e:
        assert "\n" not in str(e)
        return
    size = path.stat().st_size
    spans = sorted((e.offset, e.offset + e.nbytes) for e in entries)
    for e in entries:
        spec = header[e.name]
        assert all(type(x) is int for x in spec["data_offsets"]) and e.offset + e.nbytes <= size
    assert all(b <= c or a == b for (a, b), (c, _) in zip(spans, spans[1:], strict=False))
    assert all(isinstance(v, str) for v in meta.values())


@pytest.mark.parametrize("offsets", [[0, 1e999], [0, 1.5], [0.0, 4], [True, 4], ["0", "4"], [0, 4, 8]])
def test_safetensors_float_and_odd_offsets_are_refused(offsets):
    from tui.core.read.safetensors import read_header

    path = _workdir() / "o.safetensors"
    path.write_bytes(_st_file({"w": {"dtype": "F32", "shape": [1], "data_offsets": offsets}}, 8))
    with pytest.raises(ModelFileError, match="data_offsets"):
        read_header(str(path))


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(st.dictionaries(st.sampled_from(["weight_map", "metadata", "x"]),
                       _json_any | st.dictionaries(st.text(max_size=3), _json_any, max_size=3),
                       max_size=3))
def test_index_fields_are_validated(doc):
    d = _workdir() / "idx"
    d.mkdir(exist_ok=True)
    (d / "model.safetensors.index.json").write_text(json.dumps(doc, allow_nan=True))
    assert check_file(str(d / "model.safetensors.index.json")) in ("ok", "error")
