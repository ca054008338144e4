"""Per-tensor statistics, streamed: min, max, mean, std, absmax, zeros, NaN, Inf, histogram.

min, max, mean, std, absmax and the histogram are over the finite elements (NaN and Inf
are counted apart); with none of those, they are what torch gives in float64
(`t.double().mean()`, `t.double().std()` — unbiased). 1- and 2-byte dtypes (bf16, fp16,
fp8, int8/16, bool) are counted per bit pattern (`np.bincount`): one pass, exact, and
every statistic follows from a table of at most 65,536 counts (2-byte tensors under
TABLE_MIN elements skip the table: it would cost more than they do). Wider dtypes accumulate
float64 moments per piece, merged with Chan's formula, and take a second pass for the
histogram once min and max are known (one pass when the tensor fits one piece).
Complex tensors: min, max and the histogram are of |z| (in float64); mean is complex.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tui.core.values import decode as dec
from tui.core.values.reader import ValueReader, View, plan

BINS = 32
TABLE_MIN = 1 << 15  # 2-byte dtypes: below this many elements, a 65,536-count table costs more
_SUB = 1 << 18  # elements per bincount call: its int64 index copy stays in cache
ProgressFn = Callable[[int], None]  # bytes just processed
CancelFn = Callable[[], bool]


class Cancelled(Exception):
    """The caller asked to stop (escape in the app)."""


@dataclass
class Stats:
    numel: int
    kind: str  # float | complex | int | bool
    min: Any = None  # int for integer dtypes (exact), float otherwise; |z| for complex
    max: Any = None
    mean: Any = None  # complex for complex dtypes
    std: float | None = None
    absmax: Any = None
    zeros: int = 0  # count
    nan: int = 0
    inf: int = 0
    edges: list[float] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    finite_only: bool = False  # only nan/inf were computed

    @property
    def finite(self) -> bool:
        return self.nan == 0 and self.inf == 0

    @property
    def zeros_fraction(self) -> float | None:
        return self.zeros / self.numel if self.numel else None

    def as_json(self) -> dict:
        mean = self.mean
        if isinstance(mean, complex):
            mean = [_num(mean.real), _num(mean.imag)]
        return {"min": _num(self.min), "max": _num(self.max), "mean": _num(mean),
                "std": _num(self.std), "absmax": _num(self.absmax), "zeros": self.zeros_fraction,
                "nan": self.nan, "inf": self.inf,
                "hist": {"edges": self.edges, "counts": self.counts}}


def _num(x: Any) -> Any:
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return x


def cost(view: View, finite_only: bool = False, chunk_bytes: int = 0) -> int:
    """Bytes `compute` will go through about (a progress total)."""
    if not dec.supported(view.dtype) or view.numel == 0:
        return 0
    if finite_only and dec.kind(view.dtype) in ("int", "bool"):
        return 0
    mult, _ = plan(view)
    nbytes = view.numel // mult * view.itemsize
    two = not finite_only and not by_table(view) and nbytes > chunk_bytes
    return nbytes * (2 if two else 1)


def compute(reader: ValueReader, view: View, *, finite_only: bool = False,
            progress: ProgressFn | None = None, cancel: CancelFn | None = None) -> Stats:
    """Statistics of one tensor (see the module doc). Raises Cancelled when cancel() says so."""
    reader.check(view)
    kind = dec.kind(view.dtype)
    out = Stats(view.numel, kind, finite_only=finite_only)
    if view.numel == 0 or (finite_only and kind in ("int", "bool")):
        return out
    if by_table(view):
        _by_table(reader, view, out, progress, cancel)
    else:
        _by_moments(reader, view, out, progress, cancel)
    return out


def by_table(view: View) -> bool:
    """Count bit patterns (1-byte dtypes, and 2-byte ones with enough elements)?"""
    bits = dec.table_bits(view.dtype)
    return bits == 8 or (bits == 16 and view.numel // plan(view)[0] >= TABLE_MIN)


def _step(n: int, progress: ProgressFn | None, cancel: CancelFn | None) -> None:
    if progress is not None:
        progress(n)
    if cancel is not None and cancel():
        raise Cancelled


# -- 1- and 2-byte dtypes: count every bit pattern ------------------------------------
def _by_table(reader: ValueReader, view: View, out: Stats, progress, cancel) -> None:
    bits = dec.table_bits(view.dtype)
    counts = np.zeros(1 << bits, dtype=np.int64)
    unsigned = np.uint16 if bits == 16 else np.uint8
    for raw, mult in reader.pieces(view):
        u = raw.view(unsigned)
        for i in range(0, len(u), _SUB):
            got = np.bincount(u[i:i + _SUB], minlength=1 << bits)
            counts += got if mult == 1 else got * mult
        _step(raw.nbytes, progress, cancel)
    vals = dec.table(view.dtype)
    present = counts > 0
    if out.kind == "float":
        out.nan = int(counts[present & np.isnan(vals)].sum())
        out.inf = int(counts[present & np.isinf(vals)].sum())
        fin = present & np.isfinite(vals)
    else:
        fin = present
    out.zeros = int(counts[present & (vals == 0)].sum())
    if out.finite_only or not fin.any():
        return
    v, c = vals[fin], counts[fin]
    lo, hi = v.min(), v.max()
    n = int(c.sum())
    vf = v.astype(np.float64)
    mean = float((vf * c).sum() / n)
    m2 = float((c * (vf - mean) ** 2).sum())
    _finish(out, lo, hi, n, mean, m2)
    if _range(out) is not None:
        h, e = np.histogram(vf, bins=BINS, range=_range(out), weights=c)
        out.edges, out.counts = e.tolist(), [int(x) for x in np.rint(h)]


def _range(out: Stats) -> tuple[float, float] | None:
    """The histogram's range; None when numpy can't split it (max - min overflows)."""
    lo, hi = float(out.min), float(out.max)
    return (lo, hi) if np.isfinite(hi - lo) else None


def _finish(out: Stats, lo: Any, hi: Any, n: int, mean: Any, m2: float) -> None:
    if out.kind in ("int", "bool"):
        out.min, out.max = int(lo), int(hi)
        out.absmax = max(abs(out.min), abs(out.max))
    else:
        out.min, out.max = float(lo), float(hi)
        out.absmax = out.max if out.kind == "complex" else max(abs(out.min), abs(out.max))
    out.mean = complex(mean) if out.kind == "complex" else float(mean)
    out.std = float(np.sqrt(m2 / (n - 1))) if n > 1 else None


# -- wider dtypes: float64 moments per piece, merged ----------------------------------
class _Moments:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.n = 0
        self.mean: Any = 0.0
        self.m2 = 0.0
        self.lo: Any = None
        self.hi: Any = None

    def add(self, x: np.ndarray, mult: int) -> None:
        """x: finite numbers (|z| bounds for complex come from `mag`)."""
        m = x.size
        wide = np.complex128 if self.kind == "complex" else np.float64
        mean_c = x.sum(dtype=wide) / m
        d = x.astype(wide) - mean_c
        m2_c = float(np.vdot(d, d).real) * mult
        n_c = m * mult
        delta = mean_c - self.mean
        total = self.n + n_c
        self.mean = self.mean + delta * (n_c / total)
        self.m2 += m2_c + abs(delta) ** 2 * (self.n * n_c / total)
        self.n = total

    def bounds(self, lo: Any, hi: Any) -> None:
        self.lo = lo if self.lo is None else min(self.lo, lo)
        self.hi = hi if self.hi is None else max(self.hi, hi)


def _finite(x: np.ndarray, out: Stats, mult: int) -> np.ndarray:
    if out.kind in ("int", "bool"):
        return x
    fin = np.isfinite(x)
    if fin.all():
        return x
    out.nan += int(np.count_nonzero(np.isnan(x))) * mult
    out.inf += int(np.count_nonzero(np.isinf(x))) * mult
    return x[fin]


def _hist_values(x: np.ndarray, kind: str) -> np.ndarray:
    return np.abs(x.astype(np.complex128)) if kind == "complex" else x.astype(np.float64)


def _by_moments(reader: ValueReader, view: View, out: Stats, progress, cancel) -> None:
    acc = _Moments(out.kind)
    pieces = 0
    last: tuple[np.ndarray, int] | None = None
    for raw, mult in reader.pieces(view):
        pieces += 1
        x = _finite(dec.decode(raw, view.dtype), out, mult)
        _step(raw.nbytes, progress, cancel)
        if out.finite_only or x.size == 0:
            continue
        out.zeros += int(np.count_nonzero(x == 0)) * mult
        if out.kind == "complex":
            mag = np.abs(x.astype(np.complex128))
            acc.bounds(mag.min(), mag.max())
        else:
            acc.bounds(x.min(), x.max())
        acc.add(x, mult)
        last = (x, mult)
    if out.finite_only or acc.n == 0:
        return
    _finish(out, acc.lo, acc.hi, acc.n, acc.mean, acc.m2)
    rng = _range(out)
    if rng is None:
        return
    hist = np.zeros(BINS, dtype=np.int64)
    edges = None
    if pieces == 1 and last is not None:  # the piece is still in memory
        h, edges = np.histogram(_hist_values(last[0], out.kind), bins=BINS, range=rng)
        hist += h * last[1]
    else:
        for raw, mult in reader.pieces(view):
            x = _finite_quiet(dec.decode(raw, view.dtype), out.kind)
            h, edges = np.histogram(_hist_values(x, out.kind), bins=BINS, range=rng)
            hist += h * mult
            _step(raw.nbytes, progress, cancel)
    out.edges, out.counts = (edges.tolist() if edges is not None else []), hist.tolist()


def _finite_quiet(x: np.ndarray, kind: str) -> np.ndarray:
    if kind in ("int", "bool"):
        return x
    fin = np.isfinite(x)
    return x if fin.all() else x[fin]
