"""Quit (or open another file) with unsaved changes: save first, go anyway, or stay."""

from __future__ import annotations

from typing import Literal

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Static

from tui.core.human import plural
from tui.screens.dialog import Dialog

Choice = Literal["save", "quit", "stay"]


class QuitScreen(Dialog[Choice]):
    BINDINGS = [
        Binding("s", "choose('save')", "Save…"),
        Binding("q,y", "choose('quit')", "Quit anyway"),
        Binding("escape,n", "choose('stay')", "Stay"),
    ]

    def __init__(self, changed: list[str], surgery: list[str] | None = None,
                 leave: str = "Quit") -> None:
        """`changed`: tensor names changed since the last save; `surgery`: renames/drops/… not
        saved yet; `leave`: "Quit", "Open another file"."""
        super().__init__()
        self.changed, self.surgery, self.leave = changed, surgery or [], leave

    def compose(self) -> ComposeResult:
        names = ", ".join(self.changed[:4]) + (" …" if len(self.changed) > 4 else "")
        with Vertical(classes="dialog"):
            yield Static(f"{self.leave} with unsaved changes?", classes="title")
            if self.changed or not self.surgery:
                yield Static(f"{plural(len(self.changed), 'tensor')} changed requires_grad since "
                             f"the last save: {names}", classes="message", markup=False)
            if self.surgery:  # rename/drop/extract/cast not saved yet
                yield Static(f"not saved yet: {', '.join(self.surgery)}", classes="message",
                             markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Save…", variant="primary", id="save")
                yield Button(f"{self.leave.split()[0]} anyway", variant="error", id="quit")
                yield Button("Stay", id="stay")

    def on_mount(self) -> None:
        self.set_focus(self.query_one("#stay", Button))  # now: see SaveDialog.on_mount

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id)  # type: ignore[arg-type]

    def action_choose(self, choice: Choice) -> None:
        self.dismiss(choice)
