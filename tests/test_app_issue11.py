"""Issue 11 in the app: layer settings and makeup in the node pane, devices in the banner,
tied-weight reach, every filter match at once, unsaved counted from the last save, help's
freeze-plan snippet. (The save dialog: test_app_save_memory.py; opening files:
test_app_open.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from app_support import SIZE, copy_to, loaded, sync
from textual.widgets import Input
from torch_builders_formats import build_cuda_saved
from torch_models import build_article_full_model, build_tied_weights

from tui.app import ModelTreeApp
from tui.screens.help import HelpScreen
from tui.screens.quit import QuitScreen
from tui.screens.save_dialog import SaveDialog
from tui.widgets.node_info import NodeInfo
from tui.widgets.warning_banner import WarningBanner


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("issue11")
    return {"article": build_article_full_model(d).path, "tied": build_tied_weights(d).path,
            "cuda": build_cuda_saved(d).path}


def pane(app: ModelTreeApp) -> str:
    return str(app.query_one(NodeInfo).render())


def notes(app: ModelTreeApp) -> list[str]:
    return [n.message for n in app._notifications]


@sync
async def test_node_pane_shows_settings_attributes_share_and_dtypes(files):
    app = ModelTreeApp(str(files["article"]))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await pilot.press("end")  # fc
        text = pane(app)
        assert "fc  Linear(in_features=576, out_features=10, bias=True)" in text
        assert "15 % of the model's parameters" in text  # 5,770 of 37,738
        assert "f32 100 %" in text
        assert "5,770 params (5.8K)" in text
        await pilot.press("home", "down", "right", "down")  # sequential.0: a Conv2d
        text = pane(app)
        assert "Conv2d(1, 16, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))" in text
        assert "attributes: in_channels=1, out_channels=16" in text  # what print() leaves out
        await pilot.press("home")
        assert "of the model's parameters" not in pane(app)  # the root is all of it


@sync
async def test_banner_names_the_gpu_and_map_location(files):
    app = ModelTreeApp(str(files["cuda"]))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        banner = app.query_one(WarningBanner)
        assert banner.display
        text = str(banner.render())
        assert "saved on cuda:0" in text and "map_location='cpu'" in text
        assert "store every tensor as CPU" in text


@sync
async def test_tied_edit_names_the_other_module(files):
    app = ModelTreeApp(str(files["tied"]))
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        await pilot.press("down")  # embed
        assert screen.mtree.module.name == "embed"
        await pilot.press("f")
        said = [n for n in notes(app) if "also changed" in n]
        assert said == ["freeze embed also changed head: it shares a tied tensor with the "
                        "selection"]
        await pilot.press("down", "u")  # head: its tensor is embed's too
        assert any("unfreeze head also changed embed" in n for n in notes(app))


@sync
async def test_untied_edit_says_nothing_more(files):
    app = ModelTreeApp(str(files["article"]))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("end", "f")
        assert not [n for n in notes(app) if "also changed" in n]


@sync
async def test_one_key_freezes_every_filter_match_and_one_undo_restores(files):
    app = ModelTreeApp(str(files["article"]))
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        mf = screen.mf
        before = {t.name: t.requires_grad for t in mf.parameters()}
        assert not screen.check_action("toggle_matches", ())  # no filter: hidden
        await pilot.press("slash", *"conv", "enter")
        assert screen.check_action("toggle_matches", ())
        convs = [n for n in screen.matching_modules()]
        assert [n.name for n in convs] == ["sequential.0", "layer1.0", "layer2.0"]
        await pilot.press("m")  # all frozen already (the article model): unfreeze them all
        conv_params = {t.name for n in convs for _, t in n.params}
        assert all(t.requires_grad for t in mf.parameters() if t.name in conv_params)
        assert all(t.requires_grad == before[t.name] for t in mf.parameters()
                   if t.name not in conv_params)  # nothing else moved
        await pilot.press("m")  # now all trainable: freeze them all
        assert all(t.requires_grad is False for t in mf.parameters() if t.name in conv_params)
        await pilot.press("ctrl+z")
        assert all(t.requires_grad for t in mf.parameters() if t.name in conv_params)
        await pilot.press("ctrl+z")  # one undo per key press
        assert {t.name: t.requires_grad for t in mf.parameters()} == before
        assert not screen.editor.dirty


@sync
async def test_toggle_matches_in_the_palette_while_filtering(files):
    from tui.commands import ModelCommands

    app = ModelTreeApp(str(files["article"]))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("slash", *"bn", "enter")
        titles = [hit.text async for hit in ModelCommands(app.screen).discover()]
        assert "Freeze / unfreeze filter matches" in titles


@sync
async def test_quit_counts_changes_since_the_last_save(files, tmp_path):
    src = copy_to(files["article"], tmp_path, "m.pth")
    app = ModelTreeApp(str(src))
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        await pilot.press("end", "space", "s")  # freeze fc, save the full model
        assert isinstance(app.screen, SaveDialog)
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not screen.editor.dirty
        await pilot.press("up", "space")  # unfreeze layer2 after the save
        await pilot.press("q")
        assert isinstance(app.screen, QuitScreen)
        assert sorted(app.screen.changed) == ["layer2.0.bias", "layer2.0.weight",
                                              "layer2.1.bias", "layer2.1.weight"]
        assert "4 tensors changed requires_grad since the last save" in str(
            app.screen.query_one(".message").render())


@sync
async def test_help_shows_the_freeze_plan_snippet(files):
    from tui.core.write.freeze_plan import load_snippet

    app = ModelTreeApp(str(files["article"]))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        code = [str(s.render()) for s in app.screen.query(".code")]
        assert code[0] == load_snippet().rstrip()
        assert "model.named_parameters()" in code[1]
        shown = " ".join(str(s.render()) for s in app.screen.query("Static"))
        assert "the article's" not in shown  # help speaks for itself


@sync
async def test_filter_field_keeps_m_as_text(files):
    app = ModelTreeApp(str(files["article"]))
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        await pilot.press("slash", *"fc", "m")  # still typing: m is a letter
        assert app.query_one("#filter", Input).value == "fcm"
        assert not screen.editor.dirty


def test_load_snippet_applies_a_plan_and_the_readme_shows_it(tmp_path):
    import json

    import torch

    from tui.core.write.freeze_plan import load_snippet

    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1))
    plan = tmp_path / "w.freeze.json"
    plan.write_text(json.dumps({"modeltree_freeze_plan": 1, "trainable": {
        "0.weight": False, "0.bias": False, "1.weight": True}}))
    exec(load_snippet(str(plan)), {"model": model})  # the snippet as help shows it
    assert {n: p.requires_grad for n, p in model.named_parameters()} == {
        "0.weight": False, "0.bias": False, "1.weight": True, "1.bias": True}
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert load_snippet() in readme


@sync
async def test_node_pane_follows_an_edit(files):
    app = ModelTreeApp(str(files["article"]))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("down")  # sequential: frozen in the article model
        assert "○ frozen" in pane(app)
        await pilot.press("space")
        assert "● trainable" in pane(app)


@sync
async def test_filter_edit_names_tied_modules_outside_the_matches(files):
    app = ModelTreeApp(str(files["tied"]))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("slash", *"head", "enter", "m")
        assert any("matching “head” also changed embed" in n for n in notes(app))
