"""The --json writer's fast path (to_json(encoded=True)) writes exactly what the json
module writes of the dict document, for every kind of file and tricky names and values,
and builds a tensor's dict only once per distinct set of fields (not once per tensor)."""

from __future__ import annotations

import contextlib
import io
import json
import math
import warnings
from dataclasses import fields, replace
from pathlib import Path

import pytest
import torch
import torch_models as tm
from torch import nn

from tui.cli import main
from tui.core import report
from tui.core.edit import Editor
from tui.core.model import ModelFile, ModuleNode, QParams, StorageRef, TensorInfo
from tui.core.read.reader import open_model
from tui.core.report import Encoded, to_json, write_json

LISTS = ("modules", "parameters", "buffers")
# quote, backslash, control characters, non-ASCII, lone surrogates, a JSON-looking tail
NASTY = 'we"ird\\name\x00\x07\x1f\x7f é\u2603\ud800\udfff}, {"x": 1'


def _written(doc: dict) -> str:
    out = io.StringIO()
    write_json(doc, out)
    return out.getvalue()


def _same(mf: ModelFile) -> None:
    """The fast document is the dict document, item by item and as written."""
    plain, fast = to_json(mf), to_json(mf, encoded=True)
    for k in LISTS:
        assert type(fast[k]) is Encoded
        assert fast[k] == [json.dumps(item) for item in plain[k]], k
    assert {k: v for k, v in fast.items() if k not in LISTS} == \
        {k: v for k, v in plain.items() if k not in LISTS}
    assert _written(fast) == _written(plain)


class Odd(nn.Module):
    """Everything the JSON of a module or a tensor can hold that is easy to get wrong."""

    def __init__(self) -> None:
        super().__init__()
        self.scale, self.top, self.eps, self.big = math.nan, -math.inf, 1e-05, 1e300
        self.label = NASTY
        self.add_module(NASTY, nn.Linear(2, 2))
        self.add_module("norm", nn.LayerNorm(3, eps=1e-05))
        self.register_buffer("np", torch.zeros(2), persistent=False)
        self.register_buffer("p\u2603\"", torch.ones(2))
        self.lazy = nn.LazyLinear(3)
        self.tied = nn.Linear(2, 2)
        self.tied2 = nn.Linear(2, 2)
        self.tied2.weight = self.tied.weight
        self.sp = nn.Parameter(torch.eye(3).to_sparse(), requires_grad=False)
        self.register_buffer("q", torch.quantize_per_tensor(torch.ones(2), 0.5, 1, torch.quint8))
        self.meta = nn.Parameter(torch.empty(2, 3, device="meta"))
        self.same = nn.ModuleList(nn.Linear(2, 2) for _ in range(3))


@pytest.fixture(scope="module")
def odd_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("odd") / "odd.pth"
    with warnings.catch_warnings():  # torch: quantized tensors are deprecated (once a process)
        warnings.simplefilter("ignore", UserWarning)
        torch.save(Odd(), path)
    return path


def test_tricky_names_values_and_tensors(odd_file):
    mf = open_model(str(odd_file))
    doc = to_json(mf)
    names = [p["name"] for p in doc["parameters"] + doc["buffers"]]
    assert f"{NASTY}.weight" in names and doc["parameters"][0]["layout"] == "sparse_coo"
    assert {"uninitialized (lazy)", "meta tensor (no data)"} <= {p.get("note") for p in doc["parameters"]}
    assert [b["persistent"] for b in doc["buffers"]] == [False, True, True]
    assert doc["buffers"][2]["quantized"] and any(p["aliases"] for p in doc["parameters"])
    _same(mf)
    ed = Editor(mf)
    ed.set_subtree(mf.root, False)
    _same(mf)
    ed.undo()
    ed.apply_pattern("same.1.*", False)  # one tensor of a repeated shape differs
    _same(mf)


def test_cli_json_with_edits_is_the_dict_document(odd_file):
    """The CLI's own path (--freeze, --rename: surgery added to the fast document)."""
    for extra in ([], ["--freeze", "norm.*"], ["--rename", "tied.=t."]):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main([str(odd_file), *extra, "--json"]) == 0
        mf = open_model(str(odd_file))
        doc = to_json(mf)
        if extra:
            ed = Editor(mf)
            if extra[0] == "--freeze":
                ed.apply_pattern("norm.*", False)
                doc = to_json(mf)
            else:
                from tui.core.surgery import parse_rename, preview

                ed.rename(*parse_rename("tied.=t."))
                doc["surgery"] = preview(ed.surgery, ed.names())
        assert out.getvalue() == _written(doc)


@pytest.fixture(scope="module")
def builder_files(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("builders")
    names = ["article_full_model", "tied_weights", "batchnorm_nonpersistent", "none_entries",
             "lazy", "static_quantized", "quantized_tensors", "dtypes_state_dict",
             "view_buffers", "training_checkpoint", "torchscript", "safetensors", "legacy"]
    return {n: tm.SAFE_BUILDERS[n](base / n).path for n in names}


def test_every_kind_of_file(builder_files):
    for path in builder_files.values():
        _same(open_model(str(path)))


# --------------------------------------------------------------------------------------------
# each field of a tensor, changed in turn: the cached text after the name must never be
# reused for a tensor whose JSON differs (a new TensorInfo field must get values here)

_STORE = StorageRef("0", "float32", "cpu", 6)
ALTERNATIVES: dict[str, list] = {
    "names": [["b"], [NASTY], ["a", "b.c"], ["\ud800"]],
    "shape": [(3, 2), (6,), (), (0, 5)],
    "dtype": ["float16", "int8", "bool", "unknown"],
    "kind": ["buffer", "parameter"],
    "requires_grad": [False, None],
    "device": ["cuda:0", "meta", NASTY],
    "storage": [None, StorageRef("1", "int8", "cuda:1", 2)],
    "storage_offset": [3],
    "stride": [(1, 2)],
    "quantized": ["torch.per_tensor_affine", NASTY],
    "qparams": [QParams("per_tensor_affine", 0.5, 1)],
    "note": ["uninitialized (lazy)", "meta tensor (no data)", NASTY],
    "original_requires_grad": [False, None],
    "uid": [9],
    "param_index": [4],
    "layout": ["sparse_coo", "numpy", NASTY],
    "inferred": [True],
}


def test_every_tensor_field_reaches_the_text():
    assert set(ALTERNATIVES) == {f.name for f in fields(TensorInfo)}, \
        "a TensorInfo field without alternative values here"
    plain = TensorInfo(["a"], (2, 3), "float32", "parameter", True, storage=_STORE)
    line = report._line_encoder()
    for base in (plain, replace(plain, note="uninitialized (lazy)")):
        for name, values in ALTERNATIVES.items():
            for value in values:
                other = replace(base, **{name: value})
                ts = [base, other, replace(base, names=["z"]), replace(other, names=["y"])]
                for non_persistent in (None, {"a", "y"}):
                    expected = [json.dumps(report._tensor(
                        t, None if non_persistent is None else t.name not in non_persistent))
                        for t in ts]
                    assert report._tensor_lines(ts, non_persistent, line) == expected, (name, value)


def test_module_lines():
    line = report._line_encoder()
    attrs = [{}, {"eps": 1e-05, "nan": math.nan, "inf": math.inf, "ninf": -math.inf},
             {NASTY: [1, 2.5, None, True, {"x": [NASTY]}], "big": 10**30}]
    for name in ("", "a.b", NASTY):
        for tp in ("torch.nn.Linear", None, NASTY):
            for a in attrs:
                n = ModuleNode(name, name, tp, extra_repr=NASTY if a else "", attributes=a)
                assert report._module_line(n, line) == json.dumps(report._module(n))


# --------------------------------------------------------------------------------------------
# work: the CLI path builds a tensor's dict once per distinct set of fields, not per tensor


class Many(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(nn.Linear(4, 4) for _ in range(300))
        for b in self.blocks[::3]:
            b.register_buffer("steps", torch.zeros(2, dtype=torch.long))


def test_fast_path_builds_no_dict_per_tensor(tmp_path, monkeypatch):
    path = tmp_path / "many.pth"
    torch.save(Many(), path)
    mf = open_model(str(path))
    assert len(mf.tensors) == 700
    built = []
    original = report._tensor
    monkeypatch.setattr(report, "_tensor", lambda *a: built.append(a) or original(*a))
    doc = to_json(mf, encoded=True)
    assert len(built) == 3  # weight, bias, steps: one each
    assert len(doc["parameters"]) == 600 and len(doc["buffers"]) == 100
    built.clear()
    to_json(mf)
    assert len(built) == 700
