"""Checkpoint surgery from the keyboard: rename (dialog prefilled from the selection),
drop/restore, extract, the dtype in the save dialog; undoable, shown before saving."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from app_support import SIZE, copy_to, loaded, sync, tree_lines
from save_support import same_bits
from textual.widgets import Input
from torch_models import build_article_full_model, build_data_parallel_state_dict

from tui.app import ModelTreeApp
from tui.screens.rename_dialog import RenameDialog
from tui.screens.save_dialog import SaveDialog


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("surgery_app")
    return {"article": build_article_full_model(d).path,
            "dp": build_data_parallel_state_dict(d).path}


def table_notes(main) -> list[str]:
    return [str(main.table.get_row_at(i)[-1]) for i in range(main.table.row_count)]


async def _save(app, pilot, path: Path, fmt: str, dtype: str | None = None) -> None:
    await pilot.press("s")
    assert isinstance(app.screen, SaveDialog)
    app.screen.query_one(f"#{fmt}").value = True
    if dtype:
        app.screen.query_one(f"#{dtype}").value = True
    app.screen.query_one("#path", Input).value = str(path)
    await pilot.press("enter")
    await app.workers.wait_for_complete()
    await pilot.pause()


@sync
async def test_rename_dialog_prefilled_and_undoable(built, tmp_path):
    src = copy_to(built["dp"], tmp_path)
    app = ModelTreeApp(str(src))
    async with app.run_test(size=SIZE) as pilot:
        main = await loaded(pilot)
        await pilot.press("down", "r")  # the `module` node
        assert isinstance(app.screen, RenameDialog)
        assert app.screen.query_one("#old", Input).value == "module."
        app.screen.query_one("#new", Input).value = ""
        await pilot.press("enter")
        assert main.editor.surgery.renames == (("module.", ""),)
        assert tree_lines(main)[1] == "? module 212 → (top level)"
        assert any("→ net.0.weight" in n for n in table_notes(main))
        await pilot.press("ctrl+z")
        assert main.editor.surgery.empty and "→" not in tree_lines(main)[1]
        await pilot.press("ctrl+y")
        await _save(app, pilot, tmp_path / "plain.pth", "state_dict", "bfloat16")
        assert main.editor.surgery.dtype == "bfloat16"  # the dialog's cast is an edit too
        await pilot.press("ctrl+z")
        assert main.editor.surgery.dtype is None and main.editor.surgery.renames
    sd = torch.load(tmp_path / "plain.pth", weights_only=True)
    ref = torch.load(built["dp"], weights_only=True)
    assert list(sd) == [k[len("module."):] for k in ref]
    assert all(same_bits(sd[k[7:]], v.to(torch.bfloat16)) for k, v in ref.items())


@sync
async def test_drop_restore_and_extract(built, tmp_path):
    src = copy_to(built["article"], tmp_path)
    app = ModelTreeApp(str(src))
    async with app.run_test(size=SIZE) as pilot:
        main = await loaded(pilot)
        await pilot.press("end", "d")  # drop fc
        assert main.editor.surgery.drops == ("fc",)
        assert tree_lines(main)[-1].endswith("✗ dropped")
        assert all(n.startswith("✗ not saved") for n in table_notes(main))
        await pilot.press("d")  # restore
        assert main.editor.surgery.empty and not tree_lines(main)[-1].endswith("dropped")
        await pilot.press("home", "down", "down", "x")  # extract layer1
        assert main.editor.surgery.extract == "layer1"
        assert "✗ not extracted" in tree_lines(main)[1]
        await _save(app, pilot, tmp_path / "layer1.pth", "full")
        assert not isinstance(app.screen, SaveDialog)
        await pilot.press("ctrl+z")
        assert main.editor.surgery.empty
        await pilot.press("end", "d")
        await _save(app, pilot, tmp_path / "nofc.safetensors", "safetensors")
    ref = torch.load(built["article"], weights_only=False)
    got = torch.load(tmp_path / "layer1.pth", weights_only=False)
    assert type(got) is type(ref.layer1)
    assert all(same_bits(got.state_dict()[k], v) for k, v in ref.layer1.state_dict().items())
    from safetensors.torch import load_file

    assert sorted(load_file(str(tmp_path / "nofc.safetensors"))) == sorted(
        k for k in ref.state_dict() if not k.startswith("fc."))


@sync
async def test_full_model_refuses_rename_in_the_dialog(built, tmp_path):
    src = copy_to(built["article"], tmp_path)
    app = ModelTreeApp(str(src))
    async with app.run_test(size=SIZE) as pilot:
        main = await loaded(pilot)
        await pilot.press("end", "d")
        assert main.editor.surgery.drops == ("fc",)
        await pilot.press("s")
        app.screen.query_one("#path", Input).value = str(tmp_path / "x.pth")
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, SaveDialog)
        assert "drop can't apply to a full model" in str(app.screen.query_one("#error").render())
    assert not (tmp_path / "x.pth").exists()


@sync
async def test_quit_asks_about_unsaved_surgery(built, tmp_path):
    from tui.screens.quit import QuitScreen

    app = ModelTreeApp(str(copy_to(built["dp"], tmp_path)))
    async with app.run_test(size=SIZE) as pilot:
        main = await loaded(pilot)
        await pilot.press("down", "right", "down", "right", "down", "d")  # drop module.net.0
        assert main.editor.dirty
        await pilot.press("q")
        assert isinstance(app.screen, QuitScreen)
        text = " ".join(str(s.render()) for s in app.screen.query(".message"))
        assert "not saved yet: drop module.net.0" in text and "0 tensor(s)" not in text
