"""MainScreen's actions beyond browsing one module: every filter match at once, what an
edit changed outside the selection (tied weights), and opening another file.

A mixin, so main_screen.py stays about browsing; it uses the screen's widgets and editor.
"""

from __future__ import annotations

import gc
import os
from typing import TYPE_CHECKING

from tui.core import human
from tui.core.model import ModuleNode
from tui.screens.screen_parts import MainScreenParts
from tui.widgets.filter_bar import FilterBar
from tui.widgets.info_bar import InfoBar
from tui.widgets.module_tree import run_filter
from tui.widgets.node_info import NodeInfo
from tui.widgets.warning_banner import WarningBanner

if TYPE_CHECKING:
    from tui.core.edit import Edit

MAX_NAMED = 4  # other modules named in a notification; the rest counted


def outside(edit: Edit, scope: ModuleNode | list[ModuleNode] | None) -> list[str]:
    """Modules (besides the subtrees of `scope`) that hold a tensor the edit changed: tied
    weights reach there. Empty for an edit of the whole model."""
    scopes = scope if isinstance(scope, list) else [scope] if scope is not None else []
    if not scopes or any(not s.name for s in scopes):
        return []
    prefixes = tuple(s.name + "." for s in scopes)
    found: dict[str, None] = {}
    for t, _, _ in edit.changes:
        if len(t.names) < 2:
            continue  # a tensor with one name lives where it was chosen
        for name in t.names:
            if not name.startswith(prefixes):
                found.setdefault(name.rpartition(".")[0] or "(root)")
    return list(found)


def reach_message(edit: Edit, names: list[str]) -> str:
    shown = ", ".join(names[:MAX_NAMED]) + (f" and {len(names) - MAX_NAMED:,} more"
                                            if len(names) > MAX_NAMED else "")
    return (f"{edit.label} also changed {shown}: "
            f"{'they share' if len(names) > 1 else 'it shares'} a tied tensor with the selection")


class MainActions(MainScreenParts):
    """Mixed into MainScreen (see MainScreenParts for what it owns)."""

    # -- every filter match at once ---------------------------------------------
    def matching_modules(self) -> list[ModuleNode]:
        """The modules the filter matches now: the tree's own walk, run here at once (the
        tree's worker may still be on the previous keystroke's pattern)."""
        pattern = self.filter_pattern if self.filtering else ""
        if not pattern or self.mf is None or self.mf.root is None:
            return []
        result = run_filter(self.mf.root, pattern)
        return result.matches if result is not None else []

    def action_toggle_matches(self) -> None:
        """Anything trainable (or unknown) among the matches → freeze them all, else unfreeze;
        one edit, so one undo."""
        if self.editor is None:
            return
        mods = self.matching_modules()
        if not mods:
            self.say("no module matches the filter", timeout=3)
            return
        seen: dict[int, object] = {}
        for m in mods:
            for t in self.editor.subtree_tensors(m):
                seen.setdefault(id(t), t)
        tensors = [t for t in seen.values() if t.can_require_grad]  # type: ignore[attr-defined]
        value = bool(tensors) and all(t.requires_grad is False for t in tensors)
        verb = "unfreeze" if value else "freeze"
        pattern = self.filter_pattern
        label = f"{verb} {human.plural(len(mods), 'module')} matching “{pattern}”"
        edit = self.editor.set_tensors(tensors, value, label)
        self._edited(edit, f"the {human.plural(len(mods), 'matching module')} "
                           "have nothing to change", mods)
        if edit is not None:
            self.say(f"{'unfroze' if value else 'froze'} {human.plural(len(edit.changes), 'tensor')}"
                     f" in {human.plural(len(mods), 'module')} matching “{pattern}”", timeout=4)

    # -- tied weights -------------------------------------------------------------
    def tell_reach(self, edit: Edit | None, scope: ModuleNode | list[ModuleNode] | None) -> None:
        if edit is not None and (names := outside(edit, scope)):
            self.say(reach_message(edit, names), title="Tied weights", timeout=6)

    # -- another file -------------------------------------------------------------
    def open_path(self, path: str, key: str | None = None) -> None:
        """Read `path` in the load worker; its Loaded replaces whatever was shown."""
        from tui.core.errors import public

        self.path, self.key, self.shown_path = path, key, public(path)
        self.app.path = path  # type: ignore[attr-defined]
        self.mf = self.editor = self.load_error = None
        self.remove_class("-failed", "-model")
        self.filtering = self.showing_values = False
        self.query_one(FilterBar).value = ""
        self.filter_pattern = ""
        self.dirty = self.can_undo = self.can_redo = False
        self.query_one(WarningBanner).remove_class("-shown")
        self.query_one(NodeInfo).update("")
        self.mtree.clear()
        self.mtree.loading = True
        self.query_one(InfoBar).show(self.shown_path, None, state="reading…")
        self.refresh_bindings()
        gc.unfreeze()  # the last model may go now (show_model freezes the next one)
        self.load()

    async def action_open(self) -> None:
        from tui.screens.quit import QuitScreen

        if self.editor is None or not self.editor.dirty:
            self.pick_file()
            return

        async def chosen(choice: str | None) -> None:
            if choice == "quit":
                self.pick_file()
            elif choice == "save":  # the picker follows once the edits are in a file
                await self.action_save(then=self.pick_file)

        names = [name for name, _, _ in self.editor.unsaved()]
        await self.app.push_screen(QuitScreen(names, self.editor.surgery_unsaved,
                                              leave="Open another file"), chosen)

    def pick_file(self) -> None:
        from tui.screens.open_file import OpenFileScreen

        start = os.path.dirname(os.path.abspath(self.path)) if self.path else os.getcwd()

        def chosen(path: str | None) -> None:
            if path:
                self.open_path(path)
            elif self.mf is None and self.load_error is None:
                self.app.exit()  # started without a file and none chosen

        self.app.push_screen(OpenFileScreen(start), chosen)
