"""Opening another file: `o`, the folder tree of model files, the prompt for unsaved
changes, and `modeltree` with no file (the picker in the working folder)."""

from __future__ import annotations

from pathlib import Path

import pytest
from app_support import SIZE, copy_to, loaded, sync
from textual.widgets import DirectoryTree, Input
from torch_models import build_article_full_model, build_tied_weights

from tui.app import ModelTreeApp
from tui.cli import main
from tui.screens.open_file import ModelFileTree, OpenFileScreen
from tui.screens.quit import QuitScreen


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("open")
    build_article_full_model(d)
    build_tied_weights(d)
    (d / "notes.txt").write_text("not a model")
    (d / "sub").mkdir()
    (d / ".hidden").mkdir()
    (d / "sub" / "w.safetensors").write_bytes(b"")
    return d


async def listed(pilot) -> list[str]:
    """The names the picker shows at the top level, once it has read the folder."""
    tree = pilot.app.screen.query_one(ModelFileTree)
    for _ in range(100):
        if tree.root.children:
            break
        await pilot.pause()
    return [str(n.label) for n in tree.root.children]


async def pick(pilot, name: str) -> None:
    tree = pilot.app.screen.query_one(ModelFileTree)
    await listed(pilot)
    node = next(n for n in tree.root.children if str(n.label).endswith(name))
    tree.move_cursor(node)
    await pilot.press("enter")
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


@sync
async def test_o_shows_folders_and_model_files_and_opens_one(folder):
    app = ModelTreeApp(str(folder / "article_full.pth"))
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        first = screen.mf
        await pilot.press("o")
        assert isinstance(app.screen, OpenFileScreen)
        names = await listed(pilot)
        assert names == ["sub", "article_full.pth", "tied.pth"]  # no notes.txt, no .hidden
        await pick(pilot, "tied.pth")
        screen = await loaded(pilot)
        assert not isinstance(app.screen, OpenFileScreen)
        assert screen.mf is not first and screen.path.endswith("tied.pth")
        assert {n.name for n in screen.mf.root.walk()} == {"", "embed", "head"}
        assert "tied.pth" in str(app.query_one("#info").render())


@sync
async def test_unsaved_changes_prompt_before_switching(folder, tmp_path):
    src = copy_to(folder / "article_full.pth", tmp_path)
    app = ModelTreeApp(str(src))
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        await pilot.press("end", "space", "o")
        assert isinstance(app.screen, QuitScreen)
        assert app.screen.changed == ["fc.weight", "fc.bias"]
        await pilot.press("escape")  # stay
        assert not isinstance(app.screen, QuitScreen) and screen.editor.dirty
        await pilot.press("o", "y")  # open anyway
        assert isinstance(app.screen, OpenFileScreen)


@sync
async def test_typed_path_opens_a_file(folder):
    app = ModelTreeApp(str(folder / "article_full.pth"))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("o", "tab")
        field = app.screen.query_one("#where", Input)
        assert app.screen.focused is field
        field.value = str(folder / "tied.pth")
        await pilot.press("enter")
        screen = await loaded(pilot)
        assert screen.path == str(folder / "tied.pth")


@sync
async def test_no_file_starts_on_the_picker_in_the_working_folder(folder, monkeypatch):
    monkeypatch.chdir(folder)
    app = ModelTreeApp(None)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, OpenFileScreen)
        tree = app.screen.query_one(DirectoryTree)
        assert Path(tree.path).resolve() == folder.resolve()
        await pick(pilot, "article_full.pth")
        screen = await loaded(pilot)
        assert screen.mf is not None and screen.mf.root is not None


@sync
async def test_no_file_and_escape_quits(folder, monkeypatch):
    monkeypatch.chdir(folder)
    app = ModelTreeApp(None)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
    assert app.return_code == 0


def test_cli_headless_without_a_file_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--print"])
    assert exit_.value.code == 2
    assert "a file is required" in capsys.readouterr().err
