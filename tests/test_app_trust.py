"""The app side of issue 10: a folder of models opens a picker; a suspicious file's banner
offers the way out; TorchScript opens without torch running anything."""

from __future__ import annotations

from pathlib import Path

from app_support import SIZE, copy_to, loaded, sync

from tui.app import ModelTreeApp
from tui.screens.file_picker import FilePicker
from tui.widgets.warning_banner import WarningBanner

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_models"


async def _picker(pilot) -> FilePicker:
    await pilot.app.workers.wait_for_complete()
    for _ in range(200):
        if isinstance(pilot.app.screen, FilePicker):
            break
        await pilot.pause()
    assert isinstance(pilot.app.screen, FilePicker)
    return pilot.app.screen


@sync
async def test_folder_of_models_opens_a_picker(tmp_path):
    folder = tmp_path / "models"
    for name in ("entire_model.pth", "weights_only.pth", "transformer.safetensors"):
        copy_to(SAMPLES / name, folder)
    app = ModelTreeApp(str(folder))
    async with app.run_test(size=SIZE) as pilot:
        picker = await _picker(pilot)
        assert [Path(p).name for p in picker.paths] == [
            "entire_model.pth", "transformer.safetensors", "weights_only.pth"]
        await pilot.press("down", "enter")
        screen = await loaded(pilot)
        assert screen.mf is not None and screen.mf.format == "safetensors"
        assert screen.mf.path.endswith("transformer.safetensors")


@sync
async def test_picker_cancelled_leaves_the_error(tmp_path):
    folder = tmp_path / "models"
    for name in ("entire_model.pth", "weights_only.pth"):
        copy_to(SAMPLES / name, folder)
    app = ModelTreeApp(str(folder))
    async with app.run_test(size=SIZE) as pilot:
        await _picker(pilot)
        await pilot.press("escape")
        screen = await loaded(pilot)
        assert screen.mf is None and "2 model files" in (screen.load_error or "")


@sync
async def test_danger_banner_says_the_way_out(tmp_path):
    from peer_payloads import corpus

    files = corpus(tmp_path, tmp_path / "MARKER")
    app = ModelTreeApp(str(files["zip_runpy._run_code"]))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await loaded(pilot)
        text = str(screen.query_one(WarningBanner).render())
        assert "runpy._run_code" in text and "state_dict and safetensors carry no code" in text
    assert not (tmp_path / "MARKER").exists()


@sync
async def test_app_opens_a_setstate_archive_without_running_it(tmp_path):
    import subprocess
    import sys

    marker = tmp_path / "TS_MARKER"
    path = tmp_path / "evil.pt"
    code = ("import sys, torch_builders_trust as tb; from pathlib import Path; "
            "tb.setstate_archive(Path(sys.argv[1]), Path(sys.argv[2]))")
    subprocess.run([sys.executable, "-c", code, str(path), str(marker)], check=True, timeout=120,
                   cwd=ROOT / "tests")
    app = ModelTreeApp(str(path))
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        assert screen.mf is not None and screen.mf.format == "torchscript"
        assert screen.query_one(WarningBanner).has_class("-danger")
    assert not marker.exists()


# -- the save dialog: targets and keep-code ---------------------------------------------------
@sync
async def test_dialog_extension_follows_the_format_and_safetensors_name_selects_it(tmp_path):
    from textual.widgets import Input, RadioButton

    from tui.screens.save_dialog import SaveDialog

    src = copy_to(SAMPLES / "entire_model.pth", tmp_path)
    app = ModelTreeApp(str(src))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("s")
        dialog = app.screen
        assert isinstance(dialog, SaveDialog)
        path = dialog.query_one("#path", Input)
        path.value = str(tmp_path / "mine.pth")  # an edited name
        await pilot.pause()
        await pilot.click("#safetensors")
        await pilot.pause()
        assert path.value == str(tmp_path / "mine.safetensors") and dialog.fmt == "safetensors"
        await pilot.click("#state_dict")
        await pilot.pause()
        assert path.value == str(tmp_path / "mine.pth") and dialog.fmt == "state_dict"
        path.value = str(tmp_path / "typed.safetensors")
        await pilot.pause()
        assert dialog.fmt == "safetensors" and dialog.query_one("#safetensors", RadioButton).value
        path.focus()
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
    from tui.core.read.reader import open_model

    assert open_model(str(tmp_path / "typed.safetensors")).format == "safetensors"


@sync
async def test_dialog_keeps_code_only_when_ticked(tmp_path):
    import torch
    from peer_payloads import Payload, retarget
    from textual.widgets import Checkbox, Static
    from torch import nn

    from tui.screens.save_dialog import SaveDialog

    marker = tmp_path / "MARKER"
    model = nn.Sequential(nn.Linear(2, 2))
    model.extra = Payload(f"touch {marker}")
    torch.save(model, tmp_path / "base.pth")
    src = retarget(tmp_path / "base.pth", tmp_path / "hostile.pth", "os", "system")
    app = ModelTreeApp(str(src))
    async with app.run_test(size=(100, 40)) as pilot:
        await loaded(pilot)
        await pilot.press("s")
        dialog = app.screen
        assert isinstance(dialog, SaveDialog)
        keep = dialog.query_one("#keep", Checkbox)
        assert "os.system" in str(keep.label) and not keep.disabled and not keep.value
        await pilot.press("enter")  # full model, not ticked: refused, nothing written
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "keep code" in str(dialog.query_one("#error", Static).render())
        assert not (tmp_path / "hostile.frozen.pth").exists()
        await pilot.click("#state_dict")
        await pilot.pause()
        assert keep.disabled  # a state_dict carries no code: nothing to keep
        await pilot.click("#full")
        await pilot.pause()
        keep.value = True
        await pilot.pause()
        dialog.query_one("#path").focus()
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not isinstance(app.screen, SaveDialog)
    assert (tmp_path / "hostile.frozen.pth").exists() and not marker.exists()
