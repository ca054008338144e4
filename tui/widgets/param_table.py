"""The selected module's parameters (as `named_parameters()` lists them) and buffers."""

from __future__ import annotations

from collections.abc import Iterator

from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist

from tui.core import human
from tui.core.model import ModuleNode, TensorInfo
from tui.core.surgery import Surgery, tensor_note
from tui.widgets.pane import pane_css

MAX_ROWS = 300  # a root of a huge model lists its first rows; children list the rest
MORE = "more"


def subtree_tensors(node: ModuleNode, buffers: bool) -> Iterator[tuple[str, TensorInfo, bool]]:
    """(qualified name, tensor, non-persistent) for unique tensors, in named_parameters() order."""
    seen: set[int] = set()
    for n in node.walk():
        for local, t in (n.buffers if buffers else n.params):
            if id(t) not in seen:
                seen.add(id(t))
                yield n.qualify(local), t, buffers and local in n.non_persistent


def flag_cell(t: TensorInfo, style: str) -> Text:
    status = human.tensor_status(t.requires_grad)
    word = {True: "yes", False: "no", None: "unknown"}[t.requires_grad]
    return Text(f"{human.glyph(status)} {word}", style=style)


def notes(t: TensorInfo, name: str, non_persistent: bool, flagged: bool = False) -> str:
    out = ["⚠ NaN/Inf"] if flagged else []  # found by the health check
    if len(t.names) > 1:
        out.append(f"same tensor as {', '.join(n for n in t.names if n != name)}")
    if non_persistent:
        out.append("non-persistent: not in a state_dict")
    if t.quantized:
        out.append(f"quantized ({t.quantized})")
    if t.note:
        out.append(t.note)
    if t.kind != "buffer" and not t.can_require_grad:
        out.append(f"{t.dtype} can't require grad")
    return "; ".join(out)


class ParamTable(DataTable):
    """One row per unique tensor; row keys are tensor uids."""

    COMPONENT_CLASSES = {
        "param-table--trainable", "param-table--frozen", "param-table--unknown",
        "param-table--buffer",
    }
    DEFAULT_CSS = pane_css("ParamTable") + """
    ParamTable > .param-table--trainable { color: $text-success; }
    ParamTable > .param-table--frozen { color: $text-primary; }
    ParamTable > .param-table--unknown { color: $text-accent; }
    ParamTable > .param-table--buffer { color: $text-muted; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.tensors: dict[str, TensorInfo] = {}
        self.node: ModuleNode | None = None
        self.surgery: Surgery | None = None  # pending rename/drop/cast, shown per row
        self._styles: dict[str, str] = {}
        self._compact = False
        self._full_width = 0  # cells the last module's columns need, full labels and shapes
        self.flagged: set[int] = set()  # uids of tensors holding NaN/Inf (health check)

    def _columns(self, notes: bool) -> None:
        # Re-added on every show: DataTable keeps a column as wide as its widest row ever.
        # Most telling first: trainable, then name, shape and dtype must show in a narrow
        # pane (80 columns); notes only when some row has one.
        for label, key in (("train" if self._compact else "trainable", "flag"), ("name", "name"),
                           ("shape", "shape"), ("dtype", "dtype"), ("numel", "numel"),
                           *((("notes", "notes"),) if notes else ())):
            self.add_column(label, key=key)

    def _too_narrow(self) -> bool:
        """Would the columns (notes aside) not fit as "trainable" and "[16, 1, 5, 5]"?"""
        return self.content_size.width - 1 < self._full_width  # (1: a scrollbar)

    def on_resize(self) -> None:
        if self.node is not None and self._too_narrow() != self._compact:  # relabel
            row = self.cursor_row
            self.show(self.node)
            self.move_cursor(row=row, animate=False)

    def _flag_style(self, t: TensorInfo) -> str:
        status = human.tensor_status(t.requires_grad)
        if status not in self._styles:  # resolving a component style costs ~0.3 ms
            self._styles[status] = str(self.get_component_rich_style(f"param-table--{status}",
                                                                     partial=True))
        return self._styles[status]

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles = {}  # theme changed

    def show(self, node: ModuleNode | None) -> None:
        """List the module's subtree parameters, then its buffers."""
        self.node = node
        self.clear(columns=True)
        self.tensors = {}
        if node is None:
            return
        prefix = len(node.name) + 1 if node.name else 0
        buffer_style = str(self.get_component_rich_style("param-table--buffer", partial=True))
        rows: list[tuple[str, list[Text]]] = []
        cut = False
        for buffers in (False, True):
            for name, t, non_persistent in subtree_tensors(node, buffers):
                if len(rows) >= MAX_ROWS:
                    cut = True
                    break
                key = str(t.uid)
                self.tensors[key] = t
                if buffers:
                    flag = Text("buffer", style=buffer_style)
                else:
                    flag = flag_cell(t, self._flag_style(t))
                # Pending surgery: the name it is saved under (struck out when it is not).
                change = tensor_note(self.surgery, name, t.dtype) if self.surgery else ""
                note = "; ".join(x for x in (change, notes(t, name, non_persistent,
                                                          t.uid in self.flagged)) if x)
                # Text, not str: DataTable parses str cells as markup (names are data).
                rows.append((key, [flag, Text(name[prefix:] or name,
                                              style="strike" if change.startswith("✗") else ""),
                                   Text(human.shape(t.shape)),
                                   Text(t.dtype), Text(f"{t.numel:,}", justify="right"),
                                   Text(note)]))
        with_notes = any(cells[5].plain for _, cells in rows)
        # Short labels and shapes ("train", "[16,1,5,5]") only when the full ones don't fit.
        widths = [len(label) for label in ("trainable", "name", "shape", "dtype", "numel")]
        for _, cells in rows:
            widths = [max(w, c.cell_len) for w, c in zip(widths, cells[:5], strict=True)]
        self._full_width = sum(w + 2 for w in widths)  # (2: cell padding)
        self._compact = self._too_narrow()
        if self._compact:
            for _, cells in rows:
                cells[2] = Text(cells[2].plain.replace(", ", ","))
        self._columns(with_notes)
        for key, cells in rows:
            self.add_row(*(cells if with_notes else cells[:5]), key=key)
        if cut:
            total = node.counts.tensors + node.counts.buffers
            more = Text(f"… {total - len(rows):,} more: select a child module", style="dim")
            self.add_row("", more, *[""] * (len(self.columns) - 2), key=MORE)  # not None cells

    def refresh_flags(self, tensors: list[TensorInfo]) -> None:
        for t in tensors:
            key = str(t.uid)
            if key in self.tensors and t.kind != "buffer":
                self.update_cell(key, "flag", flag_cell(t, self._flag_style(t)))

    @property
    def tensor(self) -> TensorInfo | None:
        """The tensor on the cursor row."""
        if not self.row_count:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except CellDoesNotExist:  # the cursor is outside the rows
            return None
        return self.tensors.get(key or "")
