"""Values over a URL (loopback HTTP with Range) and a DCP folder (said unreadable)."""

from __future__ import annotations

import warnings

import pytest
import torch
from remote_support import HTTPFiles
from values_support import check, make, reference

from tui.core.read import remote
from tui.core.read.reader import open_model
from tui.core.values.source import ModelValues, Unreadable

pytest.importorskip("aiohttp")


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELTREE_CACHE_DIR", str(tmp_path / "cache"))
    remote.forget()
    yield
    remote.forget()


def test_values_over_http_match_torch(tmp_path):
    import safetensors.torch

    root = tmp_path / "www"
    root.mkdir()
    sd = {"w": make("float32", (300, 40), seed=1), "v": make("bfloat16", (50, 20), seed=2)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save(sd, root / "m.pth")
    safetensors.torch.save_file(sd, str(root / "m.safetensors"))
    with HTTPFiles(root) as http:
        for name in ("m.pth", "m.safetensors"):
            mf = open_model(http.url(name))
            with ModelValues(mf, chunk_bytes=4096) as mv:
                for t in mf.tensors:
                    check(mv.stats(t), reference(sd[t.name]), f"{name} {t.name}")
                    assert mv.reader.max_piece <= 4096


def test_dcp_values_are_said_unreadable(tmp_path):
    from dcp_support import save_one_process

    mf = open_model(str(save_one_process(tmp_path / "dcp")))
    with ModelValues(mf) as mv:
        assert mf.tensors
        for t in mf.tensors:
            with pytest.raises(Unreadable, match="DCP"):
                mv.view(t)
