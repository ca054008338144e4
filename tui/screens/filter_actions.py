"""The main screen's `/` filter: matching runs in an exclusive thread worker, so typing never
waits for a walk of the model; each keystroke cancels the walk before it, and only the result
for what the field holds now is shown (it replaces the previous one).

A mixin of MainScreen (which owns `mf`, `mtree`, `filtering`, `set_focus`, `query_one`); the
screen's `@on` handlers call the methods here.
"""

from __future__ import annotations

from textual import work
from textual.message import Message
from textual.worker import get_current_worker

from tui.core.model import ModuleNode
from tui.screens.screen_parts import MainScreenParts
from tui.widgets.filter_bar import FilterBar
from tui.widgets.module_tree import FilterResult, run_filter


class FilterDone(Message):
    """A filter walk finished (posted from the worker thread)."""

    def __init__(self, result: FilterResult) -> None:
        super().__init__()
        self.result = result


class FilterActions(MainScreenParts):
    filter_pattern = ""  # what the field holds now (stripped)

    def action_filter(self) -> None:
        self.filtering = True
        self.set_focus(self.query_one(FilterBar))  # type: ignore[attr-defined]  # now, not after a refresh

    def filter_changed(self, value: str) -> None:
        if self.mf is None or self.mf.root is None:
            return
        self.filter_pattern = pattern = value.strip()
        if not pattern:  # all modules again: no walk needed
            self.workers.cancel_group(self, "filter")  # type: ignore[attr-defined]
            self.mtree.apply_filter(self.mf.root, None)
            return
        self._filter_worker(self.mf.root, pattern)

    # A description of our own: by default Textual reprs the arguments, and the repr of the
    # root module is the whole model (60-100 ms on the UI thread for 5,000 modules).
    @work(thread=True, exclusive=True, group="filter", description="filter")
    def _filter_worker(self, root: ModuleNode, pattern: str) -> None:
        worker = get_current_worker()
        result = run_filter(root, pattern, lambda: worker.is_cancelled)
        if result is not None and not worker.is_cancelled:
            self.post_message(FilterDone(result))  # type: ignore[attr-defined]

    def on_filter_done(self, message: FilterDone) -> None:
        if message.result.pattern == self.filter_pattern and self.mf is not None:
            self.mtree.apply_filter(self.mf.root, message.result)

    def filter_submitted(self) -> None:
        self.set_focus(self.mtree)  # type: ignore[attr-defined]

    def filter_cleared(self) -> None:
        self.filtering = False
        self.set_focus(self.mtree)  # type: ignore[attr-defined]
