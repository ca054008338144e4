"""A tensor's values as a scrollable grid: the 2-D slice `t[i, j, …, :, :]` of an N-D tensor.

A Line API view: only the visible lines are drawn. Values are read in blocks of
BLOCK_ROWS x BLOCK_COLS by a thread worker (never in the UI thread) and kept in a small
cache; a cell not read yet shows "…". Numbers are formatted as torch prints the slice
(its formatter looks at the slice's edge items when the slice is large, as torch does).
1-D tensors wrap into rows of WRAP values; a 0-D tensor is one cell.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual import work
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.worker import get_current_worker

from tui.core.values import decode as dec
from tui.core.values.reader import View
from tui.core.values.source import ModelValues
from tui.core.values.torchfmt import Formatter

BLOCK_ROWS, BLOCK_COLS = 64, 32
MAX_BLOCKS = 128
WRAP = 8  # values per row for 1-D tensors
EDGE = 3  # torch's edgeitems


class ValueGrid(ScrollView, can_focus=True):
    """Set `source` with `show(view, opener)`; `[` / `]` step through the slices."""

    DEFAULT_CSS = """
    ValueGrid { height: 1fr; }
    ValueGrid > .value-grid--header { color: $text-muted; text-style: bold; }
    ValueGrid > .value-grid--pending { color: $text-muted; }
    """
    COMPONENT_CLASSES = {"value-grid--header", "value-grid--pending"}
    BINDINGS = [
        Binding("right_square_bracket", "next_slice", "Next slice", id="next_slice"),
        Binding("left_square_bracket", "prev_slice", "Prev slice", id="prev_slice"),
    ]

    class SliceChanged(Message):
        def __init__(self, grid: ValueGrid) -> None:
            super().__init__()
            self.grid = grid

    class _Loaded(Message):
        def __init__(self, key: tuple, block: tuple[int, int] | None, cells: list[list[str]],
                     formatter: Formatter | None, error: str = "") -> None:
            super().__init__()
            self.key, self.block, self.cells = key, block, cells
            self.formatter, self.error = formatter, error

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.view: View | None = None
        self._opener: Callable[[], ModelValues] | None = None
        self._mv: ModelValues | None = None
        self._lock = threading.Lock()
        self.lead: tuple[int, ...] = ()  # fixed indices of the leading dims
        self.blocks: OrderedDict[tuple, list[list[str]]] = OrderedDict()
        self.formatter: Formatter | None = None
        self.col_width = 4
        self.error = ""
        self._pending: set[tuple[int, int]] = set()  # blocks being read
        self._missing: set[tuple[int, int]] = set()  # blocks the last paint wanted
        self._scheduled = False
        self._closed = False  # unmounted: a late worker must not reopen the file

    # -- what is shown -----------------------------------------------------------
    def show(self, view: View, opener: Callable[[], ModelValues]) -> None:
        self.view, self._opener = view, opener
        self.lead = (0,) * max(0, len(view.shape) - 2)
        self._reset()

    @property
    def shape2(self) -> tuple[int, int]:
        """(rows, columns) of the grid for the current view."""
        v = self.view
        if v is None:
            return 0, 0
        if len(v.shape) == 0:
            return 1, 1
        if len(v.shape) == 1:
            return math.ceil(v.shape[0] / WRAP), min(WRAP, v.shape[0])
        return v.shape[-2], v.shape[-1]

    @property
    def slice_count(self) -> int:
        return math.prod(self.view.shape[:-2]) if self.view is not None and len(self.view.shape) > 2 else 1

    def slice_label(self) -> str:
        if self.view is None or len(self.view.shape) <= 2:
            return ""
        return "[" + ", ".join(map(str, self.lead)) + ", :, :]"

    def _reset(self) -> None:
        self.blocks.clear()
        self.formatter = None
        self.error = ""
        self._pending.clear()
        self.col_width = 4
        rows, cols = self.shape2
        self.virtual_size = Size(self._row_header() + cols * self.col_width, rows + 1)
        self.scroll_to(0, 0, animate=False)
        self.refresh()
        self._load((self.view, self.lead), None, ())  # the formatter first
        self.post_message(self.SliceChanged(self))

    def _row_header(self) -> int:
        rows, _ = self.shape2
        last = (rows - 1) * (WRAP if self.view is not None and len(self.view.shape) == 1 else 1)
        return len(str(max(last, 0))) + 2

    def on_unmount(self) -> None:
        with self._lock:  # after any read in progress
            self._closed = True
            if self._mv is not None:
                self._mv.close()
                self._mv = None

    # -- slice navigation ------------------------------------------------------
    def step(self, delta: int) -> None:
        """Move `delta` slices on, like an odometer over the leading dims."""
        if self.view is None or not self.lead:
            return
        dims = self.view.shape[:-2]
        flat = int(np.ravel_multi_index(self.lead, dims)) if all(dims) else 0
        flat = max(0, min(self.slice_count - 1, flat + delta))
        new = tuple(int(i) for i in np.unravel_index(flat, dims))
        if new != self.lead:
            self.lead = new
            self._reset()

    def action_next_slice(self) -> None:
        self.step(1)

    def action_prev_slice(self) -> None:
        self.step(-1)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("next_slice", "prev_slice"):
            return self.slice_count > 1
        return True

    def action_scroll_right(self) -> None:
        self.scroll_to(x=self.scroll_x + self.col_width, animate=False)

    def action_scroll_left(self) -> None:
        self.scroll_to(x=max(0, self.scroll_x - self.col_width), animate=False)

    # -- reading (worker) --------------------------------------------------------
    def _block_view(self, br: int, bc: int) -> View:
        v = self.view
        assert v is not None
        if len(v.shape) == 0:
            return v
        if len(v.shape) == 1:
            start = br * BLOCK_ROWS * WRAP
            return v.select((slice(start, start + BLOCK_ROWS * WRAP),))
        rows = slice(br * BLOCK_ROWS, (br + 1) * BLOCK_ROWS)
        cols = slice(bc * BLOCK_COLS, (bc + 1) * BLOCK_COLS)
        return v.select((*self.lead, rows, cols))

    def _read(self, view: View) -> np.ndarray:
        with self._lock:
            if self._closed:
                raise RuntimeError("the grid is closed")
            if self._mv is None:
                assert self._opener is not None
                self._mv = self._opener()
            return self._mv.reader.read(view)

    def _summary(self) -> np.ndarray:
        """The values torch's formatter would look at for this slice."""
        v = self.view
        assert v is not None
        s = v if len(v.shape) < 2 else v.select(self.lead)
        if s.numel <= 1000:
            return self._read(s)
        parts = []
        for index in _edges(s.shape):
            parts.append(self._read(s.select(index)).reshape(-1))
        return np.concatenate(parts)

    @work(thread=True, group="value-grid", exit_on_error=False)
    def _load(self, key: tuple, formatter: Formatter | None, wanted: tuple[tuple[int, int], ...]) -> None:
        """Read (in a thread) the formatter's sample and the wanted blocks of slice `key`;
        results go back as messages, so only the UI thread touches the cache."""
        worker = get_current_worker()
        view = key[0]
        try:
            if formatter is None:
                formatter = Formatter(self._summary(), dec.kind(view.dtype))
                self.post_message(self._Loaded(key, None, [], formatter))
            for b in wanted:
                if worker.is_cancelled or key != (self.view, self.lead):
                    return
                arr = self._read(self._block_view(*b))
                rows = _wrap(arr.reshape(-1)) if len(view.shape) <= 1 else arr.tolist()
                cells = [[formatter.format(x) for x in row] for row in rows]
                self.post_message(self._Loaded(key, b, cells, formatter))
        except Exception as e:  # noqa: BLE001 - shown in the grid, never a crash
            self.post_message(self._Loaded(key, None, [], None, error=str(e)))

    def on_value_grid__loaded(self, msg: _Loaded) -> None:
        if msg.key != (self.view, self.lead):
            return  # an older slice's
        if msg.error:
            self.error = msg.error
        elif msg.block is None:
            self.formatter = msg.formatter
        else:
            self._pending.discard(msg.block)
            self.blocks[(msg.key, msg.block)] = msg.cells
            while len(self.blocks) > MAX_BLOCKS:
                self.blocks.popitem(last=False)
            widest = max((len(c) for row in msg.cells for c in row), default=0)
            if widest + 2 > self.col_width:
                self.col_width = widest + 2
                rows, cols = self.shape2
                self.virtual_size = Size(self._row_header() + cols * self.col_width, rows + 1)
        self.refresh()

    # -- drawing -------------------------------------------------------------------
    def cell(self, r: int, c: int) -> str | None:
        """The text of a cell, or None while it is being read."""
        key = (self.view, self.lead)
        block = self.blocks.get((key, (r // BLOCK_ROWS, c // BLOCK_COLS)))
        if block is None:
            return None
        row = block[r % BLOCK_ROWS] if r % BLOCK_ROWS < len(block) else []
        return row[c % BLOCK_COLS] if c % BLOCK_COLS < len(row) else ""

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        rows, cols = self.shape2
        header_style = self.get_component_rich_style("value-grid--header")
        if self.error:
            return Strip([Segment(self.error if y == 0 else "", Style(color="red"))]).crop(0, width)
        sx, sy = int(self.scroll_x), int(self.scroll_y)
        hw, cw = self._row_header(), self.col_width
        c0 = sx // cw
        c1 = min(cols, (sx + max(0, width - hw)) // cw + 1)
        if y == 0:
            text = "".join(str(c).rjust(cw) for c in range(c0, c1))
            line = [Segment(" " * hw, header_style), Segment(text, header_style)]
            return _fit(Strip(line), hw, sx % cw, width)
        r = sy + y - 1
        if r >= rows:
            return Strip.blank(width)
        one_d = self.view is not None and len(self.view.shape) == 1
        label = str(r * WRAP if one_d else r).rjust(hw - 2) + "  "
        parts, missing = [], set()
        for c in range(c0, c1):
            text = self.cell(r, c)
            if text is None:
                missing.add((r // BLOCK_ROWS, c // BLOCK_COLS))
                text = "…"
            parts.append(text.rjust(cw))
        if missing and self.formatter is not None:
            self._missing |= missing
            if not self._scheduled:
                self._scheduled = True
                self.call_after_refresh(self._want)
        return _fit(Strip([Segment(label, header_style), Segment("".join(parts))]), hw, sx % cw, width)

    def _want(self) -> None:
        """Start reading the blocks the last paint lacked (once each)."""
        self._scheduled = False
        key = (self.view, self.lead)
        todo = tuple(sorted(b for b in self._missing
                            if (key, b) not in self.blocks and b not in self._pending))
        self._missing.clear()
        if todo and self.formatter is not None:
            self._pending.update(todo)
            self._load(key, self.formatter, todo)


def _fit(strip: Strip, head: int, skip: int, width: int) -> Strip:
    """Keep the first `head` cells, drop `skip` after them, fit the whole to `width`."""
    return Strip.join([strip.crop(0, head), strip.crop(head + skip, head + skip + width)]) \
        .crop(0, width).extend_cell_length(width)


def _edges(shape: tuple[int, ...]) -> list[tuple]:
    """Index tuples selecting torch's summary of a 2-D shape: first and last EDGE rows and
    columns when a dim is longer than 2*EDGE."""
    def spans(n: int) -> list[slice]:
        return [slice(0, n)] if n <= 2 * EDGE else [slice(0, EDGE), slice(n - EDGE, n)]
    if len(shape) == 1:
        return [(s,) for s in spans(shape[0])]
    return [(a, b) for a in spans(shape[0]) for b in spans(shape[1])]


def _wrap(flat: np.ndarray) -> list[list]:
    return [flat[i:i + WRAP].tolist() for i in range(0, len(flat), WRAP)]
