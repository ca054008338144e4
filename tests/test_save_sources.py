"""Saving from checkpoints, TorchScript, safetensors and shards, and a __main__ class."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch
import torch_models as tm
from safetensors.torch import load_file
from save_support import assert_state_equal, edit_and_save, same_bits

from sample_models.models import article_frozen_model
from tui.core.errors import ModelFileError
from tui.core.read.reader import open_model

ARTICLE_OPS = [("*", False), ("layer2.*", True), ("fc.*", True)]
TRAINABLE = {"layer2.0.weight", "layer2.0.bias", "layer2.1.weight", "layer2.1.bias",
             "fc.weight", "fc.bias"}


def test_checkpoint_state_dict_part(tmp_path):
    built = tm.build_training_checkpoint(tmp_path / "src")
    ckpt = built.obj
    result, _ = edit_and_save(built.path, tmp_path / "w.pth", None, ARTICLE_OPS, freeze_plan=True)
    assert result.format == "state_dict"  # the default for a checkpoint holding a state_dict
    sd = torch.load(result.path, weights_only=True)
    assert_state_equal(sd, ckpt["model_state_dict"])
    assert sd._metadata == ckpt["model_state_dict"]._metadata
    mf = open_model(result.path)
    # Running stats are (inferred) buffers even in a state_dict: the globs skip them.
    caught = {k for k, v in sd.items() if k.startswith(("layer2.", "fc.")) and v.is_floating_point()
              and not k.endswith(("running_mean", "running_var"))}
    assert {t.name for t in mf.tensors if t.requires_grad} == caught
    st = load_file(edit_and_save(built.path, tmp_path / "w.safetensors", "safetensors", [])[0].path)
    assert set(st) == set(ckpt["model_state_dict"])
    with pytest.raises(ModelFileError, match="no architecture"):
        edit_and_save(built.path, tmp_path / "full.pth", "full", [])


def test_checkpoint_whole_with_plan(tmp_path):
    built = tm.build_training_checkpoint(tmp_path / "src")
    result, _ = edit_and_save(built.path, tmp_path / "ck.pth", None, ARTICLE_OPS,
                              whole_checkpoint=True, freeze_plan=True)
    assert result.format == "checkpoint"
    assert (tmp_path / "ck.pth").read_bytes() == built.path.read_bytes()  # flags live in the plan
    got = torch.load(result.path, weights_only=True)
    assert got["epoch"] == 5 and got["loss"] == 0.25
    assert got["optimizer_state_dict"]["param_groups"] == built.obj["optimizer_state_dict"]["param_groups"]
    mf = open_model(result.path)
    assert mf.model_key == "model_state_dict" and mf.freeze_plan == result.plan_path
    assert {t.name for t in mf.tensors if t.requires_grad} >= TRAINABLE
    assert not any(t.requires_grad for t in mf.tensors if t.name.startswith(("sequential.", "layer1.")))
    with pytest.raises(ModelFileError, match="whole checkpoint"):
        edit_and_save(built.path, tmp_path / "x.safetensors", "safetensors", [], whole_checkpoint=True)


@pytest.mark.parametrize("protocol", [2, 4])
def test_module_part_cut_out(tmp_path, protocol):
    """{'first': module, 'model': module, …}: the second module's pickle refers through the
    memo to strings, classes and a config first written inside the first one."""
    torch.manual_seed(0)
    cfg = {"lr": 0.1, "layers": [1, 2]}
    first, model = tm.SmallMLP(), article_frozen_model()
    first.cfg = model.cfg = cfg
    src = tmp_path / "ck.pth"
    torch.save({"first": first, "model": model, "epoch": 3}, src, pickle_protocol=protocol)
    result, _ = edit_and_save(src, tmp_path / "model.pth", "full", ARTICLE_OPS, key="model")
    got = torch.load(result.path, weights_only=False)
    assert type(got) is type(model) and got.cfg == cfg
    assert_state_equal(got.state_dict(), model.state_dict())
    assert {n for n, p in got.named_parameters() if p.requires_grad} == TRAINABLE
    # Only the model part's storages are in the new file.
    assert len(open_model(result.path).source.torch.read.storages) == len(model.state_dict())
    # The whole checkpoint: same file, only the model's flags changed.
    whole, _ = edit_and_save(src, tmp_path / "whole.pth", "full", ARTICLE_OPS, key="model",
                             whole_checkpoint=True)
    ck = torch.load(whole.path, weights_only=False)
    assert ck["epoch"] == 3 and ck["model"].cfg is ck["first"].cfg
    assert {n for n, p in ck["model"].named_parameters() if p.requires_grad} == TRAINABLE
    assert all(p.requires_grad for p in ck["first"].parameters())


def test_module_part_legacy(tmp_path):
    model = article_frozen_model()
    src = tmp_path / "ck.pth"
    torch.save({"epoch": 1, "model": model}, src, _use_new_zipfile_serialization=False)
    result, _ = edit_and_save(src, tmp_path / "m.pth", None, ARTICLE_OPS)
    got = torch.load(result.path, weights_only=False)
    assert type(got) is type(model)
    assert_state_equal(got.state_dict(), model.state_dict())
    assert {n for n, p in got.named_parameters() if p.requires_grad} == TRAINABLE


def test_torchscript(tmp_path):
    built = tm.build_torchscript(tmp_path / "src")
    ref = built.obj
    result, _ = edit_and_save(built.path, tmp_path / "s.pt", None, ARTICLE_OPS)
    got = torch.jit.load(result.path)
    assert {n for n, p in got.named_parameters() if p.requires_grad} == TRAINABLE
    assert_state_equal(got.state_dict(), ref.state_dict())
    sd_path = edit_and_save(built.path, tmp_path / "w.pth", "state_dict", [])[0].path
    assert_state_equal(torch.load(sd_path, weights_only=True), ref.state_dict())
    st = load_file(edit_and_save(built.path, tmp_path / "w.safetensors", "safetensors", [])[0].path)
    assert all(same_bits(st[k], v) for k, v in ref.state_dict().items())


def test_safetensors_source(tmp_path):
    built = tm.build_safetensors(tmp_path / "src")
    result, _ = edit_and_save(built.path, tmp_path / "w.pth", "state_dict", [("fc.*", False)],
                              freeze_plan=True)
    sd = torch.load(result.path, weights_only=True)
    assert set(sd) == set(built.obj) and all(same_bits(sd[k], v) for k, v in built.obj.items())
    out, _ = edit_and_save(built.path, tmp_path / "o.safetensors", None, [], freeze_plan=True)
    assert all(same_bits(load_file(out.path)[k], v) for k, v in built.obj.items())
    mf = open_model(out.path)
    assert mf.freeze_plan is None  # nothing was known to record
    with pytest.raises(ModelFileError, match="no architecture"):
        edit_and_save(built.path, tmp_path / "f.pth", "full", [])


def test_sharded_torch_source(tmp_path):
    built = tm.build_sharded_torch(tmp_path / "src")
    result, _ = edit_and_save(built.path, tmp_path / "w.pth", "state_dict", [])
    sd = torch.load(result.path, weights_only=True)
    assert set(sd) == set(built.obj) and all(same_bits(sd[k], v) for k, v in built.obj.items())


CHILD = textwrap.dedent("""
    import json, sys
    import torch
    from torch import nn
    from safetensors.torch import load_file

    class Net(nn.Module):  # the class, as __main__ of this process
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3)
            self.head = nn.Linear(4, 2)
            self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    src, full, sd, st = sys.argv[1:5]
    ref = torch.load(src, weights_only=False)
    got = torch.load(full, weights_only=False)
    bits = lambda t: t.contiguous().reshape(-1).view(torch.uint8)
    same = lambda a, b: list(a) == list(b) and all(torch.equal(bits(a[k]), bits(b[k])) for k in a)
    st_t = load_file(st)
    print(json.dumps({
        "type": f"{type(got).__module__}.{type(got).__qualname__}",
        "flags": {n: p.requires_grad for n, p in got.named_parameters()},
        "full_equal": same(got.state_dict(), ref.state_dict()),
        "sd_equal": same(torch.load(sd, weights_only=True), ref.state_dict()),
        "st_equal": all(torch.equal(bits(st_t[k]), bits(v)) for k, v in ref.state_dict().items()),
    }))
""")


def test_main_class_from_another_process(tmp_path):
    """Net lives in __main__ of the process that saved it: not importable here."""
    built = tm.build_main_class(tmp_path / "src")
    ops = [("*", True), ("conv.*", False)]
    full, _ = edit_and_save(built.path, tmp_path / "full.pth", None, ops)
    sd, _ = edit_and_save(built.path, tmp_path / "w.pth", "state_dict", ops)
    st, _ = edit_and_save(built.path, tmp_path / "w.safetensors", "safetensors", ops)
    assert list(torch.load(sd.path, weights_only=True)) == built.expected["state_dict_keys"]
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = subprocess.run([sys.executable, str(script), str(built.path), full.path, sd.path, st.path],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    facts = json.loads(proc.stdout.strip().splitlines()[-1])
    assert facts == {"type": "__main__.Net",
                     "flags": {"conv.weight": False, "conv.bias": False, "head.weight": True,
                               "head.bias": True},
                     "full_equal": True, "sd_equal": True, "st_equal": True}
