"""The module tree's work after an edit and while filtering, bounded by counts (not time):
an edit draws only the lines on screen, the filter walks the model off the UI thread and
the last pattern typed wins."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from app_support import SIZE, loaded, settled, sync, tree_lines

from tui.app import ModelTreeApp
from tui.screens import filter_actions


@pytest.fixture(scope="module")
def wide(tmp_path_factory) -> Path:
    import torch
    from torch import nn

    d = tmp_path_factory.mktemp("tree")
    model = nn.Module()
    model.blocks = nn.ModuleList([nn.Sequential(nn.Linear(2, 2), nn.ReLU()) for _ in range(150)])
    model.head = nn.Linear(2, 1)
    torch.save(model, d / "wide.pth")
    return d / "wide.pth"


def shown_lines(tree) -> int:
    return tree.scrollable_content_region.height


@sync
async def test_an_edit_draws_only_the_visible_lines(wide):
    app = ModelTreeApp(str(wide))
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        tree = screen.mtree
        await pilot.press("down", "right")  # blocks: 150 children shown, ~20 on screen
        await pilot.press("e")  # and their Linears: 450 lines added
        await pilot.pause()
        assert len(tree.loaded) > 400
        before, built = tree.labels_rendered, tree.labels_built
        await pilot.press("home", "f")  # freeze the root: every module's mark changes
        await pilot.pause()
        drawn = tree.labels_rendered - before
        assert 0 < drawn <= 2 * shown_lines(tree) + 2  # the cursor move and the edit
        assert 0 < tree.labels_built - built <= shown_lines(tree) + 1  # not 450
        before = tree.labels_rendered
        await pilot.press("u")
        await pilot.pause()
        assert tree.labels_rendered - before <= shown_lines(tree) + 1
        # lines off screen are relabelled when they are drawn, not before
        assert tree_lines(screen)[-1].startswith("●")
        assert screen.mf.root.status == "trainable"


@sync
async def test_the_filter_walks_off_the_ui_thread_and_the_last_pattern_wins(wide, monkeypatch):
    threads: list[str] = []
    real = filter_actions.run_filter

    def spy(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(filter_actions, "run_filter", spy)
    app = ModelTreeApp(str(wide))
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        await pilot.press("slash", *"blocks.1")
        await settled(pilot)
        assert threads and threading.main_thread().name not in threads
        want = [n for n in screen.mf.root.walk() if "blocks.1" in n.name]
        assert screen.mtree.matches == want and screen.mtree.match_count == len(want)
        await pilot.press("4", "9")  # blocks.149
        await settled(pilot)
        assert [n.name for n in screen.mtree.matches] == ["blocks.149", "blocks.149.0",
                                                          "blocks.149.1"]
        assert screen.mtree.module.name == "blocks.149"
        assert "“blocks.149”: 3" in str(screen.mtree.border_title)
        await pilot.press("escape")
        await settled(pilot)
        assert screen.mtree.matches == [] and screen.mtree.module.name == "blocks.149"
