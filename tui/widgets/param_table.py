"""The selected module's parameters (as `named_parameters()` lists them) and buffers."""

from __future__ import annotations

from collections.abc import Iterator

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist

from tui.core import fmt
from tui.core.model import ModuleNode, TensorInfo

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
    status = {True: "trainable", False: "frozen", None: "unknown"}[t.requires_grad]
    word = {True: "yes", False: "no", None: "unknown"}[t.requires_grad]
    return Text(f"{fmt.glyph(status)} {word}", style=style)


def notes(t: TensorInfo, name: str, non_persistent: bool) -> str:
    out = [f"same tensor as {', '.join(n for n in t.names if n != name)}"] if len(t.names) > 1 else []
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

    BINDINGS = [Binding("space", "screen.toggle", "Freeze/unfreeze tensor", id="toggle_tensor")]
    COMPONENT_CLASSES = {
        "param-table--trainable", "param-table--frozen", "param-table--unknown",
        "param-table--buffer",
    }

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.tensors: dict[str, TensorInfo] = {}
        self.node: ModuleNode | None = None
        self._styles: dict[str, str] = {}

    def _columns(self) -> None:
        # Re-added on every show: DataTable keeps a column as wide as its widest row ever.
        # The trainable column first: it must show even in a narrow pane.
        for label, key in (("trainable", "flag"), ("name", "name"), ("shape", "shape"),
                           ("numel", "numel"), ("dtype", "dtype"), ("notes", "notes")):
            self.add_column(label, key=key)

    def _flag_style(self, t: TensorInfo) -> str:
        status = {True: "trainable", False: "frozen", None: "unknown"}[t.requires_grad]
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
        self._columns()
        prefix = len(node.name) + 1 if node.name else 0
        buffer_style = str(self.get_component_rich_style("param-table--buffer", partial=True))
        total = node.counts.tensors + node.counts.buffers
        rows = 0
        for buffers in (False, True):
            for name, t, non_persistent in subtree_tensors(node, buffers):
                if rows >= MAX_ROWS:
                    self.add_row("", Text(f"… {total - rows:,} more: select a child module",
                                          style="dim"), key=MORE)
                    return
                key = str(t.uid)
                self.tensors[key] = t
                if buffers:
                    flag = Text("buffer", style=buffer_style)
                else:
                    flag = flag_cell(t, self._flag_style(t))
                # Text, not str: DataTable parses str cells as markup (names are data).
                self.add_row(flag, Text(name[prefix:] or name), Text(fmt.shape(t.shape)),
                             Text(f"{t.numel:,}"), Text(t.dtype),
                             Text(notes(t, name, non_persistent)), key=key)
                rows += 1

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
