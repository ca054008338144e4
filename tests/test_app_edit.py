"""Freezing from the keyboard: subtree and tensor toggles, F, undo/redo, quit prompt."""

from __future__ import annotations

from pathlib import Path

import pytest
from app_support import SIZE, loaded, sync, tree_lines
from torch_models import build_article_full_model, build_article_state_dict

from tui.app import ModelTreeApp
from tui.screens.main_screen import MainScreen
from tui.screens.quit import QuitScreen


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("edit")
    return {"article": build_article_full_model(d).path,
            "state_dict": build_article_state_dict(d).path}


def flags(screen: MainScreen) -> dict[str, bool | None]:
    return {t.name: t.requires_grad for t in screen.mf.parameters()}


@sync
async def test_space_toggles_the_selected_subtree_and_updates_labels(files):
    app = ModelTreeApp(str(files["article"]))
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        await pilot.press("down", "down")  # layer1: all frozen → space unfreezes it
        assert screen.mtree.module.name == "layer1"
        await pilot.press("space")
        assert flags(screen)["layer1.0.weight"] is True and flags(screen)["layer2.0.weight"] is False
        assert tree_lines(screen)[2] == "● layer1 Sequential 12.9K"
        assert screen.editor.dirty and "✎ modified" in str(app.query_one("#info").render())
        assert str(screen.table.get_row_at(0)[0]) == "● yes"  # side pane follows
        await pilot.press("space")  # now all trainable → freezes it again
        assert flags(screen)["layer1.0.weight"] is False and not screen.editor.dirty
        assert "modified" not in str(app.query_one("#info").render())


@sync
async def test_space_on_a_table_row_toggles_that_tensor_only(files):
    app = ModelTreeApp(str(files["article"]))
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        await pilot.press("end", "tab")  # fc, then into its table
        assert app.focused is screen.table
        await pilot.press("down", "space")  # fc.bias
        assert flags(screen)["fc.bias"] is False and flags(screen)["fc.weight"] is True
        assert str(screen.table.get_row_at(1)[0]) == "○ no"
        assert tree_lines(screen)[-1] == "◐ fc Linear 5.8K"
        await pilot.press("tab")
        assert app.focused is screen.mtree


@sync
async def test_buffers_are_not_toggled(files):
    app = ModelTreeApp(str(files["article"]))
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        await pilot.press("down", "tab", "down", "down", "down", "down")  # 1.running_mean
        assert screen.table.tensor.kind == "buffer"
        await pilot.press("space")
        assert not screen.editor.dirty


@sync
async def test_f_u_and_freeze_all_but_fc_as_in_the_article(files):
    app = ModelTreeApp(str(files["article"]))
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        await pilot.press("u")  # root: unfreeze everything
        assert all(flags(screen).values())
        await pilot.press("end", "F")  # fc: freeze all but fc
        assert {n for n, v in flags(screen).items() if v} == {"fc.weight", "fc.bias"}
        assert tree_lines(screen)[0] == "◐ (root) ConvNet 37.7K"
        await pilot.press("f")
        assert not any(flags(screen).values())
        assert tree_lines(screen)[0] == "○ (root) ConvNet 37.7K"


@sync
async def test_undo_and_redo(files):
    app = ModelTreeApp(str(files["article"]))
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        before = flags(screen)
        assert screen.check_action("undo", ()) is None and screen.check_action("redo", ()) is None
        await pilot.press("down", "space", "end", "f")
        after = flags(screen)
        assert after["sequential.0.weight"] is True and after["fc.weight"] is False
        await pilot.press("ctrl+z")
        assert flags(screen)["fc.weight"] is True and flags(screen)["sequential.0.weight"] is True
        await pilot.press("ctrl+z")
        assert flags(screen) == before and not screen.editor.dirty
        assert screen.check_action("undo", ()) is None and screen.check_action("redo", ())
        assert tree_lines(screen)[1] == "○ sequential Sequential 448"
        await pilot.press("ctrl+y", "ctrl+y")
        assert flags(screen) == after
        assert tree_lines(screen)[1] == "● sequential Sequential 448"
        assert tree_lines(screen)[-1] == "○ fc Linear 5.8K"


@sync
async def test_state_dict_flags_start_unknown_and_can_be_set(files):
    app = ModelTreeApp(str(files["state_dict"]))
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        # (integer tensors, num_batches_tracked, are known frozen: fc has none)
        assert tree_lines(screen)[-1].startswith("? fc")
        assert "requires_grad not stored" in str(app.query_one("#info").render())
        await pilot.press("end", "space")  # unknown → frozen
        assert flags(screen)["fc.weight"] is False and flags(screen)["layer1.0.weight"] is None
        assert tree_lines(screen)[-1].startswith("○ fc")


@sync
async def test_quit_asks_when_dirty_and_stay_keeps_the_app(files):
    app = ModelTreeApp(str(files["article"]))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("down", "space", "q")
        assert isinstance(app.screen, QuitScreen)
        assert "sequential.0.weight" in app.screen.changed
        await pilot.press("escape")  # stay
        assert not isinstance(app.screen, QuitScreen) and app.return_code is None
        await pilot.press("q", "q")  # quit anyway
        assert app.return_code == 0


@sync
async def test_quit_without_changes_does_not_ask(files):
    app = ModelTreeApp(str(files["article"]))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("down", "space", "space", "q")  # back to as on disk: nothing to lose
        assert app.return_code == 0 and not isinstance(app.screen, QuitScreen)
