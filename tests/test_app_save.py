"""The save dialog: the whole open → move → space → s → enter flow, formats, failures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from app_support import SIZE, copy_to, loaded, sync
from textual.widgets import Checkbox, Input, RadioButton, RadioSet, Static
from torch_models import build_article_full_model, build_article_state_dict

from tui.app import ModelTreeApp
from tui.screens.confirm import ConfirmScreen
from tui.screens.save_dialog import SaveDialog
from tui.widgets.module_tree import ModuleTree


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("save")
    return {"article": build_article_full_model(d).path,
            "state_dict": build_article_state_dict(d).path}


@pytest.fixture
def article(built, tmp_path) -> Path:
    return copy_to(built["article"], tmp_path, "entire_model.pth")


def dialog_error(app: ModelTreeApp) -> str:
    error = app.screen.query_one("#error", Static)
    return str(error.render()) if error.display else ""


def marks(dialog: SaveDialog) -> dict[str, str]:
    """The glyph inside each format button and checkbox: their state without colour."""
    return {b.id or "": str(b.render())[1] for b in dialog.query(RadioButton)} | {
        b.id or "": str(b.render())[1] for b in dialog.query(Checkbox)}


@sync
async def test_move_space_s_enter_writes_the_flags(article):
    app = ModelTreeApp(str(article))
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        await pilot.press("down", "space", "s")  # unfreeze `sequential`, open the dialog
        assert isinstance(app.screen, SaveDialog)
        path = app.screen.query_one("#path", Input)
        assert app.screen.focused is path
        assert path.value == str(article.parent / "entire_model.frozen.pth")
        assert app.screen.query_one("#full").value  # full model preselected for a full model
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not isinstance(app.screen, SaveDialog)
        assert not screen.editor.dirty  # a full model keeps requires_grad: nothing unsaved
        assert "modified" not in str(app.query_one("#info").render())
    out = article.parent / "entire_model.frozen.pth"
    model = torch.load(out, weights_only=False)  # a file this test built: safe to run
    got = {n: p.requires_grad for n, p in model.named_parameters()}
    assert got["sequential.0.weight"] and got["sequential.1.bias"]
    assert not got["layer1.0.weight"] and not got["layer2.1.weight"]
    assert got["fc.weight"] and got["fc.bias"]


async def settled(pilot, done) -> None:
    """Pause until `done()` (keys queued at once take a few rounds); the bound only stops a
    hang, it times nothing: if `done()` never holds, the test's assertions fail."""
    for _ in range(200):
        if done():
            return
        await pilot.pause()


# "q s": save from the quit prompt, where the dialog opens from the prompt's callback.
@pytest.mark.parametrize("keys", ["down space s", "down space q s"])
@sync
async def test_text_typed_right_after_s_lands_in_the_path_field(article, keys):
    from textual import events

    app = ModelTreeApp(str(article))
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        # all queued before any is handled, as when a terminal delivers "sxy" at once: the
        # "s" binding runs after "x" and "y" were already sent to the tree
        for key in [*keys.split(), "x", "y"]:
            app.post_message(events.Key(key, {"space": " ", "down": None}.get(key, key)))
        want = str(article.parent / "entire_model.frozen.pthxy")
        await settled(pilot, lambda: [f.value for f in app.screen.query("#path")] == [want])
        assert isinstance(app.screen, SaveDialog) and screen.editor.dirty
        path = app.screen.query_one("#path", Input)
        assert app.screen.focused is path
        assert path.value == want
        assert screen.query_one(ModuleTree).module.name == "sequential"  # "down" came first


@sync
async def test_missing_folder_message_in_dialog_and_nothing_written(article, tmp_path):
    app = ModelTreeApp(str(article))
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        await pilot.press("space", "s")
        target = tmp_path / "no" / "such" / "dir" / "out.pth"
        app.screen.query_one("#path", Input).value = str(target)
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, SaveDialog)  # still open, the typed path kept
        assert app.screen.query_one("#path", Input).value == str(target)
        assert "Not saved" in dialog_error(app)
        assert screen.editor.dirty
        assert app.screen.focused is app.screen.query_one("#path", Input)
    assert not (tmp_path / "no").exists()
    assert sorted(os.listdir(tmp_path)) == ["entire_model.pth"]


@sync
async def test_folder_that_is_a_file_message_in_dialog(article, tmp_path):
    # (a read-only folder is no test here: CI runs as root, which writes anywhere)
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file, not a folder")
    app = ModelTreeApp(str(article))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("s")
        app.screen.query_one("#path", Input).value = str(blocker / "out.pth")
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, SaveDialog) and "Not saved" in dialog_error(app)
    assert blocker.read_text() == "a file, not a folder"
    assert sorted(os.listdir(tmp_path)) == ["entire_model.pth", "notes.txt"]


@sync
async def test_existing_target_asks_before_overwriting(article, tmp_path):
    target = tmp_path / "taken.pth"
    target.write_bytes(b"precious")
    app = ModelTreeApp(str(article))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("s")
        path = app.screen.query_one("#path", Input)
        path.value = str(target.parent) + "x"
        # typed keys reach the field, not the app's bindings ("s", "q", "/" included)
        await pilot.press("backspace", "slash", *"taken.pth")
        assert path.value == str(target)
        await pilot.press("enter")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")  # keep it
        assert isinstance(app.screen, SaveDialog)
        assert target.read_bytes() == b"precious"
        await pilot.press("enter")
        await pilot.press("y")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not isinstance(app.screen, SaveDialog)
    assert target.read_bytes() != b"precious"


@sync
async def test_escape_cancels_and_writes_nothing(article, tmp_path):
    app = ModelTreeApp(str(article))
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        await pilot.press("space", "s", "escape")
        assert not isinstance(app.screen, SaveDialog) and screen.editor.dirty
    assert sorted(os.listdir(tmp_path)) == ["entire_model.pth"]


@sync
async def test_format_choice_updates_text_path_and_plan_checkbox(article, tmp_path):
    app = ModelTreeApp(str(article))
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        await pilot.press("end", "space", "s")  # freeze fc
        dialog = app.screen
        describe = dialog.query_one("#describe", Static)
        assert str(describe.render()).startswith("Keeps the architecture")
        assert dialog.query_one("#plan", Checkbox).disabled
        cast = {"stored": "●", "float16": "○", "bfloat16": "○", "float32": "○"}  # as stored
        assert marks(dialog) == {"full": "●", "state_dict": "○", "safetensors": "○", "plan": " "} | cast
        await pilot.press("tab")
        assert isinstance(dialog.focused, RadioSet)
        await pilot.press("right", "right")  # the arrows pick: safetensors
        assert dialog.fmt == "safetensors"
        assert dialog.query_one("#path", Input).value.endswith("entire_model.frozen.safetensors")
        assert str(describe.render()).startswith("Keeps every weight by name")
        plan = dialog.query_one("#plan", Checkbox)
        assert not plan.disabled
        # edited, and safetensors can't keep requires_grad: the plan is ticked for the user
        assert marks(dialog) == {"full": "○", "state_dict": "○", "safetensors": "●", "plan": "X"} | cast
        await pilot.press("enter")  # saves from the format list
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not isinstance(app.screen, SaveDialog)
        assert not screen.editor.dirty  # the freeze plan keeps the flags
    names = sorted(os.listdir(tmp_path))
    assert "entire_model.frozen.safetensors" in names
    assert any(n.endswith(".freeze.json") for n in names)


@sync
async def test_state_dict_without_plan_stays_marked_unsaved(built, tmp_path):
    src = copy_to(built["state_dict"], tmp_path, "weights.pth")
    app = ModelTreeApp(str(src))
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        await pilot.press("end", "space", "s")
        dialog = app.screen
        assert dialog.query_one("#state_dict").value and dialog.query_one("#full").disabled
        dialog.query_one("#plan", Checkbox).value = False  # (ticked by default after an edit)
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not isinstance(app.screen, SaveDialog)
        # state_dict drops requires_grad: the freeze edit is still not on disk anywhere
        assert screen.editor.dirty
    sd = torch.load(tmp_path / "weights.frozen.pth", weights_only=True)
    assert set(sd) >= {"fc.weight", "layer1.0.weight"}


@sync
async def test_quit_prompt_save_then_quits(article):
    app = ModelTreeApp(str(article))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("down", "space", "q", "s")
        assert isinstance(app.screen, SaveDialog)
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.return_code == 0
    assert (article.parent / "entire_model.frozen.pth").exists()


@sync
async def test_progress_bar_follows_the_writer_and_escape_waits(article, monkeypatch):
    import asyncio
    import threading

    from textual.widgets import ProgressBar

    from tui.core.write import save as saving

    reached, release = threading.Event(), threading.Event()
    real = saving.save

    def held_save(mf, out, fmt=None, *, progress=None, **kwargs):
        progress(25, 100)
        reached.set()
        release.wait(30)
        return real(mf, out, fmt, progress=progress, **kwargs)

    monkeypatch.setattr(saving, "save", held_save)
    app = ModelTreeApp(str(article))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("s", "enter")
        assert await asyncio.to_thread(reached.wait, 30)
        await pilot.pause()
        bar = app.screen.query_one("#progress", ProgressBar)
        assert bar.display and bar.total == 100 and bar.progress == 25
        await pilot.press("escape")  # can't cancel half a write: the dialog stays
        assert isinstance(app.screen, SaveDialog)
        release.set()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not isinstance(app.screen, SaveDialog)
    assert (article.parent / "entire_model.frozen.pth").exists()
