"""Freeze plans: written beside weights, applied on open, and as a Python snippet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch_models as tm

from sample_models.models import article_frozen_model
from tui.core.edit import Editor
from tui.core.read.reader import open_model
from tui.core.write.freeze_plan import plan_path, plan_snippet, write_plan
from tui.core.write.save import save

SAMPLES = Path(__file__).resolve().parents[1] / "sample_models"


def test_plan_path(tmp_path):
    assert plan_path("/m/weights_only.pth") == "/m/weights_only.freeze.json"
    assert plan_path("/m/model.safetensors") == "/m/model.freeze.json"
    assert plan_path("/m/model.safetensors.index.json") == "/m/model.safetensors.freeze.json"
    assert plan_path(str(tmp_path) + "/") == str(tmp_path) + ".freeze.json"


def test_plan_round_trip_with_tied_weights(tmp_path):
    built = tm.build_tied_weights(tmp_path / "src")
    mf = open_model(str(built.path))
    Editor(mf).apply_pattern("embed.*", False)
    result = save(mf, str(tmp_path / "tied.pth"), fmt="state_dict", freeze_plan=True)
    doc = json.loads(Path(result.plan_path).read_text())
    assert doc["modeltree_freeze_plan"] == 1 and doc["source"] == "tied.pth"
    assert doc["trainable"] == {"embed.weight": False, "head.weight": False}
    again = open_model(result.path)
    flags = {n: t.requires_grad for t in again.tensors for n in t.names}
    assert flags == {"embed.weight": False, "head.weight": False}
    assert again.totals.frozen_tensors == 1 and again.freeze_plan == result.plan_path
    assert [t.requires_grad for t in again.tensors] == [t.original_requires_grad for t in again.tensors]
    assert not Editor(again).dirty


def test_bad_or_foreign_plans_are_not_applied(tmp_path):
    weights = tmp_path / "w.pth"
    weights.write_bytes((SAMPLES / "weights_only.pth").read_bytes())
    plan = tmp_path / "w.freeze.json"
    plan.write_text("{not json")
    mf = open_model(str(weights))
    assert mf.freeze_plan is None
    assert all(t.requires_grad is None for t in mf.tensors if t.can_require_grad and t.kind != "buffer")
    assert any(w.callable == "freeze plan" for w in mf.warnings)
    plan.write_text(json.dumps({"modeltree_freeze_plan": 1, "model_key": "model_state_dict",
                                "trainable": {"fc.weight": True}}))
    assert open_model(str(weights)).freeze_plan is None  # for a checkpoint's part, not this file


@pytest.mark.parametrize("ops", [
    [("*", False), ("fc.*", True)],  # few trainable: a set of trainable names
    [("*", True), ("sequential.*", False)],  # few frozen: a set of frozen names
])
def test_snippet_applies_the_flags(ops):
    mf = open_model(str(SAMPLES / "entire_model.pth"))
    ed = Editor(mf)
    for pattern, value in ops:
        ed.apply_pattern(pattern, value)
    model = article_frozen_model()
    for p in model.parameters():
        p.requires_grad = not p.requires_grad  # start from the wrong flags
    exec(plan_snippet(mf), {"model": model})
    want = {n: t.requires_grad for t in mf.tensors if t.kind == "parameter" for n in t.names}
    assert {n: p.requires_grad for n, p in model.named_parameters()} == want


def test_snippet_with_unknown_flags_leaves_them(tmp_path):
    mf = open_model(str(SAMPLES / "weights_only.pth"))
    Editor(mf).apply_pattern("fc.*", False)
    code = plan_snippet(mf)
    assert "plan.get(name, p.requires_grad)" in code
    model = article_frozen_model()  # layer1 frozen, fc trainable
    exec(code, {"model": model})
    assert not model.fc.weight.requires_grad and not model.fc.bias.requires_grad
    assert model.layer1[0].weight.requires_grad is False  # untouched: as the class made it
    write_plan(mf, str(tmp_path / "w.pth"))
    assert json.loads((tmp_path / "w.freeze.json").read_text())["trainable"] == {
        "fc.weight": False, "fc.bias": False}
