"""Editor: counts kept incrementally equal a from-scratch rollup; undo/redo; dirty."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest
import torch_models as tm

from tui.core.edit import Editor
from tui.core.model import ancestors_union
from tui.core.read.build import rollup
from tui.core.read.reader import open_model

SAMPLES = Path(__file__).resolve().parents[1] / "sample_models"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("edit")
    return {
        "article": SAMPLES / "entire_model.pth",
        "transformer": SAMPLES / "transformer.pth",  # tied embedding / head
        "state_dict": SAMPLES / "weights_only.pth",  # flags unknown until edited
        "tied": tm.build_tied_weights(root).path,
        "params": tm.build_parameter_containers(root).path,
        "dtypes": tm.build_dtypes(root).path,  # int tensors can't require grad
    }


def _counts(mf):
    return {n.name: dataclasses.asdict(n.counts) for n in mf.root.walk()}


def _flags(mf):
    return [t.requires_grad for t in mf.tensors]


def _random_edit(rng: random.Random, ed: Editor):
    mf = ed.mf
    nodes = list(mf.modules.values())
    params = mf.parameters()
    op = rng.randrange(8)
    if op == 0:
        return ed.set_subtree(rng.choice(nodes), rng.random() < 0.5)
    elif op == 1:
        return ed.toggle_subtree(rng.choice(nodes))
    elif op == 2 and params:
        return ed.toggle_tensor(rng.choice(params))
    elif op == 3:
        return ed.freeze_all_except(rng.choice(nodes))
    elif op == 4 and params:
        name = rng.choice(rng.choice(params).names)
        return ed.apply_pattern(name.rsplit(".", 1)[0] + ".*" if "." in name else name,
                                rng.random() < 0.5)
    elif op == 5:
        return ed.undo()
    elif op == 6:
        return ed.redo()
    else:
        return ed.apply_pattern("*", rng.random() < 0.5)


@pytest.mark.parametrize("name", ["article", "transformer", "state_dict", "tied", "params", "dtypes"])
def test_counts_match_rollup_after_random_edits(files, name):
    mf = open_model(str(files[name]))
    ed = Editor(mf)
    initial_flags, initial_counts = _flags(mf), _counts(mf)
    rng = random.Random(name)
    for _ in range(60):
        edit = _random_edit(rng, ed)
        if edit is not None:  # the nodes the UI refreshes: every ancestor of a changed name
            expected = ancestors_union(n for t, _, _ in edit.changes for n in ed.owners(t))
            assert {id(n) for n in ed.affected(edit)} == {id(n) for n in expected}
        got = _counts(mf)
        rollup(mf.root)
        assert got == _counts(mf)
        assert ed.dirty == (_flags(mf) != initial_flags)
    while ed.undo():
        pass
    assert _flags(mf) == initial_flags and _counts(mf) == initial_counts and not ed.dirty


def test_tied_weights_change_together(files):
    mf = open_model(str(files["tied"]))
    ed = Editor(mf)
    (t,) = ed.matching("head.weight")
    assert t.names == ["embed.weight", "head.weight"] and ed.matching("embed.*") == [t]
    before = mf.totals.trainable_tensors
    edit = ed.toggle_tensor(t)
    assert t.requires_grad is False and [c[0] for c in edit.changes] == [t]
    assert mf.totals.trainable_tensors == before - 1  # one tensor, counted once at the root
    assert {n.name for n in ed.affected(edit)} == {"", "embed", "head"}
    assert mf.modules["head"].counts.frozen_tensors == mf.modules["embed"].counts.frozen_tensors == 1


def test_undo_redo_and_dirty(files):
    mf = open_model(str(files["article"]))
    ed = Editor(mf)
    assert not ed.dirty and not ed.can_undo and ed.changed() == []
    ed.apply_pattern("*", False)
    assert ed.dirty and ed.changed() == [("fc.weight", True, False), ("fc.bias", True, False)]
    ed.apply_pattern("layer2", True)  # a module name: its whole subtree
    after = _flags(mf)
    assert ed.undo() and ed.undo() and not ed.dirty and not ed.can_undo
    assert ed.redo() and ed.redo() and _flags(mf) == after and not ed.can_redo
    ed.undo()
    ed.toggle_subtree(mf.modules["layer1"])  # a new edit clears the redo history
    assert not ed.can_redo
    ed.mark_saved()
    assert not ed.dirty and ed.changed()  # saved elsewhere: still differs from the opened file
    ed.undo()
    assert ed.dirty


def test_set_tensors_ignores_repeats_and_buffers(files):
    mf = open_model(str(files["article"]))
    ed = Editor(mf)
    fc_w = mf.modules["fc"].params[0][1]
    buf = mf.buffers()[0]
    edit = ed.set_tensors([fc_w, fc_w, buf], True, "unfreeze")
    assert edit is None  # fc.weight is trainable already; buffers are never edited
    edit = ed.set_tensors([fc_w, fc_w, buf], False, "freeze")
    assert [c[0] for c in edit.changes] == [fc_w] and buf.requires_grad is False
    assert ed.set_tensors([fc_w], False, "again") is None  # no change, no history entry
    ed.undo()
    assert fc_w.requires_grad is True and not ed.dirty
