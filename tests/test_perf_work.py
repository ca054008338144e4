"""How much work opening a file does, never how long it takes (machines are noisy).

- Opening reads the pickle / the safetensors headers only: the bytes read stay far
  below the tensor bytes (/proc/self/io `rchar`, in a fresh interpreter), and a file
  whose tensor bytes are garbage, or a hole, opens exactly like the original.
- torch is never imported by open_model + to_json, for every container.
- Very wide (5,000 siblings) and very deep (300 levels) models open and edit.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import struct
import subprocess
import sys
import zipfile
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch import nn

from tui.core.edit import Editor
from tui.core.read.reader import open_model
from tui.core.report import to_json

ROOT = Path(__file__).resolve().parents[1]
BIG = 16 << 20  # bytes in the one large tensor of each file
HAS_PROC_IO = os.path.exists("/proc/self/io")

PROBE = r"""
import json, sys
from tui.core.read.reader import open_model
from tui.core.report import to_json

def rchar():
    try:
        with open("/proc/self/io") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("rchar:"))
    except OSError:  # not Linux: only the import checks apply
        return 0

warm, target = sys.argv[1], sys.argv[2]
to_json(open_model(warm))  # same format, tiny: lazy imports happen here, not below
before = rchar()
mf = open_model(target)
doc = to_json(mf)
read = rchar() - before
print(json.dumps({"read": read, "tensors": len(mf.tensors),
                  "torch": "torch" in sys.modules,
                  "textual": any(m.split(".")[0] == "textual" for m in sys.modules)}))
"""


class Block(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.big = nn.Linear(width, width, bias=False)
        self.small = nn.Linear(4, 4)
        self.register_buffer("steps", torch.zeros(3, dtype=torch.long))


class Level(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(2, 2)


def _block(width: int) -> Block:
    with torch.no_grad():
        b = Block(width)
        b.small.weight.requires_grad_(False)
    return b


def _st_file(path: Path, tensors: dict[str, tuple[str, list[int], int]]) -> Path:
    """A safetensors file whose data is a hole: header only, then os.truncate."""
    header: dict = {"__metadata__": {"format": "pt"}}
    off = 0
    for name, (dtype, shape, nbytes) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + nbytes]}
        off += nbytes
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw)
    os.truncate(path, 8 + len(raw) + off)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """kind → (big file, tiny file of the same kind)."""
    d = tmp_path_factory.mktemp("perf")
    width = int((BIG // 4) ** 0.5)  # one width x width float32 weight of BIG bytes
    out: dict[str, tuple[Path, Path]] = {}
    for size, w in (("big", width), ("tiny", 4)):
        model = _block(w)
        torch.save(model, d / f"full_{size}.pth")
        torch.save(model.state_dict(), d / f"sd_{size}.pth")
        torch.save(model.state_dict(), d / f"legacy_{size}.pth", _use_new_zipfile_serialization=False)
        torch.save({"epoch": 3, "model_state_dict": model.state_dict()}, d / f"ckpt_{size}.pth")
        shards = d / f"shards_{size}"
        shards.mkdir()
        sd = model.state_dict()
        keys = list(sd)
        wm = {}
        for i, part in enumerate((keys[:1], keys[1:])):
            name = f"pytorch_model-{i + 1:05d}-of-00002.bin"
            torch.save(OrderedDict((k, sd[k]) for k in part), shards / name)
            wm.update(dict.fromkeys(part, name))
        (shards / "pytorch_model.bin.index.json").write_text(json.dumps({"weight_map": wm}))
    for size, nbytes in (("big", 4 << 30), ("tiny", 64)):  # 4 GiB of hole per shard
        st = d / f"st_{size}"
        st.mkdir()
        wm = {}
        for i in range(3):
            name = f"model-{i + 1:05d}-of-00003.safetensors"
            tensors = {f"layers.{i}.w": ("BF16", [nbytes // 2], nbytes), f"layers.{i}.b": ("F32", [4], 16)}
            _st_file(st / name, tensors)
            wm.update(dict.fromkeys(tensors, name))
        (st / "model.safetensors.index.json").write_text(json.dumps({"weight_map": wm}))
        _st_file(d / f"single_{size}.safetensors", {"w": ("F16", [nbytes // 2], nbytes),
                                                   "b": ("F32", [4], 16)})
    for kind in ("full", "sd", "legacy", "ckpt"):
        out[kind] = (d / f"{kind}_big.pth", d / f"{kind}_tiny.pth")
    out["sharded-torch"] = (d / "shards_big", d / "shards_tiny")
    out["sharded-safetensors"] = (d / "st_big", d / "st_tiny")
    out["safetensors"] = (d / "single_big.safetensors", d / "single_tiny.safetensors")
    return out


_PROBED: dict[tuple[Path, Path], dict] = {}


def _probe(big: Path, tiny: Path) -> dict:
    """Open `big` in a fresh interpreter (one per file, shared by the tests below)."""
    if (big, tiny) in _PROBED:
        return _PROBED[big, tiny]
    proc = subprocess.run([sys.executable, "-c", PROBE, str(tiny), str(big)], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    _PROBED[big, tiny] = json.loads(proc.stdout.strip().splitlines()[-1])
    return _PROBED[big, tiny]


def _on_disk(path: Path) -> int:
    if path.is_dir():
        return sum(os.path.getsize(p) for p in path.iterdir())
    return os.path.getsize(path)


KINDS = ["full", "sd", "legacy", "ckpt", "sharded-torch", "sharded-safetensors", "safetensors"]


@pytest.mark.parametrize("kind", KINDS)
def test_open_and_json_never_import_torch(files, kind):
    info = _probe(*files[kind])
    assert info["tensors"] >= 2
    assert not info["torch"], f"{kind}: open_model/to_json imported torch"
    assert not info["textual"]


@pytest.mark.skipif(not HAS_PROC_IO, reason="needs /proc/self/io (Linux)")
@pytest.mark.parametrize("kind", KINDS)
def test_open_reads_metadata_not_tensor_bytes(files, kind):
    big, _ = files[kind]
    size = _on_disk(big)
    assert size > BIG  # the file really holds (or claims) the big tensor
    read = _probe(*files[kind])["read"]
    # The pickles/headers here are a few KB; the tensor bytes are >= 16 MB.
    assert read < 256 * 1024, f"{kind}: read {read} bytes of a {size}-byte file on open"


def _garbage_copy(src: Path, dst: Path) -> int:
    """Copy a torch zip with every tensor byte overwritten; returns bytes overwritten."""
    data = bytearray(src.read_bytes())
    done = 0
    with zipfile.ZipFile(src) as z:
        for info in z.infolist():
            if "/data/" not in info.filename:
                continue
            h = info.header_offset
            name_len, extra_len = struct.unpack("<HH", data[h + 26:h + 30])
            start = h + 30 + name_len + extra_len
            data[start:start + info.file_size] = b"\xa5" * info.file_size
            done += info.file_size
    dst.write_bytes(bytes(data))
    return done


@pytest.mark.parametrize("kind", ["full", "sd", "ckpt"])
def test_garbage_tensor_bytes_open_like_the_original(files, kind, tmp_path):
    src = files[kind][0]
    bad = tmp_path / src.name  # same name: the JSON's "file" differs only by folder
    assert _garbage_copy(src, bad) > BIG
    a, b = to_json(open_model(src)), to_json(open_model(bad))
    a.pop("file"), b.pop("file")
    assert a == b


def test_legacy_file_with_garbage_tensor_bytes_opens_like_the_original(files, tmp_path):
    src = files["legacy"][0]
    data = bytearray(src.read_bytes())
    big = torch.load(src, weights_only=True)["big.weight"]  # our own file
    raw = big.numpy().tobytes()
    at = data.find(raw[:4096])
    assert at > 0 and data[at:at + len(raw)] == raw
    data[at:at + len(raw)] = b"\xa5" * len(raw)
    bad = tmp_path / src.name
    bad.write_bytes(bytes(data))
    a, b = to_json(open_model(src)), to_json(open_model(bad))
    a.pop("file"), b.pop("file")
    assert a == b


def test_sparse_405b_like_index_opens_from_headers(tmp_path):
    """Twenty 1 TB-claiming shards on no disk: only headers and the index are read."""
    wm = {}
    for i in range(20):
        name = f"model-{i + 1:05d}-of-00020.safetensors"
        _st_file(tmp_path / name, {f"model.layers.{i}.mlp.up_proj.weight": ("BF16", [1 << 19, 1 << 20], 1 << 40)})
        wm[f"model.layers.{i}.mlp.up_proj.weight"] = name
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": wm}))
    mf = open_model(tmp_path)
    assert mf.totals.numel == 20 * (1 << 39)
    assert len(mf.modules["model.layers"].children) == 20


# -- wide and deep ---------------------------------------------------------------
@pytest.fixture(scope="module")
def wide_file(tmp_path_factory) -> Path:
    model = nn.Module()
    model.blocks = nn.ModuleList(nn.Linear(2, 2) for _ in range(5000))
    path = tmp_path_factory.mktemp("wide") / "wide.pth"
    torch.save(model, path)
    return path


@pytest.fixture(scope="module")
def deep_file(tmp_path_factory) -> Path:
    node = Level()
    for _ in range(299):  # built bottom-up: no recursion in __init__
        parent = Level()
        parent.inner = node
        node = parent
    path = tmp_path_factory.mktemp("deep") / "deep.pth"
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 20_000))  # pickling a 300-deep chain recurses
    try:
        torch.save(node, path)
    finally:
        sys.setrecursionlimit(old)
    return path


def test_wide_model_opens_and_freezes(wide_file):
    mf = open_model(wide_file)
    blocks = mf.modules["blocks"]
    assert len(blocks.children) == 5000
    assert blocks.children[-1].name == "blocks.4999"
    assert mf.totals.tensors == 10_000 and mf.totals.trainable_tensors == 10_000
    ed = Editor(mf)
    ed.set_subtree(mf.root, False)
    assert mf.totals.frozen_tensors == 10_000 and blocks.children[123].status == "frozen"
    ed.undo()
    assert mf.totals.trainable == mf.totals.numel
    doc = to_json(mf)
    assert len(doc["parameters"]) == 10_000 and len(doc["modules"]) == 5002


def test_deep_model_opens_and_freezes(deep_file):
    mf = open_model(deep_file)
    deepest = max(mf.root.walk(), key=lambda n: n.depth)
    assert deepest.depth == 300  # 299 `inner` levels below the root, then its proj
    assert deepest.name == "inner." * 299 + "proj"
    assert mf.totals.tensors == 600
    ed = Editor(mf)
    ed.set_subtree(mf.modules["inner" + ".inner" * 149], False)  # level 150 and below
    assert mf.totals.frozen_tensors == 300  # levels 150..299 (150 levels x 2 tensors)
    assert mf.root.status == "partial"
    ed.set_subtree(mf.root, False)
    assert mf.root.status == "frozen"
    assert len(to_json(mf)["modules"]) == 600  # 300 levels, 300 projs


def test_deep_model_cli_json_and_print(deep_file):
    from tui.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main([str(deep_file), "--json"]) == 0
    assert json.loads(out.getvalue())["totals"]["tensors"] == 600
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main([str(deep_file), "--print", "--depth", "3"]) == 0
    assert "Total params: 1,800" in out.getvalue()
