"""`modeltree A B`: the diff view as an app of its own (wiring only)."""

from __future__ import annotations

import sys

from textual.app import App
from textual.binding import Binding
from textual.screen import Screen

from tui.screens.diff_screen import DiffScreen


class DiffApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "modeltree diff"
    BINDINGS = [Binding("q", "quit", "Quit", id="quit")]

    def __init__(self, a: str, b: str, key: str | None = None) -> None:
        super().__init__()
        self.screen_ = DiffScreen(a, b, key=key)

    def get_default_screen(self) -> Screen:
        return self.screen_


def run_diff_app(a: str, b: str, key: str | None = None) -> int:
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    app = DiffApp(a, b, key=key)
    app.run()
    return app.return_code or 0
