"""Checkpoint surgery in the main screen: rename, drop/restore, extract (mixed into
MainScreen, which owns `editor`, `mtree`, `table`, `_pane`, `say` and `_update_info`).

Every action is an Editor call (undoable with the freeze edits); the tree and the table
then show what each name becomes when saved.
"""

from __future__ import annotations

from typing import Any

from textual.binding import Binding

from tui.core.surgery import SurgeryError, matches
from tui.screens.screen_parts import MainScreenParts

SURGERY_BINDINGS = [
    Binding("r", "rename", "Rename", id="rename", show=False),
    Binding("d", "drop", "Drop/restore", id="drop", show=False),
    Binding("x", "extract", "Extract", id="extract", show=False),
]
SURGERY_ACTIONS = {"rename", "drop", "extract"}


class SurgeryActions(MainScreenParts):
    """Actions for MainScreen; `self` is the screen."""

    def surgery_check(self, action: str) -> bool | None:
        loaded = getattr(self, "mf", None) is not None and self.mf.root is not None
        return True if loaded and not getattr(self, "showing_values", False) else None

    def _target(self) -> str | None:
        """The selected tensor's name on the table, else the selected module's name."""
        if self._pane == "table":
            t = self.table.tensor
            if t is not None:
                return t.name
        node = self.mtree.module
        return None if node is None else node.name

    def _surgery(self, run: Any) -> None:
        try:
            edit = run()
        except SurgeryError as e:
            self.say(str(e), severity="error", timeout=6)
            return
        if edit is not None:
            self._edited(edit, "")  # MainScreen's: counts, dirty, undo state → surgery_edited
            self.say(edit.label, timeout=2)

    def surgery_edited(self) -> None:
        """Relabel what is shown with the current surgery (after an edit, undo or redo)."""
        if self.editor is None:
            return
        s = self.editor.surgery
        self.mtree.surgery = self.table.surgery = None if s.empty else s
        self.mtree.refresh_modules(list(self.mf.modules.values()))
        node = self.table.node
        self.table.node = None  # show() again: the notes changed, not the selection
        self.table.show(node)

    def action_rename(self) -> None:
        if self.editor is None:
            return
        from tui.screens.rename_dialog import RenameDialog

        name = self._target() or ""
        node = self.mtree.module
        prefix = f"{node.name}." if node is not None and node.name else name

        def done(pair: tuple[str, str] | None) -> None:
            if pair is not None:
                self._surgery(lambda: self.editor.rename(*pair))

        self.app.push_screen(RenameDialog(prefix), done)

    def action_drop(self) -> None:
        name = self._target()
        if self.editor is None or not name:
            self.say("the whole model can't be dropped: extract a module instead", timeout=3)
            return
        s = self.editor.surgery
        if name in s.drops:
            self._surgery(lambda: self.editor.restore(name))
        elif s.dropped(name):
            by = next(p for p in s.drops if matches(name, p))
            self.say(f"{name} is dropped by {by!r}: restore that one", timeout=4)
        else:
            self._surgery(lambda: self.editor.drop(name))

    def action_extract(self) -> None:
        node = self.mtree.module
        if self.editor is None or node is None:
            return
        same = self.editor.surgery.extract == node.name or not node.name
        self._surgery(lambda: self.editor.extract(None if same else node.name))
