"""The app as a browser: start state, lazy tree, side pane, filter, values, errors, help."""

from __future__ import annotations

from pathlib import Path

import pytest
from app_support import SIZE, loaded, settled, sync, tree_lines
from textual.widgets import Input
from torch_models import (
    build_article_full_model,
    build_plain_dict,
    build_tied_weights,
    build_training_checkpoint,
)

from tui.app import ModelTreeApp
from tui.core.formats import SAVE_FORMATS
from tui.screens.error import ErrorScreen
from tui.screens.help import HelpScreen
from tui.screens.main_screen import MainScreen
from tui.widgets.module_tree import CHUNK, More, matches
from tui.widgets.node_info import NodeInfo


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("browse")
    return {"article": build_article_full_model(d).path, "tied": build_tied_weights(d).path,
            "plain": build_plain_dict(d).path, "ckpt": build_training_checkpoint(d).path}


@sync
async def test_start_state_tree_focused_root_selected_first_level_open(files):
    app = ModelTreeApp(str(files["article"]))
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        assert app.focused is screen.mtree
        assert screen.mtree.cursor_line == 0 and screen.mtree.module is screen.mf.root
        assert tree_lines(screen) == ["◐ (root) ConvNet 37.7K", "○ sequential Sequential 448",
                                   "○ layer1 Sequential 12.9K", "○ layer2 Sequential 18.6K",
                                   "● fc Linear 5.8K"]
        # lazy: grandchildren are not in the tree until their parent is opened
        assert "layer1.0" not in screen.mtree.loaded
        header = str(app.query_one("#info").render())
        assert "article_full.pth" in header and "full model" in header
        assert "37.7K params" in header and "15.3% trainable" in header


@sync
async def test_moving_fills_side_pane_with_parameters_and_buffers(files):
    app = ModelTreeApp(str(files["article"]))
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        await pilot.press("down")  # sequential
        table = screen.table
        names = [str(table.get_row_at(i)[1]) for i in range(table.row_count)]
        assert names == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                         "1.running_var", "1.num_batches_tracked"]
        flags = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
        assert flags[:4] == ["○ no"] * 4 and flags[4:] == ["buffer"] * 3
        info = str(app.query_one(NodeInfo).render())
        assert "torch.nn.modules.container.Sequential" in info and "○ frozen" in info
        await pilot.press("right")  # expands sequential, children added now
        assert "sequential.0" in screen.mtree.loaded
        assert "○ 0 Conv2d 416" in tree_lines(screen)


def shown_columns(screen: MainScreen) -> list[str]:
    """Keys of the table's columns, laid out for its pane (all of them fit by construction:
    the header line below checks they are drawn)."""
    return [c.key for c in screen.table.layout_columns]


@sync
async def test_small_terminal_table_shows_every_column(files):
    app = ModelTreeApp(str(files["article"]))
    async with app.run_test(size=SIZE) as pilot:  # 80 x 24
        screen = await loaded(pilot)
        await pilot.press("down")  # sequential: "1.num_batches_tracked" is a long name
        assert shown_columns(screen) == ["mark", "name", "shape", "dtype", "numel"]
        header = screen.table.line_text(0)
        assert header.split() == ["name", "shape", "dtype", "numel"]  # the mark: a glyph
        first = screen.table.line_text(1)
        assert first.split() == ["○", "0.weight", "[16,1,5,5]", "f32", "400"]  # compact forms
        assert "…" in screen.table.line_text(7) and "tracked" in screen.table.line_text(7)  # elided in the middle
        assert "· buffer" in screen.table.border_subtitle  # the compact marks, explained
        await pilot.resize_terminal(200, 50)
        await pilot.pause()
        assert screen.table.line_text(0).split() == ["trainable", "name", "shape", "dtype",
                                                     "numel"]
        assert screen.table.line_text(7).split()[:2] == ["buffer", "1.num_batches_tracked"]


@sync
async def test_tied_weights_named_in_table_and_pane(files):
    app = ModelTreeApp(str(files["tied"]))
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        notes = [str(screen.table.get_row_at(i)[5]) for i in range(screen.table.row_count)]
        assert any(n.startswith("same tensor as") for n in notes)
        assert "shared: " in str(app.query_one(NodeInfo).render())


@sync
async def test_filter_shows_matches_with_ancestors_and_escape_restores(files):
    app = ModelTreeApp(str(files["article"]))
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press(*"conv")  # class names match too, case-insensitive
        await settled(pilot)  # (matched off the UI thread)
        assert tree_lines(screen) == ["◐ (root) ConvNet 37.7K", "○ sequential Sequential 448",
                                   "○ 0 Conv2d 416", "○ layer1 Sequential 12.9K",
                                   "○ 0 Conv2d 12.8K", "○ layer2 Sequential 18.6K",
                                   "○ 0 Conv2d 18.5K"]
        assert screen.mtree.module.name == "sequential.0"  # cursor on the first match
        await pilot.press("enter")  # keep the filter, back in the tree
        assert app.focused is screen.mtree
        await pilot.press("down", "down")
        assert screen.mtree.module.name == "layer1.0"
        await pilot.press("slash", "escape")
        await settled(pilot)
        assert tree_lines(screen)[:2] == ["◐ (root) ConvNet 37.7K", "○ sequential Sequential 448"]
        assert "● fc Linear 5.8K" in tree_lines(screen)
        assert screen.mtree.module.name == "layer1.0"  # the selection survives
        assert app.focused is screen.mtree


def test_filter_glob_and_substring_rules(tmp_path):
    from tui.core.model import ModuleNode

    root = ModuleNode("", "", "m.Net")
    node = ModuleNode("encoder.layers.3.attn", "attn", "torch.nn.MultiheadAttention", root)
    assert matches(node, "layers.3") and matches(node, "ATTN")
    assert matches(node, "*.3.*") and matches(node, "multihead*")
    assert not matches(node, "*.4.*") and not matches(node, "decoder")


@sync
async def test_thousands_of_siblings_are_added_in_chunks(tmp_path):
    import torch
    from torch import nn

    n = CHUNK * 2 + 17
    torch.save(nn.Sequential(*[nn.Linear(1, 1) for _ in range(n)]), tmp_path / "wide.pth")
    app = ModelTreeApp(str(tmp_path / "wide.pth"))
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        root = screen.mtree.root
        assert len(root.children) == CHUNK + 1 and isinstance(root.children[-1].data, More)
        screen.mtree.move_cursor(root.children[-1])
        await pilot.press("enter")
        assert len(root.children) == 2 * CHUNK + 1
        assert screen.mtree.root.children[CHUNK].data.name == str(CHUNK)
        await pilot.press("ctrl+z")  # harmless with nothing to undo
        screen.mtree.move_cursor(root.children[-1])
        await pilot.press("enter")
        assert len(root.children) == n and not isinstance(root.children[-1].data, More)


@sync
async def test_expand_and_collapse_subtree(files):
    app = ModelTreeApp(str(files["article"]))
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        await pilot.press("e")
        assert len(tree_lines(screen)) == 1 + 4 + 3 * 4 + 0  # every module shown
        await pilot.press("c")
        assert tree_lines(screen) == ["◐ (root) ConvNet 37.7K"]
        await pilot.press("right")
        assert len(tree_lines(screen)) == 5


@sync
async def test_a_plain_value_opens_as_a_value_tree(files):
    app = ModelTreeApp(str(files["plain"]))
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        values = app.query_one("#values")
        assert values.display and not screen.mtree.display and app.focused is values
        labels = [str(line.node.label) for line in values._tree_lines]
        assert any(lbl.startswith("epoch: 3") for lbl in labels)
        # nothing to freeze or save: the keys are greyed out, pressing them does nothing
        assert screen.check_action("save", ()) is None and screen.check_action("toggle", ()) is None
        await pilot.press("s")
        assert len(app.screen_stack) == 1


@sync
async def test_checkpoint_shows_model_and_values_on_v(files):
    app = ModelTreeApp(str(files["ckpt"]))
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        assert screen.mtree.display and screen.mf.root is not None
        await pilot.press("v")
        values = app.query_one("#values")
        assert values.display and app.focused is values
        assert screen.check_action("freeze", ()) is None
        await pilot.press("v")
        assert app.focused is screen.mtree and screen.check_action("freeze", ())


@sync
async def test_bad_file_shows_error_dialog_and_app_stays_usable(tmp_path):
    bad = tmp_path / "broken.pth"
    bad.write_bytes(b"this is not a model file at all")
    app = ModelTreeApp(str(bad))
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        assert isinstance(app.screen, ErrorScreen)
        assert "not a PyTorch or safetensors file" in app.screen.message
        await pilot.press("escape")
        assert not isinstance(app.screen, ErrorScreen)
        assert screen.check_action("save", ()) is None
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape", "q")
    assert app.return_code == 1


@sync
async def test_missing_file_error(tmp_path):
    app = ModelTreeApp(str(tmp_path / "nope.pth"))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        assert isinstance(app.screen, ErrorScreen)
        assert "no such file" in app.screen.message


@sync
async def test_help_lists_every_key_and_the_formats(files):
    app = ModelTreeApp(str(files["article"]))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        keys = {k for keys, _ in app.screen.keys for k in keys.split()}
        for key in ("space", "f", "u", "F", "^z", "^y", "s", "/", "e", "c", "?", "q", "tab"):
            assert key in keys, key
        # every save format, in the registry's order, with what it keeps and loses
        shown = [str(s.render()) for s in app.screen.query(".format")]
        assert shown and shown == [f"{f.label}  {f.describe}" for f in SAVE_FORMATS]
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


@sync
async def test_every_action_is_in_the_command_palette(files):
    from tui.commands import COMMANDS, ModelCommands

    app = ModelTreeApp(str(files["article"]))
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        provider = ModelCommands(app.screen)
        titles = [hit.text async for hit in provider.discover()]
        # undo/redo apply only after an edit, values only to checkpoints, inspect only on a
        # focused table row, the filter's matches while filtering; the rest apply now
        expected = [t for a, (t, _) in COMMANDS.items()
                    if a not in ("undo", "redo", "values", "inspect", "toggle_matches")]
        assert titles == expected
        hits = [hit async for hit in provider.search("freeze sub")]
        assert hits and str(hits[0].match_display) == "Freeze subtree"
        await hits[0].command()
        assert screen.mf.root.status == "frozen"
        titles = [hit.text async for hit in provider.discover()]
        assert "Undo" in titles


@sync
async def test_names_from_the_file_are_never_markup(tmp_path):
    import torch

    path = tmp_path / "odd names.pth"
    torch.save({"[red]a[/].w": torch.zeros(2), "b[/].w": torch.zeros(1), "c.w": torch.zeros(1)},
               path)
    app = ModelTreeApp(str(path))
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        names = [str(screen.table.get_row_at(i)[1]) for i in range(screen.table.row_count)]
        assert names == ["[red]a[/].w", "b[/].w", "c.w"]
        assert "[red]a[/]" in tree_lines(screen)[1]
        await pilot.press("slash", "[", "/")  # a filter that is bad markup
        await settled(pilot)
        assert screen.mtree.match_count == 2
        await pilot.press("escape", "tab", "space")
        assert screen.mf.parameters()[0].requires_grad is False
        await pilot.pause()


@sync
async def test_slash_then_fast_typing_all_lands_in_the_filter(files):
    from textual import events

    app = ModelTreeApp(str(files["article"]))
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        # all queued before any is handled, as when a terminal delivers "/conv" at once
        for key, char in (("slash", "/"), ("c", "c"), ("o", "o"), ("n", "n"), ("v", "v")):
            app.post_message(events.Key(key, char))
        await settled(pilot)
        assert app.query_one("#filter", Input).value == "conv"
        assert screen.mtree.match_count == 3 and not screen.showing_values


@sync
async def test_a_deep_model_expands_all_the_way_down(tmp_path):
    import torch
    from torch import nn

    depth = 150
    model: nn.Module = nn.Linear(1, 1)
    for _ in range(depth):
        model = nn.Sequential(nn.Linear(1, 1), model)
    torch.save(model, tmp_path / "deep.pth")
    app = ModelTreeApp(str(tmp_path / "deep.pth"))
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        await pilot.press("e", "end")
        assert screen.mtree.module.depth == depth
        await pilot.press("space")  # freeze the innermost Linear: every ancestor is partial
        assert tree_lines(screen)[0].startswith("◐ (root)")


@sync
async def test_keys_can_be_remapped_and_help_shows_the_new_keys(files):
    from tui.app import keymap_from
    from tui.screens.save_dialog import SaveDialog

    keymap = keymap_from("save=ctrl+s; toggle=x ;nonsense;=y")
    assert keymap == {"save": "ctrl+s", "toggle": "x"}
    app = ModelTreeApp(str(files["article"]))
    app.set_keymap(keymap)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        await pilot.press("down", "x")
        assert screen.editor.dirty
        rows = dict(app.key_rows())
        assert "^s" in rows and "s" not in rows
        assert any(k.split()[0] == "x" for k in rows)
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, SaveDialog)
