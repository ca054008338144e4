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


def test_main_screen(snap_compare, here):
    async def run_before(pilot) -> None:
        await _steady(pilot)
        await pilot.press("down", "space", "down", "right")
        await _steady(pilot)

    assert snap_compare(ModelTreeApp("entire_model.pth"), terminal_size=SIZE,
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
