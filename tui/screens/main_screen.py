"""The model-browsing screen: module tree, side pane, freeze keys, filter, save.

Every edit is a `tui.core.edit.Editor` call, every write a `tui.core.write.save` call, the same
ones the headless CLI makes. The app reads the file and hands the result to `show_model`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.events import DescendantFocus, Resize
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Tree

from tui.commands import ModelCommands
from tui.core import human
from tui.core.edit import Edit, Editor
from tui.core.model import ModelFile, ModuleNode, ValueNode
from tui.screens.save_dialog import SaveDialog
from tui.widgets.filter_bar import FilterBar
from tui.widgets.info_bar import InfoBar
from tui.widgets.module_tree import ModuleTree
from tui.widgets.node_info import NodeInfo
from tui.widgets.param_table import ParamTable
from tui.widgets.value_tree import ValueTree, value_label
from tui.widgets.warning_banner import WarningBanner

if TYPE_CHECKING:
    from tui.core.write.save import SaveResult

MODEL_ACTIONS = {"toggle", "freeze", "unfreeze", "freeze_others", "expand", "collapse", "filter"}


class MainScreen(Screen[None]):
    """Header, module tree (or a file's plain values), side pane, footer."""

    COMMANDS = {ModelCommands}
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]  # see app.tcss
    BINDINGS = [
        Binding("f", "freeze", "Freeze", id="freeze", show=False),
        Binding("u", "unfreeze", "Unfreeze", id="unfreeze", show=False),
        Binding("F", "freeze_others", "Freeze others", id="freeze_others"),
        Binding("ctrl+z", "undo", "Undo", id="undo"),
        Binding("ctrl+y", "redo", "Redo", id="redo", show=False),
        Binding("s", "save", "Save", id="save"),
        # priority: handled as the key arrives, so "/conv" typed at once all lands in the field
        Binding("slash", "filter", "Filter", id="filter", priority=True),
        Binding("e", "expand", "Expand all", id="expand", show=False),
        Binding("c", "collapse", "Collapse all", id="collapse", show=False),
        Binding("v", "values", "Values", id="values"),
    ]
    # What check_action decides here; the app forwards questions about these.
    ACTIONS = MODEL_ACTIONS | {"undo", "redo", "save", "values"}

    class Ready(Message):
        """Mounted: the file can be read now (its result has somewhere to go)."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self.mf: ModelFile | None = None
        self.editor: Editor | None = None
        self.showing_values = False
        self._pane = "tree"  # which pane space acts on (survives the command palette)
        self._undo_state = (False, False)

    def compose(self) -> ComposeResult:
        yield InfoBar(id="info")
        yield WarningBanner(id="banner")
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield ModuleTree(id="tree")
                yield ValueTree(id="values")
                yield FilterBar(id="filter")
            with Vertical(id="side"):
                yield NodeInfo(id="node")
                yield ParamTable(id="table")
        yield Footer()

    def on_resize(self, event: Resize) -> None:
        footer = self.query_one(Footer)  # every key must fit in 80 columns
        footer.compact = event.size.width < 110
        footer.show_command_palette = event.size.width >= 100

    @property
    def mtree(self) -> ModuleTree:
        return self.query_one("#tree", ModuleTree)

    @property
    def table(self) -> ParamTable:
        return self.query_one("#table", ParamTable)

    # -- loading -------------------------------------------------------------
    def on_mount(self) -> None:
        self.mtree.border_title = "modules"
        self.mtree.loading = True
        self.query_one(InfoBar).show(self.path, None, state="reading…")
        self.set_focus(self.mtree)
        self.post_message(self.Ready())

    def show_model(self, mf: ModelFile) -> None:
        self.mf, self.editor = mf, Editor(mf)
        self.mtree.loading = False
        self.query_one(WarningBanner).show(mf)
        self.query_one(NodeInfo).set_model(mf)
        self.query_one(ValueTree).show_values(mf.values)
        if mf.root is not None:
            self.mtree.show_model(mf.root)
            self._show_node(mf.root)
            self.set_focus(self.mtree)
        else:
            self.action_values()
        self._update_info()
        self.refresh_bindings()

    def show_fetched(self, nbytes: int, requests: int) -> None:
        """Progress of remote reads while a URL opens."""
        if self.mf is None:
            self.query_one(InfoBar).show(self.path, None, state=f"reading… fetched {human.size(nbytes)} "
                                         f"in {requests} request{'s' if requests != 1 else ''}")

    def show_load_error(self, message: str) -> None:
        self.mtree.loading = False
        self.mtree.root.set_label(Text("the file could not be read", "dim"))
        self.mtree.root.allow_expand = False
        self.table.display = False
        self.query_one(InfoBar).show(self.path, None, state="could not be opened")
        self.query_one(NodeInfo).update(message)

    def say(self, message: str, **kwargs) -> None:
        """A notification; never markup (names and paths come from the file)."""
        self.notify(message, markup=False, **kwargs)

    def _update_info(self) -> None:
        dirty = bool(self.editor and self.editor.dirty)
        self.query_one(InfoBar).show(self.path, self.mf, dirty)

    # -- selection -----------------------------------------------------------
    @on(Tree.NodeHighlighted, "#tree")
    def _module_highlighted(self, event: Tree.NodeHighlighted) -> None:
        if isinstance(event.node.data, ModuleNode):
            self._show_node(event.node.data)

    def _show_node(self, node: ModuleNode) -> None:
        if node is not self.table.node:
            self.query_one(NodeInfo).show(node)
            self.table.show(node)

    @on(Tree.NodeHighlighted, "#values")
    def _value_highlighted(self, event: Tree.NodeHighlighted) -> None:
        value = event.node.data
        if isinstance(value, ValueNode):
            self.query_one(NodeInfo).update(value_label(value))

    def on_descendant_focus(self, event: DescendantFocus) -> None:
        if isinstance(event.widget, ParamTable):
            self._pane = "table"
        elif isinstance(event.widget, ModuleTree):
            self._pane = "tree"

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        loaded = self.mf is not None and self.mf.root is not None
        if action == "filter" and (self.app.screen is not self
                                   or isinstance(self.focused, FilterBar)):
            return False  # "/" is text in the filter field, or in a dialog's path field
        if action in MODEL_ACTIONS:
            return True if loaded and not self.showing_values else None
        if action == "undo":
            return True if self.editor and self.editor.can_undo else None
        if action == "redo":
            return True if self.editor and self.editor.can_redo else None
        if action == "save":
            return True if loaded else None
        if action == "values":  # a checkpoint's other entries (epoch, optimizer, …)
            return loaded and self.mf is not None and self.mf.format == "checkpoint"
        return True

    # -- edits ---------------------------------------------------------------
    def _edited(self, edit: Edit | None, nothing: str) -> None:
        if edit is None:
            self.say(nothing, timeout=3)
            return
        assert self.editor is not None
        self.mtree.refresh_modules(self.editor.affected(edit))
        self.table.refresh_flags([t for t, _, _ in edit.changes])
        self.query_one(NodeInfo).show(self.mtree.module)
        self._update_info()
        undo_state = (self.editor.can_undo, self.editor.can_redo)
        if undo_state != self._undo_state:  # the footer is rebuilt on every refresh: only then
            self._undo_state = undo_state
            self.refresh_bindings()

    def action_toggle(self) -> None:
        node, editor = self.mtree.module, self.editor
        if node is None or editor is None:
            return
        if self._pane == "table" and not self.showing_values:
            t = self.table.tensor
            if t is None:
                return
            if t.kind == "buffer":
                self.say(f"{t.name} is a buffer: buffers have no requires_grad", timeout=3)
                return
            self._edited(editor.toggle_tensor(t), f"{t.name}: {t.dtype} tensors can't require grad")
        else:
            self._edited(editor.toggle_subtree(node), f"{node.name or '(root)'} has no parameters")

    def action_freeze(self) -> None:
        if (node := self.mtree.module) and self.editor:
            self._edited(self.editor.set_subtree(node, False), "already frozen")

    def action_unfreeze(self) -> None:
        if (node := self.mtree.module) and self.editor:
            self._edited(self.editor.set_subtree(node, True), "already trainable")

    def action_freeze_others(self) -> None:
        if (node := self.mtree.module) and self.editor:
            self._edited(self.editor.freeze_all_except(node), "nothing to change")

    def action_undo(self) -> None:
        if self.editor and (edit := self.editor.undo()):
            self._edited(edit, "")
            self.say(f"undone: {edit.label}", timeout=2)

    def action_redo(self) -> None:
        if self.editor and (edit := self.editor.redo()):
            self._edited(edit, "")
            self.say(f"redone: {edit.label}", timeout=2)

    # -- tree ----------------------------------------------------------------
    def action_expand(self) -> None:
        if self.mtree.cursor_node is not None:
            left = self.mtree.expand_subtree(self.mtree.cursor_node)
            if left:
                self.say(f"{left:,} modules left closed: too many to open at once", timeout=4)

    def action_collapse(self) -> None:
        if self.mtree.cursor_node is not None:
            self.mtree.cursor_node.collapse_all()

    def action_filter(self) -> None:
        bar = self.query_one(FilterBar)
        bar.display = True
        self.set_focus(bar)  # now, not after a refresh

    @on(FilterBar.Changed, "#filter")
    def _filter_changed(self, event: FilterBar.Changed) -> None:
        self.apply_filter(event.value.strip())

    @on(FilterBar.Submitted, "#filter")
    def _filter_submitted(self) -> None:
        self.set_focus(self.mtree)

    def action_clear_filter(self) -> None:
        bar = self.query_one(FilterBar)
        bar.value = ""  # posts Changed → apply_filter("")
        self.apply_filter("")
        bar.display = False
        self.set_focus(self.mtree)

    def apply_filter(self, pattern: str) -> None:
        if self.mf is not None and self.mf.root is not None:
            self.mtree.apply_filter(self.mf.root, pattern)

    def action_values(self) -> None:
        if self.mf is None:
            return
        self.showing_values = not self.showing_values or self.mf.root is None
        values = self.query_one(ValueTree)
        values.border_title = ("values (v: back to the modules)" if self.mf.root is not None
                               else "content: no model in this file")
        values.display, self.mtree.display = self.showing_values, not self.showing_values
        self.query_one("#side").display = not self.showing_values or self.mf.root is None
        self.table.display = not self.showing_values
        self.set_focus(values if self.showing_values else self.mtree)
        self.refresh_bindings()

    # -- saving --------------------------------------------------------------
    def action_save(self, then_quit: bool = False) -> None:
        if self.mf is None or self.mf.root is None:
            return
        self.app.push_screen(SaveDialog(self.mf), lambda result: self._saved(result, then_quit))

    def _saved(self, result: SaveResult | None, then_quit: bool) -> None:
        if result is None or self.editor is None:
            return
        from tui.core.write.save import default_format, summary

        # A full model keeps requires_grad; so does a whole checkpoint whose model is a module.
        kept = (result.format == "full" or result.plan_path is not None
                or (result.format == "checkpoint" and default_format(self.mf) == "full"))
        if kept:
            self.editor.mark_saved()
        self.say(summary(self.editor, result), title=f"Saved {human.size(result.nbytes)}")
        if not kept and self.editor.dirty:
            self.say(f"{result.format} does not store requires_grad: your freeze edits are "
                     "not in that file. Save the full model or the freeze plan to keep them.",
                     severity="warning", timeout=10)
        self._update_info()
        if then_quit and not self.editor.dirty:
            self.app.exit()
