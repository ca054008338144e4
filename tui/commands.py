"""Every app action in the command palette (ctrl+p), with the key that runs it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.dom import DOMNode

# action -> (title, help). Titles are what people type; the key is added to the help.
COMMANDS: dict[str, tuple[str, str]] = {
    "toggle": ("Freeze / unfreeze", "selected module subtree, or the tensor on the table row"),
    "freeze": ("Freeze subtree", "requires_grad=False for every parameter under the cursor"),
    "unfreeze": ("Unfreeze subtree", "requires_grad=True for every parameter under the cursor"),
    "freeze_others": ("Freeze all except this",
                      "freeze every parameter outside the selected module (to fine-tune only it)"),
    "toggle_matches": ("Freeze / unfreeze filter matches",
                       "every module the filter (/) matches: anything trainable → freeze all, "
                       "else unfreeze all"),
    "undo": ("Undo", "take back the last edit (freeze, rename, drop, extract, cast)"),
    "redo": ("Redo", "redo what was undone"),
    "save": ("Save…", "write the model: full model, state_dict or safetensors"),
    "open": ("Open another file…", "pick a model file in a folder tree"),
    "filter": ("Filter tree", "show modules whose name or class matches (substring or glob)"),
    "expand": ("Expand subtree", "open every module under the cursor"),
    "collapse": ("Collapse subtree", "close the module under the cursor and all below"),
    "sort": ("Sort tensors", "parameter table: model order, largest first, by name (or click a header)"),
    "largest": ("Largest tensors", "the model's largest tensors in the table, and back"),
    "values": ("Show values / modules", "a checkpoint's other entries (epoch, optimizer, …) and back"),
    "rename": ("Rename by prefix…", "rename tensors when saving (empty new prefix: strip it)"),
    "drop": ("Drop / restore", "leave the selected module or tensor out of the saved file, or back in"),
    "extract": ("Extract this module", "save only the selected module, its prefix removed"),
    "inspect": ("Tensor values…", "statistics, histogram and values of the tensor on the table row"),
    "health": ("Health check", "scan every tensor for NaN/Inf; mark them and their modules"),
    "help": ("Help", "keys, marks and save formats"),
    "quit": ("Quit", "asks first when there are unsaved changes"),
}


class ModelCommands(Provider):
    """The main screen's provider. Only actions that apply right now are offered."""

    def _target(self, action: str) -> DOMNode:
        # The model's actions live on the screen; help and quit on the app.
        return self.screen if hasattr(self.screen, f"action_{action}") else self.app

    def _commands(self) -> list[tuple[str, str, Callable[[], Awaitable[object]]]]:
        keys_for = getattr(self.app, "keys_for", lambda action: "")
        out = []
        for action, (title, help_text) in COMMANDS.items():
            target = self._target(action)
            if target.check_action(action, ()):
                key = keys_for(action)
                out.append((title, f"{help_text}  ({key})" if key else help_text,
                            partial(self.app.run_action, action, target)))
        return out

    async def discover(self) -> Hits:
        for title, help_text, run in self._commands():
            yield DiscoveryHit(title, run, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, run in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), run, help=help_text)
