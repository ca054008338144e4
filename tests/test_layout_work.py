"""Work per keypress, bounded by counts (not time): a cursor move or an edit lays out the
screen again only when the node pane's height really changes, and a filter keystroke never
builds a text of the whole model on the UI thread (Textual's default worker description is
a repr of the arguments, and the root module's repr is the model)."""

from __future__ import annotations

from pathlib import Path

import pytest
from app_support import SIZE, loaded, settled, sync
from textual._compositor import Compositor

from tui.app import ModelTreeApp
from tui.core.model import ModuleNode
from tui.widgets.node_info import NodeInfo


@pytest.fixture(scope="module")
def siblings(tmp_path_factory) -> Path:
    import torch
    from torch import nn

    d = tmp_path_factory.mktemp("layout")
    model = nn.Module()
    model.blocks = nn.ModuleList([nn.Linear(2, 2) for _ in range(8)])  # alike: same pane height
    model.head = nn.Linear(2, 1)
    torch.save(model, d / "siblings.pth")
    return d / "siblings.pth"


@pytest.fixture
def reflows(monkeypatch) -> list[int]:
    """Full layouts of a screen (Compositor.reflow: every widget placed again)."""
    count = [0]
    real = Compositor.reflow

    def counting(self, parent, size):
        count[0] += 1
        return real(self, parent, size)

    monkeypatch.setattr(Compositor, "reflow", counting)
    return count


def pane_text(screen) -> str:
    content = screen.query_one(NodeInfo).content
    return content.plain if hasattr(content, "plain") else str(content)


@sync
async def test_moves_and_edits_lay_out_again_only_when_the_pane_height_changes(siblings, reflows):
    app = ModelTreeApp(str(siblings))
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        tree, pane = screen.mtree, screen.query_one(NodeInfo)
        await pilot.press("down", "right", "down")  # blocks, opened; blocks.0
        await pilot.pause()
        for i in range(1, 6):  # the siblings: as many pane lines and table rows each
            before = reflows[0]
            await pilot.press("down")
            await pilot.pause()
            assert tree.module is not None and tree.module.name == f"blocks.{i}"
            assert pane_text(screen).startswith(f"blocks.{i} ")  # the pane did follow
            assert screen.table.node is tree.module
            assert reflows[0] == before, f"a move to blocks.{i} laid out the screen again"
        # Up to `blocks` (other lines): the pane grows or shrinks, which takes a layout.
        before = reflows[0]
        tree.move_cursor(tree.loaded["blocks"])
        await pilot.pause()
        await pilot.pause()
        assert pane_text(screen).startswith("blocks ")
        assert reflows[0] > before
        lines = pane_text(screen).count("\n") + 1
        assert pane.outer_size.height == min(lines, 7) + 2  # (max-height 9, with the border)
        # An edit (the marks, the pane's status): repaints only. (The first edit brings the
        # footer its undo key: a layout; the next ones don't.)
        await pilot.press("down", "down", "f")
        await pilot.pause()
        assert tree.module.status == "frozen" and screen.dirty
        await pilot.press("down", "f")
        await pilot.pause()
        before = reflows[0]
        await pilot.press("u")
        await pilot.pause()
        await pilot.pause()
        assert tree.module.status == "trainable"
        assert reflows[0] == before, "an edit laid out the screen again"
        # The header line ("✎ modified" comes and goes): a repaint too.
        screen.dirty = False
        await pilot.pause()
        await pilot.pause()
        assert "modified" not in str(screen.query_one("#info").content)
        assert reflows[0] == before, "the header line laid out the screen again"


@sync
async def test_the_node_pane_height_follows_other_content(siblings):
    """update() from elsewhere (a value's label, an error) forgets the line count."""
    app = ModelTreeApp(str(siblings))
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        pane = screen.query_one(NodeInfo)
        pane.update("one line")
        await pilot.pause()
        assert pane.outer_size.height == 3
        pane.show(screen.mf.root)
        await pilot.pause()
        lines = pane_text(screen).count("\n") + 1
        assert pane.outer_size.height == min(lines, 7) + 2


@sync
async def test_a_filter_keystroke_never_reprs_the_model(siblings, reflows, monkeypatch):
    reprs = [0]
    real = ModuleNode.__repr__

    def counting(self) -> str:
        reprs[0] += 1
        return real(self)

    monkeypatch.setattr(ModuleNode, "__repr__", counting)
    app = ModelTreeApp(str(siblings))
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        await pilot.press("slash")
        await settled(pilot)
        pane = screen.query_one(NodeInfo)
        for key in "blocks.1":
            before, height = reflows[0], pane.outer_size.height
            await pilot.press(key)
            await settled(pilot)
            # The field's echo (Input sizes itself to its text) and the tree's new lines;
            # one more only when the node pane's height changed.
            allowed = 2 + (pane.outer_size.height != height)
            assert reflows[0] - before <= allowed, f"{key!r}: {reflows[0] - before} layouts"
        assert [n.name for n in screen.mtree.matches] == ["blocks.1"]
        assert pane_text(screen).startswith("blocks.1 ")
        assert reprs[0] == 0, f"{reprs[0]} module reprs while typing a filter"
