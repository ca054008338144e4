"""The main screen's edit keys (freeze, unfreeze, toggle, undo/redo) and the table's views
(sort, largest tensors). A mixin of MainScreen, which owns `editor`, `mf`, `mtree`, `table`,
`_pane`, `say`, `dirty`, `can_undo`, `can_redo` and `surgery_edited`.

After an edit only what it touched is redrawn: the tree marks the changed modules' labels
stale (rebuilt when drawn), the table re-formats the visible rows whose flag changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tui.screens.screen_parts import MainScreenParts
from tui.widgets.node_info import NodeInfo

if TYPE_CHECKING:
    from tui.core.edit import Edit
    from tui.core.model import ModuleNode


class EditActions(MainScreenParts):

    def _edited(self, edit: Edit | None, nothing: str,
                scope: ModuleNode | list[ModuleNode] | None = None) -> None:
        """`scope`: the module the edit was asked for (tied tensors reaching outside it are
        named in a notification)."""
        if edit is None:
            self.say(nothing, timeout=3)
            return
        assert self.editor is not None
        self.tell_reach(edit, scope)  # type: ignore[attr-defined]  # (MainActions)
        self.mtree.refresh_modules(self.editor.affected(edit))
        self.table.refresh_flags([t for t, _, _ in edit.changes])
        if edit.surgery is not None:
            self.surgery_edited()
        self.query_one(NodeInfo).show(self.mtree.module)  # type: ignore[attr-defined]
        self.dirty = self.editor.dirty
        self.can_undo, self.can_redo = self.editor.can_undo, self.editor.can_redo

    def action_toggle(self) -> None:
        """The module's subtree; from the command palette, the pane that last had focus says."""
        if self._pane == "table":
            self.action_toggle_tensor()
        elif (node := self.mtree.module) is not None and self.editor is not None:
            self._edited(self.editor.toggle_subtree(node),
                         f"{node.name or '(root)'} has no parameters", node)

    def action_toggle_tensor(self) -> None:
        if (t := self.table.tensor) is None or self.editor is None:
            return
        if t.kind == "buffer":
            self.say(f"{t.name} is a buffer: buffers have no requires_grad", timeout=3)
            return
        self._edited(self.editor.toggle_tensor(t), f"{t.name}: {t.dtype} tensors can't require grad",
                     self.table.node)

    def action_freeze(self) -> None:
        if (node := self.mtree.module) and self.editor:
            self._edited(self.editor.set_subtree(node, False), "already frozen", node)

    def action_unfreeze(self) -> None:
        if (node := self.mtree.module) and self.editor:
            self._edited(self.editor.set_subtree(node, True), "already trainable", node)

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

    # -- the table's views ----------------------------------------------------
    def action_sort(self) -> None:
        self.table.cycle_sort()

    def action_largest(self) -> None:
        """The model's largest tensors in the table, and back to the selected module's."""
        if self.mf is None:
            return
        if self.table.largest:
            self.table.show(self.mtree.module)
        else:
            from tui.core.composition import largest_tensors
            from tui.widgets.param_rows import LARGEST

            self.table.show_largest(largest_tensors(self.mf, LARGEST))
