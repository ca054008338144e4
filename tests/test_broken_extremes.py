"""Valid-but-extreme files open: billion laughs (bounded output), 400-deep modules, 50k
tensors, both in the CLI and in the app; the app refuses a hash bomb with a dialog.

CLI cases run the real CLI in a child process (`python -m tui`), with a 30 s timeout as a
hang guard (not a timing assertion).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from app_support import SIZE, loaded, sync
from broken_support import CASES, deep_model, make_base_dir, run_cli, save_torch


@pytest.fixture(scope="module")
def base_dir():
    d = make_base_dir()
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_billion_laughs_output_stays_small(base_dir):
    """60-deep shared lists (2**60 leaves if expanded): --json/--print show a bounded tree."""
    folder = base_dir / "laughs_out"
    folder.mkdir()
    path = CASES["laughs_list"][0](folder)
    for flag in ("--json", "--print"):
        r = run_cli([flag, str(path)], folder)
        assert r.returncode == 0 and len(r.stdout) < 200_000, (flag, len(r.stdout))
    assert "same object as" in r.stdout


@pytest.fixture(scope="module")
def deep_files(base_dir) -> dict[str, Path]:
    folder = base_dir / "deep_models"
    folder.mkdir()
    return {"deep": save_torch(deep_model(), folder / "deep.pth"),
            "deep_legacy": save_torch(deep_model(), folder / "deep_legacy.pth",
                                 _use_new_zipfile_serialization=False)}


@pytest.mark.parametrize("name", ["deep", "deep_legacy"])
def test_400_level_module_nesting(name, deep_files):
    path = deep_files[name]
    r = run_cli(["--json", str(path)], path.parent)
    assert r.returncode == 0 and r.stderr == "", r.stderr[-300:]
    doc = json.loads(r.stdout)
    assert len(doc["modules"]) == 401 and doc["totals"]["parameters"] == 6
    assert doc["modules"][-1]["name"] == ".".join(["0"] * 400)
    r = run_cli(["--print", str(path)], path.parent)
    assert r.returncode == 0 and "RecursionError" not in r.stderr and "Total params: 6" in r.stdout


def test_50k_tensors_open(base_dir):
    import torch

    folder = base_dir / "many"
    folder.mkdir()
    path = save_torch({f"layers.{i}.weight": torch.zeros(1) for i in range(50_000)}, folder / "many.pth")
    r = run_cli(["--scan", str(path)], folder)
    assert r.returncode == 0 and r.stderr == "" and "clean" in r.stdout


# -- the app ----------------------------------------------------------------------------------
@sync
async def test_app_refuses_a_hash_bomb_with_a_dialog_and_stays_usable(base_dir):
    from tui.app import ModelTreeApp
    from tui.screens.error import ErrorScreen
    from tui.screens.help import HelpScreen

    folder = base_dir / "app_bomb"
    folder.mkdir()
    path = CASES["laughs_tuple_key"][0](folder)
    app = ModelTreeApp(str(path))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        assert isinstance(app.screen, ErrorScreen)
        assert "billion laughs" in app.screen.message and "\n" not in app.screen.message
        await pilot.press("escape", "question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape", "q")
    assert app.return_code == 1


@sync
async def test_app_shows_billion_laughs_values_bounded(base_dir):
    from tui.app import ModelTreeApp
    from tui.widgets.value_tree import ValueTree

    folder = base_dir / "app_laughs"
    folder.mkdir()
    path = CASES["laughs_list"][0](folder)
    app = ModelTreeApp(str(path))
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        assert screen.mf is not None and screen.mf.root is None  # values only
        values = screen.query_one(ValueTree)
        assert app.focused is values
        levels = 8
        await pilot.press(*["down", "enter"] * levels)  # open the first list, 8 levels down
        lines = [line.node for line in values._tree_lines]
        # each level adds its two items; the second is the first again, shown as a leaf
        assert len(lines) == 2 + 2 * levels
        seconds = [n for n in lines if str(n.label).startswith("1: ")]
        assert len(seconds) == levels
        assert all("same object as" in str(n.label) and not n.allow_expand for n in seconds)
        assert values.cursor_node is lines[levels] and values.cursor_node.data.path == ".".join(
            ["laughs"] + ["0"] * (levels - 1))  # on the last list opened
        # the whole content, 2**60 leaves if shared lists were copied, is a few nodes
        assert _count(screen.mf.values) < 500
        await pilot.press("q")


def _count(node) -> int:
    return 1 + sum(_count(c) for c in node.children)


@sync
async def test_app_opens_400_level_nesting(deep_files):
    from tui.app import ModelTreeApp
    from tui.widgets.module_tree import ModuleTree

    app = ModelTreeApp(str(deep_files["deep"]))
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        assert screen.mf is not None and len(screen.mf.modules) == 401
        await pilot.press("e", "end")  # expand everything, go to the deepest module
        tree = screen.query_one(ModuleTree)
        assert len(tree._tree_lines) == 401
        assert tree.module is not None and tree.module.name == ".".join(["0"] * 400)
        assert tree.module.type == "torch.nn.modules.linear.Linear"
        await pilot.press("q")
