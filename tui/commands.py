"""Every app action in the command palette (ctrl+p), with the key that runs it."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

# action -> (title, help). Titles are what people type; the key is added to the help.
COMMANDS: dict[str, tuple[str, str]] = {
    "toggle": ("Freeze / unfreeze", "selected module subtree, or the tensor on the table row"),
    "freeze": ("Freeze subtree", "requires_grad=False for every parameter under the cursor"),
    "unfreeze": ("Unfreeze subtree", "requires_grad=True for every parameter under the cursor"),
    "freeze_others": ("Freeze all except this", "the article's 'freeze everything but fc'"),
    "undo": ("Undo", "undo the last freeze/unfreeze"),
    "redo": ("Redo", "redo what was undone"),
    "save": ("Save…", "write the model: full model, state_dict or safetensors"),
    "filter": ("Filter tree", "show modules whose name or class matches (substring or glob)"),
    "expand": ("Expand subtree", "open every module under the cursor"),
    "collapse": ("Collapse subtree", "close the module under the cursor and all below"),
    "values": ("Show values / modules", "a checkpoint's other entries (epoch, optimizer, …) and back"),
    "help": ("Help", "keys, marks and save formats"),
    "quit": ("Quit", "asks first when there are unsaved changes"),
}


class ModelCommands(Provider):
    """Only actions that apply right now are offered."""

    def _commands(self) -> list[tuple[str, str, str]]:
        app = self.app
        keys_for = getattr(app, "keys_for", lambda action: "")
        out = []
        for action, (title, help_text) in COMMANDS.items():
            if app.check_action(action, ()):
                key = keys_for(action)
                out.append((title, f"{help_text}  ({key})" if key else help_text, action))
        return out

    async def discover(self) -> Hits:
        for title, help_text, action in self._commands():
            yield DiscoveryHit(title, partial(self.app.run_action, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, action in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), partial(self.app.run_action, action),
                          help=help_text)
