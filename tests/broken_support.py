"""Shared pieces of the broken-input tests (tests helper, not a test file).

The building blocks of bad files, the ``CASES`` table (name -> build, exit code, stderr
fragment), and the child-process CLI runner/checker used by ``test_broken.py`` and
``test_broken_extremes.py``.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import random
import struct
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hostile_files import legacy_stream, torch_zip

ROOT = Path(__file__).resolve().parents[1]


# -- building blocks ----------------------------------------------------------------------
def _tiny_zip() -> bytes:
    import torch

    torch.manual_seed(0)
    buf = io.BytesIO()
    torch.save(torch.nn.Linear(3, 2).state_dict(), buf)
    return buf.getvalue()


def _tiny_legacy() -> bytes:
    import torch

    torch.manual_seed(0)
    buf = io.BytesIO()
    torch.save(torch.nn.Linear(3, 2).state_dict(), buf, _use_new_zipfile_serialization=False)
    return buf.getvalue()


def _safetensors(header: bytes, claimed: int | None = None, data: bytes = b"") -> bytes:
    n = len(header) if claimed is None else claimed
    return struct.pack("<Q", n) + header + data


def _laughs(depth: int, container: bytes, key: bool) -> bytes:
    """Shared references nested `depth` deep: x0 = (); x{i+1} = [x_i, x_i] (or a tuple).
    As a dict key, a tuple version costs 2**depth to hash."""
    out = [b"\x80\x02)r\x00\x00\x00\x00"]
    for i in range(depth):
        get = b"j" + struct.pack("<I", i)
        out.append(b"(" + get + get + container + b"r" + struct.pack("<I", i + 1))
    top = b"j" + struct.pack("<I", depth)
    tail = (b"}" + top + b"Ns" if key else b"}X\x06\x00\x00\x00laughs" + top + b"s") + b"."
    return b"".join(out) + tail


def _list_laughs_key_on_object() -> bytes:
    """A 60-deep shared list used as a key in SETITEMS on an object (not a dict): objects
    take unhashable keys only to fail like a dict would; the key is never printed."""
    body = _laughs(60, b"l", key=False)[:-len(b"}X\x06\x00\x00\x00laughs" + b"j" + bytes(4)
                                              + b"s.")]
    top = b"j" + struct.pack("<I", 60)
    return body + b"c__main__\nObj\n)\x81(" + top + b"Nu."


def _reduce(module: str, name: str, args_pickle: bytes) -> bytes:
    return b"\x80\x02c" + f"{module}\n{name}\n".encode() + args_pickle + b"\x85R."


def deep_model() -> object:
    from torch import nn

    m: nn.Module = nn.Linear(2, 2)
    for _ in range(400):
        m = nn.Sequential(m)
    return m


def save_torch(obj: object, path: Path, **kw) -> Path:
    import torch

    old = sys.getrecursionlimit()
    sys.setrecursionlimit(20_000)  # torch.save recurses per nesting level
    try:
        torch.save(obj, path, **kw)
    finally:
        sys.setrecursionlimit(old)
    return path


def _zip_with(entries: dict[str, bytes], compress: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compress) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def _corrupt(d: Path, compress: int) -> Path:
    data = bytearray(_zip_with({"archive/data.pkl": pickle.dumps({"a": list(range(50))}, 2),
                                "archive/version": b"3\n"}, compress))
    # Flip a byte inside data.pkl's bytes (after its 30-byte local header and name).
    data[30 + len("archive/data.pkl") + 5] ^= 0xFF
    return _write(d / f"corrupt{compress}.pth", bytes(data))


def _unsupported_method(d: Path) -> Path:
    data = bytearray(_zip_with({"archive/data.pkl": pickle.dumps({"a": 1}, protocol=2)}))
    for sig in (b"PK\x03\x04", b"PK\x01\x02"):  # compression method 99 (AES) in both headers
        i = data.find(sig)
        at = i + (8 if sig == b"PK\x03\x04" else 10)
        data[at:at + 2] = struct.pack("<H", 99)
    return _write(d / "method99.pth", bytes(data))


def _zip_bomb(d: Path) -> Path:
    """data.pkl deflated ~1000:1 and claiming 1.5 GiB: refused before inflating."""
    data = bytearray(_zip_with({"archive/data.pkl": b"\x80\x02" + b"N" * (1 << 20) + b"."},
                               zipfile.ZIP_DEFLATED))
    for sig, at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # uncompressed-size fields
        i = data.find(sig)
        data[i + at:i + at + 4] = struct.pack("<I", 3 << 29)
    return _write(d / "bomb.pth", bytes(data))


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _truncated(name: str, data: bytes, cut: int) -> Callable[[Path], Path]:
    return lambda d: _write(d / name, data[:cut])


# -- the cases -------------------------------------------------------------------------------
# name -> (build(folder) -> path, expected exit code, fragment of the one stderr line or None)
def _cases() -> dict[str, tuple[Callable[[Path], Path], int, str | None]]:
    zip_data = _tiny_zip()
    legacy = _tiny_legacy()
    rnd = random.Random(1234)
    st_ok = b'{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'
    cases: dict[str, tuple[Callable[[Path], Path], int, str | None]] = {
        "empty": (lambda d: _write(d / "empty.pth", b""), 1, "empty"),
        "random_bytes": (lambda d: _write(d / "random.pth", b"\x01" + rnd.randbytes(4095)), 1,
                         "not a PyTorch or safetensors file"),
        "text": (lambda d: _write(d / "notes.pth", b"just some text\n" * 20), 1,
                 "not a PyTorch or safetensors file"),
        "zip_without_data_pkl": (lambda d: _write(d / "nodata.pth", _zip_with({"a/b.txt": b"x"})),
                                 1, "without data.pkl"),
        "st_header_2_60": (lambda d: _write(d / "huge.safetensors",
                                            _safetensors(b'{"a":1}', claimed=1 << 60)), 1, "claims"),
        "st_invalid_json": (lambda d: _write(d / "bad.safetensors", _safetensors(b'{"a": [1,')), 1,
                            "not valid JSON"),
        "st_json_bomb_int": (lambda d: _write(d / "bigint.safetensors", _safetensors(
            b'{"w":{"dtype":"F32","shape":[' + b"9" * 5000 + b'],"data_offsets":[0,0]}}')), 1,
            "not valid JSON"),
        "st_json_deep": (lambda d: _write(d / "deep.safetensors",
                                          _safetensors(b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}")),
                         1, "not valid JSON"),
        "st_impossible_shape": (lambda d: _write(d / "shape.safetensors", _safetensors(
            b'{"w":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,0]}}')), 1,
            "impossible shape"),
        "st_truncated_data": (lambda d: _write(d / "short.safetensors", _safetensors(st_ok, data=b"\0" * 4)),
                              1, "outside the file"),
        "index_missing_shard": (_index_missing_shard, 1, "missing"),
        "index_invalid_json": (lambda d: _write(d / "model.safetensors.index.json", b"{nope"), 1,
                               "not valid JSON"),
        "dir_without_models": (_empty_dir, 1, "folder without model files"),
        "missing_path": (lambda d: d / "no_such_model.pth", 1, "no such file"),
        "parent_is_a_file": (lambda d: _write(d / "afile", b"x") / "model.pth", 1, "Not a directory"),
        "fifo": (_fifo, 1, "not a regular file"),
        "unreadable_chmod_000": (_unreadable, 1, "Permission denied"),
        "laughs_tuple_key": (lambda d: torch_zip(d / "laughs_key.pth", _laughs(60, b"t", key=True)), 1,
                             "billion laughs"),
        "laughs_list_key_on_object": (lambda d: torch_zip(d / "obj_key.pth", _list_laughs_key_on_object()),
                                      1, "unhashable"),
        "deep_tuple_key": (lambda d: torch_zip(d / "deep_key.pth", b"\x80\x04}" + b")" + b"\x85" * 300_000
                                               + b"Ns."), 1, "billion laughs"),
        "binunicode_2_31": (lambda d: torch_zip(d / "binunicode.pth",
                                                b"\x80\x02X\x00\x00\x00\x80abc."), 1, "claims"),
        "binunicode8_2_62": (lambda d: torch_zip(d / "binunicode8.pth",
                                                 b"\x80\x04\x8d" + struct.pack("<Q", 1 << 62) + b"a."), 1,
                             "claims"),
        "huge_long4": (lambda d: torch_zip(d / "long4.pth", b"\x80\x02\x8b" + struct.pack("<i", 1 << 20)
                                           + b"\x01" * (1 << 20) + b"."), 1, "integer"),
        "bytes_10_12": (lambda d: torch_zip(d / "alloc.pth", _reduce("__builtin__", "bytes",
                                                                      b"\x8a\x06\x00\x10\xa5\xd4\xe8\x00")),
                        1, "buffer"),
        "list_of_huge_range": (lambda d: torch_zip(d / "range.pth", _reduce(
            "__builtin__", "list", b"c__builtin__\nrange\n\x8a\x06\x00\x10\xa5\xd4\xe8\x00\x85R")), 1,
            "range"),
        "impossible_tensor_shape": (_impossible_tensor, 1, "impossible"),
        "memo_index_2_30": (lambda d: torch_zip(d / "memo.pth", b"\x80\x02Nr\xff\xff\xff\x3f."), 1,
                            "memo entry"),
        "build_on_a_tensor": (lambda d: torch_zip(d / "build.pth", _build_on_tensor()), 1,
                              "sets attributes"),
        "crc_corrupt_stored": (lambda d: _corrupt(d, zipfile.ZIP_STORED), 1, "CRC"),
        "deflate_stream_corrupt": (lambda d: _corrupt(d, zipfile.ZIP_DEFLATED), 1, "data.pkl"),
        "unsupported_compression": (_unsupported_method, 1, "compression"),
        "zip_bomb_data_pkl": (_zip_bomb, 1, "zip bomb"),
        "torchscript_junk": (lambda d: _write(d / "script.pt", _zip_with(
            {"m/data.pkl": b"\x80\x02N.", "m/constants.pkl": b"junk"})), 1, "TorchScript"),
        "legacy_bad_protocol": (lambda d: _write(d / "proto.pth", pickle.dumps(0x1950A86A20F9469CFC6C, 2)
                                                 + pickle.dumps(999, 2)), 1, "unknown protocol"),
        "legacy_no_key_list": (lambda d: _write(d / "nokeys.pth", legacy_stream(b"\x80\x02N.")[:-8]), 1,
                               "truncated"),
        "pickle_garbage_opcode": (lambda d: _write(d / "garbage.pkl", b"\x80\x02\xff\xfe."), 1,
                                  "opcode"),
        "pickle_stack_underflow": (lambda d: _write(d / "underflow.pkl", b"\x80\x02R."), 1, None),
        # valid, if extreme: must open (exit 0)
        "laughs_list": (lambda d: torch_zip(d / "laughs.pth", _laughs(60, b"l", key=False)), 0, None),
        "zip_deflated_data_pkl": (lambda d: torch_zip(d / "deflated.pth", pickle.dumps({"a": [1, 2]}, 2),
                                                      compress=True), 0, None),
    }
    for frac in (0.1, 0.5, 0.9):
        cut = int(len(zip_data) * frac)
        cases[f"zip_truncated_{frac}"] = (_truncated(f"zip_{frac}.pth", zip_data, cut), 1, None)
    cases["zip_truncated_last_byte"] = (_truncated("zip_m1.pth", zip_data, len(zip_data) - 1), 1, None)
    cases["zip_truncated_header"] = (_truncated("zip_30.pth", zip_data, 30), 1, None)
    magic = len(pickle.dumps(0x1950A86A20F9469CFC6C, 2))
    for label, cut in (("header", magic + 2), ("pickle", len(legacy) // 3),
                       ("data", len(legacy) - 5)):
        cases[f"legacy_truncated_{label}"] = (_truncated(f"legacy_{label}.pth", legacy, cut), 1,
                                              "truncated")
    return cases


def _index_missing_shard(d: Path) -> Path:
    folder = d / "sharded"
    folder.mkdir()
    (folder / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {"total_size": 8}, "weight_map": {"w": "model-00001-of-00002.safetensors"}}))
    return folder


def _empty_dir(d: Path) -> Path:
    folder = d / "nothing_here"
    folder.mkdir()
    (folder / "README.md").write_text("no models")
    return folder


def _fifo(d: Path) -> Path:
    path = d / "pipe.pth"
    os.mkfifo(path)
    return path


def _unreadable(d: Path) -> Path:
    path = _write(d / "locked.pth", _tiny_zip())
    path.chmod(0)
    return path


def _build_on_tensor() -> bytes:
    """{'w': tensor} then BUILD {'shape': 'abc'} on the tensor: torch never does that."""
    return (b"\x80\x02}X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00"
            b"storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04tQK\x00"
            b"K\x02K\x02\x86K\x02K\x01\x86\x89ccollections\nOrderedDict\n)RtR"
            b"}X\x05\x00\x00\x00shapeX\x03\x00\x00\x00abcsbs.")


def _impossible_tensor(d: Path) -> Path:
    # _rebuild_tensor_v2(storage, 0, (2**40, 2**40), (1, 1), False, OrderedDict())
    body = (b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\n"
            b"FloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x01tQK\x00"
            b"\x8a\x06\x00\x00\x00\x00\x00\x01\x8a\x06\x00\x00\x00\x00\x00\x01\x86K\x01K\x01\x86"
            b"\x89ccollections\nOrderedDict\n)RtR.")
    return torch_zip(d / "shape.pth", body)


CASES = _cases()


def make_base_dir() -> Path:
    """A fresh temp folder for a module's cases; the caller removes it."""
    # World-traversable, so the chmod-000 case can run as an unprivileged user when we are root.
    d = Path(tempfile.mkdtemp(prefix="modeltree-broken-"))
    d.chmod(0o755)
    return d


def _snapshot(folder: Path) -> dict[str, tuple[int, float]]:
    out = {}
    for p in folder.rglob("*"):
        st = os.lstat(p)
        out[str(p)] = (st.st_size, st.st_mtime)
    return out


# A hang guard, not a timing: each case takes well under a second, and a loaded CI machine
# may take many times that; only a run that never ends is stopped.
HANG_GUARD_S = 600


def run_cli(args: list[str], cwd: Path, prefix: list[str] | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([*(prefix or []), sys.executable, "-m", "tui", *args], cwd=cwd,
                              capture_output=True, text=True, timeout=HANG_GUARD_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"modeltree {' '.join(args)} hung (no answer in {HANG_GUARD_S} s)")


def check_case(name: str, path: Path, folder: Path, flags: list[str],
               prefix: list[str] | None = None) -> None:
    _, code, fragment = CASES[name]
    before = _snapshot(folder)
    for flag in flags:
        r = run_cli([flag, str(path)], folder, prefix)
        assert "Traceback" not in r.stderr and "Traceback" not in r.stdout, r.stderr
        assert r.returncode == code, (flag, r.returncode, r.stderr[-500:])
        if code == 1:
            lines = r.stderr.splitlines()
            assert len(lines) == 1, r.stderr
            assert lines[0].startswith("modeltree: ") and str(path) in lines[0], lines[0]
            if fragment:
                assert fragment in lines[0], lines[0]
            assert r.stdout == ""
        else:
            assert r.stderr == ""
            if flag == "--json":
                json.loads(r.stdout)
    assert _snapshot(folder) == before, "something was written"
