"""Rename by prefix: two fields, the prefix prefilled from the selected module.

Dismisses with (old, new) — old empty adds a prefix, new empty strips one — or None.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Static

from tui.screens.dialog import Dialog


class RenameDialog(Dialog[tuple[str, str] | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, prefix: str, title: str = "Rename tensors by prefix") -> None:
        super().__init__()
        self.prefix, self.title_text = prefix, title

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog rename"):
            yield Static(self.title_text, classes="title", markup=False)
            yield Label("Names starting with")
            yield Input(value=self.prefix, id="old", compact=True)
            yield Label("become (empty: strip the prefix)")
            yield Input(value=self.prefix, id="new", compact=True)
            yield Static("applies when saving as state_dict or safetensors; enter applies, "
                         "escape cancels", classes="hint", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Rename", variant="primary", id="ok", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.set_focus(self.query_one("#new", Input))

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self._done()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self._done()
        else:
            self.dismiss(None)

    def _done(self) -> None:
        old, new = self.query_one("#old", Input).value, self.query_one("#new", Input).value
        self.dismiss(None if old == new else (old, new))

    def action_cancel(self) -> None:
        self.dismiss(None)
