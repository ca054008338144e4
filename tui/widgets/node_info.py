"""Side-pane summary of the selected module: class, subtree totals, tied names.

Lines are kept short and never wrapped (the stylesheet cuts them with an ellipsis),
so the pane reads the same at 80 columns as at 200.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import Static

from tui.core import human
from tui.core.model import ModelFile, ModuleNode, TensorInfo
from tui.widgets.pane import pane_css

MAX_TIED = 3


def describe(node: ModuleNode, tied: Sequence[TensorInfo] = ()) -> Text:
    """`tied`: the model's tensors with several names (few; found once per model)."""
    c = node.counts
    lines = [Text.assemble((node.name or "(root)", "bold"), "  ", (node.short_type, "italic"))]
    lines.append(Text(node.type or "class not stored in this format", style="dim"))
    status = Text(f"{human.glyph(node.status)} {human.STATUS_WORDS[node.status]}", style="bold")
    if node.status == "partial" and c.numel:
        status.append(f" · {100 * c.trainable / c.numel:.1f}% trainable", style="")
    lines.append(status)
    sizes = [f"{c.numel:,} params" + (f" ({human.count(c.numel)})" if c.numel >= 1000 else "")]
    if c.tensors:
        sizes.append(human.size(c.nbytes))
    if c.buffers:
        sizes.append(f"{c.buffers} buffer{'s' if c.buffers != 1 else ''}")
    lines.append(Text(" · ".join(sizes)))
    if c.tensors:
        unknown = c.tensors - c.trainable_tensors - c.frozen_tensors
        lines.append(Text(f"{c.tensors} tensor{'s' if c.tensors != 1 else ''}: "
                          f"{c.trainable_tensors} trainable, "
                          f"{c.frozen_tensors} frozen" + (f", {unknown} unknown" if unknown else "")))
    prefix = node.name + "."
    tied = [t for t in tied if not node.name or any(n.startswith(prefix) for n in t.names)]
    for t in tied[:MAX_TIED]:
        lines.append(Text(f"shared: {' = '.join(t.names)}", style="italic"))
    if len(tied) > MAX_TIED:
        lines.append(Text(f"… {len(tied) - MAX_TIED} more shared tensors", style="italic"))
    return Text("\n").join(lines)


class NodeInfo(Static):
    """What the tree cursor is on."""

    DEFAULT_CSS = pane_css("NodeInfo") + """
    NodeInfo { padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.tied: list[TensorInfo] = []

    def set_model(self, mf: ModelFile) -> None:
        self.tied = [t for t in mf.tensors if len(t.names) > 1]

    def show(self, node: ModuleNode | None) -> None:
        self.update(describe(node, self.tied) if node is not None else "")
