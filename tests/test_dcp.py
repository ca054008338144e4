"""DCP folders written by torch itself: structure from .metadata only, exact conversion."""

from __future__ import annotations

import builtins
import json
import os
import warnings

import pytest
import torch
from dcp_support import (
    bits,
    flatten,
    full_tensors,
    save_nested,
    save_one_process,
    save_two_ranks,
)

from tui.cli import main
from tui.core.read.reader import open_model


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    return save_two_ranks(tmp_path_factory.mktemp("dcp2") / "ckpt")


@pytest.fixture(scope="module")
def one_proc(tmp_path_factory):
    return save_one_process(tmp_path_factory.mktemp("dcp1") / "ckpt")


def _torch_metadata(folder) -> dict:
    from torch.distributed.checkpoint import FileSystemReader
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata

    md = FileSystemReader(str(folder)).read_metadata()
    return {k: (list(v.size), str(v.properties.dtype).removeprefix("torch."))
            for k, v in md.state_dict_metadata.items() if isinstance(v, TensorStorageMetadata)}


def _reference(folder, tmp_path, key: str = "") -> dict:
    """The tensors of torch's own conversion (of its `key` part), under DCP's flat names."""
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    ref = tmp_path / "ref.pth"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dcp_to_torch_save(str(folder), str(ref))
    sd = torch.load(ref, weights_only=False)
    return {k: v for k, v in flatten(sd[key] if key else sd).items() if isinstance(v, torch.Tensor)}


@pytest.mark.parametrize("which", ["one_proc", "two_ranks"])
def test_json_matches_torch_metadata(which, request, capsys):
    folder = request.getfixturevalue(which)
    assert main([str(folder), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    prefix = f"{doc['model_key']}." if doc["model_key"] else ""
    assert doc["model_key"] == ("model" if which == "two_ranks" else "")
    got = {prefix + p["name"]: (p["shape"], p["dtype"]) for p in doc["parameters"] + doc["buffers"]}
    want = {k: v for k, v in _torch_metadata(folder).items() if k.startswith(prefix)}
    assert got == want
    assert list(got) == list(want)  # torch's order
    assert doc["container"] == "dcp" and doc["warnings"] == []


def test_two_ranks_chunks_and_entries(two_ranks):
    mf = open_model(two_ranks)
    ck = mf.source.model_obj
    by = {t.fqn: t for t in ck.tensors}
    files = {os.path.basename(c.file) for t in ck.tensors for c in t.chunks}
    assert files == {"__0_0.distcp", "__1_0.distcp"}
    assert [(c.offsets, c.sizes) for c in by["model.dec.weight"].chunks] == [((0, 0), (4, 3)),
                                                                            ((0, 3), (4, 3))]
    assert [e.fqn for e in ck.entries] == ["epoch"]
    values = {v.key: v for v in mf.values.children}
    assert "epoch" in values and "not read" in values["epoch"].summary
    t = next(t for t in mf.tensors if t.name == "emb.weight")
    assert "2 chunks" in t.note and "__1_0.distcp" in t.note


@pytest.mark.parametrize("which", ["one_proc", "two_ranks"])
@pytest.mark.parametrize("fmt", ["state_dict", "safetensors"])
def test_conversion_equals_dcp_to_torch_save(which, fmt, request, tmp_path, capsys):
    folder = request.getfixturevalue(which)
    ref = _reference(folder, tmp_path, "model" if which == "two_ranks" else "")
    out = tmp_path / ("out.pth" if fmt == "state_dict" else "out.safetensors")
    assert main([str(folder), "--save", str(out), "--format", fmt]) == 0
    if fmt == "state_dict":
        got = torch.load(out, weights_only=True)
    else:
        from safetensors.torch import load_file

        got = load_file(out)
    assert list(got) == list(ref) if fmt == "state_dict" else sorted(got) == sorted(ref)
    for k, v in ref.items():
        assert got[k].dtype == v.dtype and got[k].shape == v.shape
        assert torch.equal(bits(got[k]), bits(v)), k
    if which == "one_proc":  # "epoch" of the 2-rank save is outside its model part
        assert "left out 1 non-tensor DCP entry (step)" in capsys.readouterr().out


def test_slabs_and_rows_bounded(two_ranks, tmp_path, monkeypatch):
    """With a tiny CHUNK, dim-1 splits go through the slab and the one-row-down paths."""
    import tui.core.write.dcp_out as dcp_out

    monkeypatch.setattr(dcp_out, "CHUNK", 1000)  # emb rows are 4000 B: one level down
    out = tmp_path / "small.pth"
    assert main([str(two_ranks), "--save", str(out)]) == 0
    got = torch.load(out, weights_only=True)
    for k, v in full_tensors().items():
        assert torch.equal(bits(got[k]), bits(v)), k


def test_open_reads_only_metadata(one_proc, monkeypatch):
    opened: list[str] = []
    real_open, real_os_open = builtins.open, os.open

    def spy_open(file, *a, **kw):
        opened.append(str(file))
        return real_open(file, *a, **kw)

    def spy_os_open(path, *a, **kw):
        opened.append(str(path))
        return real_os_open(path, *a, **kw)

    def rchar() -> int:
        with real_open("/proc/self/io") as f:
            return int(next(line for line in f if line.startswith("rchar:")).split()[1])

    meta = (one_proc / ".metadata").stat().st_size
    distcp = sum(p.stat().st_size for p in one_proc.glob("*.distcp"))
    assert distcp > 500_000
    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(os, "open", spy_os_open)
    before = rchar()
    mf = open_model(one_proc)
    read = rchar() - before
    monkeypatch.undo()
    assert not [p for p in opened if p.endswith(".distcp")]
    assert read < meta + 64_000, (read, meta)
    assert len(mf.tensors) == 4


def test_nested_save_opens_like_a_checkpoint(tmp_path, capsys):
    folder = save_nested(tmp_path / "nested")
    mf = open_model(folder)
    assert (mf.format, mf.model_key, mf.model_keys) == ("checkpoint", "model", ["model", "optim"])
    assert [t.name for t in mf.tensors] == ["fc.weight", "fc.bias"]
    opt = open_model(folder, key="optim")
    assert sorted(t.name for t in opt.tensors) == ["state.fc.weight.exp_avg", "state.fc.weight.step"]
    for key in ("model", "optim"):
        out = tmp_path / f"{key}.pth"
        assert main([str(folder), "--key", key, "--save", str(out)]) == 0
        got, ref = torch.load(out, weights_only=True), _reference(folder, tmp_path, key)
        assert sorted(got) == sorted(ref)
        assert all(torch.equal(bits(got[k]), bits(ref[k])) for k in ref)
    assert "left out" in capsys.readouterr().out  # optim's param_groups are not tensors
    assert main([str(folder), "--key", "nope", "--print"]) == 1
    assert main([str(folder), "--save", str(tmp_path / "w.pth"), "--whole-checkpoint"]) == 1
    assert "can't be rewritten whole" in capsys.readouterr().err


def test_freeze_plan_on_dcp(one_proc, tmp_path, capsys):
    out = tmp_path / "w.pth"
    assert main([str(one_proc), "--freeze", "fc.*", "--unfreeze", "big", "--save", str(out),
                 "--freeze-plan"]) == 0
    plan = json.loads((tmp_path / "w.freeze.json").read_text())
    assert plan["trainable"]["fc.weight"] is False and plan["trainable"]["big"] is True
    mf = open_model(out)
    assert {t.name: t.requires_grad for t in mf.tensors}["fc.weight"] is False


def test_bad_metadata_is_one_line(tmp_path, capsys):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / ".metadata").write_bytes(b"\x80\x04K\x01.")
    (folder / "__0_0.distcp").write_bytes(b"")
    assert main([str(folder), "--print"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a torch.distributed.checkpoint Metadata" in err[0]


def test_truncated_distcp_refused_on_save(one_proc, tmp_path, capsys):
    import shutil

    folder = tmp_path / "cut"
    shutil.copytree(one_proc, folder)
    f = folder / "__0_0.distcp"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    out = tmp_path / "o.pth"
    assert main([str(folder), "--print"]) == 0  # opening reads .metadata only
    assert main([str(folder), "--save", str(out)]) == 1
    assert "shorter than the metadata says" in capsys.readouterr().err
    assert not out.exists()
