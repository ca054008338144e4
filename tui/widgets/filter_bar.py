"""The `/` filter field under the tree."""

from __future__ import annotations

from textual.binding import Binding
from textual.message import Message
from textual.widgets import Input


class FilterBar(Input):
    """Typing filters live (Changed); enter keeps the filter (Submitted); escape drops it."""

    DEFAULT_CSS = """
    FilterBar { height: 1; border: none; padding: 0 1; background: $boost; }
    FilterBar:focus { border: none; background: $primary-muted; }
    """
    BINDINGS = [Binding("escape", "clear_filter", "Clear filter", id="clear_filter")]

    class Cleared(Message):
        """Escape: the filter is emptied; the screen shows every module again."""

    def __init__(self, **kwargs) -> None:
        super().__init__(placeholder="filter: name or class, substring or glob (fc, *.0, Conv*)",
                         **kwargs)

    def action_clear_filter(self) -> None:
        self.value = ""
        self.post_message(self.Cleared())
