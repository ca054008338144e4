"""The C-speed pickle check (tui/core/read/fastguard.py): torch's own pickles are proven
safe with a short Python walk of their start; every hostile payload placed *after* that
start (where only the regex looks) falls back to the full guard, which refuses it.

The work is bounded, not the time: how many bytes the Python walk covers, how many regex
calls, whether the full guard had to run.
"""

from __future__ import annotations

import pickle
import random
import struct

import pytest
from hostile_files import torch_zip

from tui.core.read import fastguard
from tui.core.read.fastguard import fast_check
from tui.core.read.guard import GuardError, check_pickle
from tui.core.read.unpickle import load_pickle

FIRST = 300  # the prefix below stores memo entries 0..FIRST-1: the handover is past it


def _put(i: int) -> bytes:
    return b"q" + bytes([i]) if i < 256 else b"r" + struct.pack("<I", i)


def _get(i: int) -> bytes:
    return b"j" + struct.pack("<I", i)


def _prefix() -> bytes:
    """A benign start: FIRST strings memoized in a list, then dropped, and a string too
    long for the regex: the full guard hands over to the regex before what follows."""
    body = b"".join(b"X" + struct.pack("<I", 4) + b"s%03d" % i + _put(i) for i in range(FIRST))
    return b"\x80\x02(" + body + b"l0X" + struct.pack("<I", 200) + b"x" * 200 + b"0"


def _torch_bytes(tmp_path, obj) -> bytes:
    import torch

    path = tmp_path / "m.pth"
    torch.save(obj, path)
    import zipfile

    with zipfile.ZipFile(path) as z:
        return z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))


@pytest.fixture(scope="module")
def benign(tmp_path_factory):
    from torch import nn

    d = tmp_path_factory.mktemp("fastguard")
    wide = nn.ModuleList(nn.Linear(2, 2) for _ in range(300))
    return {"full model": _torch_bytes(d, wide),
            "state_dict": _torch_bytes(d, wide.state_dict()),
            "checkpoint": _torch_bytes(d, {"model": wide.state_dict(), "epoch": 3, "sizes": (1, 2)})}


@pytest.mark.parametrize("kind", ["full model", "state_dict"])
def test_torch_pickles_are_proven_with_a_short_python_walk(benign, kind):
    data = benign[kind]
    before = dict(fastguard.stats)
    assert fast_check(data) == len(data) == check_pickle(data)
    walked = fastguard.stats["prefix_bytes"] - before["prefix_bytes"]
    assert fastguard.stats["fallbacks"] == before["fallbacks"]
    assert walked < len(data) // 10, (walked, len(data))  # the rest went through the regex
    assert fastguard.stats["regex_calls"] - before["regex_calls"] <= 12


def test_a_proven_pickle_loads_like_the_full_guard_says(benign):
    read = load_pickle(benign["checkpoint"])
    assert len(read.tensors) == 600 and read.root["sizes"] == (1, 2)


def _hostile(payload: bytes) -> bytes:
    return _prefix() + payload + b"."


def _shared_tuples(levels: int, first: int = FIRST) -> bytes:
    """x0 = (); x{i+1} = (x_i, x_i), each built inside a consumed structure (the args of
    a NEWOBJ) so the regex takes it: only the memo check stands between this and a hash bomb."""
    out = [b")" + _put(first)]
    for i in range(levels):
        out.append(b"c__main__\nX\n(" + _get(first + i) * 2 + b"t" + _put(first + i + 1) + b"\x810")
    return b"".join(out)


HOSTILE = {
    # a 2**60-part key: the tuples are fetched back from the memo
    "laughs key": (_shared_tuples(60) + b"}" + _get(FIRST + 60) + b"Ns", "billion laughs"),
    "laughs set member": (_shared_tuples(60) + b"\x8f(" + _get(FIRST + 60) + b"\x90", "billion laughs"),
    "laughs key on an object": (_shared_tuples(60) + b"c__main__\nObj\n)\x81(" + _get(FIRST + 60)
                                + b"Nu", "billion laughs"),
    "deep tuple key": (b"K\x01" + b"\x85" * 5000 + b"}" + b"K\x01" + b"\x85" * 5000 + b"Ns",
                       "billion laughs"),
    "memo index 2**30": (b"Nr\xff\xff\xff\x3f0", "memo entry"),
    "memo index above the size": (b"N" + _put(1 << 22) + b"0", "memo entry"),
    "string claims 2**31": (b"X\x00\x00\x00\x80abc", "claims"),
    "bytes8 claims 2**62": (b"\x8e" + struct.pack("<Q", 1 << 62) + b"ab", "claims"),
    "huge long4": (b"\x8b" + struct.pack("<i", 1 << 20) + b"\x01" * (1 << 20) + b"0", "integer"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_payload_after_the_handover_is_not_proven_and_is_refused(name):
    payload, message = HOSTILE[name]
    data = _hostile(payload)
    walked = fastguard.stats["prefix_bytes"]
    assert fast_check(data) is None
    assert fastguard.stats["prefix_bytes"] - walked < len(_prefix())  # the regex saw the payload
    with pytest.raises(GuardError, match=message):
        load_pickle(data)


def test_a_tuple_stored_twice_is_still_found():
    """x{i+1} = (x_i, x_i) stored under two indexes (PUT, PUT): the second index must not
    escape the memo check - the regex takes one PUT after a tuple, no more."""
    out, first = [b")" + _put(FIRST)], FIRST
    for i in range(60):
        a, b = first + 2 * i, first + 2 * i + 2
        out.append(b"c__main__\nX\n((" + _get(a) * 2 + b"t" + _put(b - 1) + _put(b) + b"t\x810")
    data = _hostile(b"".join(out) + b"}" + _get(first + 120) + b"Ns")
    assert fast_check(data) is None
    with pytest.raises(GuardError, match="billion laughs"):
        load_pickle(data)


def test_a_bomb_the_full_guard_sized_blocks_the_handover():
    """A 60-deep shared tuple in memo entries < 256 (never used as a key: the file is
    fine) can't be handed over: the regex could let a GET of it reach a dict key."""
    bomb = [b")" + _put(0)]
    for i in range(60):
        bomb.append(b"(" + _get(i) * 2 + b"t" + _put(i + 1) + b"0")
    rest = b"".join(b"X" + struct.pack("<I", 4) + b"s%03d" % i + _put(i) + b"0" for i in range(61, FIRST))
    data = b"\x80\x02" + b"".join(bomb) + rest + b"N" + _put(FIRST) + b"."
    before = fastguard.stats["prefix_bytes"]
    assert fast_check(data) == len(data) == check_pickle(data)
    assert fastguard.stats["prefix_bytes"] - before == len(data)  # the full guard walked it all
    load_pickle(data)  # and it opens


def test_strings_that_look_like_opcodes_are_skipped_whole():
    """Argument bytes are never read as opcodes: a string full of tuple opcodes and PUTs."""
    junk = b"\x85\x86\x87t(r\x00\x01\x00\x00jh\x00}s"
    data = _hostile(b"X" + struct.pack("<I", len(junk)) + junk + _put(FIRST) + b"0"
                    + b"X" + struct.pack("<I", 300) + (junk * 20)[:300] + b"0")
    assert fast_check(data) == len(data)


def test_nested_marks_cost_linear_work():
    """Many unclosed tuple-looking structures: each failed attempt stops after DEPTH
    levels (no blow-up); the scan gives up and the full guard answers."""
    data = _hostile(b"(K\x01" * 20_000 + b"1" * 20_000)
    before = fastguard.stats["regex_calls"]
    assert fast_check(data) == len(data)  # POP_MARKs close them: valid, and proven
    assert fastguard.stats["regex_calls"] - before <= 3


def test_legacy_module_persistent_id_never_returns_a_tuple():
    data = b"\x80\x02(X\x06\x00\x00\x00moduleK\x01K\x02\x86tQ."
    assert load_pickle(data).root is None


def test_str_of_shared_tuples_is_bounded():
    """builtins.str(x) on a 40-deep shared tuple would repr 2**40 parts; it's shown briefly."""
    data = b"\x80\x02" + _shared_tuples(40, first=0) + b"c__builtin__\nstr\n" \
        + _get(40) + b"\x85R."
    root = load_pickle(data).root
    assert isinstance(root, str) and len(root) < 200


def test_fuzzed_prefixed_pickles_never_pass_a_hazard(benign):
    """Random byte flips in a torch pickle: whenever the fast check proves one, the full
    guard agrees, or objects only to a malformed stack (the unpickler refuses that too)."""
    rng = random.Random(12)
    base = bytearray(benign["full model"])
    hazards = ("laughs", "claims", "more than it could hold", "integer")
    proven = 0
    for _ in range(120):
        data = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data) // 2, len(data))] = rng.randrange(256)
        try:
            if fast_check(bytes(data)) is None:
                continue
        except GuardError:  # the full guard's walk of the start refused it
            continue
        proven += 1
        try:
            check_pickle(bytes(data))
        except GuardError as e:
            assert not any(h in str(e) for h in hazards), e
    assert proven > 0


def test_the_regex_proves_a_real_checkpoint_file(tmp_path, benign):
    path = torch_zip(tmp_path / "ckpt.pth", benign["checkpoint"])
    from tui.core.read.reader import open_model

    before = dict(fastguard.stats)
    mf = open_model(str(path))
    assert len(mf.tensors) == 600
    assert fastguard.stats["fallbacks"] == before["fallbacks"]


def test_ordinary_pickle_protocols_open_either_way():
    value = {"a": [(1, 2), (3, (4, 5))] * 200, "b": frozenset({(1, 2)})}
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        data = pickle.dumps(value, protocol)
        assert load_pickle(data).root == value


def test_legacy_files_are_proven_too(tmp_path):
    """A pre-1.6 file: the main pickle's end is found by the fast check over the map."""
    import torch
    from torch import nn

    from tui.core.read.reader import open_model

    path = tmp_path / "legacy.pth"
    torch.save(nn.ModuleList(nn.Linear(2, 2) for _ in range(300)), path,
               _use_new_zipfile_serialization=False)
    before = dict(fastguard.stats)
    assert len(open_model(str(path)).tensors) == 600
    assert fastguard.stats["fallbacks"] == before["fallbacks"]
    # two scans of the main pickle (its end over the map, then its bytes): each walks only
    # its start in Python
    assert fastguard.stats["prefix_bytes"] - before["prefix_bytes"] < path.stat().st_size // 2


def test_fused_runs_accept_exactly_what_the_tokens_accept():
    """The fused alternatives (GET ) R PUT…) are a shortcut, not a widening: on random
    opcode streams the regex stops at the same byte with and without them."""
    rng = random.Random(7)
    bits = 16
    tokens = [b"h\x05", b"h\x07", b"j\x00\x01\x00\x00", b")", b"R", b"r\x00\x01\x00\x00",
              b"r\x05\x00\x00\x00", b"(", b"t", b"\x85", b"\x86", b"K\x01", b"}", b"]", b"N",
              b"\x88", b"s", b"u", b"e", b"b", b"Q", b"\x81", b"cm\nf\n", b"X\x01\x00\x00\x00a"]
    tokens += [b"h\x05)R", b"h\x05)Rr\x00\x01\x00\x00", b"h\x07h\x05)R", b"h\x05(K\x01tR"] * 6
    with_runs, without = fastguard._pattern(bits), fastguard._pattern(bits, fused=False)
    fused_taken = 0
    for _ in range(3000):
        data = b"".join(rng.choice(tokens) for _ in range(rng.randint(1, 40))) + b"."
        end = with_runs.match(data).end()
        assert end == without.match(data).end(), data
        fused_taken += b"h\x05)R" in data[:end] or b"h\x07)R" in data[:end]
    assert fused_taken > 100  # the fused branches were exercised
