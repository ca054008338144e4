"""The health check: every tensor of a model scanned for NaN and Inf."""

from __future__ import annotations

from dataclasses import dataclass, field

from tui.core.model import ModelFile, TensorInfo
from tui.core.values.source import ModelValues, Unreadable
from tui.core.values.stats import CancelFn, ProgressFn, Stats


@dataclass
class Health:
    bad: dict[int, Stats] = field(default_factory=dict)  # tensor uid → its NaN/Inf counts
    modules: set[str] = field(default_factory=set)  # modules holding a bad tensor, ancestors too
    checked: int = 0
    skipped: list[tuple[TensorInfo, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.bad


def owners(t: TensorInfo) -> set[str]:
    """Qualified names of the modules a tensor sits in, with their ancestors ("" the root)."""
    out = {""}
    for name in t.names:
        parts = name.split(".")[:-1]
        out.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return out


def total_cost(mf: ModelFile, mv: ModelValues) -> int:
    return sum(mv.cost(t, finite_only=True) for t in mf.tensors)


def scan(mf: ModelFile, mv: ModelValues, progress: ProgressFn | None = None,
         cancel: CancelFn | None = None) -> Health:
    """Raises stats.Cancelled when cancel() says so, ModelFileError on unreadable bytes."""
    h = Health()
    for t in mf.tensors:
        try:
            s = mv.stats(t, finite_only=True, progress=progress, cancel=cancel)
        except Unreadable as e:
            h.skipped.append((t, str(e)))
            continue
        h.checked += 1
        if not s.finite:
            h.bad[t.uid] = s
            h.modules |= owners(t)
    return h
