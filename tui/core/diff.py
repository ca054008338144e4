"""Compare two opened files, tensor by tensor (pure: names, shapes and dtypes only).

    d = compare(open_model(a), open_model(b))
    d.entries            # one per name, in A's state_dict order then B's extra names
    d.modules[""]        # counts per status under the root (every module prefix has one)
    d.load               # what model.load_state_dict(weights, strict=True) would say,
                         # when exactly one side has the architecture (a full model)

A side's names can be passed through a Surgery first (a proposed rename, applied before
saving), so the diff shows what the saved file would give. Values are compared by
tui.core.diff_values (it reads bytes); here entries are "same" when shape and dtype
agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from tui.core.loadcheck import LoadReport, load_report, propose
from tui.core.model import ModelFile, TensorInfo
from tui.core.read.records import is_tensor, items_of, module_state
from tui.core.surgery import Surgery

Status = Literal["same", "changed", "only_a", "only_b", "mismatch"]
STATUSES: tuple[Status, ...] = ("same", "changed", "mismatch", "only_a", "only_b")
STATUS_LABELS = {"same": "same", "changed": "values changed", "mismatch": "shape/dtype mismatch",
                 "only_a": "only in A", "only_b": "only in B"}


@dataclass(eq=False)
class DiffEntry:
    name: str  # the name both sides share after any surgery
    status: Status
    a: TensorInfo | None
    b: TensorInfo | None
    a_name: str | None = None  # the name as stored in each file
    b_name: str | None = None
    bitwise_equal: bool | None = None  # set by a value comparison
    max_abs: float | None = None
    rel_l2: float | None = None
    note: str = ""  # why values were not compared

    @property
    def module(self) -> str:
        return self.name.rpartition(".")[0]


@dataclass(eq=False)
class Diff:
    a: ModelFile
    b: ModelFile
    entries: list[DiffEntry]
    modules: dict[str, dict[str, int]] = field(default_factory=dict)  # prefix → status → n
    load: LoadReport | None = None
    surgery_a: Surgery | None = None
    surgery_b: Surgery | None = None
    values_compared: bool = False

    @property
    def structures_match(self) -> bool:
        return all(e.status in ("same", "changed") for e in self.entries)

    def of(self, status: str) -> list[DiffEntry]:
        return [e for e in self.entries if e.status == status]

    def layout(self) -> dict[str, tuple[list[str], list[DiffEntry]]]:
        """module prefix → (child module prefixes, its own tensors), in entry order."""
        out: dict[str, tuple[list[str], list[DiffEntry]]] = {"": ([], [])}
        for e in self.entries:
            parts = e.name.split(".")
            for i in range(1, len(parts)):
                parent, me = ".".join(parts[:i - 1]), ".".join(parts[:i])
                if me not in out:
                    out[me] = ([], [])
                    out[parent][0].append(me)
            out[e.module][1].append(e)
        return out

    def worst(self, prefix: str) -> str:
        """The status that best describes a module: the most serious one under it."""
        c = self.modules.get(prefix, {})
        for s in ("mismatch", "only_a", "only_b", "changed"):
            if c.get(s):
                return s
        return "same"

    def rollup(self) -> None:
        """Counts per module prefix (every ancestor of every name, the root as "")."""
        mods: dict[str, dict[str, int]] = {"": {}}
        for e in self.entries:
            parts = e.name.split(".")[:-1]
            prefixes = [""] + [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
            for p in prefixes:
                c = mods.setdefault(p, {})
                c[e.status] = c.get(e.status, 0) + 1
        self.modules = mods


def has_architecture(mf: ModelFile) -> bool:
    src = mf.source
    if src is None:
        return False
    return src.kind == "torchscript" or (src.kind == "torch" and module_state(src.model_obj) is not None)


def state_names(mf: ModelFile) -> list[tuple[str, TensorInfo]]:
    """(name, tensor) as the file's state_dict lists them (a dict's own key order; a
    module's state_dict() order; non-persistent buffers left out)."""
    by_name = {n: t for t in mf.tensors for n in t.names}
    src = mf.source
    names: list[str] | None = None
    if src is not None and src.kind == "torch" and src.model_obj is not None:
        obj = src.model_obj
        if module_state(obj) is not None:
            from tui.core.write.tensors_out import state_entries

            try:
                names = [k for k, _ in state_entries(obj, mf.path)]
            except Exception:  # noqa: BLE001 - a broken graph: fall back to the tree's names
                names = None
        else:
            names = [str(k) for k, v in items_of(obj) if is_tensor(v)]
    if names is None:
        skip = {n.qualify(b) for n in mf.modules.values() for b in n.non_persistent}
        names = [n for t in mf.tensors for n in t.names if n not in skip]
    return [(n, by_name[n]) for n in names if n in by_name]


def _side(mf: ModelFile, s: Surgery | None) -> list[tuple[str, str, TensorInfo]]:
    out = []
    for n, t in state_names(mf):
        new = s.out_name(n) if s is not None else n
        if new is not None:
            out.append((new, n, t))
    return out


def compare(a: ModelFile, b: ModelFile, surgery_a: Surgery | None = None,
            surgery_b: Surgery | None = None, with_load: bool = True) -> Diff:
    side_a, side_b = _side(a, surgery_a), _side(b, surgery_b)
    in_b = {new: (n, t) for new, n, t in side_b}
    seen: set[str] = set()
    entries: list[DiffEntry] = []
    for new, n, t in side_a:
        if new in seen:
            continue
        seen.add(new)
        got = in_b.get(new)
        if got is None:
            entries.append(DiffEntry(new, "only_a", t, None, a_name=n))
            continue
        same = tuple(t.shape) == tuple(got[1].shape) and t.dtype == got[1].dtype
        entries.append(DiffEntry(new, "same" if same else "mismatch", t, got[1], n, got[0]))
    for new, n, t in side_b:
        if new not in seen:
            seen.add(new)
            entries.append(DiffEntry(new, "only_b", None, t, b_name=n))
    d = Diff(a, b, entries, surgery_a=surgery_a, surgery_b=surgery_b)
    d.rollup()
    if with_load:
        d.load = _load(d)
    return d


def _load(d: Diff) -> LoadReport | None:
    """model.load_state_dict(weights) when exactly one side has the architecture."""
    arch_a, arch_b = has_architecture(d.a), has_architecture(d.b)
    if arch_a == arch_b:
        return None
    model, weights, s, side = (d.a, d.b, d.surgery_b, "a") if arch_a else (d.b, d.a, d.surgery_a, "b")
    if model.root is None:
        return None
    from tui.core.write.surgery_out import metadata as renamed

    keys = [(new, tuple(t.shape)) for new, _, t in _side(weights, s)]
    obj = weights.source.model_obj if weights.source is not None else None
    meta = getattr(obj, "_metadata", None) if module_state(obj) is None else None
    meta = meta if isinstance(meta, dict) else None
    report = load_report(model.root, keys, model_side=side, metadata=renamed(meta, s) if s else meta)
    report.proposal = propose(model.root, keys, report, meta)
    return report
