"""The header line: file, format, totals, unsaved-changes mark."""

from __future__ import annotations

import os

from rich.text import Text
from textual.widgets import Static

from tui.core import formats, human
from tui.core.model import ModelFile


def header_text(path: str, mf: ModelFile | None, dirty: bool = False, state: str = "") -> Text:
    text = Text()
    text.append(f" {os.path.basename(os.path.normpath(path)) or path}", style="bold")
    if dirty:
        text.append(" ✎ modified", style="bold reverse")
    if mf is None:
        text.append(f"  {state}")
        return text
    parts = [formats.kind_label(mf.format)]
    if mf.model_key:
        parts[0] += f" [{mf.model_key}]"
    c = mf.totals
    if mf.root is not None:
        parts.append(f"{human.count(c.numel)} params")
        # (a state_dict's integer tensors are known frozen: no trainable = nothing known)
        if c.numel and c.unknown and not c.trainable:
            parts.append("requires_grad not stored")
        elif c.numel:
            parts.append(f"{100 * c.trainable / c.numel:.1f}% trainable")
    parts.append(human.size(mf.file_size))
    text.append(" · " + " · ".join(parts))
    return text


class InfoBar(Static):
    """One line at the top of the main screen."""

    DEFAULT_CSS = """
    InfoBar {
        height: 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
        background: $panel;
        color: $foreground;
    }
    """

    def show(self, path: str, mf: ModelFile | None, dirty: bool = False, state: str = "") -> None:
        self.update(header_text(path, mf, dirty, state), layout=False)  # one line, full width: a repaint
