"""The selected module's tensors (parameters, then buffers), or the model's largest ones.

A Line API view (a `ScrollView` whose `render_line` draws one line), as toolong's log view
is: a repaint formats only the rows on screen, from a small cache keyed by what a row
shows, so an edit re-renders only the visible rows whose flag changed, and selecting another
module swaps the row source (built once per module) without rebuilding anything else. The
columns are laid out here from the pane's width on every resize (tui/widgets/param_rows.py).
"""

from __future__ import annotations

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import var
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui.core.model import ModuleNode, TensorInfo
from tui.core.surgery import Surgery, tensor_note
from tui.widgets import param_rows as pr
from tui.widgets.pane import pane_css

CACHE_ROWS = 512  # rendered lines kept (a few screens' worth)
SORT_FOR_COLUMN = {"name": "name", "numel": "size", "shape": "size", "mark": "order",
                   "dtype": "order", "notes": "order"}
_CONTROL = dict.fromkeys(range(32), "?")  # names are data: no newline or escape reaches a line


class ParamTable(ScrollView, can_focus=True):
    """One row per unique tensor, under a header row that stays put."""

    BINDINGS = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end", "jump(-1)", "Last", show=False),
        Binding("enter", "select", "Inspect", show=False),
    ]
    COMPONENT_CLASSES = {
        "param-table--header", "param-table--cursor", "param-table--odd",
        "param-table--trainable", "param-table--frozen", "param-table--unknown",
        "param-table--buffer",
    }
    DEFAULT_CSS = pane_css("ParamTable") + """
    ParamTable > .param-table--header { text-style: bold; color: $text-muted; }
    ParamTable > .param-table--cursor { background: $block-cursor-blurred-background; }
    ParamTable:focus > .param-table--cursor {
        background: $block-cursor-background; color: $block-cursor-foreground;
        text-style: $block-cursor-text-style;
    }
    ParamTable > .param-table--odd { background: $foreground 4%; }
    ParamTable > .param-table--trainable { color: $text-success; }
    ParamTable > .param-table--frozen { color: $text-primary; }
    ParamTable > .param-table--unknown { color: $text-accent; }
    ParamTable > .param-table--buffer { color: $text-muted; }
    """

    cursor = var(0, init=False)  # index in the shown rows
    sort = var("order", init=False)  # one of param_rows.SORTS

    class Sorted(Message):
        """The sort order changed (`t`, a header click)."""

    class RowSelected(Message):
        """Enter on a row: the screen opens that tensor's values."""

        def __init__(self, table: ParamTable, tensor: TensorInfo) -> None:
            super().__init__()
            self.table, self.tensor = table, tensor

        @property
        def control(self) -> ParamTable:
            return self.table

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.node: ModuleNode | None = None  # the module shown (None in the largest view)
        self.source: pr.Source | None = None
        self.rows: list[pr.Row] = []  # the source's rows in the current order
        self.largest = False  # the model's largest tensors instead of a module's
        self.row_note: pr.RowNote | None = None  # per-row override hook (see param_rows)
        self._surgery: Surgery | None = None
        self.flagged: set[int] = set()  # uids of tensors holding NaN/Inf (health check)
        self._sources: dict[int, pr.Source] = {}  # id(module) → its rows, built once
        self._layout: pr.Layout | None = None
        self._layout_width = -1
        self._lines: dict[tuple, Strip] = {}
        self._styles: dict[str, Style] = {}
        # Work counters, for tests that bound the work instead of the time.
        self.rendered = 0  # row lines formatted (cache misses)
        self.layouts = 0  # column layouts computed
        self.sources_built = 0

    # -- what is shown -----------------------------------------------------------------
    def show(self, node: ModuleNode | None) -> None:
        """List the module's subtree parameters, then its buffers."""
        self.node, self.largest = node, False
        if node is None:
            self._set_source(None)
            return
        src = self._sources.get(id(node))
        if src is None:
            src = self._sources[id(node)] = pr.module_source(node)
            self.sources_built += 1
        self._set_source(src)

    def show_largest(self, tensors: list[TensorInfo]) -> None:
        """The model's largest tensors (biggest first), with full names."""
        self.largest = True
        self.sources_built += 1
        self._set_source(pr.largest_source(tensors))

    def forget(self) -> None:
        """Drop the cached row sources (a new model)."""
        self._sources.clear()

    def _set_source(self, src: pr.Source | None) -> None:
        old = self._layout_key()
        self.source = src
        self.rows = src.ordered(self.sort) if src is not None else []
        if self._layout_key() != old:
            self._layout_width = -1  # other widths: lay out again
        self._lines.clear()
        self.set_reactive(ParamTable.cursor, 0)
        self.virtual_size = Size(self.virtual_size.width, len(self.rows) + 1)
        self.scroll_to(0, 0, animate=False, immediate=True)
        self._get_layout()  # now, so the titles say what the next frame shows
        self._set_titles()
        self.refresh()

    def _layout_key(self) -> tuple:
        return tuple(pr.measure(self.source).items()) if self.source is not None else ()

    def _set_titles(self) -> None:
        if self.source is None:
            self.border_title = self.border_subtitle = ""
            return
        if self.largest:  # biggest first by construction: the order is said only if other
            self.border_title = "largest tensors · L: back" + (
                "" if self.sort != "name" else f" · {pr.SORT_WORDS[self.sort]}")
        else:
            self.border_title = f"{len(self.rows):,} tensors · {pr.SORT_WORDS[self.sort]}"
        compact = self._layout is not None and self._layout.columns[0].compact
        unknown = "? unknown " if pr.measure(self.source)["unknown"] else ""
        self.border_subtitle = (f"● yes ○ no {unknown}{pr.BUFFER_GLYPH} buffer"
                                if compact else "")

    def cycle_sort(self) -> None:
        self.sort = pr.SORTS[(pr.SORTS.index(self.sort) + 1) % len(pr.SORTS)]

    def watch_sort(self) -> None:
        keep = self.current_tensor
        if self.source is not None:
            self.rows = self.source.ordered(self.sort)
        self._lines.clear()
        self._layout_width = -1  # the header's sort arrow moves
        self._set_titles()
        if keep is not None:
            at = next((i for i, r in enumerate(self.rows) if r.tensor is keep), 0)
            self.set_reactive(ParamTable.cursor, at)
            self._scroll_to_cursor()
        self.refresh()
        self.post_message(self.Sorted())

    def refresh_flags(self, tensors: list[TensorInfo]) -> None:
        """After an edit: lines are cached by the flag they show, so a repaint formats only
        the visible rows whose tensor changed (O(visible rows), whatever `tensors` holds)."""
        self.refresh()

    @property
    def surgery(self) -> Surgery | None:
        """Pending rename/drop/cast: each row says the name it is saved under (struck out
        when it is not saved)."""
        return self._surgery

    @surgery.setter
    def surgery(self, surgery: Surgery | None) -> None:
        self._surgery = surgery
        self.row_note = None if surgery is None else _surgery_note(surgery)
        self._layout_width = -1  # the notes column comes or goes
        self.invalidate()

    def invalidate(self) -> None:
        """Format every visible row again (after `row_note` changed)."""
        self._lines.clear()
        self.refresh()

    # -- queries -----------------------------------------------------------------------
    @property
    def current_tensor(self) -> TensorInfo | None:
        """The tensor on the cursor row."""
        return self.rows[self.cursor].tensor if 0 <= self.cursor < len(self.rows) else None

    tensor = current_tensor  # the older name

    @property
    def current_name(self) -> str | None:
        """The qualified name on the cursor row (a tied tensor's name in this module)."""
        return self.rows[self.cursor].name if 0 <= self.cursor < len(self.rows) else None

    @property
    def row_count(self) -> int:
        return len(self.rows)

    @property
    def layout_columns(self) -> tuple[pr.Column, ...]:
        return self._get_layout().columns

    def get_row_at(self, index: int) -> list[str]:
        """The row's cells in full (not compacted or elided for the pane), in column order:
        mark, name, shape, dtype, numel, notes (notes also when the pane hides them)."""
        row = self.rows[index]
        full = [pr.cell(row, pr.Column(key, "", 10**6)) for key in ("mark", "name", "shape",
                                                                     "dtype", "numel")]
        return [*full, self._notes(row)]

    def line_text(self, y: int) -> str:
        """Line y of the pane as drawn (0: the header), for tests and tools."""
        return self.render_line(y).text

    def _notes(self, row: pr.Row) -> str:
        note = self.row_note(row.name, row.tensor)[0] if self.row_note is not None else ""
        flag = "⚠ NaN/Inf" if row.tensor.uid in self.flagged else ""  # the health check's
        return "; ".join(x for x in (note, flag, pr.notes(row)) if x)

    # -- cursor and mouse --------------------------------------------------------------
    def watch_cursor(self, old: int, new: int) -> None:
        for i in (old, new):
            self._refresh_row(i)
        self._scroll_to_cursor()

    def validate_cursor(self, value: int) -> int:
        return max(0, min(value, len(self.rows) - 1))

    def _refresh_row(self, index: int) -> None:
        y = index - int(self.scroll_y) + 1
        if 1 <= y < self.size.height:
            self.refresh_line(y)

    def _scroll_to_cursor(self) -> None:
        top, room = int(self.scroll_y), max(self.scrollable_content_region.height - 1, 1)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + room:
            self.scroll_to(y=self.cursor - room + 1, animate=False, immediate=True)

    def action_cursor(self, step: int) -> None:
        self.cursor += step

    def action_page(self, step: int) -> None:
        self.cursor += step * max(self.scrollable_content_region.height - 1, 1)

    def action_jump(self, where: int) -> None:
        self.cursor = where if where >= 0 else len(self.rows) - 1

    def action_select(self) -> None:
        if (t := self.current_tensor) is not None:
            self.post_message(self.RowSelected(self, t))

    @property
    def cursor_row(self) -> int:
        return self.cursor

    def move_cursor(self, *, row: int, animate: bool = False) -> None:
        self.cursor = row

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        if offset.y == 0:  # the header: sort by that column
            col = self._get_layout().at(offset.x)
            if col is not None:
                self.sort = SORT_FOR_COLUMN[col.key]
            return
        index = int(self.scroll_y) + offset.y - 1
        if index < len(self.rows):
            self.cursor = index

    # -- drawing -----------------------------------------------------------------------
    def notify_style_update(self) -> None:
        super().notify_style_update()
        if hasattr(self, "_lines"):  # theme or focus changed (also called during __init__)
            self._styles.clear()
            self._lines.clear()

    def on_resize(self) -> None:
        self._layout_width = -1
        self._lines.clear()
        self._get_layout()

    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:  # resolving a component style costs ~0.3 ms: once per name
            style = self._styles[name] = self.get_component_rich_style(f"param-table--{name}",
                                                                       partial=True)
        return style

    def _get_layout(self) -> pr.Layout:
        width = self.scrollable_content_region.width
        if self._layout is None or width != self._layout_width:
            widths = pr.measure(self.source) if self.source is not None else pr.measure(
                pr.Source("", []))
            if self.row_note is not None or self.flagged:  # notes from outside: a column
                widths = {**widths, "notes": 1}
            self._layout, self._layout_width = pr.layout(width, widths), width
            self._lines.clear()
            self.layouts += 1
            self._set_titles()
        return self._layout

    def render_line(self, y: int) -> Strip:
        layout = self._get_layout()
        width = self._layout_width
        base = self.rich_style
        if y == 0:
            return self._header(layout, width, base)
        index = int(self.scroll_y) + y - 1
        if self.source is None or index >= len(self.rows):
            return Strip.blank(width, base)
        row = self.rows[index]
        key = (index, index == self.cursor, row.tensor.requires_grad)
        strip = self._lines.get(key)
        if strip is None:
            if len(self._lines) > CACHE_ROWS:
                self._lines.clear()
            strip = self._lines[key] = self._row(row, index, layout, width, base)
            self.rendered += 1
        return strip

    def _header(self, layout: pr.Layout, width: int, base: Style) -> Strip:
        style = base + self._style("header")
        arrow = {"size": ("numel", "▼"), "name": ("name", "▲")}.get(self.sort, ("", ""))
        segs = []
        for col in layout.columns:
            label = col.label
            if col.key == arrow[0]:  # the sorted column (numel is at least 6 wide for it)
                label = f"{arrow[1]}{label}" if col.right else f"{label} {arrow[1]}"
            segs.append(Segment(" " * pr.GAP, style))
            segs.append(Segment(_fit(label, col.width, col.right), style))
        return Strip(segs).adjust_cell_length(width, style)

    def _row(self, row: pr.Row, index: int, layout: pr.Layout, width: int, base: Style) -> Strip:
        style = base
        if index % 2:
            style += self._style("odd")
        if index == self.cursor:
            style += self._style("cursor")
        note, name_style = (self.row_note(row.name, row.tensor) if self.row_note is not None
                            else ("", ""))
        segs = []
        for col in layout.columns:
            if col.key == "notes":
                text = self._notes(row)
            else:
                text = pr.cell(row, col)
            cell_style = style
            if col.key == "mark":
                cell_style = style + self._style(pr.mark(row, True)[1])
            elif col.key == "name" and name_style:
                cell_style = style + Style.parse(name_style)
            segs.append(Segment(" " * pr.GAP, style))
            segs.append(Segment(_fit(text.translate(_CONTROL), col.width, col.right), cell_style))
        return Strip(segs).adjust_cell_length(width, style)


def _surgery_note(surgery: Surgery) -> pr.RowNote:
    def note(name: str, t: TensorInfo) -> tuple[str, str]:
        change = tensor_note(surgery, name, t.dtype)
        return change, ("strike" if change.startswith("✗") else "")
    return note


def _fit(text: str, width: int, right: bool) -> str:
    if right and cell_len(text) < width:
        return " " * (width - cell_len(text)) + text
    return set_cell_size(text, width)
