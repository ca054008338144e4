"""Write the README's screenshots: docs/screenshot-main.svg, -save.svg and -values.svg.

    python docs/make_screenshots.py

Runs the app headless on sample_models/entire_model.pth (the article's CNN: everything
frozen but fc), unfreezes `layer2`, and saves what the screen shows, then the save dialog,
then the tensor view of `fc.weight`.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from tui.app import ModelTreeApp

ROOT = Path(__file__).resolve().parents[1]
SIZE = (110, 32)


async def shoot() -> list[str]:
    os.chdir(ROOT)  # relative paths on screen, whoever runs it
    app = ModelTreeApp("sample_models/entire_model.pth")
    written = []
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        while app.main.mf is None:  # the read starts after the first frame
            await pilot.pause()
        await pilot.pause()
        await pilot.press("down", "down", "down", "space", "right", "down")
        await pilot.pause()
        written.append(app.save_screenshot("screenshot-main.svg", path=str(ROOT / "docs")))
        await pilot.press("s")
        await pilot.pause()
        app.screen.query_one("#path").cursor_blink = False
        await pilot.pause()
        written.append(app.save_screenshot("screenshot-save.svg", path=str(ROOT / "docs")))
    written.append(await shoot_values())
    return written


async def shoot_values() -> str:
    """The tensor view of fc.weight: statistics, histogram, values."""
    app = ModelTreeApp("sample_models/entire_model.pth")
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        while app.main.mf is None:  # the read starts after the first frame
            await pilot.pause()
        await pilot.pause()
        screen = app.screen
        await pilot.press("tab")
        names = [r.tensor.name for r in screen.table.rows]
        screen.table.move_cursor(row=names.index("fc.weight"), animate=False)
        await pilot.press("enter")
        for _ in range(4):  # statistics, then the grid's formatter and blocks
            await app.workers.wait_for_complete()
            await pilot.pause()
        return app.save_screenshot("screenshot-values.svg", path=str(ROOT / "docs"))


if __name__ == "__main__":
    for path in asyncio.run(shoot()):
        print(path)
