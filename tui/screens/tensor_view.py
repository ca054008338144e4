"""One tensor's numbers: statistics, a histogram, and its values in a scrollable grid.

The statistics are computed in a thread worker with a progress bar (escape cancels) and
kept per tensor in the file's ValueCache, so coming back is instant. The grid reads only
the blocks it shows.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, ProgressBar, Static
from textual.worker import Worker, WorkerState, get_current_worker

from tui.core import human
from tui.core.errors import ModelFileError
from tui.core.model import TensorInfo, contiguous_stride
from tui.core.values.source import Unreadable, ValueCache
from tui.core.values.stats import Cancelled, Stats
from tui.core.values.torchfmt import number
from tui.messages import WorkProgress
from tui.widgets.histogram import Histogram
from tui.widgets.value_grid import ValueGrid


def describe(t: TensorInfo) -> Text:
    text = Text()
    text.append(t.name, style="bold")
    text.append(f"  {t.dtype} {human.shape(t.shape)}  {t.numel:,} elements")
    if t.stride and t.numel:
        text.append(f"  stride {human.shape(t.stride)}", style="dim")
    if t.storage_offset:
        text.append(f"  offset {t.storage_offset}", style="dim")
    if t.aliases:
        text.append(f"  also {', '.join(t.aliases)}", style="dim")
    q = t.qparams
    if q is not None:
        scheme = q.scheme.removeprefix("torch.")
        text.append(f"\nquantized {scheme}: values are the integers; real = (q - zero_point) × scale")
        if q.scale is not None:
            text.append(f"; scale {q.scale:g}, zero_point {q.zero_point}")
        elif q.axis is not None:
            text.append(f"; one scale per index of dim {q.axis}")
    return text


def stats_table(s: Stats) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim")
    table.add_column(justify="right")
    zeros = f"{100 * s.zeros_fraction:.2f}%" if s.zeros_fraction is not None else "—"
    label = "|z|" if s.kind == "complex" else ""
    for name, value in ((f"min{label}", number(s.min)), (f"max{label}", number(s.max)),
                        ("mean", number(s.mean)), ("std", number(s.std)),
                        ("absmax", number(s.absmax)), ("zeros", zeros)):
        table.add_row(name, value)
    table.add_row("NaN", Text(str(s.nan), style="bold red" if s.nan else ""))
    table.add_row("Inf", Text(str(s.inf), style="bold red" if s.inf else ""))
    return table


class TensorView(Screen[None]):
    """Pushed over the main screen for one tensor; escape cancels the work, then goes back."""

    DEFAULT_CSS = """
    TensorView #tv-title { height: auto; padding: 0 1; background: $panel; }
    TensorView #tv-top { height: 10; }
    TensorView #tv-stats { width: 32; padding: 0 1; border: round $panel-lighten-2; }
    TensorView #tv-hist { width: 1fr; height: 10; border: round $panel-lighten-2; }
    TensorView #tv-progress { height: 1; padding: 0 1; display: none; }
    TensorView #tv-progress.-busy { display: block; }
    TensorView ValueGrid { border: round $panel-lighten-2; }
    TensorView ValueGrid:focus { border: round $primary; }
    """
    BINDINGS = [
        Binding("escape", "back", "Back", id="tensor_back"),
        Binding("r", "recompute", "Recompute", id="tensor_recompute", show=False),
    ]

    class _Progress(WorkProgress):
        pass

    def __init__(self, cache: ValueCache, tensor: TensorInfo) -> None:
        super().__init__()
        self.cache, self.tensor = cache, tensor
        self.stats: Stats | None = cache.stats.get(tensor.uid)
        self.state = "done" if self.stats is not None else "idle"  # idle|busy|done|cancelled|error

    def compose(self) -> ComposeResult:
        yield Static(describe(self.tensor), id="tv-title")
        with Horizontal(id="tv-top"):
            yield Static(id="tv-stats")
            yield Histogram(id="tv-hist")
        yield ProgressBar(id="tv-progress", show_eta=False)
        yield ValueGrid(id="tv-grid")
        yield Footer()

    @property
    def grid(self) -> ValueGrid:
        return self.query_one(ValueGrid)

    def on_mount(self) -> None:
        self.query_one("#tv-stats", Static).border_title = "statistics"
        self.query_one("#tv-hist", Histogram).border_title = "histogram (finite values)"
        self.grid.border_title = "values"
        try:
            mv = self.cache.open()
            view = mv.view(self.tensor)
            mv.close()
        except (Unreadable, ModelFileError) as e:
            self._show_error(str(e))
            return
        self.grid.show(view, self.cache.open)
        self.set_focus(self.grid)
        if self.stats is not None:
            self._show_stats(self.stats)
        else:
            self.compute()

    def _show_error(self, message: str) -> None:
        self.state = "error"
        self.query_one("#tv-stats", Static).update(Text(message, style="bold red"))
        self.query_one(Histogram).placeholder = "no values"
        self.grid.display = False

    def _show_stats(self, s: Stats) -> None:
        self.query_one("#tv-stats", Static).update(stats_table(s))
        hist = self.query_one(Histogram)
        if s.counts:
            hist.data = (tuple(s.counts), tuple(s.edges))
        else:
            hist.placeholder = "no finite values"

    # -- the statistics worker ------------------------------------------------------
    def compute(self) -> None:
        self.state = "busy"
        self.query_one("#tv-progress").add_class("-busy")
        self.query_one("#tv-stats", Static).update(Text("computing…", style="dim"))
        self.query_one(Histogram).placeholder = "computing…"
        self._compute()

    @work(thread=True, exclusive=True, group="tensor-stats", exit_on_error=False)
    def _compute(self) -> Stats:
        worker = get_current_worker()
        with self.cache.open() as mv:
            total = max(1, mv.cost(self.tensor))
            done = 0

            def progress(n: int) -> None:
                nonlocal done
                done += n
                self.post_message(self._Progress(done, total))

            return mv.stats(self.tensor, progress=progress, cancel=lambda: worker.is_cancelled)

    @on(ValueGrid.SliceChanged)
    def _slice_changed(self, event: ValueGrid.SliceChanged) -> None:
        g = event.grid
        if g.slice_count > 1:
            at = int(sum(i * s for i, s in zip(g.lead, contiguous_stride(g.view.shape[:-2]), strict=True)))
            g.border_title = f"values {g.slice_label()}  slice {at + 1}/{g.slice_count} ([ ])"
        else:
            g.border_title = "values"

    def on_tensor_view__progress(self, msg: _Progress) -> None:
        self.query_one(ProgressBar).update(total=msg.total, progress=min(msg.done, msg.total))

    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "tensor-stats" or not event.worker.is_finished:
            return
        self.query_one("#tv-progress").remove_class("-busy")
        if event.state == WorkerState.SUCCESS:
            self.stats = event.worker.result
            self.cache.stats[self.tensor.uid] = self.stats
            self.state = "done"
            self._show_stats(self.stats)
        elif event.state == WorkerState.CANCELLED or (
                event.state == WorkerState.ERROR and isinstance(event.worker.error, Cancelled)):
            self._cancelled()
        elif event.state == WorkerState.ERROR:
            self._show_error(f"can't read the values: {event.worker.error}")
        self.refresh_bindings()

    def _cancelled(self) -> None:
        self.state = "cancelled"
        self.query_one("#tv-progress").remove_class("-busy")
        self.query_one("#tv-stats", Static).update(Text("cancelled (r: compute again)", style="dim"))
        self.query_one(Histogram).placeholder = "cancelled"

    def action_back(self) -> None:
        if self.state == "busy":
            self.workers.cancel_group(self, "tensor-stats")
            self._cancelled()
            self.refresh_bindings()
            return
        self.dismiss()

    def action_recompute(self) -> None:
        if self.state in ("cancelled", "idle"):
            self.compute()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "recompute":
            return True if self.state in ("cancelled", "idle") else None
        return True


# -- what the main screen calls ---------------------------------------------------------
def value_cache(screen: Any) -> ValueCache | None:
    """The main screen's ValueCache for its file (made on first use)."""
    if screen.mf is None:
        return None
    if screen.value_cache is None or screen.value_cache.mf is not screen.mf:
        screen.value_cache = ValueCache(screen.mf)
    return screen.value_cache


def tensor_actions(screen: Any, action: str, loaded: bool) -> bool | None:
    """check_action for "inspect" (a tensor row has focus) and "health" (a model is open)."""
    from tui.widgets.param_table import ParamTable

    if action == "inspect":
        return (loaded and not screen.showing_values and isinstance(screen.focused, ParamTable)
                and screen.table.tensor is not None)
    return True if loaded and screen.mf.tensors else None


def open_tensor_view(screen: Any) -> None:
    t = screen.table.tensor
    cache = value_cache(screen)
    if t is not None and cache is not None:
        screen.app.push_screen(TensorView(cache, t))
