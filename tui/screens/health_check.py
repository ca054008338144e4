"""The health check dialog: every tensor scanned for NaN/Inf in a worker, with progress.

Dismisses with the Health (the caller marks the offending tensors and modules), or None
when cancelled (escape) or the file's bytes can't be read (the error is shown first).
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import ProgressBar, Static
from textual.worker import Worker, WorkerState, get_current_worker

from tui.core import human
from tui.core.values.health import Health, scan, total_cost
from tui.core.values.source import ValueCache
from tui.core.values.stats import Cancelled
from tui.messages import WorkProgress
from tui.screens.dialog import Dialog


class HealthCheck(Dialog[Health | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="health_cancel")]

    class _Progress(WorkProgress):
        pass

    def __init__(self, cache: ValueCache) -> None:
        super().__init__()
        self.cache = cache
        self.failed = False

    def compose(self) -> ComposeResult:
        n = len(self.cache.mf.tensors)
        with Vertical(classes="dialog"):
            yield Static("Health check", classes="title")
            yield Static(f"Reading {n:,} tensors for NaN and Inf (escape cancels)…", id="hc-what",
                         classes="message")
            yield ProgressBar(id="hc-progress", show_eta=False)

    def on_mount(self) -> None:
        self._scan()

    @work(thread=True, exclusive=True, group="health", exit_on_error=False)
    def _scan(self) -> Health:
        worker = get_current_worker()
        with self.cache.open() as mv:
            total = max(1, total_cost(self.cache.mf, mv))
            done = 0

            def progress(n: int) -> None:
                nonlocal done
                done += n
                self.post_message(self._Progress(done, total))

            return scan(self.cache.mf, mv, progress, cancel=lambda: worker.is_cancelled)

    def on_health_check__progress(self, msg: _Progress) -> None:
        self.query_one(ProgressBar).update(total=msg.total, progress=min(msg.done, msg.total))
        self.query_one("#hc-what", Static).update(
            f"Reading tensors for NaN and Inf: {human.size(msg.done)} of {human.size(msg.total)} "
            "(escape cancels)…")

    @on(Worker.StateChanged)
    def _done(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "health":
            return
        if event.state == WorkerState.SUCCESS:
            self.cache.health = event.worker.result
            self.dismiss(event.worker.result)
        elif event.state == WorkerState.ERROR and not isinstance(event.worker.error, Cancelled):
            self.failed = True
            self.query_one("#hc-what", Static).update(
                Text(f"can't read the values: {event.worker.error}\n(escape closes)", style="bold red"))

    def action_cancel(self) -> None:
        self.workers.cancel_group(self, "health")
        self.dismiss(None)


def run_health_check(screen: Any) -> None:
    """Scan the main screen's model; mark what holds NaN/Inf in its tree and table."""
    from tui.screens.tensor_view import value_cache

    cache = value_cache(screen)
    if cache is None:
        return

    def done(health: Health | None) -> None:
        if health is None:
            return
        screen.mtree.flag(health.modules)
        screen.table.flagged = set(health.bad)
        if screen.table.node is not None:
            row = screen.table.cursor_row
            screen.table.show(screen.table.node)
            screen.table.move_cursor(row=row, animate=False)
        skipped = f" ({len(health.skipped)} without values skipped)" if health.skipped else ""
        if health.bad:
            screen.say(f"{human.plural(len(health.bad), 'tensor')} of {health.checked:,} hold NaN "
                       f"or Inf: marked ⚠ in the tree and the table{skipped}",
                       title="Health check", severity="warning", timeout=10)
        else:
            screen.say(f"all {health.checked:,} tensors are finite{skipped}", title="Health check")

    screen.app.push_screen(HealthCheck(cache), done)
