"""The parameter table: a Line API view whose work follows the screen, not the model.

Work is bounded by counters the table keeps (rows formatted, row sources built), never by
the clock: an edit formats at most the visible rows, a highlight builds a module's rows
once, sorting and the largest view reorder what is there.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from app_support import SIZE, loaded, sync

from tui.app import ModelTreeApp


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    import torch
    from torch import nn

    d = tmp_path_factory.mktemp("table")
    wide = nn.Sequential(*[nn.Linear(2, 2 + i % 7) for i in range(300)])  # 600 tensors
    torch.save(wide, d / "wide.pth")
    nested = nn.Module()
    nested.encoder = nn.Module()
    nested.encoder.layers = nn.ModuleList([nn.Linear(3, 5), nn.Linear(5, 40)])
    nested.encoder.layers[0].register_buffer("a_very_long_buffer_name_for_eliding", torch.zeros(2))
    nested.head = nn.Linear(40, 1)
    torch.save(nested, d / "nested.pth")
    return {"wide": d / "wide.pth", "nested": d / "nested.pth"}


def visible_rows(table) -> int:
    return table.scrollable_content_region.height - 1  # under the header


@sync
async def test_an_edit_formats_at_most_the_visible_rows(files):
    app = ModelTreeApp(str(files["wide"]))
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        table = screen.table
        assert table.row_count == 600  # every tensor of the root: no cap, nothing cut
        before = table.rendered
        await pilot.press("f")  # freeze the root: 600 flags change
        await pilot.pause()
        assert screen.mf.root.status == "frozen"
        assert 0 < table.rendered - before <= visible_rows(table) + 2
        # one tensor toggled from the table: the changed row (and the cursor row) only
        await pilot.press("tab", "down", "down")
        await pilot.pause()
        before = table.rendered
        await pilot.press("space")
        await pilot.pause()
        assert table.current_tensor.requires_grad is True
        assert table.rendered - before <= 2
        # scrolling a page formats the new page, not the model
        before = table.rendered
        await pilot.press("pagedown")
        await pilot.pause()
        assert table.rendered - before <= visible_rows(table) + 2


@sync
async def test_a_highlight_swaps_the_rows_without_rebuilding(files):
    app = ModelTreeApp(str(files["wide"]))
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        table = screen.table
        await pilot.press("down", "down", "down", "up", "up")  # the first Linears
        built, rendered, layouts = table.sources_built, table.rendered, table.layouts
        for _ in range(3):  # the same modules again: their row sources are kept
            await pilot.press("down", "down", "up", "up")
            await pilot.pause()
        assert table.sources_built == built
        assert table.layouts == layouts  # same column widths: the columns are not redone
        # each of the 12 highlights formats its module's 2 rows, and at most one more line
        assert table.rendered - rendered <= 12 * 3
        await pilot.press("down")
        assert [r[1] for r in map(table.get_row_at, range(table.row_count))] == ["weight",
                                                                                  "bias"]


@sync
async def test_names_are_relative_and_long_ones_elided_in_the_middle(files):
    app = ModelTreeApp(str(files["nested"]))
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        table = screen.table
        assert table.get_row_at(0)[1] == "encoder.layers.0.weight"  # the root: full names
        screen.mtree.reveal(screen.mf.modules["encoder.layers.0"])
        await pilot.pause()
        names = [table.get_row_at(i)[1] for i in range(table.row_count)]
        assert names == ["weight", "bias", "a_very_long_buffer_name_for_eliding"]
        line = table.line_text(3)
        assert "a_very" in line and "eliding" in line and "…" in line  # head and tail kept
        assert line.split()[-3:] == ["[2]", "f32", "2"]  # shape, dtype (short), numel still shown


@sync
async def test_t_cycles_the_sort_and_a_header_click_sorts(files):
    app = ModelTreeApp(str(files["nested"]))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await loaded(pilot)
        table = screen.table

        def names() -> list[str]:
            return [table.get_row_at(i)[1] for i in range(table.row_count)]

        order = names()
        assert order[0] == "encoder.layers.0.weight"
        await pilot.press("t")  # largest first
        numels = [r.tensor.numel for r in table.rows]
        assert numels == sorted(numels, reverse=True) and names()[0] == "encoder.layers.1.weight"
        assert "largest first" in table.border_title and "▼numel" in table.line_text(0).replace(" ", "")
        await pilot.press("t")  # by name
        assert names() == sorted(order)
        await pilot.press("t")
        assert names() == order
        x = table.line_text(0).index("numel")
        await pilot.click("#table", offset=(1 + x, 1))  # the header line, under the border
        assert table.sort == "size"
        x = table.line_text(0).index("name")
        await pilot.click("#table", offset=(1 + x, 1))
        assert table.sort == "name" and names() == sorted(order)
        await pilot.click("#table", offset=(3, 3))  # second row: the cursor goes there
        assert table.cursor == 1 and app.focused is table


@sync
async def test_largest_tensors_of_the_whole_model(files):
    app = ModelTreeApp(str(files["nested"]))
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        table = screen.table
        await pilot.press("end")  # head: 2 tensors
        assert table.row_count == 2
        await pilot.press("L")
        assert table.largest and "largest" in table.border_title
        rows = [table.get_row_at(i) for i in range(table.row_count)]
        assert rows[0][1] == "encoder.layers.1.weight" and rows[0][4] == "200"  # full names
        assert table.row_count == len(screen.mf.tensors)
        await pilot.press("home")  # moving in the tree keeps the view
        assert table.largest
        await pilot.press("L")
        assert not table.largest and table.row_count == 7  # the root's, selected now
