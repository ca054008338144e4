"""The app on a URL and on a DCP folder: it opens, shows the tree, reports fetch progress."""

from __future__ import annotations

import pytest
import torch
from app_support import SIZE, loaded, sync, tree_lines
from dcp_support import save_one_process
from remote_support import HTTPFiles

from tui.app import ModelTreeApp
from tui.core.read import remote
from tui.widgets.info_bar import InfoBar

pytest.importorskip("fsspec")
pytest.importorskip("aiohttp")


@sync
async def test_app_opens_a_url_and_shows_fetch_progress(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELTREE_CACHE_DIR", str(tmp_path / "cache"))
    torch.save({"enc.weight": torch.zeros(600, 600), "enc.bias": torch.zeros(600)},
               tmp_path / "m.pth")
    seen: list[str] = []
    real = InfoBar.show

    def spy(self, path, mf, dirty=False, state=""):
        seen.append(state)
        return real(self, path, mf, dirty, state)

    monkeypatch.setattr(InfoBar, "show", spy)
    with HTTPFiles(tmp_path) as server:
        app = ModelTreeApp(server.url("m.pth"))
        try:
            async with app.run_test(size=SIZE) as pilot:
                screen = await loaded(pilot)
                assert screen.mf is not None and screen.mf.container == "zip"
                assert tree_lines(screen)[0].startswith("? (root)")
        finally:
            remote.set_progress(None)
            remote.forget()
    assert any(s.startswith("reading… fetched") for s in seen), seen


@sync
async def test_app_opens_a_dcp_folder(tmp_path):
    folder = save_one_process(tmp_path / "ckpt")
    app = ModelTreeApp(str(folder))
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        assert screen.mf.container == "dcp"
        assert [t.name for t in screen.mf.tensors] == ["fc.weight", "fc.bias", "norm.weight", "big"]
