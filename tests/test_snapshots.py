"""How the app looks (SVG snapshots, pytest-textual-snapshot). Update with --snapshot-update
after checking the new pictures by eye. Paths are relative (chdir) so pictures are stable."""

from __future__ import annotations

from pathlib import Path

import pytest
from app_support import copy_to, loaded
from textual.widgets import Input
from torch_models import build_article_full_model

from tui.app import ModelTreeApp

SIZE = (100, 30)


@pytest.fixture(scope="module")
def article_src(tmp_path_factory) -> Path:
    return build_article_full_model(tmp_path_factory.mktemp("snap")).path


@pytest.fixture
def here(article_src, tmp_path, monkeypatch) -> Path:
    copy_to(article_src, tmp_path, "entire_model.pth")
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
