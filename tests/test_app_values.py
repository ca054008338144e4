"""The tensor view and the health check, driven with Pilot in a small host app."""

from __future__ import annotations

import io
import threading
import warnings

import pytest
import torch
from app_support import sync
from rich.console import Console
from textual.app import App
from values_support import check, make, reference

from tui.core.read.reader import open_model
from tui.core.values.source import ModelValues, ValueCache
from tui.screens.health_check import HealthCheck
from tui.screens.tensor_view import TensorView
from tui.widgets.histogram import Histogram, bars
from tui.widgets.value_grid import BLOCK_ROWS, ValueGrid


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    d = tmp_path_factory.mktemp("values")
    sd = {"w": make("float32", (3, 150, 40), seed=1), "v": make("bfloat16", (2000,), seed=2),
          "i": torch.arange(12, dtype=torch.int64).reshape(3, 4), "s": torch.tensor(2.5),
          "ok": make("float16", (5, 5), plant=False)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save(sd, d / "m.pth")
    return sd, open_model(str(d / "m.pth"))


class Host(App[None]):
    def __init__(self, screen) -> None:
        super().__init__()
        self.first = screen
        self.result = "unset"

    def on_mount(self) -> None:
        self.push_screen(self.first, lambda r: setattr(self, "result", r))


async def settle(pilot) -> None:
    for _ in range(4):  # stats worker, then the grid's formatter, then its blocks
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


def plain(renderable) -> str:
    console = Console(width=60, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def tensor(mf, name):
    return next(t for t in mf.tensors if t.name == name)


@sync
async def test_tensor_view_shows_stats_histogram_and_values(sample):
    sd, mf = sample
    cache = ValueCache(mf)
    app = Host(TensorView(cache, tensor(mf, "w")))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        view = app.screen
        assert isinstance(view, TensorView) and view.state == "done"
        check(view.stats, reference(sd["w"]))
        assert cache.stats[tensor(mf, "w").uid] is view.stats  # cached per tensor
        assert view.query_one(Histogram).data[0] == tuple(view.stats.counts)
        grid = view.query_one(ValueGrid)
        assert grid.shape2 == (150, 40) and grid.slice_count == 3
        assert grid.cell(0, 0) is not None and float(grid.cell(0, 0)) == pytest.approx(
            float(sd["w"][0, 0, 0]), abs=1e-4)
        assert grid.cell(0, 5).strip() == "nan" and grid.cell(0, 6).strip() == "-inf"
        text = plain(view.query_one("#tv-stats").content)
        assert "NaN           1" in text and "Inf           2" in text and "absmax" in text
        # only the blocks on screen were read, not the tensor
        assert len(grid.blocks) <= 2 and all(k[1][0] == 0 for k in grid.blocks)
        await pilot.press("escape")
        assert app.result is None and not isinstance(app.screen, TensorView)


@sync
async def test_slice_navigation_and_scrolling(sample):
    sd, mf = sample
    app = Host(TensorView(ValueCache(mf), tensor(mf, "w")))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        grid = app.screen.query_one(ValueGrid)
        assert grid.lead == (0,) and "slice 1/3" in str(grid.border_title)
        await pilot.press("right_square_bracket", "right_square_bracket", "right_square_bracket")
        await settle(pilot)
        assert grid.lead == (2,) and "slice 3/3" in str(grid.border_title)  # stops at the last
        assert float(grid.cell(1, 2)) == pytest.approx(float(sd["w"][2, 1, 2]), abs=1e-4)
        await pilot.press("left_square_bracket")
        await settle(pilot)
        assert grid.lead == (1,)
        await pilot.press("end")  # the last rows are read when they are shown
        await settle(pilot)
        assert grid.cell(149, 0) is not None
        assert float(grid.cell(149, 0)) == pytest.approx(float(sd["w"][1, 149, 0]), abs=1e-4)
        assert any(k[1][0] == 149 // BLOCK_ROWS for k in grid.blocks)


@sync
async def test_one_and_zero_dimensional_and_integer_values(sample):
    sd, mf = sample
    cache = ValueCache(mf)
    for name, probe in (("v", (1, 0)), ("i", (2, 3)), ("s", (0, 0))):
        app = Host(TensorView(cache, tensor(mf, name)))
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(pilot)
            grid = app.screen.query_one(ValueGrid)
            got = grid.cell(*probe)
            if name == "v":  # rows of 8
                assert float(got) == pytest.approx(float(sd["v"][8]), abs=1e-2)
            elif name == "i":
                assert got.strip() == "11"
            else:
                assert got.strip() == "2.5000"
            assert grid.slice_count == 1


class _Gate(ValueCache):
    """A cache whose readers stop at their first piece until the test lets them go."""

    def __init__(self, mf) -> None:
        super().__init__(mf)
        self.started, self.release = threading.Event(), threading.Event()

    def open(self, chunk_bytes: int = 1024) -> ModelValues:
        mv = super().open(chunk_bytes)
        gate = self
        stats = mv.stats

        def gated(t, **kw):
            progress = kw.pop("progress", None)

            def step(n):
                gate.started.set()
                assert gate.release.wait(10)
                if progress:
                    progress(n)
            return stats(t, progress=step, **kw)

        mv.stats = gated  # type: ignore[method-assign]
        return mv


@sync
async def test_escape_cancels_the_computation_then_closes(sample):
    _, mf = sample
    cache = _Gate(mf)
    t = tensor(mf, "w")
    app = Host(TensorView(cache, t))
    async with app.run_test(size=(100, 30)) as pilot:
        assert cache.started.wait(10)
        await pilot.pause()
        view = app.screen
        assert view.state == "busy" and view.query_one("#tv-progress").has_class("-busy")
        await pilot.press("escape")  # cancels; the view stays
        cache.release.set()
        await settle(pilot)
        assert view.state == "cancelled" and t.uid not in cache.stats
        assert isinstance(app.screen, TensorView)
        await pilot.press("r")  # compute again, to the end this time
        await settle(pilot)
        assert view.state == "done" and t.uid in cache.stats
        await pilot.press("escape")
        assert not isinstance(app.screen, TensorView)


@sync
async def test_health_check_finds_nan_and_inf(sample):
    sd, mf = sample
    cache = ValueCache(mf)
    app = Host(HealthCheck(cache))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        health = app.result
        bad = {t.name for t in mf.tensors if t.uid in health.bad}
        assert bad == {"w", "v"}
        assert health.checked == len(mf.tensors) and cache.health is health
        assert health.modules == {""}


@sync
async def test_health_check_cancel(sample):
    _, mf = sample
    cache = _Gate(mf)
    app = Host(HealthCheck(cache))
    async with app.run_test(size=(80, 24)) as pilot:
        assert cache.started.wait(10)
        await pilot.press("escape")
        cache.release.set()
        await settle(pilot)
        assert app.result is None and cache.health is None


def test_histogram_bars_scale_and_keep_outliers():
    rows = bars([0, 1, 100, 0], width=8, height=2)
    assert len(rows) == 2 and all(len(r) == 8 for r in rows)
    assert rows[0][4:6] == "██" and rows[1][2:4] == "▁▁"  # a count of 1 still shows
    assert bars([1] * 64, width=16, height=1) == ["█" * 16]  # merged to fit
    assert len(bars([1] * 32, width=46, height=1)[0]) == 46  # spread over the whole width
