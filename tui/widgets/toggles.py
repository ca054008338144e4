"""Radio buttons and checkboxes whose state reads without colour.

Textual draws the same glyph in every RadioButton ("●") and Checkbox ("X"), on or off,
and tells the states apart by colour alone. Here off is a hollow ring / an empty box
and on is a filled dot / an X, and the off glyph is drawn readable rather than dimmed.
"""

from __future__ import annotations

from textual.widgets import Checkbox, RadioButton

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
