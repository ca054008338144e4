"""Pick one model file from a list (a folder of several models, not one model).

    self.app.push_screen(FilePicker(paths, "sample_models holds 6 models"), opened)

Dismisses with the chosen path, or None on escape. Takes any list of paths, so an
open-file dialog can reuse it for its own results.
"""

from __future__ import annotations

import os

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option


class FilePicker(ModalScreen[str | None]):
    """A list of files by name (with their size); enter opens one, escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    FilePicker > Vertical { width: 70; max-width: 95%; height: auto; max-height: 80%; }
    FilePicker OptionList { height: auto; max-height: 20; }
    """

    def __init__(self, paths: list[str], title: str) -> None:
        super().__init__()
        self.paths, self.title_text = list(paths), title

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.title_text, classes="question", markup=False)
            yield OptionList(*(Option(_label(p), id=str(i)) for i, p in enumerate(self.paths)))
            yield Static("enter: open   escape: cancel", classes="hint", markup=False)

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.paths[int(event.option.id or 0)])

    def action_cancel(self) -> None:
        self.dismiss(None)


def _label(path: str) -> str:
    try:
        size = os.path.getsize(path)
    except OSError:
        size = 0
    from tui.core.human import size as human_size

    return f"{os.path.basename(path)}  ({human_size(size)})"
