"""The diff view's side pane: both sides of the selected tensor, or a module's counts and,
at the root, what load_state_dict would say."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tui.core import human
from tui.core.diff import STATUS_LABELS, Diff, DiffEntry
from tui.core.model import TensorInfo
from tui.widgets.diff_tree import MARKS, ORDER
from tui.widgets.pane import pane_css


def _side(label: str, name: str | None, t: TensorInfo | None) -> Text:
    text = Text(f"{label}: ", style="bold")
    if t is None:
        text.append("—", style="dim")
    else:
        text.append(f"{name}\n   {human.shape(t.shape)} {t.dtype}")
    return text


def entry_text(e: DiffEntry) -> Text:
    text = Text(f"{MARKS[e.status]} {STATUS_LABELS[e.status]}\n", style="bold")
    text.append(e.name + "\n")
    text.append_text(_side("A", e.a_name, e.a))
    text.append("\n")
    text.append_text(_side("B", e.b_name, e.b))
    if e.bitwise_equal is not None:
        text.append("\nvalues: ")
        if e.bitwise_equal:
            text.append("bitwise equal")
        else:
            text.append(f"max|a−b| {e.max_abs:.6g}\n        relative L2 {e.rel_l2:.6g}")
    elif e.note:
        text.append(f"\nvalues: {e.note}", style="dim")
    return text


def module_text(d: Diff, prefix: str, fix_hint: str = "") -> Text:
    counts = d.modules.get(prefix, {})
    text = Text(f"{prefix or '(root)'}\n", style="bold")
    for s in ORDER:
        if counts.get(s):
            text.append(f"{MARKS[s]} {counts[s]} {STATUS_LABELS[s]}\n")
    if prefix == "" and d.load is not None:
        r = d.load
        side = "A" if r.model_side == "a" else "B"
        text.append(f"\nload_state_dict into {side} ({r.class_name}):\n", style="bold")
        if r.ok:
            text.append("loads with strict=True\n")
        else:
            for line in r.error_lines():
                text.append(line.strip() + "\n")
        if r.proposal is not None and fix_hint:
            text.append(f"\n{fix_hint}\n", style="bold")
    return text


class DiffPane(Static):
    """Shows what the diff tree's cursor is on."""

    DEFAULT_CSS = pane_css("DiffPane") + "DiffPane { padding: 0 1; }"

    def show_entry(self, e: DiffEntry) -> None:
        self.update(entry_text(e))

    def show_module(self, d: Diff, prefix: str, fix_hint: str = "") -> None:
        self.update(module_text(d, prefix, fix_hint))
