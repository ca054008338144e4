"""The base of every modal dialog: centred, bordered, with a title and a row of buttons."""

from __future__ import annotations

from typing import TypeVar

from textual.screen import ModalScreen

ResultType = TypeVar("ResultType")


class Dialog(ModalScreen[ResultType]):
    """Compose inside `Vertical(classes="dialog")`; `.title`, `.message`, `.buttons` parts."""

    DEFAULT_CSS = """
    Dialog { align: center middle; }
    Dialog .dialog {
        width: 76;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        padding: 0 1;
        border: thick $primary;
        background: $surface;
    }
    Dialog .title { text-style: bold; padding-bottom: 1; }
    Dialog .message { padding-bottom: 1; }
    Dialog .buttons { height: auto; align-horizontal: right; }
    Dialog .buttons Button { margin-left: 1; }
    """
