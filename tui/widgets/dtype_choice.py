"""The save dialog's cast choice: as stored, float16, bfloat16 or float32."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, RadioSet

from tui.core.surgery import CAST_DTYPES
from tui.widgets.toggles import Choices, Radio

STORED = "stored"


class DtypeChoice(Horizontal):
    """`value`: None (as stored) or one of CAST_DTYPES."""

    DEFAULT_CSS = """
    DtypeChoice { height: auto; }
    DtypeChoice Label { padding-right: 1; }
    DtypeChoice > RadioSet { width: 1fr; layout: horizontal; border: none; padding: 0; }
    DtypeChoice > RadioSet > Radio { width: auto; margin-right: 2; }
    """

    def __init__(self, value: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.initial = value

    def compose(self) -> ComposeResult:
        yield Label("cast:")
        with Choices(id="dtype", compact=True):  # arrows pick: enter saves the dialog
            yield Radio("as stored", value=self.initial is None, id=STORED)
            for d in CAST_DTYPES:
                yield Radio(d, value=self.initial == d, id=d)

    @property
    def value(self) -> str | None:
        pressed = self.query_one(RadioSet).pressed_button
        return None if pressed is None or pressed.id == STORED else pressed.id
