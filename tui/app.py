"""The Textual app: wiring only. The main screen (tui/screens/main_screen.py) reads the file,
and browsing, freezing and saving happen there; the app holds the keys, help and quit."""

from __future__ import annotations

import os
import sys
from dataclasses import replace

from textual.app import App
from textual.binding import Binding
from textual.events import Key
from textual.screen import Screen
from textual.widgets import Input

from tui.screens.main_screen import MainScreen
from tui.widgets.module_tree import ModuleTree

# Dialogs (help, quit) are imported when first opened: the first frame doesn't need them.


class ModelTreeApp(App[None]):
    """`modeltree FILE`: browse the module tree, freeze parts, save."""

    CSS_PATH = "app.tcss"
    TITLE = "modeltree"
    BINDINGS = [
        Binding("question_mark", "help", "Help", id="help"),
        Binding("q", "quit", "Quit", id="quit"),
    ]

    def __init__(self, path: str | None, key: str | None = None) -> None:
        """`path` None: start on the open-file screen in the working folder."""
        super().__init__()
        self.path, self.key = (os.fspath(path) if path is not None else None), key
        self.main = MainScreen(self.path, key)
        self.user_keymap: dict[str, str] = {}

    def get_default_screen(self) -> Screen:
        return self.main

    # -- keys, help, quit ----------------------------------------------------
    def on_key(self, event: Key) -> None:
        # Keys typed right after "s" were sent to the tree before the dialog opened: the app
        # sends each key to the focused widget and runs a binding when the key comes back,
        # which keeps every key in order (a priority binding would jump ahead of the keys
        # before it). The dialog is mounted and focused before the next key comes back
        # (MainScreen.action_save awaits it); text comes back here unused (an Input stops the
        # text it takes) and goes into the field the user now sees.
        if event.is_printable and event.character and isinstance(self.focused, Input):
            self.focused.insert_text_at_cursor(event.character)
            event.prevent_default()  # handled: no binding lookup for it

    def set_keymap(self, keymap: dict[str, str]) -> None:
        self.user_keymap = dict(keymap)  # kept for the help screen and the palette
        super().set_keymap(keymap)

    def keys_for(self, action: str) -> str:
        """The keys bound to an action now (after any keymap), for display."""
        shown = []
        for b in (*App.BINDINGS, *self.BINDINGS, *MainScreen.BINDINGS, *ModuleTree.BINDINGS):
            if isinstance(b, Binding) and b.action == action:
                for key in self.user_keymap.get(b.id or "", b.key).split(","):
                    shown.append(self.get_key_display(replace(b, key=key.strip())))
        return " ".join(dict.fromkeys(shown))

    def key_rows(self) -> list[tuple[str, str]]:
        """(key, what it does) for the help screen, as currently bound."""
        from tui.screens.help import key_rows

        return key_rows(self.keys_for)

    def action_help(self) -> None:
        from tui.core.write.freeze_plan import load_snippet, plan_snippet
        from tui.screens.help import HelpScreen

        mf = self.main.mf
        plan = os.path.basename(mf.freeze_plan) if mf is not None and mf.freeze_plan else None
        current = plan_snippet(mf) if mf is not None and mf.root is not None else ""
        self.push_screen(HelpScreen(self.key_rows(), load_snippet(plan or "weights.freeze.json"),
                                    current))

    async def action_quit(self) -> None:
        editor = self.main.editor
        if editor is None or not editor.dirty:
            self.exit(return_code=0 if self.main.load_error is None else 1)
            return

        from tui.screens.quit import QuitScreen

        async def chosen(choice: str | None) -> None:
            if choice == "quit":
                self.exit()
            elif choice == "save":  # awaited: the dialog takes the keys typed after "s"
                await self.main.action_save(then_quit=True)

        # Counted against the last save (or the opened file before any save).
        await self.push_screen(QuitScreen([name for name, _, _ in editor.unsaved()],
                                          editor.surgery_unsaved), chosen)


def run_app(path: str | None, key: str | None = None) -> int:
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
