"""requires_grad edits with undo/redo and incrementally maintained counts.

Each edit touches only the nodes on its tensors' ancestor chains, so freezing
one layer costs O(depth), and freezing a subtree O(subtree size + depth).
Tied tensors are one TensorInfo, so their names always change together.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass

from tui.core.build import add_tensor, ancestors_union
from tui.core.model import ModelFile, ModuleNode, TensorInfo


@dataclass
class Edit:
    label: str
    changes: list[tuple[TensorInfo, bool | None, bool | None]]  # tensor, before, after


class Editor:
    def __init__(self, mf: ModelFile) -> None:
        self.mf = mf
        self._undo: list[Edit] = []
        self._redo: list[Edit] = []
        self._baseline: dict[int, bool | None] = {id(t): t.requires_grad for t in mf.tensors}
        self._differs = 0  # tensors whose flag differs from the baseline

    # -- queries -----------------------------------------------------------------
    @property
    def dirty(self) -> bool:
        return self._differs > 0

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def changed(self) -> list[tuple[str, bool | None, bool | None]]:
        """(name, on disk, now) for every tensor that differs from the file on disk."""
        return [(t.name, t.original_requires_grad, t.requires_grad)
                for t in self.mf.tensors if t.requires_grad != t.original_requires_grad]

    def owners(self, t: TensorInfo) -> list[ModuleNode]:
        mods = self.mf.modules
        return [mods[n.rpartition(".")[0]] for n in t.names if n.rpartition(".")[0] in mods]

    def subtree_tensors(self, node: ModuleNode) -> list[TensorInfo]:
        seen: dict[int, TensorInfo] = {}
        for n in node.walk():
            for _, t in n.params:
                seen.setdefault(id(t), t)
        return list(seen.values())

    # -- edits -------------------------------------------------------------------
    def set_tensors(self, tensors: Iterable[TensorInfo], value: bool, label: str) -> Edit | None:
        changes = [(t, t.requires_grad, value) for t in tensors
                   if t.kind != "buffer" and t.can_require_grad and t.requires_grad != value]
        if not changes:
            return None
        edit = Edit(label, changes)
        self._apply(edit, forward=True)
        self._undo.append(edit)
        self._redo.clear()
        return edit

    def set_subtree(self, node: ModuleNode, value: bool) -> Edit | None:
        verb = "unfreeze" if value else "freeze"
        return self.set_tensors(self.subtree_tensors(node), value, f"{verb} {node.name or '(root)'}")

    def toggle_subtree(self, node: ModuleNode) -> Edit | None:
        """Anything not frozen → freeze all of it; all frozen → unfreeze all."""
        c = node.counts
        return self.set_subtree(node, c.tensors > 0 and c.frozen_tensors == c.tensors)

    def toggle_tensor(self, t: TensorInfo) -> Edit | None:
        value = t.requires_grad is False
        return self.set_tensors([t], value, f"{'unfreeze' if value else 'freeze'} {t.name}")

    def freeze_all_except(self, node: ModuleNode) -> Edit | None:
        keep = {id(t) for t in self.subtree_tensors(node)}
        changes = [(t, t.requires_grad, id(t) in keep) for t in self.mf.parameters()
                   if t.can_require_grad and t.requires_grad != (id(t) in keep)]
        if not changes:
            return None
        edit = Edit(f"freeze all but {node.name or '(root)'}", changes)
        self._apply(edit, forward=True)
        self._undo.append(edit)
        self._redo.clear()
        return edit

    def matching(self, pattern: str) -> list[TensorInfo]:
        """Parameters any of whose names match a glob; a plain module name means its subtree."""
        wild = any(ch in pattern for ch in "*?[")
        out = []
        for t in self.mf.parameters():
            for n in t.names:
                if fnmatch.fnmatchcase(n, pattern) or (not wild and n.startswith(pattern + ".")):
                    out.append(t)
                    break
        return out

    def apply_pattern(self, pattern: str, value: bool) -> Edit | None:
        verb = "unfreeze" if value else "freeze"
        return self.set_tensors(self.matching(pattern), value, f"{verb} {pattern}")

    def undo(self) -> Edit | None:
        if not self._undo:
            return None
        edit = self._undo.pop()
        self._apply(edit, forward=False)
        self._redo.append(edit)
        return edit

    def redo(self) -> Edit | None:
        if not self._redo:
            return None
        edit = self._redo.pop()
        self._apply(edit, forward=True)
        self._undo.append(edit)
        return edit

    def mark_saved(self) -> None:
        """The current flags are now what the user has on disk (after a save)."""
        self._baseline = {id(t): t.requires_grad for t in self.mf.tensors}
        self._differs = 0

    def affected(self, edit: Edit) -> list[ModuleNode]:
        return ancestors_union(n for t, _, _ in edit.changes for n in self.owners(t))

    # -- internals ---------------------------------------------------------------
    def _apply(self, edit: Edit, forward: bool) -> None:
        for t, before, after in edit.changes:
            new = after if forward else before
            nodes = ancestors_union(self.owners(t))
            for n in nodes:
                add_tensor(n.counts, t, -1)
            was_diff = t.requires_grad != self._baseline.get(id(t))
            t.requires_grad = new
            for n in nodes:
                add_tensor(n.counts, t, +1)
            self._differs += (t.requires_grad != self._baseline.get(id(t))) - was_diff
