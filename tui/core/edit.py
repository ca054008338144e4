"""requires_grad edits with undo/redo and incrementally maintained counts; checkpoint
surgery (rename, drop, extract, cast: tui.core.surgery) on the same undo stack.

Each edit touches only the nodes on its tensors' ancestor chains, so freezing
one layer costs O(depth), and freezing a subtree O(subtree size + depth).
Tied tensors are one TensorInfo, so their names always change together.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass, field

from tui.core.model import Counts, ModelFile, ModuleNode, TensorInfo, ancestors_union
from tui.core.surgery import Surgery, check


@dataclass
class Edit:
    label: str
    changes: list[tuple[TensorInfo, bool | None, bool | None]]  # tensor, before, after
    nodes: list[ModuleNode] = field(default_factory=list)  # whose counts it moves (set on apply)
    surgery: tuple[Surgery, Surgery] | None = None  # before, after (surgery edits only)


class Editor:
    def __init__(self, mf: ModelFile) -> None:
        self.mf = mf
        self._undo: list[Edit] = []
        self._redo: list[Edit] = []
        self._baseline: dict[int, bool | None] = {id(t): t.requires_grad for t in mf.tensors}
        self._differs = 0  # tensors whose flag differs from the baseline
        self.surgery = Surgery()
        self._saved_surgery = self.surgery
        self._off: dict[int, TensorInfo] = {}  # those tensors (mark_saved: O(changed))
        # id(tensor) → (its one owner, numel), for the per-tensor loop of _apply.
        self._single: dict[int, tuple[ModuleNode, int]] = {
            id(t): (n, t.numel) for n in mf.modules.values() for _, t in n.params if len(t.names) == 1}

    # -- queries -----------------------------------------------------------------
    @property
    def dirty(self) -> bool:
        return self._differs > 0 or self.surgery != self._saved_surgery

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

    def unsaved(self) -> list[tuple[str, bool | None, bool | None]]:
        """(name, at the last save — or on opening —, now) for every tensor changed since."""
        return [(t.name, self._baseline.get(id(t)), t.requires_grad) for t in self._off.values()]

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
        unique = {id(t): t for t in tensors}  # a tensor listed twice is one change
        changes = [(t, t.requires_grad, value) for t in unique.values()
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

    def names(self) -> list[str]:
        """Every tensor name a state_dict of the model part would hold (tied: each name)."""
        return [n for t in self.mf.tensors for n in t.names]

    def set_surgery(self, new: Surgery, label: str) -> Edit | None:
        """Replace the surgery (validated against the model's names; raises SurgeryError)."""
        if new == self.surgery:
            return None
        check(new, self.names())
        edit = Edit(label, [], surgery=(self.surgery, new))
        self._apply(edit, forward=True)
        self._undo.append(edit)
        self._redo.clear()
        return edit

    def rename(self, old: str, new: str) -> Edit | None:
        return self.set_surgery(self.surgery.with_rename(old, new), f"rename {old}={new}")

    def drop(self, pattern: str) -> Edit | None:
        return self.set_surgery(self.surgery.with_drop(pattern), f"drop {pattern}")

    def restore(self, pattern: str) -> Edit | None:
        return self.set_surgery(self.surgery.without_drop(pattern), f"restore {pattern}")

    def extract(self, prefix: str | None) -> Edit | None:
        return self.set_surgery(self.surgery.with_extract(prefix),
                                f"extract {prefix}" if prefix else "whole model")

    def cast(self, dtype: str | None) -> Edit | None:
        return self.set_surgery(self.surgery.with_dtype(dtype), f"cast to {dtype or 'as stored'}")

    def apply_surgery(self, s: Surgery, label: str = "apply") -> Edit | None:
        """Add every part of `s` (a proposed fix) to the current surgery, as one edit."""
        cur = self.surgery
        for old, new in s.renames:
            cur = cur.with_rename(old, new)
        for p in s.drops:
            cur = cur.with_drop(p)
        if s.extract:
            cur = cur.with_extract(s.extract)
        if s.dtype:
            cur = cur.with_dtype(s.dtype)
        return self.set_surgery(cur, label)

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
        """The current flags are now what the user has on disk (after a save): `dirty` and
        `unsaved()` count from here. O(tensors changed since the last baseline)."""
        for key, t in self._off.items():
            self._baseline[key] = t.requires_grad
        self._off.clear()
        self._differs = 0
        self._saved_surgery = self.surgery

    @property
    def surgery_unsaved(self) -> list[str]:
        """The rename/drop/extract/cast edits not in any saved file yet, as phrases."""
        return self.surgery.describe() if self.surgery != self._saved_surgery else []

    def mark_surgery_saved(self) -> None:
        """The surgery went into a saved file (any format applies it)."""
        self._saved_surgery = self.surgery

    def affected(self, edit: Edit) -> list[ModuleNode]:
        """Nodes whose counts the edit moved (found while applying it, not walked again)."""
        return edit.nodes

    # -- internals ---------------------------------------------------------------
    def _apply(self, edit: Edit, forward: bool) -> None:
        """O(changed tensors + distinct ancestors). A tensor with one owner adds its change
        to that module's delta; deltas then flow up a level at a time, so each ancestor is
        touched once (a walk per tensor made freezing a 300-deep chain O(tensors x depth)).
        Only the trainable/frozen/unknown fields move: numel, bytes and tensor counts stay."""
        if edit.surgery is not None:
            self.surgery = edit.surgery[1 if forward else 0]
        baseline, single, off = self._baseline, self._single, self._off
        levels: dict[int, dict[int, tuple[ModuleNode, Counts]]] = {}  # depth → id(node) → delta
        touched: dict[int, ModuleNode] = {}
        differs = 0
        for t, before, after in edit.changes:
            new, old = (after if forward else before), t.requires_grad
            if new == old:
                continue
            b = baseline.get(id(t))
            differs += (new != b) - (old != b)
            t.requires_grad = new
            if new != b:
                off[id(t)] = t
            else:
                off.pop(id(t), None)
            got = single.get(id(t))
            if got is not None:
                owner, n = got
                level = levels.get(owner.depth)
                if level is None:
                    level = levels[owner.depth] = {}
                entry = level.get(id(owner))
                if entry is None:
                    entry = level[id(owner)] = (owner, Counts())
                entry[1].shift(old, -n, -1)
                entry[1].shift(new, n, 1)
            elif len(t.names) > 1:  # tied: once per node of the union of its owners' chains
                d = Counts()
                d.shift(old, -t.numel, -1)
                d.shift(new, t.numel, 1)
                for node in ancestors_union(self.owners(t)):
                    touched[id(node)] = node
                    node.counts.add_flags(d)
        self._differs += differs
        depth = max(levels, default=-1)
        while depth >= 0:
            up = levels.setdefault(depth - 1, {})
            for node, d in levels.pop(depth, {}).values():
                touched[id(node)] = node
                node.counts.add_flags(d)
                parent = node.parent
                if parent is not None:
                    pe = up.get(id(parent))
                    if pe is None:
                        up[id(parent)] = (parent, d)
                    else:
                        pe[1].add_flags(d)
            depth -= 1
        edit.nodes = list(touched.values())
