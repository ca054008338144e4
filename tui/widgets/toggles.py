"""Radio buttons and checkboxes whose state reads without colour.

Textual draws the same glyph in every RadioButton ("●") and Checkbox ("X"), on or off,
and tells the states apart by colour alone. Here off is a hollow ring / an empty box
and on is a filled dot / an X, and the off glyph is drawn readable rather than dimmed.
"""

from __future__ import annotations

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

    def action_next_button(self) -> None:
        super().action_next_button()
        self._pick()

    def action_previous_button(self) -> None:
        super().action_previous_button()
        self._pick()

    def _pick(self) -> None:
        if self._selected is not None:
            button = self._nodes[self._selected]
            if isinstance(button, RadioButton) and not button.value:
                button.value = True
