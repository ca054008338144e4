"""What `model.load_state_dict(weights, strict=True)` would report, without torch.

Follows torch/nn/modules/module.py (`load_state_dict`, `_load_from_state_dict`): modules
are visited pre-order over `_modules` (shared modules under every name); each module
expects its non-None parameters then its persistent buffers (missing keys, in that
order), reports keys under its prefix whose first part is neither a child (None
children count) nor a local tensor (unexpected keys, in the weights' order), and a
shape that differs (size mismatch; a 0-dim parameter takes a [1] tensor). torch's
batch/instance norms fill in a missing `num_batches_tracked` when the weights' metadata
gives no version ≥ 2 (as `_NormBase._load_from_state_dict` does). The message is
torch's, word for word.

`propose` finds the `--rename` (or `--extract`) that makes the keys match when they
differ by a consistent prefix.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from tui.core.model import ModuleNode
from tui.core.surgery import Surgery

Shape = tuple[int, ...]


def torch_size(shape: Shape) -> str:
    return f"torch.Size([{', '.join(map(str, shape))}])"


@dataclass
class LoadReport:
    model_side: str  # "a" | "b": the side with the architecture
    class_name: str
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    size_mismatch: list[tuple[str, Shape, Shape]] = field(default_factory=list)  # key, ckpt, model
    proposal: Surgery | None = None

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.size_mismatch)

    @property
    def problems(self) -> int:
        return len(self.missing) + len(self.unexpected) + len(self.size_mismatch)

    def error_lines(self) -> list[str]:
        msgs = [f"size mismatch for {k}: copying a param with shape {torch_size(c)} from "
                f"checkpoint, the shape in current model is {torch_size(m)}."
                for k, c, m in self.size_mismatch]
        if self.unexpected:
            msgs.insert(0, "Unexpected key(s) in state_dict: {}. ".format(
                ", ".join(f'"{k}"' for k in self.unexpected)))
        if self.missing:
            msgs.insert(0, "Missing key(s) in state_dict: {}. ".format(
                ", ".join(f'"{k}"' for k in self.missing)))
        return msgs

    def message(self) -> str:
        """torch's RuntimeError text under strict=True ("" when it would load)."""
        msgs = self.error_lines()
        if not msgs:
            return ""
        return "Error(s) in loading state_dict for {}:\n\t{}".format(self.class_name, "\n\t".join(msgs))


def _local(node: ModuleNode) -> list[tuple[str, Shape, bool]]:
    """(local name, shape, lazy) of the tensors the module's state_dict holds, in order."""
    out = [(n, tuple(t.shape), "lazy" in t.note) for n, t in node.params]
    skip = set(node.non_persistent)
    out += [(n, tuple(t.shape), False) for n, t in node.buffers if n not in skip]
    return out


def expected_keys(root: ModuleNode) -> list[str]:
    out: list[str] = []
    stack = [(root, "")]
    while stack:
        node, prefix = stack.pop()
        out += [prefix + n for n, _, _ in _local(node)]
        stack.extend((c, f"{prefix}{c.key}.") for c in reversed(node.children))
    return out


_NORMS = ("torch.nn.modules.batchnorm.", "torch.nn.modules.instancenorm.")


def _fills_batches(node: ModuleNode, prefix: str, metadata: dict | None) -> bool:
    """_NormBase adds num_batches_tracked itself when the weights predate version 2."""
    if not (node.type or "").startswith(_NORMS):
        return False
    meta = metadata.get(prefix[:-1], {}) if isinstance(metadata, dict) else {}
    version = meta.get("version") if isinstance(meta, dict) else None
    return not isinstance(version, int) or version < 2


def load_report(root: ModuleNode, keys: list[tuple[str, Shape]], model_side: str = "a",
                metadata: dict | None = None) -> LoadReport:
    """`metadata`: the weights' `_metadata` (module prefix → {"version": n}), if any."""
    r = LoadReport(model_side, root.short_type)
    stack: list[tuple[ModuleNode, str, list[tuple[str, Shape]]]] = [(root, "", keys)]
    while stack:
        node, prefix, local_keys = stack.pop()
        given = dict(local_keys)
        local = _local(node)
        nbt = prefix + "num_batches_tracked"
        if nbt not in given and any(n == "num_batches_tracked" for n, _, _ in local) \
                and _fills_batches(node, prefix, metadata):
            given[nbt] = ()
        names = {n for n, _, _ in local}
        for n, shape, lazy in local:
            key = prefix + n
            if key not in given:
                r.missing.append(key)
                continue
            got = given[key]
            if not shape and got == (1,):
                got = ()
            if not lazy and got != shape:
                r.size_mismatch.append((key, given[key], shape))
        kids = {c.key for c in node.children} | set(node.none_children)
        under: dict[str, list[tuple[str, Shape]]] = {}  # first name part → its keys, in order
        for key, shape in local_keys:
            if not key.startswith(prefix):
                continue
            head, dot, _ = key[len(prefix):].partition(".")
            if (dot and head not in kids) or (not dot and head not in names):
                r.unexpected.append(key)
            if dot:
                under.setdefault(head, []).append((key, shape))
        for c in reversed(node.children):
            stack.append((c, f"{prefix}{c.key}.", under.get(c.key, [])))
    return r


def _meta(metadata: dict | None, s: Surgery) -> dict | None:
    from tui.core.write.surgery_out import metadata as renamed

    return renamed(metadata, s)


def _suffixes(name: str) -> list[tuple[str, str]]:
    """(prefix, rest) at every dot, longest rest first: a.b.c → ("", a.b.c), ("a.", b.c), …"""
    out = [("", name)]
    i = name.find(".")
    while i >= 0:
        out.append((name[: i + 1], name[i + 1:]))
        i = name.find(".", i + 1)
    return out


def propose(root: ModuleNode, keys: list[tuple[str, Shape]], report: LoadReport,
            metadata: dict | None = None, limit: int = 8) -> Surgery | None:
    """The prefix rename (or extract) that leaves the fewest problems, if it helps."""
    if not (report.missing and report.unexpected):
        return None
    by_rest: dict[str, list[str]] = {}
    for m in report.missing:
        for pre, rest in _suffixes(m):
            by_rest.setdefault(rest, []).append(pre)
    votes: Counter[tuple[str, str]] = Counter()
    for u in report.unexpected:
        for pre, rest in _suffixes(u):
            if rest in by_rest:
                for new in by_rest[rest][:4]:
                    votes[(pre, new)] += 1
                break
    best, best_score = None, report.problems
    for (old, new), _ in votes.most_common(limit):
        if old == new:
            continue
        cands = [Surgery(renames=((old, new),))]
        if old.endswith(".") and not new:
            cands.append(Surgery(extract=old[:-1]))
        for s in cands:
            mapped = [(s.out_name(k), shape) for k, shape in keys]
            kept = [(k, sh) for k, sh in mapped if k is not None]
            score = load_report(root, kept, metadata=_meta(metadata, s)).problems
            if score < best_score:
                best, best_score = s, score
    return best
