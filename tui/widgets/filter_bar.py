"""The `/` filter field under the tree."""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import Input


class FilterBar(Input):
    """Typing filters live; enter keeps the filter and returns to the tree; escape clears it."""

    BINDINGS = [Binding("escape", "clear_filter", "Clear filter", id="clear_filter")]

    def __init__(self, **kwargs) -> None:
        super().__init__(placeholder="filter: name or class, substring or glob (fc, *.0, Conv*)",
                         **kwargs)

    async def action_clear_filter(self) -> None:
        await self.screen.run_action("clear_filter")  # the screen's (see ModuleTree)
