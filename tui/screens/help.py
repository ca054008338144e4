"""Every key, what the marks mean, what each save format keeps, and the Python that applies
a freeze plan."""

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
         "Ids: toggle, toggle_tensor, freeze, unfreeze, freeze_others, toggle_matches, undo, "
         "redo, save, open, filter, expand, collapse, values, rename, drop, extract, help, quit.")
PLAN = ("A state_dict or safetensors file can't store requires_grad. Tick 'also write the "
        "freeze plan' when saving: a small JSON beside the weights (weights.pth → "
        "weights.freeze.json) says which tensors are trainable. modeltree reads it back when "
        "it opens the weights; in your training script, after load_state_dict:")
MAX_SNIPPET_LINES = 16


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


def cap_lines(code: str, limit: int = MAX_SNIPPET_LINES) -> str:
    lines = code.rstrip().splitlines()
    if len(lines) <= limit:
        return "\n".join(lines)
    return "\n".join([*lines[:limit - 1], f"# … {len(lines) - limit + 1:,} more lines"])


class HelpScreen(Dialog[None]):
    DEFAULT_CSS = """
    HelpScreen .dialog { width: 90; height: 100%; max-height: 40; }
    HelpScreen .heading { text-style: bold; padding-top: 1; }
    HelpScreen .format { padding-bottom: 1; }
    HelpScreen .plan { padding-bottom: 1; }
    HelpScreen .code { padding: 0 2; background: $boost; }
    """
    BINDINGS = [Binding("escape,q,question_mark,f1", "close", "Close")]

    def __init__(self, keys: list[tuple[str, str]], load_code: str = "",
                 current_code: str = "") -> None:
        """`load_code`: Python that applies a freeze plan JSON; `current_code`: Python that sets
        the flags the app shows now (both from tui.core.write.freeze_plan)."""
        super().__init__()
        self.keys, self.load_code, self.current_code = keys, load_code, current_code

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
                if self.load_code:
                    yield Static("Freeze plan", classes="heading")
                    yield Static(PLAN, classes="plan")
                    yield Static(Text(self.load_code.rstrip(), "bold"), classes="code")
                if self.current_code:
                    yield Static("Or, without a file: the flags shown now, as Python",
                                 classes="heading")
                    yield Static(Text(cap_lines(self.current_code)), classes="code")
                yield Static("Other keys", classes="heading")
                yield Static(Text(REMAP))

    def action_close(self) -> None:
        self.dismiss(None)
