"""Issue 11 in the save dialog: it remembers its choices, ticks the freeze plan when the
format would lose the edits, saves on enter from any control, says what each choice keeps
and drops, names its own controls in messages, and can store every tensor as CPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from app_support import SIZE, copy_to, loaded, sync
from textual.widgets import Button, Checkbox, Input, RadioSet, Static
from torch_builders_formats import build_cuda_saved, build_training_checkpoint
from torch_models import build_article_full_model, build_article_state_dict

from tui.app import ModelTreeApp
from tui.core.composition import devices
from tui.core.read.reader import open_model
from tui.screens.save_dialog import SaveDialog


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("memory")
    return {"article": build_article_full_model(d).path,
            "state_dict": build_article_state_dict(d).path,
            "cuda": build_cuda_saved(d).path, "ckpt": build_training_checkpoint(d).path}


def notes(app: ModelTreeApp) -> list[str]:
    return [n.message for n in app._notifications]


async def saved(pilot) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


@sync
async def test_dialog_remembers_path_and_format(built, tmp_path):
    src = copy_to(built["article"], tmp_path, "m.pth")
    app = ModelTreeApp(str(src))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("s", "tab", "right")  # state_dict
        dialog = app.screen
        assert dialog.fmt == "state_dict"
        path = dialog.query_one("#path", Input)
        path.value = str(tmp_path / "mine.pth")
        await pilot.press("escape")
        assert not isinstance(app.screen, SaveDialog)
        await pilot.press("s")
        dialog = app.screen
        assert dialog.fmt == "state_dict" and dialog.query_one("#state_dict").value
        assert dialog.query_one("#path", Input).value == str(tmp_path / "mine.pth")
        await pilot.press("enter")
        await saved(pilot)
        await pilot.press("s")  # after a save: the same path again (overwrite is asked)
        assert app.screen.query_one("#path", Input).value == str(tmp_path / "mine.pth")


@sync
async def test_plan_ticked_only_when_the_format_loses_edits(built, tmp_path):
    src = copy_to(built["state_dict"], tmp_path, "w.pth")
    app = ModelTreeApp(str(src))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("s")
        assert not app.screen.query_one("#plan", Checkbox).value  # nothing edited
        await pilot.press("escape", "end", "space", "s")
        assert app.screen.query_one("#plan", Checkbox).value  # edited, state_dict
        await pilot.press("enter")
        await saved(pilot)
    assert (tmp_path / "w.frozen.freeze.json").is_file()


@sync
async def test_enter_on_the_checkbox_saves_and_does_not_toggle(built, tmp_path):
    src = copy_to(built["state_dict"], tmp_path, "w.pth")
    app = ModelTreeApp(str(src))
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        await pilot.press("end", "space", "s")
        dialog = app.screen
        plan = dialog.query_one("#plan", Checkbox)
        plan.focus()
        await pilot.press("space")  # space ticks: off
        assert not plan.value
        await pilot.press("enter")  # enter saves, leaving the box as it is
        await saved(pilot)
        assert not isinstance(app.screen, SaveDialog)
        assert screen.editor.dirty  # saved without the plan
        warning = [n for n in notes(app) if "does not store requires_grad" in n]
        # a state_dict can't be saved as a full model: not suggested; the checkbox is named
        assert warning and "full model" not in warning[0]
        assert "tick 'also write the freeze plan'" in warning[0]
        assert not any("--freeze-plan" in n for n in notes(app))
    assert (tmp_path / "w.frozen.pth").is_file()
    assert not (tmp_path / "w.frozen.freeze.json").exists()


@sync
async def test_enter_on_cancel_cancels_and_format_list_saves(built, tmp_path):
    src = copy_to(built["article"], tmp_path, "m.pth")
    app = ModelTreeApp(str(src))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("s")
        app.screen.query_one("#cancel", Button).focus()
        await pilot.press("enter")
        assert not isinstance(app.screen, SaveDialog)
        await pilot.press("s", "tab")
        assert isinstance(app.screen.focused, RadioSet)
        await pilot.press("enter")
        await saved(pilot)
        assert not isinstance(app.screen, SaveDialog)
    assert (tmp_path / "m.frozen.pth").is_file()


@sync
async def test_dialog_says_what_a_checkpoint_save_drops(built, tmp_path):
    src = copy_to(built["ckpt"], tmp_path, "c.pth")
    app = ModelTreeApp(str(src))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("s")
        describe = app.screen.query_one("#describe", Static)
        text = str(describe.render())
        assert "Drops" in text and "epoch" in text and "optimizer_state_dict" in text
        assert "tick 'whole checkpoint'" in text
        app.screen.query_one("#whole", Checkbox).value = True
        await pilot.pause()
        assert "Keeps" in str(describe.render()) and "the rest of the checkpoint (epoch" in str(
            describe.render())


@sync
async def test_cpu_box_writes_a_file_plain_torch_load_reads(built, tmp_path):
    src = copy_to(built["cuda"], tmp_path, "g.pth")
    app = ModelTreeApp(str(src))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("s")
        cpu = app.screen.query_one("#cpu", Checkbox)
        assert not cpu.value  # off: the save changes only what the user changed
        assert "cuda:0" in str(cpu.label)
        assert "map_location" in str(app.screen.query_one("#describe", Static).render())
        cpu.value = True
        await pilot.pause()
        assert "plain torch.load works" in str(app.screen.query_one("#describe", Static).render())
        await pilot.press("enter")
        await saved(pilot)
        await pilot.press("s")  # remembered
        assert app.screen.query_one("#cpu", Checkbox).value
    out = tmp_path / "g.frozen.pth"
    assert devices(open_model(str(out))).non_cpu == []
    torch.load(out, weights_only=False)  # no map_location needed


@sync
async def test_no_cpu_box_for_a_cpu_file(built, tmp_path):
    app = ModelTreeApp(str(copy_to(built["article"], tmp_path, "m.pth")))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("s")
        assert not app.screen.query("#cpu")


@sync
async def test_an_existing_freeze_plan_is_asked_about_not_refused(built, tmp_path):
    from tui.screens.confirm import ConfirmScreen

    src = copy_to(built["state_dict"], tmp_path, "w.pth")
    (tmp_path / "w.frozen.freeze.json").write_text("{}")
    app = ModelTreeApp(str(src))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("end", "space", "s", "enter")  # the plan is ticked (edited)
        assert isinstance(app.screen, ConfirmScreen)
        assert "w.frozen.freeze.json exists" in app.screen.question
        await pilot.press("y")
        await saved(pilot)
        assert not isinstance(app.screen, SaveDialog)
    assert "trainable" in (tmp_path / "w.frozen.freeze.json").read_text()
