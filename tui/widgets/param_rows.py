"""What the parameter table shows, without Textual: its row sources (a module's tensors, the
model's largest), their sort orders, each cell's text, and the column layout for a width.

Everything here is computed once per source (cached by the table), so a repaint only formats
the rows on screen.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from tui.core import human
from tui.core.model import ModuleNode, TensorInfo

SORTS = ("order", "size", "name")  # `t` cycles through them
SORT_WORDS = {"order": "as in the model", "size": "largest first", "name": "by name"}
LARGEST = 200  # rows of the "largest tensors" view
GAP = 1  # cells between columns (and before the first)
NAME_WANT = 24  # columns give way (STEPS) until the name gets this much, or its longest
NOTES_MIN = 10  # a notes column narrower than this is left out

# (qualified name, tensor) -> (note, name style): a per-row override (pending renames, drops).
RowNote = Callable[[str, TensorInfo], tuple[str, str]]


@dataclass(slots=True)
class Row:
    name: str  # qualified name, as named_parameters() gives it
    short: str  # what the name column shows: relative to the selected module
    tensor: TensorInfo
    buffer: bool
    non_persistent: bool = False


@dataclass
class Source:
    """The rows of one view (a module, or the largest tensors) in every sort order."""

    title: str
    rows: list[Row]  # model order
    sorted: dict[str, list[Row]] = field(default_factory=dict)
    widths: dict[str, int] = field(default_factory=dict)  # full widths per column (see measure)

    def ordered(self, sort: str) -> list[Row]:
        if sort == "order":
            return self.rows
        if sort not in self.sorted:
            key = ((lambda r: (-r.tensor.numel, r.short)) if sort == "size"
                   else (lambda r: r.short))
            self.sorted[sort] = sorted(self.rows, key=key)
        return self.sorted[sort]


def subtree_rows(node: ModuleNode) -> Iterator[Row]:
    """Unique tensors of a subtree, parameters first, in named_parameters() order."""
    prefix = len(node.name) + 1 if node.name else 0
    for buffers in (False, True):
        seen: set[int] = set()
        for n in node.walk():
            for local, t in (n.buffers if buffers else n.params):
                if id(t) not in seen:
                    seen.add(id(t))
                    name = n.qualify(local)
                    yield Row(name, name[prefix:] or name, t, buffers,
                              buffers and local in n.non_persistent)


def module_source(node: ModuleNode) -> Source:
    return Source(node.name or "(root)", list(subtree_rows(node)))


def largest_source(tensors: list[TensorInfo]) -> Source:
    """`tensors`: the model's largest, biggest first (tui.core.composition.largest_tensors)."""
    return Source("largest tensors", [Row(t.name, t.name, t, t.kind == "buffer") for t in tensors])


# -- cells ------------------------------------------------------------------------------
MARK_WORDS = {True: "yes", False: "no", None: "unknown"}
BUFFER_GLYPH = "·"  # compact mark of a buffer (no requires_grad); the legend says so


def mark(row: Row, compact: bool) -> tuple[str, str]:
    """(text, status) of the mark cell; status picks the colour, the text reads without it."""
    if row.buffer:
        return (BUFFER_GLYPH if compact else "buffer"), "buffer"
    status = human.tensor_status(row.tensor.requires_grad)
    glyph = human.glyph(status)
    return (glyph if compact else f"{glyph} {MARK_WORDS[row.tensor.requires_grad]}"), status


def shape(t: TensorInfo, compact: bool) -> str:
    return "[" + ("," if compact else ", ").join(map(str, t.shape)) + "]"


def dtype(t: TensorInfo, compact: bool) -> str:
    return human.SHORT_DTYPES.get(t.dtype, t.dtype) if compact else t.dtype


def numel(t: TensorInfo, compact: bool) -> str:
    return human.count(t.numel) if compact else f"{t.numel:,}"


def notes(row: Row) -> str:
    t = row.tensor
    out = ([f"same tensor as {', '.join(n for n in t.names if n != row.name)}"]
           if len(t.names) > 1 else [])
    if row.non_persistent:
        out.append("non-persistent: not in a state_dict")
    if t.quantized:
        out.append(f"quantized ({t.quantized})")
    if t.note:
        out.append(t.note)
    if not row.buffer and not t.can_require_grad:
        out.append(f"{t.dtype} can't require grad")
    return "; ".join(out)


# -- layout -----------------------------------------------------------------------------
def measure(source: Source) -> dict[str, int]:
    """Widest cell per column, full and compact (once per source: O(rows) set and max
    passes, each column's text formatted once per distinct shape, dtype and mark)."""
    if source.widths:
        return source.widths
    rows = source.rows
    w = dict.fromkeys(("name", "shape", "shape_c", "dtype", "dtype_c", "numel", "numel_c",
                       "mark", "notes", "unknown"), 0)
    w["name"] = max(map(len, [r.short for r in rows]), default=0)
    for shp, dt in {(r.tensor.shape, r.tensor.dtype) for r in rows}:
        dims = sum(len(str(d)) for d in shp)
        gaps = max(len(shp) - 1, 0)
        n = math.prod(shp)
        w["shape"] = max(w["shape"], dims + 2 * gaps + 2)
        w["shape_c"] = max(w["shape_c"], dims + gaps + 2)
        w["dtype"] = max(w["dtype"], len(dt))
        w["dtype_c"] = max(w["dtype_c"], len(human.SHORT_DTYPES.get(dt, dt)))
        w["numel"] = max(w["numel"], len(f"{n:,}"))
        w["numel_c"] = max(w["numel_c"], len(human.count(n)))
    marks = {(r.buffer, r.tensor.requires_grad) for r in rows}
    w["mark"] = max((len("buffer" if b else f"● {MARK_WORDS[rg]}") for b, rg in marks), default=0)
    w["unknown"] = int((False, None) in marks)
    w["notes"] = int(any(len(r.tensor.names) > 1 or r.non_persistent or r.tensor.quantized
                         or r.tensor.note or (not r.buffer and not r.tensor.can_require_grad)
                         for r in rows))  # some row has a note: the layout gives it any room
    source.widths = w
    return w


@dataclass(frozen=True)
class Column:
    key: str  # mark, name, shape, dtype, numel, notes
    label: str
    width: int
    compact: bool = False
    right: bool = False  # numbers align right


@dataclass(frozen=True)
class Layout:
    columns: tuple[Column, ...]

    def at(self, x: int) -> Column | None:
        """The column under cell x of a line (header clicks)."""
        pos = GAP
        for c in self.columns:
            if pos <= x < pos + c.width + GAP:
                return c
            pos += c.width + GAP
        return None


# What gives way first when the pane is narrow: the mark's word, then the shape's spaces,
# the dtype's length, the numel's digits. The name column takes what is left (elided in
# the middle), so every column stays visible at 80 columns.
STEPS = ((), ("mark",), ("mark", "shape"), ("mark", "shape", "dtype"),
         ("mark", "shape", "dtype", "numel"))


def layout(width: int, w: dict[str, int], compact_notes: int = 0) -> Layout:
    """Columns for a line of `width` cells over rows measured by `measure`."""
    labels = {"mark": "trainable", "shape": "shape", "dtype": "dtype", "numel": "numel"}
    for step in STEPS:
        fixed = {
            "mark": 1 if "mark" in step else max(w["mark"], len(labels["mark"])),
            "shape": max(w["shape_c" if "shape" in step else "shape"], 5),
            "dtype": max(w["dtype_c" if "dtype" in step else "dtype"], 5),
            "numel": max(w["numel_c" if "numel" in step else "numel"], 6),  # "▼numel"
        }
        room = width - sum(fixed.values()) - GAP * 6  # (and one after the last column)
        if room >= min(NAME_WANT, max(w["name"], 4)) or step == STEPS[-1]:
            break
    name_w = max(min(max(w["name"], 4), room), 1)
    cols = [Column("mark", "" if "mark" in step else labels["mark"], fixed["mark"], "mark" in step),
            Column("name", "name", name_w),
            Column("shape", "shape", fixed["shape"], "shape" in step),
            Column("dtype", "dtype", fixed["dtype"], "dtype" in step),
            Column("numel", "numel", fixed["numel"], "numel" in step, right=True)]
    left = room - name_w
    if w["notes"] and left >= NOTES_MIN:
        cols.append(Column("notes", "notes", left - GAP))
    return Layout(tuple(cols))


def cell(row: Row, col: Column) -> str:
    t = row.tensor
    if col.key == "mark":
        return mark(row, col.compact)[0]
    if col.key == "name":
        return human.elide_middle(row.short, col.width)
    if col.key == "shape":
        return human.elide_middle(shape(t, col.compact), col.width)
    if col.key == "dtype":
        return dtype(t, col.compact)
    if col.key == "numel":
        return numel(t, col.compact)
    return notes(row)
