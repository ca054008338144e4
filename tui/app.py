"""The Textual app: wiring only. Reads the file in a worker and hands it to the main
screen (tui/screens/main_screen.py), where browsing, freezing and saving happen."""

from __future__ import annotations

import gc
import os
import sys
from dataclasses import replace

from textual import on, work
from textual.app import App
from textual.binding import Binding
from textual.events import Key
from textual.screen import Screen
from textual.widgets import Input
from textual.worker import Worker, WorkerState

from tui.core.edit import Editor
from tui.core.errors import ModelFileError
from tui.core.model import ModelFile
from tui.screens.error import ErrorScreen
from tui.screens.help import HelpScreen, key_rows
from tui.screens.main_screen import MainScreen
from tui.screens.quit import QuitScreen
from tui.widgets.module_tree import ModuleTree
from tui.widgets.param_table import ParamTable


class ModelTreeApp(App[None]):
    """`modeltree FILE`: browse the module tree, freeze parts, save."""

    CSS_PATH = "app.tcss"
    TITLE = "modeltree"
    BINDINGS = [
        Binding("question_mark", "help", "Help", id="help"),
        Binding("q", "quit", "Quit", id="quit"),
    ]

    def __init__(self, path: str, key: str | None = None) -> None:
        super().__init__()
        self.path, self.key = os.fspath(path), key
        self.main = MainScreen(self.path)
        self.load_error: str | None = None
        self.user_keymap: dict[str, str] = {}

    def get_default_screen(self) -> Screen:
        return self.main

    # The main screen holds the model and the widgets; these keep `app.mf` & co. working.
    @property
    def mf(self) -> ModelFile | None:
        return self.main.mf

    @property
    def editor(self) -> Editor | None:
        return self.main.editor

    @property
    def mtree(self) -> ModuleTree:
        return self.main.mtree

    @property
    def table(self) -> ParamTable:
        return self.main.table

    @property
    def showing_values(self) -> bool:
        return self.main.showing_values

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in MainScreen.ACTIONS:  # asked of the app (tests, tools): the screen knows
            return self.main.check_action(action, parameters)
        return True

    # -- loading -------------------------------------------------------------
    @on(MainScreen.Ready)
    def _screen_ready(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def load(self) -> ModelFile:
        from tui.core.read.reader import open_model

        return open_model(self.path, key=self.key)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "load":
            return
        if event.state == WorkerState.SUCCESS:
            self.show_model(event.worker.result)
        elif event.state == WorkerState.ERROR:
            err = event.worker.error
            if getattr(err, "choices", None):  # a folder of several models: pick one
                self._pick(err.choices, str(err))
                return
            self.load_error = str(err) if isinstance(err, ModelFileError) else (
                f"{self.path}: unexpected {type(err).__name__}: {err}")
            self.main.show_load_error(self.load_error)
            self.push_screen(ErrorScreen("Could not open the file", self.load_error))

    def _pick(self, choices: list[str], why: str) -> None:
        from tui.screens.file_picker import FilePicker

        def opened(path: str | None) -> None:
            if path is None:
                self.load_error = why
                self.main.show_load_error(why)
                return
            self.path = self.main.path = path
            self.load()

        folder = os.path.basename(self.path.rstrip(os.sep)) or self.path
        self.push_screen(FilePicker(choices, f"{folder} holds {len(choices)} model files: "
                                    "open which one?"), opened)

    def show_model(self, mf: ModelFile) -> None:
        # The model's objects live as long as the app: keep the collector from re-scanning
        # them on every edit (a 10,000-tensor model has ~300,000 objects).
        gc.freeze()
        self.main.show_model(mf)

    def on_unmount(self) -> None:
        gc.unfreeze()  # let a process that runs several apps (tests) collect them

    # -- keys, help, quit ----------------------------------------------------
    def on_key(self, event: Key) -> None:
        # Text typed right after "s", before the dialog's field had focus, went to the tree: a
        # key's binding runs once the key has been through the focused widget, after the next
        # keys were sent there. It comes back here unused (an Input stops the text it takes).
        if event.is_printable and event.character and isinstance(self.focused, Input):
            self.focused.insert_text_at_cursor(event.character)
            event.prevent_default()  # handled: no binding lookup for it

    def set_keymap(self, keymap: dict[str, str]) -> None:
        self.user_keymap = dict(keymap)  # kept for the help screen and the palette
        super().set_keymap(keymap)

    def keys_for(self, action: str) -> str:
        """The keys bound to an action now (after any keymap), for display."""
        shown = []
        for b in (*App.BINDINGS, *self.BINDINGS, *MainScreen.BINDINGS, *ModuleTree.BINDINGS,
                  *ParamTable.BINDINGS):
            if isinstance(b, Binding) and b.action == action:
                for key in self.user_keymap.get(b.id or "", b.key).split(","):
                    shown.append(self.get_key_display(replace(b, key=key.strip())))
        return " ".join(dict.fromkeys(shown))

    def key_rows(self) -> list[tuple[str, str]]:
        """(key, what it does) for the help screen, as currently bound."""
        return key_rows(self.keys_for)

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.key_rows()))

    async def action_quit(self) -> None:
        editor = self.main.editor
        if editor is None or not editor.dirty:
            self.exit(return_code=0 if self.load_error is None else 1)
            return

        def chosen(choice: str | None) -> None:
            if choice == "quit":
                self.exit()
            elif choice == "save":
                self.main.action_save(then_quit=True)

        self.push_screen(QuitScreen([name for name, _, _ in editor.changed()]), chosen)


def run_app(path: str, key: str | None = None) -> int:
    """Run the app on a file; the exit code is 1 when the file could not be opened."""
    # Textual lays out a tree recursively, one frame per level; models go hundreds deep.
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    app = ModelTreeApp(path, key=key)
    app.set_keymap(keymap_from(os.environ.get("MODELTREE_KEYS", "")))
    app.run()
    return app.return_code or 0


def keymap_from(text: str) -> dict[str, str]:
    """MODELTREE_KEYS="save=ctrl+s;toggle=x,enter" → {binding id: keys}; bad entries skipped."""
    pairs = [(b.strip(), k.strip()) for b, sep, k in (e.partition("=") for e in text.split(";"))
             if sep]
    return {bid: keys for bid, keys in pairs if bid and keys}
