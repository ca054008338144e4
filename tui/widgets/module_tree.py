"""The module tree: lazy (children are added on expand, in chunks), labels precomputed."""

from __future__ import annotations

import fnmatch
from collections import deque
from dataclasses import dataclass

from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from tui.core import human
from tui.core.model import ModuleNode
from tui.core.surgery import Surgery, module_note
from tui.widgets.pane import pane_css

CHUNK = 200  # siblings added per step; a "… more" leaf adds the next chunk
EXPAND_LIMIT = 2000  # nodes `e` may add at once; beyond that the user expands by hand
FILTER_EXPAND = 400  # nodes a filter opens at once (a few screens); the rest by hand
LEGEND_SHORT_BELOW = 36  # tree width under which the legend says "train" (as the table does)


@dataclass
class FilterResult:
    """What a filter shows: its matches (tree order) and the names to keep (with ancestors)."""

    pattern: str
    matches: list[ModuleNode]
    shown: set[str]


def run_filter(root: ModuleNode, pattern: str, cancelled=lambda: False) -> FilterResult | None:
    """Walk the model once (off the UI thread: nothing here touches a widget). None when
    `cancelled()` says a newer pattern came in."""
    keep: set[str] = {""}
    found: list[ModuleNode] = []
    for i, node in enumerate(root.walk()):
        if i % 512 == 0 and cancelled():
            return None
        if node is root or not matches(node, pattern):
            continue
        found.append(node)
        n: ModuleNode | None = node
        while n is not None and n.name not in keep:
            keep.add(n.name)
            n = n.parent
    return FilterResult(pattern, found, keep)


@dataclass
class More:
    """Placeholder leaf for siblings not added yet."""

    parent: ModuleNode
    start: int


FLAG_MARK = " ⚠ NaN/Inf"


def module_label(node: ModuleNode, surgery: Surgery | None = None) -> Text:
    """Glyph, name, short class, parameter count, and how a pending rename/drop/extract
    changes it when saved. The glyph is coloured at render time."""
    text = Text(human.glyph(node.status) + " ")
    text.append(node.key or "(root)", style="bold")
    if node.type is not None:  # state_dicts don't name classes
        text.append(f" {node.short_type}", style="italic dim")
    if node.counts.tensors or node.counts.numel:
        text.append(f" {human.count(node.counts.numel)}")
    note = module_note(surgery, node.name) if surgery is not None else ""
    if note:
        text.append(f" {note}", style="bold reverse" if note.startswith("✗") else "bold")
    return text


def more_label(more: More) -> Text:
    left = len(more.parent.children) - more.start
    return Text(f"… {left:,} more (enter to show {min(left, CHUNK)})", style="dim")


def matches(node: ModuleNode, pattern: str) -> bool:
    """Glob on the qualified name or class; otherwise a case-insensitive substring."""
    p = pattern.lower()
    name, typ = node.name.lower(), node.short_type.lower()
    if "*" in p or "?" in p or ("[" in p and "]" in p[p.index("["):]):
        return fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(typ, p)
    return p in name or p in typ


class ModuleTree(Tree[ModuleNode | More]):
    """Tree of ModuleNodes; only what the user opens is ever added."""

    BINDINGS = [
        Binding("right", "expand_or_down", "Expand", show=False),
        Binding("left", "collapse_or_up", "Collapse", show=False),
    ]
    COMPONENT_CLASSES = {
        "module-tree--trainable", "module-tree--frozen", "module-tree--partial",
        "module-tree--unknown", "module-tree--empty", "module-tree--flagged",
    }
    DEFAULT_CSS = pane_css("ModuleTree") + """
    ModuleTree > .module-tree--trainable { color: $text-success; text-style: bold; }
    ModuleTree > .module-tree--frozen { color: $text-primary; text-style: bold; }
    ModuleTree > .module-tree--partial { color: $text-warning; text-style: bold; }
    ModuleTree > .module-tree--unknown { color: $text-accent; text-style: bold; }
    ModuleTree > .module-tree--empty { color: $text-muted; }
    ModuleTree > .module-tree--flagged { color: $text-error; text-style: bold; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__("", **kwargs)
        self.guide_depth = 3
        self.loaded: dict[str, TreeNode] = {}  # qualified name -> tree node, for what is added
        self.shown: set[str] | None = None  # filter: names shown (matches + ancestors)
        self.matches: list[ModuleNode] = []  # the filter's matches, in tree order
        self.flagged: set[str] = set()  # modules holding NaN/Inf (health check)
        self.surgery: Surgery | None = None  # pending rename/drop/extract, shown in labels
        self._stale: set[TreeNode] = set()  # labels to rebuild when next drawn (after edits)
        self.labels_rendered = 0  # lines drawn and labels built (tests bound the work per
        self.labels_built = 0  # edit with them)

    @property
    def match_count(self) -> int:
        return len(self.matches)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Space freezes (the screen's binding); enter, click and the arrows open modules.
        return action != "toggle_node"

    # -- building ------------------------------------------------------------
    def show_model(self, root: ModuleNode, shown: set[str] | None = None) -> None:
        self.clear()
        self._stale.clear()
        self.loaded = {"": self.root}
        self.shown = shown
        self.root.data = root
        self.root.set_label(module_label(root, self.surgery))
        self.root.allow_expand = bool(self._kids(root))
        self._populate(self.root)
        self.root.expand()
        self.cursor_line = 0
        self._set_legend()

    def on_resize(self) -> None:
        self._set_legend()

    def _set_legend(self) -> None:
        """The marks, under the tree; "? unknown" only for files without requires_grad,
        and first then (a narrow pane cuts the end)."""
        root, statuses = self.root.data, ["trainable", "frozen", "partial"]
        if isinstance(root, ModuleNode) and (
                root.counts.tensors > root.counts.trainable_tensors + root.counts.frozen_tensors):
            statuses.insert(0, "unknown")
        short = {"trainable": "train"} if self.size.width < LEGEND_SHORT_BELOW else {}
        self.border_subtitle = " ".join(f"{human.glyph(s)} {short.get(s, s)}" for s in statuses)

    def _kids(self, node: ModuleNode) -> list[ModuleNode]:
        if self.shown is None:
            return node.children
        return [c for c in node.children if c.name in self.shown]

    def _populate(self, tnode: TreeNode, start: int = 0) -> None:
        """Add the next chunk of children (once)."""
        node = tnode.data
        if not isinstance(node, ModuleNode) or (start == 0 and tnode.children):
            return
        kids = self._kids(node)
        for child in kids[start:start + CHUNK]:
            self.loaded[child.name] = tnode.add(module_label(child, self.surgery), child,
                                                allow_expand=bool(self._kids(child)))
        if len(kids) > start + CHUNK:
            more = More(node, start + CHUNK)
            tnode.add_leaf(more_label(more), more)

    def _on_tree_node_expanded(self, event: Tree.NodeExpanded) -> None:
        self._populate(event.node)

    def _toggle_node(self, node: TreeNode) -> None:
        # Add children before expanding (enter, click), not in the NodeExpanded handler
        # alone: a key typed right after would move over the old lines.
        if not node.is_expanded:
            self._populate(node)
        super()._toggle_node(node)

    def _on_tree_node_selected(self, event: Tree.NodeSelected) -> None:
        if isinstance(event.node.data, More):
            event.stop()
            more, parent = event.node.data, event.node.parent
            event.node.remove()
            if parent is not None:
                self._populate(parent, more.start)

    # -- labels --------------------------------------------------------------
    def process_label(self, label: str | Text) -> Text:
        # Labels are built here, one line each; the default copies every label it is given.
        if isinstance(label, Text) and "\n" not in label.plain:
            return label
        return super().process_label(label)

    def render_label(self, node: TreeNode, base_style: Style, style: Style) -> Text:
        self.labels_rendered += 1
        if node in self._stale:
            self._relabel(node)
        text = super().render_label(node, base_style, style)
        data = node.data
        if isinstance(data, ModuleNode):
            at = 2 if node.allow_expand else 0  # after the ▶/▼ icon
            text.stylize(self.get_component_rich_style(f"module-tree--{data.status}",
                                                       partial=True), at, at + 1)
            if data.name in self.flagged:  # the health check found NaN/Inf in here
                text.append(FLAG_MARK, style=self.get_component_rich_style("module-tree--flagged"))
        return text

    def get_label_width(self, node: TreeNode) -> int:
        # The default renders every label; this is called for every shown line on each change.
        if node in self._stale:
            self._relabel(node)
        flagged = isinstance(node.data, ModuleNode) and node.data.name in self.flagged
        return node._label.cell_len + (2 if node.allow_expand else 0) + (len(FLAG_MARK) if flagged else 0)

    def flag(self, names: set[str]) -> None:
        """Mark these modules (qualified names) as holding NaN/Inf."""
        self.flagged = set(names)
        self._invalidate()

    def _relabel(self, tnode: TreeNode) -> None:
        self.labels_built += 1
        self._stale.discard(tnode)
        if isinstance(tnode.data, ModuleNode):
            tnode._label = module_label(tnode.data, self.surgery)

    def label_of(self, tnode: TreeNode) -> Text:
        """A line's label, up to date (labels of lines not drawn since an edit are stale)."""
        if tnode in self._stale:
            self._relabel(tnode)
        return tnode._label

    def refresh_modules(self, nodes: list[ModuleNode]) -> None:
        """After an edit: O(changed modules) to mark their labels stale, then one repaint,
        which relabels and draws only the lines on screen (Tree.set_label would schedule a
        search of the visible lines per module: 5,000 of them when the root of a wide
        model is frozen)."""
        loaded, stale = self.loaded, self._stale
        for node in nodes:
            tnode = loaded.get(node.name)
            if tnode is not None:
                tnode._updates += 1  # the line cache's key: these lines draw again
                stale.add(tnode)
        self.refresh()

    # -- queries and moves ----------------------------------------------------
    @property
    def module(self) -> ModuleNode | None:
        node = self.cursor_node
        if node is None or not isinstance(node.data, ModuleNode):
            return None
        return node.data

    def reveal(self, node: ModuleNode) -> None:
        """Add and expand the path to a module, then put the cursor on it."""
        path = []
        n: ModuleNode | None = node
        while n is not None and n.name not in self.loaded:
            path.append(n)
            n = n.parent
        for m in reversed(path):
            parent = self.loaded.get(m.parent.name if m.parent else "")
            if parent is None:
                return
            parent.expand()
            self._populate(parent)
            if m.name not in self.loaded:  # beyond the added chunks: add it alone
                self.loaded[m.name] = parent.add(module_label(m, self.surgery), m,
                                                 allow_expand=bool(self._kids(m)))
        target = self.loaded[node.name]
        for anc in _tree_ancestors(target):
            anc.expand()
        self.goto(target)

    def goto(self, tnode: TreeNode) -> None:
        """Move the cursor to a node just added or revealed."""
        self._build()  # line numbers are stale until the next idle rebuild
        self.move_cursor(tnode)

    def expand_subtree(self, tnode: TreeNode, limit: int = EXPAND_LIMIT) -> int:
        """Expand breadth-first, adding at most `limit` nodes. Returns nodes left closed."""
        queue, added, left = deque([tnode]), 0, 0
        while queue:
            t = queue.popleft()
            if not t.allow_expand:
                continue
            if added >= limit:
                left += 1
                continue
            self._populate(t)
            t.expand()
            added += len(t.children)
            queue.extend(t.children)
        return left

    def action_expand_or_down(self) -> None:
        node = self.cursor_node
        if node is None:
            return
        if node.allow_expand and not node.is_expanded:
            self._toggle_node(node)
        else:
            self.action_cursor_down()

    def action_collapse_or_up(self) -> None:
        node = self.cursor_node
        if node is None:
            return
        if node.allow_expand and node.is_expanded:
            node.collapse()
        elif node.parent is not None:
            self.move_cursor(node.parent)

    def apply_filter(self, root: ModuleNode, result: FilterResult | None) -> None:
        """Show a filter's matches and their ancestors (replacing any previous filter); None
        shows all again, keeping the cursor on the module it was on."""
        current = self.module
        if result is None:
            self.matches = []
            if self.shown is not None:
                self.show_model(root)
                if current is not None:
                    self.reveal(current)
            self.border_title = "modules"
            return
        self.show_model(root, result.shown)
        self.matches = result.matches
        self.expand_subtree(self.root, FILTER_EXPAND)
        self.border_title = Text(f"modules matching “{result.pattern}”: {self.match_count:,}")
        first = next((n for n in result.matches if n.name in self.loaded), None)
        if first is not None:
            self.goto(self.loaded[first.name])


def _tree_ancestors(tnode: TreeNode) -> list[TreeNode]:
    out = []
    p = tnode.parent
    while p is not None:
        out.append(p)
        p = p.parent
    return out
