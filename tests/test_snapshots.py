"""How the app looks (SVG snapshots, pytest-textual-snapshot). Update with --snapshot-update
after checking the new pictures by eye. Paths are relative (chdir) so pictures are stable, and
the model is the committed sample (not one torch writes now): nothing shown depends on the
installed torch, such as the file's size in the header."""

from __future__ import annotations

from pathlib import Path

import pytest
from app_support import copy_to, loaded
from textual.widgets import Input

from tui.app import ModelTreeApp

SIZE = (100, 30)


SAMPLE = Path(__file__).resolve().parents[1] / "sample_models" / "entire_model.pth"


@pytest.fixture
def here(tmp_path, monkeypatch) -> Path:
    copy_to(SAMPLE, tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


async def _steady(pilot) -> None:
    """Loaded, no blinking cursor, nothing left to paint."""
    await loaded(pilot)
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_main_screen(snap_compare, here, size):
    """The smallest terminal and a roomy one: the table shows mark, name, shape, dtype and
    numel in both (short forms at 80 columns)."""

    async def run_before(pilot) -> None:
        await _steady(pilot)
        await pilot.press("down", "space", "down", "right")
        await _steady(pilot)

    assert snap_compare(ModelTreeApp("entire_model.pth"), terminal_size=size,
                        run_before=run_before)


def test_save_dialog(snap_compare, here):
    async def run_before(pilot) -> None:
        await _steady(pilot)
        await pilot.press("down", "space", "s")
        await _steady(pilot)

    assert snap_compare(ModelTreeApp("entire_model.pth"), terminal_size=SIZE,
                        run_before=run_before)


def test_help_screen(snap_compare, here):
    async def run_before(pilot) -> None:
        await _steady(pilot)
        await pilot.press("question_mark")
        await _steady(pilot)

    assert snap_compare(ModelTreeApp("entire_model.pth"), terminal_size=SIZE,
                        run_before=run_before)


def test_error_dialog(snap_compare, here):
    (here / "broken.pth").write_bytes(b"not a model")

    async def run_before(pilot) -> None:
        await _steady(pilot)

    assert snap_compare(ModelTreeApp("broken.pth"), terminal_size=SIZE, run_before=run_before)


def test_node_pane_settings_120x40(snap_compare, here):
    """The node pane on a Conv2d: its settings as print(model) shows them, attributes,
    share of the model, dtype split."""
    async def run_before(pilot) -> None:
        await _steady(pilot)
        await pilot.press("down", "down", "right", "down")
        await _steady(pilot)

    assert snap_compare(ModelTreeApp("entire_model.pth"), terminal_size=(120, 40),
                        run_before=run_before)


def test_open_file_screen(snap_compare, here):
    (here / "notes.txt").write_text("not shown")
    (here / "runs").mkdir()

    async def run_before(pilot) -> None:
        await _steady(pilot)
        await pilot.press("o")
        for _ in range(50):  # the folder is read in a worker
            await pilot.pause()
            if pilot.app.screen.query("ModelFileTree") and \
                    pilot.app.screen.query_one("ModelFileTree").root.children:
                break
        for field in pilot.app.screen.query(Input):  # (not _steady: the tree's folder reader
            field.cursor_blink = False               # is a worker that never completes)
        await pilot.pause()

    assert snap_compare(ModelTreeApp("entire_model.pth"), terminal_size=(80, 24),
                        run_before=run_before)
