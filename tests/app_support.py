"""Helpers for the app tests (Pilot and snapshots): files built once, waiting for the load."""

from __future__ import annotations

import asyncio
import functools
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

from textual.pilot import Pilot
from textual.worker import WorkerFailed

from tui.app import ModelTreeApp

SIZE = (80, 24)  # the smallest terminal the app is made for: behaviour is checked there


def sync(test: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    """Run an async test with asyncio (no pytest async plugin is a dependency)."""

    @functools.wraps(test)
    def run(*args, **kwargs) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


async def loaded(pilot: Pilot) -> ModelTreeApp:
    """Wait until the file is read (worker done) and its result is on screen."""
    app = pilot.app
    try:
        await app.workers.wait_for_complete()
    except WorkerFailed:  # a file that can't be read: the app shows it in a dialog
        pass
    await pilot.pause()
    assert isinstance(app, ModelTreeApp)
    return app


def copy_to(src: Path, folder: Path, name: str | None = None) -> Path:
    """A private copy, so what the app writes beside it stays in the test's folder."""
    folder.mkdir(parents=True, exist_ok=True)
    dst = folder / (name or src.name)
    shutil.copyfile(src, dst)
    return dst


def tree_lines(app: ModelTreeApp) -> list[str]:
    """The tree as shown: one plain label per visible line."""
    tree = app.mtree
    return [str(line.node.label) for line in tree._tree_lines]
