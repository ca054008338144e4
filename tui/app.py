"""The Textual app: wiring only. Every edit is a `tui.core.edit.Editor` call, every
write a `tui.core.save` call, the same ones the headless CLI makes."""

from __future__ import annotations

import gc
import os
import sys
from dataclasses import replace
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.events import DescendantFocus, Resize
from textual.screen import ModalScreen
from textual.widgets import Footer, Tree
from textual.worker import Worker, WorkerState

from tui.commands import COMMANDS, ModelCommands
from tui.core import fmt
from tui.core.edit import Edit, Editor
from tui.core.errors import ModelFileError
from tui.core.model import ModelFile, ModuleNode, ValueNode
from tui.screens.error import ErrorScreen
from tui.screens.help import HelpScreen
from tui.screens.quit import QuitScreen
from tui.screens.save_dialog import SaveDialog
from tui.widgets.filter_bar import FilterBar
from tui.widgets.info_bar import InfoBar
from tui.widgets.module_tree import ModuleTree
from tui.widgets.node_info import NodeInfo
from tui.widgets.param_table import ParamTable
from tui.widgets.value_tree import ValueTree, value_label
from tui.widgets.warning_banner import WarningBanner

if TYPE_CHECKING:
    from tui.core.save import SaveResult

MODEL_ACTIONS = {"toggle", "freeze", "unfreeze", "freeze_others", "expand", "collapse", "filter"}
LEGEND = " ".join(f"{fmt.glyph(s)} {s}" for s in ("trainable", "frozen", "partial", "unknown"))


class ModelTreeApp(App[None]):
    """`modeltree FILE`: browse the module tree, freeze parts, save."""

    CSS_PATH = "app.tcss"
    TITLE = "modeltree"
    COMMANDS = App.COMMANDS | {ModelCommands}
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
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
        Binding("question_mark", "help", "Help", id="help"),
        Binding("q", "quit", "Quit", id="quit"),
    ]

    def __init__(self, path: str, key: str | None = None) -> None:
        super().__init__()
        self.path, self.key = os.fspath(path), key
        self.mf: ModelFile | None = None
        self.editor: Editor | None = None
        self.load_error: str | None = None
        self.showing_values = False
        self._pane = "tree"  # which pane space acts on (survives the command palette)
        self._undo_state = (False, False)
        self.user_keymap: dict[str, str] = {}

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
        self.mtree.border_subtitle = LEGEND
        self.mtree.loading = True
        self.query_one(InfoBar).show(self.path, None, state="reading…")
        self.mtree.focus()
        self.load()

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def load(self) -> ModelFile:
        from tui.core.reader import open_model

        return open_model(self.path, key=self.key)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "load":
            return
        if event.state == WorkerState.SUCCESS:
            self.show_model(event.worker.result)
        elif event.state == WorkerState.ERROR:
            err = event.worker.error
            self.load_error = str(err) if isinstance(err, ModelFileError) else (
                f"{self.path}: unexpected {type(err).__name__}: {err}")
            self.mtree.loading = False
            self.mtree.root.set_label(Text("nothing to show: the file could not be read", "dim"))
            self.mtree.root.allow_expand = False
            self.table.display = False
            self.query_one(InfoBar).show(self.path, None, state="could not be opened")
            self.query_one(NodeInfo).update(self.load_error)
            self.push_screen(ErrorScreen("Could not open the file", self.load_error))

    def show_model(self, mf: ModelFile) -> None:
        # The model's objects live as long as the app: keep the collector from re-scanning
        # them on every edit (a 10,000-tensor model has ~300,000 objects).
        gc.freeze()
        self.mf, self.editor = mf, Editor(mf)
        self.mtree.loading = False
        self.query_one(WarningBanner).show(mf)
        self.query_one(NodeInfo).set_model(mf)
        self.query_one(ValueTree).show_values(mf.values)
        if mf.root is not None:
            self.mtree.show_model(mf.root)
            self._show_node(mf.root)
            self.mtree.focus()
        else:
            self.action_values()
        self._update_info()
        self.refresh_bindings()

    def on_unmount(self) -> None:
        gc.unfreeze()  # let a process that runs several apps (tests) collect them

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
        if action == "filter" and (isinstance(self.screen, ModalScreen)
                                   or isinstance(self.focused, FilterBar)):
            return False  # let the field (or a dialog's path field) have the "/"
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
        self.screen.set_focus(bar)  # now, not after a refresh

    @on(FilterBar.Changed, "#filter")
    def _filter_changed(self, event: FilterBar.Changed) -> None:
        self.apply_filter(event.value.strip())

    @on(FilterBar.Submitted, "#filter")
    def _filter_submitted(self) -> None:
        self.screen.set_focus(self.mtree)

    def action_clear_filter(self) -> None:
        bar = self.query_one(FilterBar)
        bar.value = ""  # posts Changed → apply_filter("")
        self.apply_filter("")
        bar.display = False
        self.screen.set_focus(self.mtree)

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
        (values if self.showing_values else self.mtree).focus()
        self.refresh_bindings()

    # -- screens -------------------------------------------------------------
    def action_save(self, then_quit: bool = False) -> None:
        if self.mf is None or self.mf.root is None:
            return
        self.push_screen(SaveDialog(self.mf), lambda result: self._saved(result, then_quit))

    def _saved(self, result: SaveResult | None, then_quit: bool) -> None:
        if result is None or self.editor is None:
            return
        from tui.core.save import default_format, summary

        # A full model keeps requires_grad; so does a whole checkpoint whose model is a module.
        kept = (result.format == "full" or result.plan_path is not None
                or (result.format == "checkpoint" and default_format(self.mf) == "full"))
        if kept:
            self.editor.mark_saved()
        self.say(summary(self.editor, result), title=f"Saved {fmt.size(result.nbytes)}")
        if not kept and self.editor.dirty:
            self.say(f"{result.format} does not store requires_grad: your freeze edits are "
                     "not in that file. Save the full model or the freeze plan to keep them.",
                     severity="warning", timeout=10)
        self._update_info()
        if then_quit and not self.editor.dirty:
            self.exit()

    def set_keymap(self, keymap: dict[str, str]) -> None:
        self.user_keymap = dict(keymap)  # kept for the help screen and the palette
        super().set_keymap(keymap)

    def keys_for(self, action: str) -> str:
        """The keys bound to an app action now (after any keymap), for display."""
        shown = []
        for b in (*App.BINDINGS, *self.BINDINGS, *ModuleTree.BINDINGS, *ParamTable.BINDINGS):
            if isinstance(b, Binding) and b.action.removeprefix("app.") == action:
                for key in self.user_keymap.get(b.id or "", b.key).split(","):
                    shown.append(self.get_key_display(replace(b, key=key.strip())))
        return " ".join(dict.fromkeys(shown))

    def key_rows(self) -> list[tuple[str, str]]:
        """(key, what it does) for the help screen, as currently bound."""
        rows = [(self.keys_for("toggle"),
                 "freeze/unfreeze the selected subtree; on a table row, that tensor")]
        for action, (title, help_text) in COMMANDS.items():
            if action != "toggle" and (keys := self.keys_for(action)):
                rows.append((keys, f"{title}: {help_text}"))
        rows.append(("tab", "move between the tree and the parameter table"))
        return rows

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.key_rows()))

    async def action_quit(self) -> None:
        if self.editor is None or not self.editor.dirty:
            self.exit(return_code=0 if self.load_error is None else 1)
            return

        def chosen(choice: str | None) -> None:
            if choice == "quit":
                self.exit()
            elif choice == "save":
                self.action_save(then_quit=True)

        self.push_screen(QuitScreen([name for name, _, _ in self.editor.changed()]), chosen)


def run_app(path: str, key: str | None = None) -> int:
    """Run the app on a file; the exit code is 1 when the file could not be opened."""
    # Textual lays out a tree recursively, one frame per level; models go hundreds deep.
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    app = ModelTreeApp(path, key=key)
    app.set_keymap(keymap_from(os.environ.get("MODELTREE_KEYS", "")))
    app.run()
    return app.return_code or 0


def keymap_from(text: str) -> dict[str, str]:
    """MODELTREE_KEYS="save=ctrl+s;toggle=x,enter" → {binding id: keys}; bad entries skipped."""
    pairs = [(b.strip(), k.strip()) for b, sep, k in (e.partition("=") for e in text.split(";"))
             if sep]
    return {bid: keys for bid, keys in pairs if bid and keys}
