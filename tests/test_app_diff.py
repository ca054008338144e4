"""The diff view (`modeltree A B`), driven with Pilot: marks and counts in the merged
tree, both sides in the pane, the proposed fix applied with one key and saved."""

from __future__ import annotations

import torch
import torch_models as tm
from app_support import sync
from textual.worker import WorkerFailed
from torch_builders_modules import SmallMLP

from tui.core.diff import DiffEntry
from tui.diff_app import DiffApp
from tui.widgets.diff_pane import DiffPane

SIZE = (80, 24)


async def _ready(pilot) -> DiffApp:
    app = pilot.app
    try:
        await app.workers.wait_for_complete()
    except WorkerFailed:  # an unreadable file: the screen says so
        pass
    await pilot.pause()
    return app


def _lines(app: DiffApp) -> list[str]:
    return [str(line.node.label) for line in app.screen.dtree._tree_lines]


@sync
async def test_diff_view_marks_counts_and_sides(tmp_path):
    torch.manual_seed(0)
    model = SmallMLP()
    torch.save(model, tmp_path / "a.pth")
    sd = model.state_dict()
    sd["net.2.weight"] = torch.zeros(5, 16)  # shape mismatch
    sd["net.0.bias"] = sd["net.0.bias"] + 1  # values change
    del sd["net.2.bias"]
    sd["extra"] = torch.ones(1)
    torch.save(sd, tmp_path / "b.pth")
    app = DiffApp(str(tmp_path / "a.pth"), str(tmp_path / "b.pth"))
    async with app.run_test(size=SIZE) as pilot:
        await _ready(pilot)
        lines = _lines(app)
        assert lines[0] == "! (root) !1 −1 +1 =2"
        await pilot.press("down", "right")  # open "net"
        assert "! net !1 −1 =2" in _lines(app)
        await pilot.press("x")  # compare values
        await _ready(pilot)
        assert _lines(app)[0] == "! (root) ≠1 !1 −1 +1 =1"
        await pilot.press("down", "down", "right", "down", "down")  # net.0.bias (net stays open)
        node = app.screen.dtree.cursor_node
        assert isinstance(node.data, DiffEntry) and node.data.name == "net.0.bias"
        pane = str(app.screen.query_one(DiffPane).render())
        assert "values changed" in pane and "A: net.0.bias" in pane and "B: net.0.bias" in pane
        assert "max|a−b| 1" in pane


@sync
async def test_apply_fix_and_save(tmp_path):
    tm.build_data_parallel_state_dict(tmp_path)
    torch.manual_seed(0)
    torch.save(SmallMLP(), tmp_path / "bare.pth")
    app = DiffApp(str(tmp_path / "bare.pth"), str(tmp_path / "data_parallel_state_dict.pth"))
    async with app.run_test(size=SIZE) as pilot:
        await _ready(pilot)
        pane = str(app.screen.query_one(DiffPane).render())
        assert "Missing key(s) in state_dict" in pane and "--rename 'module.='" in pane
        assert not app.screen.diff.structures_match
        await pilot.press("a")
        assert app.screen.diff.structures_match and app.screen.diff.load.ok
        await pilot.press("ctrl+z")
        assert not app.screen.diff.structures_match
        await pilot.press("ctrl+y", "s")
        await pilot.pause()
        out = tmp_path / "fixed.pth"
        field = app.screen.query_one("#text")
        field.value = str(out)
        await pilot.press("enter")
        await _ready(pilot)
    model = torch.load(tmp_path / "bare.pth", weights_only=False)
    model.load_state_dict(torch.load(out, weights_only=True), strict=True)


def test_cli_two_files_probe(tmp_path, capsys):
    from tui.cli import main

    (tmp_path / "a.pth").write_bytes(b"not a model")
    assert main([str(tmp_path / "a.pth"), str(tmp_path / "missing.pth")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


@sync
async def test_diff_view_unreadable_file(tmp_path):
    (tmp_path / "a.pth").write_bytes(b"\x80\x02garbage")
    torch.save({"w": torch.ones(2)}, tmp_path / "b.pth")
    app = DiffApp(str(tmp_path / "a.pth"), str(tmp_path / "b.pth"))
    async with app.run_test(size=SIZE) as pilot:
        await _ready(pilot)
        assert app.screen.diff is None and app.screen.state == "could not compare"
        assert app.screen.check_action("apply_fix", ()) is None
