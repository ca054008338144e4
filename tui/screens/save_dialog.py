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
from tui.core.errors import ModelFileError
from tui.core.model import ModelFile
from tui.core.surgery import Surgery
from tui.core.write.save import carries_code, code_kept
from tui.core.write.targets import format_for_path, with_extension
from tui.screens.confirm import ConfirmScreen
from tui.screens.dialog import Dialog
from tui.widgets.dtype_choice import DtypeChoice
from tui.widgets.toggles import Radio, Tick


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

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    saving = var(False, init=False)  # a write is under way: progress shown, choices locked
    error = var("", init=False)  # why the last try wrote nothing, shown until the next one

    class Progress(Message):
        """Bytes written so far; a newer one replaces an unhandled older one."""

        def __init__(self, done: int, total: int) -> None:
            super().__init__()
            self.done, self.total = done, total

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, SaveDialog.Progress)

    def __init__(self, mf: ModelFile, surgery: Surgery | None = None) -> None:
        super().__init__()
        from tui.core.write import save as saving

        self.mf = mf
        self.surgery = surgery or Surgery()  # the Editor's rename/drop/extract/cast
        self.fmt = self.natural = saving.default_format(mf)
        self.auto_path = saving.suggested_path(mf, self.fmt)

    def compose(self) -> ComposeResult:
        from tui.core.write.save import describe_format

        # A full model needs the pickled module objects; a state_dict has none.
        full_ok = self.natural == "full"
        with Vertical(classes="dialog"):
            yield Static("Save model", classes="title")
            yield Label("File (enter saves, escape cancels)")
            yield Input(value=self.auto_path, id="path", compact=True)
            with RadioSet(id="format", compact=True):
                for f in formats.SAVE_FORMATS:
                    yield Radio(f.label, value=f.id == self.fmt, id=f.id,
                                disabled=f.keeps_architecture and not full_ok)
            yield DtypeChoice(self.surgery.dtype, id="cast")
            yield Static(self._with_surgery(describe_format(self.fmt)), id="describe", markup=False)
            yield Tick("also write the freeze plan (requires_grad, as JSON beside it)",
                       id="plan", disabled=self.fmt == "full", compact=True)
            if self.mf.format == "checkpoint":
                yield Tick(f"whole checkpoint (keep optimizer state, epoch, …; "
                           f"{formats.label(self.natural)} only)", id="whole", compact=True)
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

    # -- choices ---------------------------------------------------------------
    @on(RadioSet.Changed, "#format")
    def _format_changed(self, event: RadioSet.Changed) -> None:
        from tui.core.write.save import suggested_path

        self.fmt = event.pressed.id or self.fmt
        self._describe()
        self.query_one("#plan", Checkbox).disabled = self.fmt == "full"
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

    @on(Checkbox.Changed, "#whole")
    def _describe(self) -> None:
        if self.query("#keep"):
            self.query_one("#keep", Checkbox).disabled = not self._carries_code()
        from tui.core.write.save import describe_format

        whole = bool(self.query("#whole")) and self.query_one("#whole", Checkbox).value
        text = describe_format(self.fmt)
        if whole:
            text = describe_format("checkpoint") + " " + text
        self.query_one("#describe", Static).update(self._with_surgery(text))

    def _with_surgery(self, text: str) -> str:
        """The Editor's renames, drops and extract come first: they change what is written."""
        s = self.surgery.with_dtype(None)
        return f"With {', '.join(s.describe())}. {text}" if not s.empty else text

    @on(Input.Submitted, "#path")
    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        if self.saving:
            return
        path = os.path.expanduser(self.query_one("#path", Input).value.strip())
        if not path:
            self.show_error("Type a file name to save to.")
            return
        if os.path.lexists(path):
            def answered(yes: bool | None) -> None:
                if yes:
                    self.start(path, force=True)

            self.app.push_screen(ConfirmScreen(f"{path} exists. Overwrite it?", yes="Overwrite"),
                                 answered)
            return
        self.start(path, force=False)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        if self.saving:
            self.notify("Still writing; the file appears when it is complete.")
            return
        self.dismiss(None)

    # -- writing ---------------------------------------------------------------
    def start(self, path: str, force: bool) -> None:
        self.error = ""
        self.query_one("#progress", ProgressBar).update(total=None, progress=0)
        self.saving = True
        plan = self.fmt != "full" and self.query_one("#plan", Checkbox).value
        whole = bool(self.query("#whole")) and self.query_one("#whole", Checkbox).value
        keep = bool(self.query("#keep")) and self.query_one("#keep", Checkbox).value
        self.write(path, self.fmt, plan, force, whole, keep)

    @work(thread=True, exclusive=True, group="save", exit_on_error=False)
    def write(self, path: str, fmt: str, plan: bool, force: bool, whole: bool,
              keep: bool = False) -> Any:
        from tui.core.write.save import save

        surgery = self.surgery.with_dtype(self.query_one(DtypeChoice).value)
        return save(self.mf, path, fmt=fmt, freeze_plan=plan, force=force,
                    whole_checkpoint=whole, keep_code=keep, surgery=surgery,
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
        for selector in ("#path", "#format", "#save", "#plan", "#cast"):
            if selector != "#plan" or self.fmt != "full":  # (no plan beside a full model)
                self.query_one(selector).disabled = saving
        if self.query("#keep"):
            self.query_one("#keep", Checkbox).disabled = saving or not self._carries_code()
