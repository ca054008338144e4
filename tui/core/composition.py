"""What a model or module is made of: devices the file was saved on, dtype and
device shares of a module's parameters, its share of the whole model.

Shared by --print, --json, the banner and the node pane, so each says the same.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from tui.core.model import ModelFile, ModuleNode, TensorInfo


@dataclass(frozen=True)
class Devices:
    """Where the file's storages were saved (torch.load puts them back there)."""

    storages: dict[str, int]  # location ("cpu", "cuda:0", …) → storages saved there

    @property
    def non_cpu(self) -> list[str]:
        return sorted(d for d in self.storages if d not in ("cpu", "meta"))

    @property
    def needs_map_location(self) -> bool:
        """Plain torch.load(path) fails on a machine without these devices."""
        return bool(self.non_cpu)

    def line(self) -> str | None:
        """One sentence for the banner and --print, or None for a CPU-only file."""
        if not self.non_cpu:
            return None
        from tui.core.human import plural

        where = ", ".join(f"{d} ({plural(self.storages[d], 'storage')})" for d in self.non_cpu)
        return (f"saved on {where}: on a machine without {'it' if len(self.non_cpu) == 1 else 'them'}, "
                "torch.load needs map_location='cpu' (or save a copy with every tensor on the CPU)")


def devices(mf: ModelFile) -> Devices:
    """Every storage of the file (a checkpoint's optimizer state too), by saved location."""
    src = mf.source
    recs = []
    for ts in ([src.torch] if src is not None and src.torch is not None else []) + \
            list(getattr(src, "shards", None) or []):
        read = getattr(ts, "read", None)
        recs.extend(getattr(read, "storages", {}).values())
    if recs:
        return Devices(dict(Counter(r.location for r in recs)))
    seen: dict[int, str] = {}
    for t in mf.tensors:
        if t.storage is not None:
            seen[id(t.storage)] = t.storage.location
    return Devices(dict(Counter(seen.values())))


def subtree_tensors(node: ModuleNode) -> tuple[list[TensorInfo], list[TensorInfo]]:
    """Unique (parameters, buffers) of a subtree (tied tensors once)."""
    params: dict[int, TensorInfo] = {}
    bufs: dict[int, TensorInfo] = {}
    for n in node.walk():
        for _, t in n.params:
            params.setdefault(id(t), t)
        for _, t in n.buffers:
            bufs.setdefault(id(t), t)
    return list(params.values()), list(bufs.values())


def shares(tensors: list[TensorInfo], what: str) -> list[tuple[str, float]]:
    """[(dtype or device, fraction of elements)], largest first. what: "dtype" | "device"."""
    by: Counter[str] = Counter()
    for t in tensors:
        by[t.dtype if what == "dtype" else t.device] += t.numel
    return _fractions(by)


@dataclass(frozen=True)
class Makeup:
    """A module's parameters: share of the model's, and how they split by dtype and device."""

    share: float  # of the whole model's parameter elements (0..1); 0 for an empty model
    dtypes: list[tuple[str, float]]
    devices: list[tuple[str, float]]


def makeup(node: ModuleNode, root: ModuleNode) -> Makeup:
    """O(subtree): call it for the module on screen, not for every module."""
    params, bufs = subtree_tensors(node)
    tensors = params or bufs  # a module of buffers only: say what those are
    total = root.counts.numel
    return Makeup(node.counts.numel / total if total else 0.0,
                  shares(tensors, "dtype"), shares(tensors, "device"))


def largest_tensors(mf: ModelFile, limit: int = 100, buffers: bool = True) -> list[TensorInfo]:
    """The model's biggest tensors by element count (name as tie-break), O(tensors log limit)."""
    import heapq

    pool = mf.tensors if buffers else mf.parameters()
    return heapq.nsmallest(limit, pool, key=lambda t: (-t.numel, t.name))


def makeups(root: ModuleNode) -> dict[int, Makeup]:
    """Makeup of every module at once (id(node) → Makeup), O(model × distinct dtypes):
    for a view that shows them on every row. Tied tensors count once per subtree."""
    from tui.core.model import ancestors_union

    nodes = list(root.walk())
    acc: dict[int, tuple[Counter[str], Counter[str], Counter[str], Counter[str]]] = {
        id(n): (Counter(), Counter(), Counter(), Counter()) for n in nodes}  # param/buffer dtypes, devices
    shared: dict[int, tuple[TensorInfo, bool, list[ModuleNode]]] = {}
    for node in reversed(nodes):
        pd, pv, bd, bv = acc[id(node)]
        for group, is_buf in ((node.params, False), (node.buffers, True)):
            for _, t in group:
                if len(t.names) > 1:
                    shared.setdefault(id(t), (t, is_buf, []))[2].append(node)
                    continue
                (bd if is_buf else pd)[t.dtype] += t.numel
                (bv if is_buf else pv)[t.device] += t.numel
        if node.parent is not None:
            for mine, theirs in zip(acc[id(node)], acc[id(node.parent)], strict=True):
                theirs.update(mine)
    for t, is_buf, owners in shared.values():
        for n in ancestors_union(owners):
            pd, pv, bd, bv = acc[id(n)]
            (bd if is_buf else pd)[t.dtype] += t.numel
            (bv if is_buf else pv)[t.device] += t.numel
    total = root.counts.numel
    out: dict[int, Makeup] = {}
    for n in nodes:
        pd, pv, bd, bv = acc[id(n)]
        d, v = (pd, pv) if sum(pd.values()) else (bd, bv)
        out[id(n)] = Makeup(n.counts.numel / total if total else 0.0, _fractions(d), _fractions(v))
    return out


def _fractions(by: Counter[str]) -> list[tuple[str, float]]:
    total = sum(by.values())
    if not total:
        return []
    return sorted(((k, v / total) for k, v in by.items()), key=lambda kv: (-kv[1], kv[0]))
