"""Every key, what the marks mean, and what each save format keeps."""

from __future__ import annotations

from collections.abc import Callable

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from tui.commands import COMMANDS
from tui.core import formats, human
from tui.screens.dialog import Dialog

NAVIGATION = (
    ("↑ ↓ home end", "move in the tree or table (pgup/pgdn too)"),
    ("→ ←", "expand a module / collapse it, or go to its parent"),
    ("enter, click", "expand or collapse a module; on “… more”: show the next ones"),
    ("ctrl+p", "command palette: every action by name"),
)


REMAP = ("Set MODELTREE_KEYS to change keys, e.g. MODELTREE_KEYS='save=ctrl+s;toggle=x,enter'. "
         "Ids: toggle, toggle_tensor, freeze, unfreeze, freeze_others, undo, redo, save, filter, "
         "expand, collapse, values, rename, drop, extract, help, quit.")


def key_rows(keys_for: Callable[[str], str]) -> list[tuple[str, str]]:
    """(keys, what they do) for every command, from `keys_for(action)` (the keys bound now)."""
    rows = [(keys_for("toggle"), "freeze/unfreeze the selected subtree; on a table row, that tensor")]
    for action, (title, help_text) in COMMANDS.items():
        if action != "toggle" and (keys := keys_for(action)):
            rows.append((keys, f"{title}: {help_text}"))
    rows.append(("tab", "move between the tree and the parameter table"))
    return rows


def keys_table(rows: list[tuple[str, str]]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for keys, what in [*rows, *NAVIGATION]:
        table.add_row(keys, what)
    return table


def legend() -> Text:
    text = Text()
    for status, what in (("trainable", "every parameter trainable"), ("frozen", "all frozen"),
                         ("partial", "some frozen"), ("unknown", "requires_grad not stored"),
                         ("empty", "no parameters")):
        text.append(f"{human.glyph(status)} {status}", style="bold")
        text.append(f"  {what}\n")
    return text


class HelpScreen(Dialog[None]):
    DEFAULT_CSS = """
    HelpScreen .dialog { width: 90; height: 100%; max-height: 40; }
    HelpScreen .heading { text-style: bold; padding-top: 1; }
    HelpScreen .format { padding-bottom: 1; }
    """
    BINDINGS = [Binding("escape,q,question_mark,f1", "close", "Close")]

    def __init__(self, keys: list[tuple[str, str]]) -> None:
        super().__init__()
        self.keys = keys

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("modeltree: keys  (escape closes)", classes="title")
            with VerticalScroll():
                yield Static(keys_table(self.keys))
                yield Static("Marks", classes="heading")
                yield Static(legend())
                yield Static("Save formats", classes="heading")
                for f in formats.SAVE_FORMATS:
                    yield Static(Text.assemble((f.label, "bold"), "  ", f.describe),
                                 classes="format")
                yield Static("Other keys", classes="heading")
                yield Static(Text(REMAP))

    def action_close(self) -> None:
        self.dismiss(None)
