"""One merged tree of two files: each module and tensor marked, counts rolled up.

Marks read without colour: `=` same, `≠` values changed, `!` shape/dtype mismatch,
`−` only in A, `+` only in B. Children are added when a module is opened.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from tui.core import human
from tui.core.diff import Diff, DiffEntry
from tui.widgets.pane import pane_css

MARKS = {"same": "=", "changed": "≠", "mismatch": "!", "only_a": "−", "only_b": "+"}
STYLES = {"same": "diff-tree--same", "changed": "diff-tree--changed",
          "mismatch": "diff-tree--mismatch", "only_a": "diff-tree--only-a",
          "only_b": "diff-tree--only-b"}
ORDER = ("changed", "mismatch", "only_a", "only_b", "same")


def counts_text(counts: dict[str, int]) -> str:
    return " ".join(f"{MARKS[s]}{counts[s]}" for s in ORDER if counts.get(s))


def module_label(d: Diff, prefix: str) -> Text:
    status = d.worst(prefix)
    text = Text(MARKS[status] + " ")
    text.append(prefix.rpartition(".")[2] or "(root)", style="bold")
    text.append(" " + counts_text(d.modules.get(prefix, {})), style="dim")
    return text


def entry_label(e: DiffEntry) -> Text:
    text = Text(MARKS[e.status] + " ")
    text.append(e.name.rpartition(".")[2])
    t = e.a or e.b
    if e.status == "mismatch":
        text.append(f" {human.shape(e.a.shape)}→{human.shape(e.b.shape)}", style="dim")
    elif t is not None:
        text.append(f" {human.shape(t.shape)}", style="dim")
    if e.bitwise_equal:
        text.append(" bitwise", style="dim")
    return text


class DiffTree(Tree[str | DiffEntry]):
    """Node data: a module prefix (str) or a DiffEntry."""

    BINDINGS = [
        Binding("right", "open", "Open", show=False),
        Binding("left", "close", "Close", show=False),
    ]
    COMPONENT_CLASSES = set(STYLES.values())
    DEFAULT_CSS = pane_css("DiffTree") + """
    DiffTree > .diff-tree--same { color: $text-muted; }
    DiffTree > .diff-tree--changed { color: $text-warning; text-style: bold; }
    DiffTree > .diff-tree--mismatch { color: $text-error; text-style: bold; }
    DiffTree > .diff-tree--only-a { color: $text-accent; text-style: bold; }
    DiffTree > .diff-tree--only-b { color: $text-success; text-style: bold; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__("", **kwargs)
        self.diff: Diff | None = None
        self._layout: dict[str, tuple[list[str], list[DiffEntry]]] = {}
        self.guide_depth = 3

    def show_diff(self, d: Diff) -> None:
        """(Re)build from a diff, keeping which modules were open."""
        opened = {n.data for n in self._walk() if n.is_expanded and isinstance(n.data, str)}
        self.diff, self._layout = d, d.layout()
        self.clear()
        self.root.data = ""
        self.root.set_label(module_label(d, ""))
        self._populate(self.root)
        self.root.expand()
        stack = list(self.root.children)
        while stack:
            n = stack.pop()
            if isinstance(n.data, str) and n.data in opened:
                self._populate(n)
                n.expand()
                stack.extend(n.children)
        self.move_cursor(self.root)

    def _walk(self) -> list[TreeNode]:
        out, stack = [], [self.root]
        while stack:
            n = stack.pop()
            out.append(n)
            stack.extend(n.children)
        return out

    def _populate(self, tnode: TreeNode) -> None:
        if tnode.children or not isinstance(tnode.data, str) or self.diff is None:
            return
        mods, entries = self._layout.get(tnode.data, ([], []))
        for m in mods:
            tnode.add(module_label(self.diff, m), data=m, allow_expand=True)
        for e in entries:
            tnode.add_leaf(entry_label(e), data=e)

    def action_open(self) -> None:
        node = self.cursor_node
        if node is not None and node.allow_expand and not node.is_expanded:
            self._populate(node)
            node.expand()
        else:
            self.action_cursor_down()

    def action_close(self) -> None:
        node = self.cursor_node
        if node is None:
            return
        if node.is_expanded:
            node.collapse()
        elif node.parent is not None:
            self.move_cursor(node.parent)

    def _on_tree_node_expanded(self, event: Tree.NodeExpanded) -> None:
        self._populate(event.node)

    def render_label(self, node: TreeNode, base_style: Style, style: Style) -> Text:
        text = super().render_label(node, base_style, style)
        data = node.data
        status = None
        if isinstance(data, DiffEntry):
            status = data.status
        elif isinstance(data, str) and self.diff is not None:
            status = self.diff.worst(data)
        if status is not None and text.plain:
            at = 2 if node.allow_expand else 0  # after the ▶/▼ icon
            text.stylize(self.get_component_rich_style(STYLES[status], partial=True), at, at + 1)
        return text
