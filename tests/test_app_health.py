"""The values in the real app: enter / i on a table row, the health check key and command."""

from __future__ import annotations

import warnings

import pytest
import torch
from app_support import SIZE, loaded, sync
from textual.command import CommandList
from values_support import check, reference

from tui.app import ModelTreeApp
from tui.screens.health_check import HealthCheck
from tui.screens.tensor_view import TensorView
from tui.widgets.module_tree import FLAG_MARK
from tui.widgets.value_grid import ValueGrid


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp("health")
    m = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(),
                            torch.nn.Sequential(torch.nn.Linear(16, 4), torch.nn.LayerNorm(4)))
    with torch.no_grad():
        m[2][0].weight[1, 3] = float("nan")
        m[2][1].bias[0] = float("inf")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save(m, d / "nan.pth")
    return m, str(d / "nan.pth")


async def settle(pilot) -> None:
    for _ in range(4):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


def label_text(tree, name: str) -> str:
    tnode = tree.loaded[name]
    return tree.render_label(tnode, tree.rich_style, tree.rich_style).plain


@sync
async def test_enter_on_a_table_row_opens_the_tensor_view_and_caches(model):
    m, path = model
    app = ModelTreeApp(path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        assert not screen.check_action("inspect", ())  # the tree has focus: no tensor row
        await pilot.press("tab")
        assert screen.check_action("inspect", ())
        await pilot.press("enter")  # the first row: 0.weight
        await settle(pilot)
        view = app.screen
        assert isinstance(view, TensorView) and view.tensor.name == "0.weight"
        check(view.stats, reference(m[0].weight.detach()))
        assert view.query_one(ValueGrid).cell(0, 0) is not None
        await pilot.press("escape")
        assert app.screen is screen
        await pilot.press("down", "i")  # i works too; 0.bias
        await settle(pilot)
        assert app.screen.tensor.name == "0.bias"
        await pilot.press("escape", "up", "enter")  # back to 0.weight: from the cache
        assert app.screen.state == "done" and app.screen.stats is screen.value_cache.stats[
            app.screen.tensor.uid]


@sync
async def test_health_check_marks_tensors_and_modules(model):
    _, path = model
    app = ModelTreeApp(path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await loaded(pilot)
        assert FLAG_MARK not in label_text(screen.mtree, "")
        await pilot.press("H")
        await settle(pilot)
        assert not isinstance(app.screen, HealthCheck)
        health = screen.value_cache.health
        bad = {t.name for t in screen.mf.tensors if t.uid in health.bad}
        assert bad == {"2.0.weight", "2.1.bias"}
        assert health.modules == {"", "2", "2.0", "2.1"}
        assert FLAG_MARK in label_text(screen.mtree, "") and FLAG_MARK in label_text(screen.mtree, "2")
        assert FLAG_MARK not in label_text(screen.mtree, "0")
        notes = {str(screen.table.get_row_at(i)[1]): str(screen.table.get_row_at(i)[5])
                 for i in range(screen.table.row_count)}
        assert "NaN/Inf" in notes["2.0.weight"] and "NaN/Inf" in notes["2.1.bias"]
        assert "NaN/Inf" not in notes["0.weight"]


@sync
async def test_health_check_from_the_command_palette(model):
    _, path = model
    app = ModelTreeApp(path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await loaded(pilot)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"health check")
        options = app.screen.query_one(CommandList)
        for _ in range(100):  # the palette searches in a worker: wait for its hit (bounded)
            if options.option_count and "Health check" in str(options.get_option_at_index(0).prompt):
                break
            await pilot.pause(0.02)
        await pilot.press("down", "enter")
        await settle(pilot)
        assert screen.value_cache is not None and screen.value_cache.health is not None
        assert len(screen.value_cache.health.bad) == 2
