"""Open another file: a folder tree showing only folders and files modeltree opens.

    self.app.push_screen(OpenFileScreen(folder), opened)   # opened(path or None)

Enter on a file opens it (a DCP folder's `.metadata` opens its folder); enter on a folder
opens or closes it; backspace goes up a folder. The path field below takes a typed path:
a folder is shown, a file is opened.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DirectoryTree, Input, Static

from tui.screens.dialog import Dialog

MODEL_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".safetensors", ".index.json", ".zip",
                  ".pth.tar")
DCP_METADATA = ".metadata"  # torch.distributed.checkpoint: the folder is the checkpoint


def is_model_file(name: str) -> bool:
    return name == DCP_METADATA or name.lower().endswith(MODEL_SUFFIXES)


def shown(path: str | Path) -> str:
    """A path as the picker shows it: relative under the working folder, else absolute."""
    rel = os.path.relpath(path)
    return rel if not rel.startswith("..") else os.path.abspath(path)


def target(path: Path) -> str:
    """What opening `path` opens: a DCP checkpoint is its folder."""
    return str(path.parent if path.name == DCP_METADATA else path)


class ModelFileTree(DirectoryTree):
    """Folders (not hidden ones) and model files; backspace shows the parent folder."""

    BINDINGS = [Binding("backspace", "up", "Up a folder")]

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        out = []
        for p in paths:
            if self._safe_is_dir(p):
                if not p.name.startswith("."):
                    out.append(p)
            elif is_model_file(p.name):
                out.append(p)
        return out

    def on_mount(self) -> None:
        self.border_title = shown(self.path)

    def show(self, folder: str | Path) -> None:
        self.path = folder
        self.border_title = shown(folder)

    def action_up(self) -> None:
        here = Path(self.path).resolve()
        if here.parent != here:
            self.show(here.parent)


class OpenFileScreen(Dialog[str | None]):
    """Dismisses with the path to open, or None (escape)."""

    DEFAULT_CSS = """
    OpenFileScreen .dialog { width: 90; height: 100%; max-height: 40; }
    OpenFileScreen ModelFileTree { height: 1fr; border: round $panel-lighten-2; }
    OpenFileScreen ModelFileTree:focus { border: round $primary; }
    OpenFileScreen Input { margin-top: 1; }
    OpenFileScreen .hint { color: $text-muted; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, folder: str) -> None:
        super().__init__()
        self.folder = os.path.abspath(folder)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("Open a model file", classes="title")
            yield ModelFileTree(self.folder, id="files")
            yield Input(value=shown(self.folder), id="where", compact=True,
                        placeholder="a file or folder path")
            yield Static("enter: open · backspace: up a folder · tab: type a path · "
                         "escape: cancel", classes="hint")

    def on_mount(self) -> None:
        self.set_focus(self.query_one(ModelFileTree))

    @on(DirectoryTree.FileSelected)
    def _file(self, event: DirectoryTree.FileSelected) -> None:
        self.dismiss(target(event.path))

    @on(DirectoryTree.NodeHighlighted)
    def _highlighted(self, event: DirectoryTree.NodeHighlighted) -> None:
        if event.node.data is not None:
            self.query_one("#where", Input).value = shown(event.node.data.path)

    @on(Input.Submitted, "#where")
    def _typed(self, event: Input.Submitted) -> None:
        path = os.path.abspath(os.path.expanduser(event.value.strip() or "."))
        if os.path.isdir(path) and not os.path.isfile(os.path.join(path, DCP_METADATA)) \
                and not _has_index(path):
            tree = self.query_one(ModelFileTree)
            tree.show(path)
            self.set_focus(tree)
        elif os.path.exists(path):
            self.dismiss(target(Path(path)))
        else:
            self.notify(f"{path}: no such file or folder", severity="warning", markup=False)

    def action_cancel(self) -> None:
        self.dismiss(None)


def _has_index(folder: str) -> bool:
    """A Hugging Face shard folder (opened as one model)."""
    try:
        return any(n.endswith(".index.json") for n in os.listdir(folder))
    except OSError:
        return False
