"""Helpers for the app tests (Pilot and snapshots): files built once, waiting for the load."""

from __future__ import annotations

import asyncio
import functools
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

from textual.pilot import Pilot

from tui.app import ModelTreeApp
from tui.screens.main_screen import MainScreen
from tui.widgets.module_tree import ModuleTree

SIZE = (80, 24)  # the smallest terminal the app is made for: behaviour is checked there


def sync(test: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    """Run an async test with asyncio (no pytest async plugin is a dependency)."""

    @functools.wraps(test)
    def run(*args, **kwargs) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


async def loaded(pilot: Pilot) -> MainScreen:
    """Wait until the file is read and its result is on the main screen; return that screen."""
    app = pilot.app
    assert isinstance(app, ModelTreeApp)
    await app.workers.wait_for_complete()
    screen = app.main
    for _ in range(200):  # the result is a message away from the finished worker
        if screen.mf is not None or screen.load_error is not None:
            break
        await pilot.pause()
    await pilot.pause()
    assert screen.mf is not None or screen.load_error is not None, "the file was never read"
    return screen


def copy_to(src: Path, folder: Path, name: str | None = None) -> Path:
    """A private copy, so what the app writes beside it stays in the test's folder."""
    folder.mkdir(parents=True, exist_ok=True)
    dst = folder / (name or src.name)
    shutil.copyfile(src, dst)
    return dst


def tree_lines(screen: MainScreen) -> list[str]:
    """The module tree as shown: one plain label per visible line."""
    tree = screen.query_one(ModuleTree)
    return [str(tree.label_of(line.node)) for line in tree._tree_lines]


async def settled(pilot: Pilot) -> None:
    """Until the workers started by the last keys (the filter's walk) are done and their
    results shown."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.pause()
