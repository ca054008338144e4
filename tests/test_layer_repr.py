"""Layer settings (issue 11 item 1): every module's `extra_repr` is torch's own text,
read from the pickled attributes without torch; other classes show key=value."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn
from torch_builders_layers import Custom, every_layer

from tui.cli import main
from tui.core import human
from tui.core.read.layer_repr import extra_repr
from tui.core.read.pyrepr import py_repr, to_json
from tui.core.read.reader import open_model
from tui.core.report import to_json as report_json


@pytest.fixture(scope="module")
def model() -> nn.ModuleDict:
    torch.manual_seed(0)
    return every_layer()


@pytest.fixture(scope="module")
def files(model, tmp_path_factory):
    d = tmp_path_factory.mktemp("layers")
    full, ckpt, legacy = d / "all.pth", d / "ckpt.pth", d / "legacy.pth"
    torch.save(model, full)
    torch.save({"epoch": 3, "model": model, "optimizer": {"lr": 0.1}}, ckpt)
    torch.save(model, legacy, _use_new_zipfile_serialization=False)
    return {"full": full, "checkpoint": ckpt, "legacy": legacy}


def _expected(module: nn.Module) -> str:
    if type(module) is Custom:
        return "scale=0.5, tag='head', sizes=(3, 4)"
    return module.extra_repr()


@pytest.mark.parametrize("kind", ["full", "checkpoint", "legacy"])
def test_extra_repr_equals_torch_for_every_module(model, files, kind):
    mf = open_model(str(files[kind]))
    names = [n for n, _ in model.named_modules()]
    assert len(names) > 110 and set(names) == set(mf.modules)
    wrong = {n: (mf.modules[n].extra_repr, _expected(m)) for n, m in model.named_modules()
             if mf.modules[n].extra_repr != _expected(m)}
    assert wrong == {}
    # the non-default arguments are really there (not all-empty strings that agree)
    assert mf.modules["emb"].extra_repr == ("10, 4, padding_idx=0, max_norm=1.5, norm_type=3.0, "
                                            "scale_grad_by_freq=True, sparse=True")
    assert mf.modules["gelu"].extra_repr == "approximate='tanh'"
    assert mf.modules["plist"].extra_repr.splitlines()[1] == \
        "  (1): Parameter containing: [torch.float64 of size 4]"
    assert mf.modules["unflatten_size"].extra_repr == "dim=-1, unflattened_size=torch.Size([3, 4])"
    assert "bidirectional=True" in mf.modules["lstm"].extra_repr


def test_print_lines_carry_torchs_text(model, files, capsys):
    assert main([str(files["full"]), "--print"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    for name, m in model.named_modules():
        if not name:
            continue
        want = human.module_line(name.rsplit(".", 1)[-1], type(m).__name__, _expected(m))
        assert any(want in ln for ln in lines), want
    assert any("(fc)" not in ln and "(linear): Linear(in_features=6, out_features=2, bias=True)" in ln
               for ln in lines)


def test_json_modules_have_extra_repr_and_attributes(model, files, capsys):
    assert main([str(files["checkpoint"]), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    mods = {m["name"]: m for m in doc["modules"]}
    for name, m in model.named_modules():
        assert mods[name]["extra_repr"] == _expected(m)
    assert mods["custom"]["attributes"] == {"scale": 0.5, "tag": "head", "sizes": [3, 4]}
    assert mods["conv1"]["attributes"]["padding_mode"] == "reflect"
    assert mods["conv1"]["attributes"]["kernel_size"] == [3]
    assert "proj" not in mods["custom"]["attributes"] and "mask" not in mods["custom"]["attributes"]
    assert mods["bn1"]["attributes"]["momentum"] is None


def test_state_dict_modules_have_no_settings(model, tmp_path):
    p = tmp_path / "sd.pth"
    torch.save(model.state_dict(), p)
    mf = open_model(str(p))
    assert all(n.extra_repr == "" and n.attributes == {} for n in mf.modules.values())


def test_other_classes_show_plain_attributes_bounded():
    state = {"training": True, "_parameters": {}, "_modules": {}, "vocab": list(range(10_000)),
             "name": "x" * 5000, "ratio": math.nan, "nested": {"a": (1, [2, {"b": None}])}}
    text = extra_repr("my.pkg.Tokenizer", state)
    assert text.startswith("vocab=[0, 1, 2") and "training" not in text
    assert len(text) < 600  # each value cut: a 10,000-item vocab is not printed whole
    assert "ratio=nan" in text and "nested={'a': (1, [2, {'b': None}])}" in text
    assert to_json(math.inf) == "inf" and len(to_json(list(range(1000)))) == 32
    assert py_repr((1,)) == "(1,)" and py_repr(frozenset()) == "frozenset()"


def test_unknown_values_fall_back_instead_of_failing():
    # a torch.nn class whose attributes don't fit torch's template: key=value, no exception
    assert extra_repr("torch.nn.modules.conv.Conv2d", {"in_channels": 3}) .startswith("3, <missing>")
    assert extra_repr("torch.nn.modules.activation.ReLU", {}) == ""
    assert extra_repr("torch.nn.modules.somewhere.NewLayer", {"k": 2}) == "k=2"
    assert extra_repr(None, "not a dict") == ""
    scripted = "__torch__.torch.nn.modules.linear.___torch_mangle_3.Linear"
    assert extra_repr(scripted, {"in_features": 2, "out_features": 3, "_parameters": {"bias": None}}) \
        == "in_features=2, out_features=3, bias=False"


def test_report_json_keys(files):
    doc = report_json(open_model(str(files["full"])))
    assert {"name", "type", "extra_repr", "attributes"} <= set(doc["modules"][1])


# Layers torch.jit.script refuses on their own, and what TorchScript keeps differently:
# torch.Size becomes a tuple; parameter containers lose their own bookkeeping (shown empty).
UNSCRIPTABLE = {"amax2", "unpool", "mha"}
SCRIPT_DIFFERS = {"unflatten_size", "plist", "pdict", "custom"}


class _Holder(nn.Module):
    def __init__(self, layers: dict[str, nn.Module]) -> None:
        super().__init__()
        self.layers = nn.ModuleDict(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torchscript_modules_have_torchs_settings(model, tmp_path):
    holder = _Holder({k: m for k, m in model.items() if k not in UNSCRIPTABLE})
    p = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(holder), str(p))
    mf = open_model(str(p))
    checked = [(n, m) for n, m in holder.named_modules()
               if n and (n.split(".") + [""])[1] not in SCRIPT_DIFFERS]
    assert len(checked) > 100
    wrong = {n: (mf.modules[n].extra_repr, m.extra_repr()) for n, m in checked
             if mf.modules[n].extra_repr != m.extra_repr()}
    assert wrong == {}
    assert mf.modules["layers.conv1"].attributes["padding_mode"] == "reflect"
    assert mf.modules["layers.unflatten_size"].extra_repr == "dim=-1, unflattened_size=(3, 4)"
