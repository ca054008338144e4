"""Tensor values compared, streamed: bitwise equality, max |a − b|, relative L2 change.

Both sides are read in C order by tui.core.values.reader (one ValueReader a side, a
chunk of elements at a time), so memory stays at a few chunks whatever the tensor size.
Equal dtypes are compared as raw bytes first (no decoding); the figures decode with
tui.core.values.decode, in float64.

    fill_values(diff, progress=lambda done, total: ...)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np

from tui.core.diff import Diff, DiffEntry
from tui.core.errors import ModelFileError
from tui.core.model import ModelFile
from tui.core.values.decode import decode
from tui.core.values.reader import ValueReader, View
from tui.core.write.stream import Sources
from tui.core.write.tensors_out import OutTensor, collect

CHUNK_BYTES = 8 << 20
NUMERIC = {"float64", "float32", "float16", "bfloat16", "float8_e4m3fn", "float8_e5m2", "int64",
           "int32", "int16", "int8", "uint8", "uint16", "uint32", "uint64", "bool"}


def _out(mf: ModelFile) -> tuple[dict[str, OutTensor], str]:
    try:
        if mf.source is not None and mf.source.kind == "dcp":
            from tui.core.write.dcp_out import dcp_tensors

            return {t.name: t for t in dcp_tensors(mf)}, ""
        return {t.name: t for t in collect(mf)}, ""
    except ModelFileError as e:
        return {}, e.problem


def _view(t: OutTensor) -> View:
    return View(t.storage, t.dtype, tuple(t.shape), tuple(t.stride), t.offset, t.name)


def _paired(xs: Iterator[np.ndarray], ys: Iterator[np.ndarray]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Pieces of two equally long element streams cut to the same lengths."""
    a = b = np.empty(0)
    while True:
        if not a.size:
            a = next(xs, None)
        if not b.size:
            b = next(ys, None)
        if a is None or b is None:
            return
        n = min(a.size, b.size)
        yield a[:n], b[:n]
        a, b = a[n:], b[n:]


def compare_tensors(ra: ValueReader, rb: ValueReader, a: OutTensor, b: OutTensor,
                    tick: Callable[[int], None] | None = None) -> tuple[bool, float, float]:
    """(bitwise equal, max |a − b|, ‖a − b‖₂ / ‖a‖₂), streamed (one reader per side: a
    piece is valid until its reader reads the next)."""
    same_bits = a.dtype == b.dtype
    max_abs, sq_diff, sq_a = 0.0, 0.0, 0.0
    for ca, cb in _paired(ra.ordered(_view(a)), rb.ordered(_view(b))):
        if same_bits and ca.tobytes() != cb.tobytes():
            same_bits = False
        va = decode(ca, a.dtype).astype(np.float64, copy=False)
        if not same_bits:
            d = va - decode(cb, b.dtype).astype(np.float64, copy=False)
            if d.size:  # NaN wins, as in torch's (a - b).abs().max(), whatever the chunking
                m = float(np.max(np.abs(d)))
                max_abs = m if math.isnan(m) or m > max_abs else max_abs
            sq_diff += float(np.dot(d, d))
        sq_a += float(np.dot(va, va))
        if tick is not None:
            tick(ca.nbytes + cb.nbytes)
    if sq_diff == 0.0:
        rel = 0.0
    elif sq_a == 0.0:
        rel = math.inf
    else:
        rel = math.sqrt(sq_diff) / math.sqrt(sq_a)
    return same_bits, max_abs, rel


def fill_values(diff: Diff, progress: Callable[[int, int], None] | None = None,
                cancelled: Callable[[], bool] | None = None) -> None:
    """Compare the values of every entry present on both sides with the same shape."""
    outs_a, why_a = _out(diff.a)
    outs_b, why_b = _out(diff.b)
    todo: list[tuple[DiffEntry, OutTensor, OutTensor]] = []
    for e in diff.entries:
        if e.a is None or e.b is None:
            continue
        if tuple(e.a.shape) != tuple(e.b.shape):
            e.note = "shapes differ"
            continue
        ta, tb = outs_a.get(e.a_name or ""), outs_b.get(e.b_name or "")
        if ta is None or tb is None:
            e.note = why_a or why_b or "no data to compare"
            continue
        if ta.dtype not in NUMERIC or tb.dtype not in NUMERIC:
            e.note = f"values of {ta.dtype if ta.dtype not in NUMERIC else tb.dtype} not compared"
            continue
        todo.append((e, ta, tb))
    total = sum(ta.nbytes + tb.nbytes for _, ta, tb in todo)
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    with Sources() as sources, ValueReader(CHUNK_BYTES, sources.read) as ra, \
            ValueReader(CHUNK_BYTES, sources.read) as rb:
        for e, ta, tb in todo:
            if cancelled is not None and cancelled():
                return
            e.bitwise_equal, e.max_abs, e.rel_l2 = compare_tensors(ra, rb, ta, tb, tick)
            if e.status == "same" and not e.bitwise_equal:
                e.status = "changed"
    diff.values_compared = True
    diff.rollup()
