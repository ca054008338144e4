"""The model-browsing screen: reads the file, then module tree, side pane, freeze keys, save.

Every edit is a `tui.core.edit.Editor` call, every write a `tui.core.write.save` call, the same
ones the headless CLI makes, from this screen's key bindings (so every key is done before the
next one is taken); widgets post messages up (the filter field) and are told what to show.
View state is in vars with watchers and CSS classes: `showing_values`, `filtering`, `dirty`, ….
"""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.events import DescendantFocus, Resize
from textual.message import Message
from textual.reactive import var
from textual.screen import Screen
from textual.widgets import Footer, Input, Tree

from tui.core import human
from tui.core.errors import ModelFileError, public
from tui.core.model import ModelFile, ModuleNode, ValueNode
from tui.screens.edit_actions import EditActions
from tui.screens.filter_actions import FilterActions
from tui.screens.main_actions import MainActions
from tui.screens.save_text import SaveChoices
from tui.screens.surgery_actions import SURGERY_ACTIONS, SURGERY_BINDINGS, SurgeryActions
from tui.widgets.filter_bar import FilterBar
from tui.widgets.info_bar import InfoBar
from tui.widgets.module_tree import ModuleTree
from tui.widgets.node_info import NodeInfo
from tui.widgets.param_table import ParamTable
from tui.widgets.value_tree import ValueTree, value_label
from tui.widgets.warning_banner import WarningBanner

if TYPE_CHECKING:
    from collections.abc import Callable

    from textual.command import Provider

    from tui.core.edit import Editor
    from tui.core.values.source import ValueCache
    from tui.core.write.save import SaveResult

# First frame first: the editor, the dialogs, the palette's provider and the reader are
# imported when first needed (after the first paint), not with this module.


def _commands() -> type[Provider]:
    from tui.commands import ModelCommands

    return ModelCommands


MODEL_ACTIONS = {"toggle", "freeze", "unfreeze", "freeze_others", "expand", "collapse", "filter",
                 "sort", "largest"}


class MainScreen(EditActions, FilterActions, SurgeryActions, MainActions, Screen[None]):
    """Header, module tree (or a file's plain values), side pane, footer."""

    COMMANDS = {_commands}
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]  # see app.tcss
    BINDINGS = [
        # Space: a table row's tensor while the table has focus, else the module's subtree.
        # Bound here, not in the widgets: an edit is done before the app takes the next key.
        Binding("space", "toggle_tensor", "Freeze/unfreeze tensor", id="toggle_tensor"),
        Binding("space", "toggle", "Freeze/unfreeze", id="toggle"),
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
        Binding("t", "sort", "Sort", id="sort", show=False),
        Binding("L", "largest", "Largest", id="largest", show=False),
        Binding("i", "inspect", "Inspect", id="inspect", show=False),  # (enter too; 80 columns)
        Binding("H", "health", "Health", id="health", show=False),
        Binding("m", "toggle_matches", "Freeze/unfreeze matches", id="toggle_matches"),
        Binding("o", "open", "Open", id="open", show=False),
        *SURGERY_BINDINGS,  # r rename, d drop/restore, x extract (screens/surgery_actions.py)
    ]

    showing_values = var(False, bindings=True)  # the values tree instead of the modules
    filtering = var(False)  # the filter field is open
    dirty = var(False, init=False)  # edits not in any saved file (the header says so)
    can_undo = var(False, bindings=True)
    can_redo = var(False, bindings=True)

    class Loaded(Message):
        """The read is over: the model, or the one-line reason it could not be opened."""

        def __init__(self, path: str, mf: ModelFile | None, error: str | None = None,
                     choices: list[str] | None = None) -> None:
            super().__init__()
            self.path, self.mf, self.error = path, mf, error
            self.choices = choices or []  # a folder of several model files: pick one

    def __init__(self, path: str | None, key: str | None = None) -> None:  # None: pick one
        super().__init__()
        self.path, self.key = path or "", key
        self.shown_path = public(self.path)  # a URL without credentials or query
        self.save_memory: dict[str, SaveChoices] = {}  # the save dialog's choices, by file
        self.mf: ModelFile | None = None
        self.editor: Editor | None = None
        self.load_error: str | None = None
        self._pane = "tree"  # which pane space acts on (survives the command palette)
        self.value_cache: ValueCache | None = None  # statistics per tensor (tensor_view.py)

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
        self.set_focus(self.mtree)
        if not self.path:  # started without a file
            return self.pick_file()
        self.mtree.loading = True
        self.query_one(InfoBar).show(self.shown_path, None, state="reading…")
        # The reader's imports and the read start once the first frame is out: a thread
        # importing modules holds the GIL the first paint needs.
        self.call_after_refresh(self.load)

    @work(thread=True, exclusive=True, group="load")
    def load(self) -> None:
        from tui.core.read.reader import open_model
        from tui.core.read.remote import set_progress
        from tui.core.read.source import is_url

        path = self.path
        if is_url(path):  # show what has been fetched while remote reads go on
            set_progress(lambda n, r, _name: self.app.call_from_thread(self.show_fetched, n, r))
        try:
            self.post_message(self.Loaded(path, open_model(path, key=self.key)))
        except ModelFileError as err:
            self.post_message(self.Loaded(path, None, str(err), getattr(err, "choices", None)))
        except Exception as err:  # a reader bug: still one line, never a traceback
            self.post_message(self.Loaded(path, None, f"{self.shown_path}: unexpected "
                                                      f"{type(err).__name__}: {err}"))
        finally:
            set_progress(None)

    def show_fetched(self, nbytes: int, requests: int) -> None:
        """Progress of remote reads while a URL opens."""
        if self.mf is None:
            self.query_one(InfoBar).show(self.shown_path, None, state="reading… fetched "
                                         f"{human.size(nbytes)} in {human.plural(requests, 'request')}")

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        if message.path != self.path:
            return  # a file the user has since left for another
        if message.choices:
            self._pick(message.choices, message.error or "")
            return
        self.mtree.loading = False
        if message.mf is not None:
            self.show_model(message.mf)
            return
        self.load_error = message.error
        self.mtree.root.set_label(Text("the file could not be read", "dim"))
        self.mtree.root.allow_expand = False
        self.add_class("-failed")
        self.query_one(InfoBar).show(self.shown_path, None, state="could not be opened")
        self.query_one(NodeInfo).update(message.error or "")
        from tui.screens.error import ErrorScreen

        self.app.push_screen(ErrorScreen("Could not open the file", message.error or ""))

    def _pick(self, choices: list[str], why: str) -> None:
        """A folder of several model files is not one model: ask which one to open."""
        import os

        from tui.screens.file_picker import FilePicker

        def opened(path: str | None) -> None:
            if path is None:
                self._loaded(self.Loaded(self.path, None, why))
                return
            self.path = self.app.path = path
            self.load()

        folder = os.path.basename(self.path.rstrip(os.sep)) or self.path
        self.app.push_screen(FilePicker(choices, f"{folder} holds {len(choices)} model files: "
                                        "open which one?"), opened)

    def show_model(self, mf: ModelFile) -> None:
        # The model's objects live as long as the screen: keep the collector from re-scanning
        # them on every edit (a 10,000-tensor model has ~300,000 objects).
        gc.freeze()
        from tui.core.edit import Editor

        self.mf, self.editor = mf, Editor(mf)
        self.set_class(mf.root is not None, "-model")
        self.query_one(WarningBanner).show(mf)
        self.query_one(NodeInfo).set_model(mf)
        values = self.query_one(ValueTree)
        values.show_values(mf.values)
        values.border_title = ("values (v: back to the modules)" if mf.root is not None
                               else "content: no model in this file")
        if mf.root is not None:
            self.mtree.show_model(mf.root)
            self._show_node(mf.root)
        self.showing_values = mf.root is None  # (a plain value: nothing else to show)
        self.query_one(InfoBar).show(self.shown_path, mf)
        self.refresh_bindings()  # the model's keys apply now

    def on_unmount(self) -> None:
        gc.unfreeze()  # let a process that runs several apps (tests) collect them

    def watch_dirty(self, dirty: bool) -> None:
        self.query_one(InfoBar).show(self.shown_path, self.mf, dirty)

    def watch_showing_values(self, showing: bool) -> None:
        self.set_class(showing, "-values")
        self.set_focus(self.query_one(ValueTree) if showing else self.mtree)

    def say(self, message: str, **kwargs) -> None:
        """A notification; never markup (names and paths come from the file)."""
        self.notify(message, markup=False, **kwargs)

    # -- selection -----------------------------------------------------------
    @on(Tree.NodeHighlighted, "#tree")
    def _module_highlighted(self, event: Tree.NodeHighlighted) -> None:
        if isinstance(event.node.data, ModuleNode):
            self._show_node(event.node.data)

    def _show_node(self, node: ModuleNode) -> None:
        if self.mf is None or (node is not self.mf.root and self.mf.modules.get(node.name) is not node):
            return  # a highlight from the file shown before this one
        if node is not self.table.node:
            self.query_one(NodeInfo).show(node)
            if not self.table.largest:  # the largest view stays until L again
                self.table.show(node)
            else:
                self.table.node = node

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
                                   or isinstance(self.focused, Input)):
            return False  # "/" is text in the filter field, or in a dialog's path field
        if action == "toggle_tensor":  # hidden unless the table has focus: then space is this
            return loaded and not self.showing_values and isinstance(self.focused, ParamTable)
        if action in MODEL_ACTIONS:
            return True if loaded and not self.showing_values else None
        if action in SURGERY_ACTIONS:
            return self.surgery_check(action)
        if action == "undo":
            return True if self.can_undo else None
        if action == "redo":
            return True if self.can_redo else None
        if action == "save":
            return True if loaded else None
        if action == "toggle_matches":  # shown while a filter is typed in
            return loaded and not self.showing_values and bool(self.filtering and self.filter_pattern)
        if action in ("inspect", "health"):
            if not loaded:  # (the tensor view brings numpy: imported once a model is shown)
                return None
            from tui.screens.tensor_view import tensor_actions

            return tensor_actions(self, action, loaded)
        if action == "values":  # a checkpoint's other entries (epoch, optimizer, …)
            return loaded and self.mf is not None and self.mf.format == "checkpoint"
        return True

    # (edits, sort and the largest view: tui/screens/edit_actions.py)

    # -- tree ----------------------------------------------------------------
    def action_expand(self) -> None:
        if self.mtree.cursor_node is not None:
            left = self.mtree.expand_subtree(self.mtree.cursor_node)
            if left:
                self.say(f"{left:,} modules left closed: too many to open at once", timeout=4)

    def action_collapse(self) -> None:
        if self.mtree.cursor_node is not None:
            self.mtree.cursor_node.collapse_all()

    def action_values(self) -> None:
        self.showing_values = not self.showing_values

    # (filter: tui/screens/filter_actions.py)
    @on(FilterBar.Changed, "#filter")
    def _filter_changed(self, event: FilterBar.Changed) -> None:
        self.filter_changed(event.value)

    @on(FilterBar.Submitted, "#filter")
    def _filter_submitted(self) -> None:
        self.filter_submitted()

    @on(FilterBar.Cleared)
    def _filter_cleared(self) -> None:
        self.filter_cleared()

    def watch_filtering(self, filtering: bool) -> None:
        self.set_class(filtering, "-filtering")

    # -- values (tui/screens/tensor_view.py, health_check.py) -------------------
    @on(ParamTable.RowSelected, "#table")
    def _row_chosen(self) -> None:
        self.action_inspect()

    def action_inspect(self) -> None:
        from tui.screens.tensor_view import open_tensor_view

        open_tensor_view(self)

    def action_health(self) -> None:
        from tui.screens.health_check import run_health_check

        run_health_check(self)

    # -- saving --------------------------------------------------------------
    async def action_save(self, then_quit: bool = False,
                          then: Callable[[], object] | None = None) -> None:
        """`then`: what to do once nothing is unsaved (quit, open another file)."""
        if self.mf is None or self.mf.root is None or self.editor is None:
            return
        # Awaited: the dialog has focus before the app takes the next key (see ModelTreeApp).
        from tui.screens.save_dialog import SaveDialog

        memory = self.save_memory.setdefault(self.path, SaveChoices())
        edited = self.editor.dirty or bool(self.editor.changed())
        await self.app.push_screen(SaveDialog(self.mf, self.editor.surgery, memory, edited),
                                   lambda result: self._saved(result, then_quit, then))

    def _saved(self, result: SaveResult | None, then_quit: bool,
               then: Callable[[], object] | None = None) -> None:
        if result is None or self.editor is None or self.mf is None:
            return
        from tui.core.write.save import default_format, summary
        from tui.screens.save_text import TICK_PLAN, lost_flags_warning

        # A full model keeps requires_grad; so does a whole checkpoint whose model is a module.
        kept = (result.format == "full" or result.plan_path is not None
                or (result.format == "checkpoint" and default_format(self.mf) == "full"))
        if result.surgery is not None and result.surgery.dtype != self.editor.surgery.dtype:
            self._edited(self.editor.cast(result.surgery.dtype), "")  # the dialog's dtype: undoable
        self.editor.mark_surgery_saved()
        if kept:
            self.editor.mark_saved()
        self.say(summary(self.editor, result, plan_hint=TICK_PLAN),
                 title=f"Saved {human.size(result.nbytes)}")
        if not kept and self.editor.unsaved():
            self.say(lost_flags_warning(result.format, default_format(self.mf) == "full"),
                     severity="warning", timeout=10)
        self.dirty = self.editor.dirty
        if then_quit and not self.editor.dirty:
            self.app.exit()
        elif then is not None and not self.editor.dirty:
            then()
