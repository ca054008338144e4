"""Ask for one line of text (a path to save to, a module to extract); prefilled."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, Label, Static

from tui.screens.dialog import Dialog


class PathDialog(Dialog[str | None]):
    """Dismisses with the text (stripped), or None on escape / empty."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, value: str, hint: str = "") -> None:
        super().__init__()
        self.title_text, self.value, self.hint = title, value, hint

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.title_text, classes="title", markup=False)
            if self.hint:
                yield Static(self.hint, classes="message", markup=False)
            yield Label("enter accepts, escape cancels")
            yield Input(value=self.value, id="text", compact=True)

    def on_mount(self) -> None:
        self.set_focus(self.query_one("#text", Input))

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
