"""An error the user caused (bad file, unwritable folder): one message, no traceback."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Static

from tui.screens.dialog import Dialog


class ErrorScreen(Dialog[None]):
    DEFAULT_CSS = "ErrorScreen .dialog { border: thick $error; }"
    BINDINGS = [Binding("escape,enter,q", "close", "Close")]

    def __init__(self, title: str, message: str) -> None:
        super().__init__()
        self.title_text, self.message = title, message

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.title_text, classes="title")
            yield Static(self.message, classes="message", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("OK", variant="error", id="ok")

    def on_mount(self) -> None:
        self.set_focus(self.query_one("#ok", Button))  # now: see SaveDialog.on_mount

    def on_button_pressed(self) -> None:
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)
