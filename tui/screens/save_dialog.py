"""Save dialog: path, format, freeze plan; writes in a worker with a progress bar.

The writing itself is `tui.core.write.save.save` (the same call `modeltree --save` makes);
this screen only collects the choices, shows progress, and keeps the dialog open
with the message when the writer refuses, so nothing typed is lost.
"""

from __future__ import annotations

import os
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import var
from textual.widgets import Button, Checkbox, Input, Label, ProgressBar, RadioSet, Static
from textual.worker import Worker, WorkerState

from tui.core import formats
from tui.core.composition import devices
from tui.core.errors import ModelFileError
from tui.core.model import ModelFile
from tui.core.surgery import Surgery
from tui.core.write.save import carries_code, code_kept
from tui.core.write.targets import format_for_path, with_extension
from tui.screens.confirm import ConfirmScreen
from tui.screens.dialog import Dialog
from tui.screens.save_text import CPU_BOX, PLAN_BOX, WHOLE_BOX, SaveChoices, explain
from tui.widgets.dtype_choice import DtypeChoice
from tui.widgets.toggles import Choices, Radio, Tick


class SaveDialog(Dialog[Any]):
    """Dismisses with the writer's SaveResult, or None when cancelled."""

    DEFAULT_CSS = """
    SaveDialog Input { margin-bottom: 1; }
    SaveDialog RadioSet { width: 100%; layout: horizontal; }
    SaveDialog Radio { margin-right: 3; }
    SaveDialog #describe { color: $text-muted; padding: 1 0; }
    SaveDialog #progress { padding-top: 1; display: none; }
    SaveDialog #error { color: $text-error; text-style: bold; padding-top: 1; display: none; }
    SaveDialog.-saving #progress, SaveDialog.-refused #error { display: block; }
    SaveDialog .buttons { margin-top: 1; }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        # priority: ahead of the checkbox's and the format lists' own enter (which toggle)
        Binding("enter", "save", "Save", priority=True),
    ]

    saving = var(False, init=False)  # a write is under way: progress shown, choices locked
    error = var("", init=False)  # why the last try wrote nothing, shown until the next one

    class Progress(Message):
        """Bytes written so far; a newer one replaces an unhandled older one."""

        def __init__(self, done: int, total: int) -> None:
            super().__init__()
            self.done, self.total = done, total

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, SaveDialog.Progress)

    def __init__(self, mf: ModelFile, surgery: Surgery | None = None,
                 memory: SaveChoices | None = None, edited: bool = False) -> None:
        """`memory`: the last dialog's choices for this file (updated as the user chooses);
        `edited`: requires_grad was changed (a weights-only format then ticks the plan)."""
        super().__init__()
        from tui.core.write import save as saving

        self.mf, self.edited = mf, edited
        self.surgery = surgery or Surgery()  # the Editor's rename/drop/extract/cast
        self.memory = memory if memory is not None else SaveChoices()
        self.natural = saving.default_format(mf)
        self.full_ok = self.natural == "full"  # a full model needs the pickled module objects
        fmt = self.memory.fmt
        self.fmt = fmt if fmt and (fmt != "full" or self.full_ok) else self.natural
        # The path follows the format until the user types one; a remembered one that was
        # the suggestion then still follows it.
        self.auto_path = (self.memory.path if self.memory.path and self.memory.path_auto
                          else saving.suggested_path(mf, self.fmt))
        self.gpu = devices(mf).non_cpu

    def compose(self) -> ComposeResult:
        m = self.memory
        with Vertical(classes="dialog"):
            yield Static("Save model", classes="title")
            yield Label("File (enter saves, space ticks a box, escape cancels)")
            yield Input(value=m.path or self.auto_path, id="path", compact=True)
            with Choices(id="format", compact=True):
                for f in formats.SAVE_FORMATS:
                    yield Radio(f.label, value=f.id == self.fmt, id=f.id,
                                disabled=f.keeps_architecture and not self.full_ok)
            yield DtypeChoice(self.surgery.dtype, id="cast")
            yield Static(id="describe", markup=False)
            yield Tick(f"{PLAN_BOX} (requires_grad, as JSON beside it)", self._plan_default(),
                       id="plan", disabled=self.fmt == "full", compact=True)
            if self.mf.format == "checkpoint":
                yield Tick(f"{WHOLE_BOX} (keep optimizer state, epoch, …; "
                           f"{formats.label(self.natural)} only)", m.whole, id="whole",
                           compact=True)
            if self.gpu:  # a file saved on a GPU: offer one that loads anywhere
                yield Tick(f"{CPU_BOX} (saved on {', '.join(self.gpu)})", m.cpu, id="cpu",
                           compact=True)
            kept = code_kept(self.mf)
            if kept and self.mf.source.kind != "torchscript":
                names = ", ".join(dict.fromkeys(kept[:3])) + (", …" if len(set(kept)) > 3 else "")
                yield Tick(f"keep code: the new file will still call {names} when loaded",
                           id="keep", disabled=not self._carries_code(), compact=True)
            yield ProgressBar(id="progress", show_eta=False)
            yield Static(id="error", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Save", variant="primary", id="save", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        path = self.query_one("#path", Input)
        # Focus now, not with focus(), which queues the change behind keys already typed:
        # the app waits for this mount (MainScreen.action_save awaits it), then hands those
        # keys to the focused field (ModelTreeApp.on_key).
        self.set_focus(path)
        path.cursor_position = len(path.value)
        self._describe()

    def _plan_default(self) -> bool:
        """Ticked when the format can't keep requires_grad and it was edited (unless the
        user already chose for this file)."""
        if self.memory.plan is not None:
            return self.memory.plan
        f = formats.get(self.fmt)
        return self.edited and f is not None and not f.keeps_requires_grad

    def _ticked(self, box: str) -> bool:
        return bool(self.query(f"#{box}")) and self.query_one(f"#{box}", Checkbox).value

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "save" and isinstance(self.focused, Button) and self.focused.id != "save":
            return False  # enter presses Cancel
        return True

    # -- choices ---------------------------------------------------------------
    @on(RadioSet.Changed, "#format")
    def _format_changed(self, event: RadioSet.Changed) -> None:
        from tui.core.write.save import suggested_path

        self.fmt = event.pressed.id or self.fmt
        plan = self.query_one("#plan", Checkbox)
        plan.disabled = self.fmt == "full"
        plan.value = self._plan_default()
        self._describe()
        path = self.query_one("#path", Input)
        if path.value == self.auto_path:  # follow the format until the user edits the name
            self.auto_path = path.value = suggested_path(self.mf, self.fmt)
        else:  # an edited name keeps its stem; the extension follows the format
            path.value = with_extension(path.value, self.fmt)

    @on(Input.Changed, "#path")
    def _path_changed(self, event: Input.Changed) -> None:
        # Typing a .safetensors name selects safetensors; a .pth name after it, the torch format.
        torch_format = self.natural if self.natural != "safetensors" else "state_dict"
        want = format_for_path(event.value, self.fmt, torch_format)
        if want != self.fmt:
            self.query_one(f"#{want}", Radio).value = True

    def _carries_code(self) -> bool:
        whole = bool(self.query("#whole")) and self.query_one("#whole", Checkbox).value
        return carries_code(self.mf, self.fmt, whole)

    @on(Checkbox.Changed, "#plan")
    def _plan_changed(self, event: Checkbox.Changed) -> None:
        if event.value != self._plan_default():  # the user's choice, not the default's
            self.memory.plan = event.value
        self._describe()

    @on(Checkbox.Changed, "#whole, #cpu")
    def _describe(self) -> None:
        if self.query("#keep"):
            self.query_one("#keep", Checkbox).disabled = not self._carries_code()
        plan = self.fmt != "full" and self._ticked("plan")
        text = explain(self.mf, self.fmt, plan, self._ticked("whole"), self.gpu, self._ticked("cpu"))
        self.query_one("#describe", Static).update(self._with_surgery(text))

    def remember(self) -> None:
        m = self.memory
        typed = self.query_one("#path", Input).value
        m.path, m.path_auto = typed, typed == self.auto_path
        m.fmt, m.whole, m.cpu = self.fmt, self._ticked("whole"), self._ticked("cpu")

    def _with_surgery(self, text: str) -> str:
        """The Editor's renames, drops and extract come first: they change what is written."""
        s = self.surgery.with_dtype(None)
        return f"With {', '.join(s.describe())}. {text}" if not s.empty else text

    @on(Input.Submitted, "#path")
    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        if self.saving:
            return
        self.remember()
        path = os.path.expanduser(self.query_one("#path", Input).value.strip())
        if not path:
            self.show_error("Type a file name to save to.")
            return
        from tui.core.write.freeze_plan import plan_path

        plan = self.fmt != "full" and self._ticked("plan")
        there = [p for p in (path, plan_path(path) if plan else None) if p and os.path.lexists(p)]
        if there:
            def answered(yes: bool | None) -> None:
                if yes:
                    self.start(path, force=True)

            self.app.push_screen(ConfirmScreen(f"{' and '.join(there)} "
                                               f"{'exist' if len(there) > 1 else 'exists'}. "
                                               "Overwrite?", yes="Overwrite"), answered)
            return
        self.start(path, force=False)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        if self.saving:
            self.notify("Still writing; the file appears when it is complete.")
            return
        self.remember()
        self.dismiss(None)

    # -- writing ---------------------------------------------------------------
    def start(self, path: str, force: bool) -> None:
        self.error = ""
        self.query_one("#progress", ProgressBar).update(total=None, progress=0)
        self.saving = True
        plan = self.fmt != "full" and self._ticked("plan")
        self.write(path, self.fmt, plan, force, self._ticked("whole"), self._ticked("keep"),
                   cpu=self._ticked("cpu"))

    @work(thread=True, exclusive=True, group="save", exit_on_error=False)
    def write(self, path: str, fmt: str, plan: bool, force: bool, whole: bool,
              keep: bool = False, cpu: bool = False) -> Any:
        from tui.core.write.save import save

        surgery = self.surgery.with_dtype(self.query_one(DtypeChoice).value)
        return save(self.mf, path, fmt=fmt, freeze_plan=plan, force=force,
                    whole_checkpoint=whole, keep_code=keep, surgery=surgery, cpu=cpu,
                    progress=lambda done, total: self.post_message(self.Progress(done, total)))

    def on_save_dialog_progress(self, message: Progress) -> None:
        if self.saving:
            self.query_one("#progress", ProgressBar).update(total=max(message.total, 1),
                                                           progress=message.done)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "save":
            return
        if event.state == WorkerState.SUCCESS:
            self.saving = False
            self.dismiss(event.worker.result)
        elif event.state in (WorkerState.ERROR, WorkerState.CANCELLED):
            self.saving = False
            err = event.worker.error
            if isinstance(err, ModelFileError):
                self.show_error(f"Not saved: {err}")
            else:
                self.show_error(f"Not saved: {type(err).__name__}: {err}")
            self.query_one("#path", Input).focus()

    def show_error(self, message: str) -> None:
        self.error = message

    def watch_error(self, error: str) -> None:
        self.query_one("#error", Static).update(error)
        self.set_class(bool(error), "-refused")

    def watch_saving(self, saving: bool) -> None:
        self.set_class(saving, "-saving")
        for selector in ("#path", "#format", "#save", "#plan", "#cast", "#whole", "#cpu"):
            if selector != "#plan" or self.fmt != "full":  # (no plan beside a full model)
                for widget in self.query(selector):  # (#whole, #cpu: when shown)
                    widget.disabled = saving
        if self.query("#keep"):
            self.query_one("#keep", Checkbox).disabled = saving or not self._carries_code()
