"""Non-module content (epoch, hyper-parameters, a plain value): a lazy tree of ValueNodes."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from tui.core.model import ValueNode
from tui.widgets.pane import pane_css

CHUNK = 500


def value_label(v: ValueNode) -> Text:
    text = Text(v.key, style="bold")
    text.append(f": {v.summary}")
    if v.type not in v.summary:
        text.append(f"  {v.type}", style="italic dim")
    return text


class ValueTree(Tree[ValueNode]):
    """Children are added when a node is first expanded."""

    DEFAULT_CSS = pane_css("ValueTree")

    def __init__(self, **kwargs) -> None:
        super().__init__("", **kwargs)
        self.guide_depth = 3

    def show_values(self, root: ValueNode) -> None:
        self.clear()
        self.root.data = root
        self.root.set_label(value_label(root))
        self.root.allow_expand = bool(root.children)
        self._populate(self.root)
        self.root.expand()
        self.cursor_line = 0

    def _populate(self, tnode: TreeNode) -> None:
        v = tnode.data
        if v is None or tnode.children:
            return
        for child in v.children[:CHUNK]:
            tnode.add(value_label(child), child, allow_expand=bool(child.children))
        if len(v.children) > CHUNK:
            tnode.add_leaf(Text(f"… {len(v.children) - CHUNK:,} more not shown", style="dim"))

    def _on_tree_node_expanded(self, event: Tree.NodeExpanded) -> None:
        self._populate(event.node)

    def _toggle_node(self, node: TreeNode) -> None:
        if not node.is_expanded:  # children first: the next key sees the new lines
            self._populate(node)
        super()._toggle_node(node)
