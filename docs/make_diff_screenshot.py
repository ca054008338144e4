"""Write the README's diff-view screenshot: docs/screenshot-diff.svg.

    python docs/make_diff_screenshot.py

Compares sample_models/entire_model.pth with a fine-tuned copy of its weights saved from
a DataParallel wrapper (keys `module.…`) with a new 5-class head, after comparing values.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

import torch

from tui.diff_app import DiffApp

ROOT = Path(__file__).resolve().parents[1]
SIZE = (110, 32)


def finetuned(folder: Path) -> Path:
    sd = torch.load(ROOT / "sample_models/weights_only.pth", weights_only=True)
    g = torch.Generator().manual_seed(0)
    out = {}
    for k, v in sd.items():
        if k.startswith("layer2.") and v.is_floating_point():
            v = v + 1e-3 * torch.randn(v.shape, generator=g)
        if k.startswith("fc."):
            v = torch.randn((5, *v.shape[1:]), generator=g)
        out[f"module.{k}"] = v
    path = folder / "finetuned.pth"
    torch.save(out, path)
    return path


async def shoot(folder: Path) -> str:
    os.chdir(folder)
    (folder / "entire_model.pth").write_bytes((ROOT / "sample_models/entire_model.pth").read_bytes())
    b = finetuned(folder)
    app = DiffApp("entire_model.pth", b.name)
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.press("a", "x")
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("down", "down", "down", "down", "right", "up", "right", "down", "right",
                          "down")
        app.clear_notifications()
        await pilot.pause()
        return app.save_screenshot("screenshot-diff.svg", path=str(ROOT / "docs"))


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        print(asyncio.run(shoot(Path(tmp))))
