"""Radio buttons and checkboxes whose state reads without colour.

Textual draws the same glyph in every RadioButton ("●") and Checkbox ("X"), on or off,
and tells the states apart by colour alone. Here off is a hollow ring / an empty box
and on is a filled dot / an X, and the off glyph is drawn readable rather than dimmed.
"""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import Checkbox, RadioButton, RadioSet

CSS = """
{name} > .toggle--button {{ color: $text-muted; background: $panel-lighten-1; }}
{name}.-on > .toggle--button {{ color: $text-success; }}
"""


class Radio(RadioButton):
    DEFAULT_CSS = CSS.format(name="Radio")

    @property
    def BUTTON_INNER(self) -> str:  # type: ignore[override]  # Textual reads it per render
        return "●" if self.value else "○"


class Tick(Checkbox):
    DEFAULT_CSS = CSS.format(name="Tick")

    @property
    def BUTTON_INNER(self) -> str:  # type: ignore[override]
        return "X" if self.value else " "


class Choices(RadioSet):
    """A RadioSet whose arrow keys pick the option they move to (as radio buttons do in
    browsers), so a dialog's enter can mean "go" everywhere: what is lit is what is chosen."""

    # (new action names: RadioSet's own next_button also runs on mount, choosing nothing)
    BINDINGS = [
        Binding("down,right", "pick(1)", "Next option", show=False),
        Binding("up,left", "pick(-1)", "Previous option", show=False),
    ]

    def action_pick(self, step: int) -> None:
        if step > 0:
            self.action_next_button()
        else:
            self.action_previous_button()
        if self._selected is not None:
            button = self._nodes[self._selected]
            if isinstance(button, RadioButton) and not button.value:
                button.value = True
