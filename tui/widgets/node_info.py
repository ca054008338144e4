"""Side-pane summary of the selected module: class with its settings (as print(model)
shows them), subtree totals, share of the model, dtype/device split, tied names.

Lines are kept short and never wrapped (the stylesheet cuts them with an ellipsis),
so the pane reads the same at 80 columns as at 200.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.visual import VisualType
from textual.widgets import Static

from tui.core import human
from tui.core.composition import Makeup, makeup
from tui.core.model import ModelFile, ModuleNode, TensorInfo
from tui.widgets.pane import pane_css

MAX_TIED = 3


def attributes_text(node: ModuleNode) -> str | None:
    """The plain attributes as key=value, when they say more than the settings do."""
    if not node.attributes:
        return None
    text = ", ".join(f"{k}={v!r}" for k, v in node.attributes.items())
    return None if text == node.extra_repr else text


def makeup_line(node: ModuleNode, m: Makeup) -> Text | None:
    """"12 % of the model · f32 100 %" (devices named when not all on the CPU)."""
    parts = []
    if node.parent is not None and node.counts.numel:
        parts.append(f"{human.percent(m.share)} of the model's parameters")
    if m.dtypes:
        parts.append(human.breakdown(m.dtypes))
    if m.devices and [d for d, _ in m.devices] != ["cpu"]:
        parts.append("on " + human.breakdown(m.devices))
    return Text(" · ".join(parts)) if parts else None


def describe(node: ModuleNode, tied: Sequence[TensorInfo] = (), m: Makeup | None = None) -> Text:
    """`tied`: the model's tensors with several names (few; found once per model).
    `m`: the module's makeup (share of the model, dtype and device split)."""
    c = node.counts
    head = Text.assemble((node.name or "(root)", "bold"), "  ", (node.short_type, "italic"))
    if node.extra_repr:
        head.append(f"({human.one_line(node.extra_repr)})", style="italic")
    lines = [head, Text(node.type or "class not stored in this format", style="dim")]
    if (attrs := attributes_text(node)) is not None:
        lines.append(Text(f"attributes: {attrs}", style="dim"))
    status = Text(f"{human.glyph(node.status)} {human.STATUS_WORDS[node.status]}", style="bold")
    if node.status == "partial" and c.numel:
        status.append(f" · {100 * c.trainable / c.numel:.1f} % trainable", style="")
    lines.append(status)
    sizes = [human.plural(c.numel, "param") + (f" ({human.count(c.numel)})" if c.numel >= 1000 else "")]
    if c.tensors:
        sizes.append(human.size(c.nbytes))
    if c.buffers:
        sizes.append(human.plural(c.buffers, "buffer"))
    lines.append(Text(" · ".join(sizes)))
    if m is not None and (line := makeup_line(node, m)) is not None:
        lines.append(line)
    if c.tensors:
        unknown = c.tensors - c.trainable_tensors - c.frozen_tensors
        lines.append(Text(f"{human.plural(c.tensors, 'tensor')}: "
                          f"{c.trainable_tensors:,} trainable, "
                          f"{c.frozen_tensors:,} frozen" + (f", {unknown:,} unknown" if unknown else "")))
    prefix = node.name + "."
    tied = [t for t in tied if not node.name or any(n.startswith(prefix) for n in t.names)]
    for t in tied[:MAX_TIED]:
        lines.append(Text(f"shared: {' = '.join(t.names)}", style="italic"))
    if len(tied) > MAX_TIED:
        lines.append(Text(f"… {human.plural(len(tied) - MAX_TIED, 'more shared tensor')}",
                          style="italic"))
    return Text("\n").join(lines)


class NodeInfo(Static):
    """What the tree cursor is on."""

    DEFAULT_CSS = pane_css("NodeInfo") + """
    NodeInfo { padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.tied: list[TensorInfo] = []
        self.root: ModuleNode | None = None
        self._makeups: dict[int, Makeup] = {}  # dtypes and devices never change: once a module
        self._lines: int | None = None  # lines shown by show(); None: unknown

    def set_model(self, mf: ModelFile) -> None:
        self.tied = [t for t in mf.tensors if len(t.names) > 1]
        self.root, self._makeups = mf.root, {}

    def makeup(self, node: ModuleNode) -> Makeup | None:
        if self.root is None:
            return None
        m = self._makeups.get(id(node))
        if m is None:
            m = self._makeups[id(node)] = makeup(node, self.root)
        return m

    def update(self, content: VisualType = "", *, layout: bool = True) -> None:
        self._lines = None  # content not from show(): its height is not known
        super().update(content, layout=layout)

    def show(self, node: ModuleNode | None) -> None:
        """A module's summary. Lines never wrap, so the pane's height follows the number of
        lines: when that stays, only the pane repaints (no layout of the whole screen,
        which costs a frame or more on every cursor move)."""
        if node is None:
            self.update("")
            return
        text = describe(node, self.tied, self.makeup(node))
        lines = text.plain.count("\n") + 1
        super().update(text, layout=lines != self._lines)
        self._lines = lines
