"""`modeltree A B`: one merged tree of two files, the side pane showing both sides.

Reading, comparing values and saving run in workers. When one side is a full model and
the other holds weights, the root's pane says what load_state_dict would report; `a`
applies the proposed rename to the weights side (undoable) and `s` saves it.
"""

from __future__ import annotations

import os

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Static, Tree
from textual.worker import Worker, WorkerState, get_current_worker

from tui.core.diff import Diff, DiffEntry, compare
from tui.core.edit import Editor
from tui.core.errors import ModelFileError
from tui.core.formats import kind_label
from tui.core.model import ModelFile
from tui.messages import WorkProgress
from tui.widgets.diff_pane import DiffPane
from tui.widgets.diff_tree import DiffTree, counts_text


class DiffScreen(Screen[None]):
    BINDINGS = [
        Binding("a", "apply_fix", "Apply fix", id="apply_fix"),
        Binding("x", "values", "Compare values", id="values"),
        Binding("s", "save", "Save weights", id="save_weights"),
        Binding("ctrl+z", "undo", "Undo", id="undo"),
        Binding("ctrl+y", "redo", "Redo", id="redo", show=False),
        Binding("escape", "cancel", "Cancel", show=False),
    ]
    DEFAULT_CSS = """
    DiffScreen #dinfo { height: 2; background: $panel; padding: 0 1; text-wrap: nowrap;
                       text-overflow: ellipsis; }
    DiffScreen #dmain { height: 1fr; }
    DiffScreen DiffTree { width: 3fr; }
    DiffScreen #dpane { width: 2fr; }
    """

    class Progress(WorkProgress):
        pass

    def __init__(self, a: str, b: str, key: str | None = None) -> None:
        super().__init__()
        self.paths, self.key = (os.fspath(a), os.fspath(b)), key
        self.diff: Diff | None = None
        self.editor: Editor | None = None  # the weights side's edits (a proposed rename)
        self.state = "reading…"

    def compose(self) -> ComposeResult:
        yield Static(id="dinfo", markup=False)
        with Horizontal(id="dmain"):
            yield DiffTree(id="dtree")
            yield DiffPane(id="dpane")
        yield Footer()

    @property
    def dtree(self) -> DiffTree:
        return self.query_one(DiffTree)

    def on_mount(self) -> None:
        self.dtree.border_title = "A ↔ B"
        self.query_one("#dpane", DiffPane).border_title = "both sides"
        self._info()
        self.load()

    # -- loading and comparing ---------------------------------------------------
    @work(thread=True, exclusive=True, group="diff-load", exit_on_error=False)
    def load(self) -> Diff:
        from tui.core.read.reader import open_model

        return compare(open_model(self.paths[0], key=self.key), open_model(self.paths[1]))

    @work(thread=True, exclusive=True, group="diff-values", exit_on_error=False,
          description="compare values")  # (not a repr of both models)
    def compare_values(self, d: Diff) -> Diff:
        from tui.core.diff_values import fill_values

        worker = get_current_worker()
        fill_values(d, lambda done, total: self.post_message(self.Progress(done, total)),
                    cancelled=lambda: worker.is_cancelled)
        return d

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        group = event.worker.group
        if group not in ("diff-load", "diff-values", "diff-save"):
            return
        if event.state == WorkerState.SUCCESS:
            if group == "diff-save":
                self.notify(event.worker.result, title="Saved", markup=False)
                self.state = ""
            else:
                self.state = "" if group == "diff-load" else "values compared"
                self.show(event.worker.result)
        elif event.state == WorkerState.ERROR:
            err = event.worker.error
            msg = str(err) if isinstance(err, ModelFileError) else f"{type(err).__name__}: {err}"
            self.state = "could not compare" if group == "diff-load" else ""
            self.notify(msg, severity="error", markup=False, timeout=10)
        elif event.state == WorkerState.CANCELLED:
            self.state = "cancelled"
        self._info()
        self.refresh_bindings()

    @on(Progress)
    def _progress(self, event: Progress) -> None:
        pct = 100 * event.done / event.total if event.total else 100
        self.state = f"comparing values… {pct:.0f}% (escape cancels)"
        self._info()

    def show(self, d: Diff) -> None:
        self.diff = d
        self.dtree.show_diff(d)
        self.query_one(DiffPane).show_module(d, "", self._fix_hint())
        self.set_focus(self.dtree)

    def _info(self) -> None:
        text = Text()
        for label, path in zip("AB", self.paths, strict=True):
            mf = self._side(label.lower())
            kind = f" ({kind_label(mf.format)}, {len(mf.tensors)} tensors)" if mf else ""
            text.append(f"{label}: ", style="bold")
            text.append(f"{os.path.basename(path.rstrip(os.sep)) or path}{kind}  ")
        text.append("\n")
        d = self.diff
        if d is not None:
            text.append("structures match" if d.structures_match else "structures differ",
                        style="bold")
            text.append("  " + counts_text(d.modules.get("", {})))
            if self.editor is not None and not self.editor.surgery.empty:
                text.append("  fix applied: " + ", ".join(self.editor.surgery.describe()))
        if self.state:
            text.append(f"  {self.state}")
        self.query_one("#dinfo", Static).update(text)

    def _side(self, side: str) -> ModelFile | None:
        if self.diff is None:
            return None
        return self.diff.a if side == "a" else self.diff.b

    def _weights_side(self) -> str | None:
        r = self.diff.load if self.diff is not None else None
        return None if r is None else ("b" if r.model_side == "a" else "a")

    def _fix_hint(self) -> str:
        r = self.diff.load if self.diff is not None else None
        if r is None or r.proposal is None:
            return ""
        from tui.headless.diff import surgery_args

        return f"proposed: {surgery_args(r.proposal)} on {self._weights_side().upper()} (a applies)"

    # -- selection -------------------------------------------------------------
    @on(Tree.NodeHighlighted, "#dtree")
    def _highlighted(self, event: Tree.NodeHighlighted) -> None:
        pane, data = self.query_one(DiffPane), event.node.data
        if isinstance(data, DiffEntry):
            pane.show_entry(data)
        elif isinstance(data, str) and self.diff is not None:
            pane.show_module(self.diff, data, self._fix_hint() if data == "" else "")

    # -- actions ---------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        d = self.diff
        if action == "apply_fix":
            return True if d is not None and d.load is not None and d.load.proposal else None
        if action == "save":
            return True if d is not None and self._weights_side() is not None else None
        if action == "values":
            return True if d is not None else None
        if action == "undo":
            return True if self.editor is not None and self.editor.can_undo else None
        if action == "redo":
            return True if self.editor is not None and self.editor.can_redo else None
        return True

    def _recompare(self) -> None:
        assert self.diff is not None and self.editor is not None
        side, s = self._weights_side(), self.editor.surgery
        d = self.diff
        self.show(compare(d.a, d.b, surgery_a=s if side == "a" else None,
                          surgery_b=s if side == "b" else None))
        self._info()
        self.refresh_bindings()

    def action_apply_fix(self) -> None:
        d, side = self.diff, self._weights_side()
        if d is None or d.load is None or d.load.proposal is None or side is None:
            return
        if self.editor is None:
            self.editor = Editor(self._side(side))
        from tui.core.surgery import SurgeryError

        try:
            self.editor.apply_surgery(d.load.proposal, "apply the proposed fix")
        except SurgeryError as e:
            self.notify(str(e), severity="error", markup=False)
            return
        self._recompare()
        self.notify("fix applied to the weights: s saves them", markup=False, timeout=4)

    def action_undo(self) -> None:
        if self.editor is not None and self.editor.undo():
            self._recompare()

    def action_redo(self) -> None:
        if self.editor is not None and self.editor.redo():
            self._recompare()

    def action_values(self) -> None:
        if self.diff is not None:
            self.state = "comparing values…"
            self._info()
            self.compare_values(self.diff)

    def action_cancel(self) -> None:
        self.workers.cancel_group(self, "diff-values")

    def action_save(self) -> None:
        side = self._weights_side()
        if side is None:
            return
        mf = self._side(side)
        from tui.core.write.save import suggested_path
        from tui.screens.path_dialog import PathDialog

        fmt = "safetensors" if mf.format == "safetensors" else "state_dict"
        hint = f"the weights ({side.upper()}) as {fmt}"
        if self.editor is not None and not self.editor.surgery.empty:
            hint += ", with " + ", ".join(self.editor.surgery.describe())
        self.app.push_screen(PathDialog("Save weights", suggested_path(mf, fmt), hint),
                             lambda path: self._save_to(path, mf, fmt))

    def _save_to(self, path: str | None, mf: ModelFile, fmt: str) -> None:
        if not path:
            return
        self.state = f"saving {path}…"
        self._info()
        self.save_weights(mf, path, fmt)

    @work(thread=True, exclusive=True, group="diff-save", exit_on_error=False,
          description="save weights")  # (not a repr of the model)
    def save_weights(self, mf: ModelFile, path: str, fmt: str) -> str:
        from tui.core.write.save import save

        surgery = self.editor.surgery if self.editor is not None else None
        r = save(mf, path, fmt, surgery=surgery)
        return f"wrote {r.path} ({r.tensors} tensors)"

