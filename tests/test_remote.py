"""Remote files over a real loopback HTTP server (with and without Range) and moto's S3:
opening fetches a bounded number of bytes whatever the file's size, a second open comes
from the cache, saving streams to a local file, errors are one line and write nothing."""

from __future__ import annotations

import json
import sys

import pytest
import torch
from dcp_support import bits, save_one_process
from remote_support import HTTPFiles, S3Server, free_port

from tui.cli import main
from tui.core.read import remote
from tui.core.read.reader import open_model

pytest.importorskip("fsspec")
pytest.importorskip("aiohttp")

OPEN_BOUND = 1_200_000  # bytes any open may fetch (a few 256 KB blocks), whatever the size


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("www")
    g = torch.Generator().manual_seed(0)
    # ≥ 100 MB of zeros: written once, cheap; the model around it is small.
    torch.save({"big": torch.zeros(26_000_000), "fc.weight": torch.randn(4, 3, generator=g)},
               root / "big.pth")
    torch.save({"a": torch.randn(1000, 2000, generator=g), "b": torch.arange(5),
                "c": torch.randn(500_000, generator=g)}, root / "legacy.pth",
               _use_new_zipfile_serialization=False)
    save_file({"x.weight": torch.randn(1000, 1000, generator=g), "x.bias": torch.ones(3)},
              str(root / "m.safetensors"))
    shards = root / "sharded"
    shards.mkdir()
    wm = {}
    for i, names in enumerate((["l0.weight", "l0.bias"], ["l1.weight"])):
        fname = f"model-0000{i + 1}-of-00002.safetensors"
        save_file({n: torch.randn(700, 700, generator=g) for n in names}, str(shards / fname))
        wm.update({n: fname for n in names})
    (shards / "model.safetensors.index.json").write_text(json.dumps({"weight_map": wm}))
    tshards = root / "sharded_torch"
    tshards.mkdir()
    twm = {}
    for i, names in enumerate((["h0.weight"], ["h1.weight", "h1.bias"])):
        fname = f"pytorch_model-0000{i + 1}-of-00002.bin"
        torch.save({n: torch.randn(600, 600, generator=g) for n in names}, tshards / fname)
        twm.update({n: fname for n in names})
    (tshards / "pytorch_model.bin.index.json").write_text(json.dumps({"weight_map": twm}))
    save_one_process(root / "dcp")
    return root


@pytest.fixture(scope="module")
def http(files):
    with HTTPFiles(files) as s:
        yield s


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELTREE_CACHE_DIR", str(tmp_path / "cache"))
    remote.forget()
    yield tmp_path / "cache"
    remote.set_progress(None)
    remote.forget()


def _json(target: str, capsys) -> dict:
    assert main([target, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def _tensors(doc: dict) -> list:
    return [(p["name"], p["shape"], p["dtype"]) for p in doc["parameters"] + doc["buffers"]]


@pytest.mark.parametrize("rel", ["big.pth", "legacy.pth", "m.safetensors", "sharded/",
                                 "sharded/model.safetensors.index.json", "sharded_torch/", "dcp/"])
def test_http_open_is_bounded_and_cached(rel, files, http, capsys):
    http.counter.reset()
    doc = _json(http.url(rel), capsys)
    assert _tensors(doc) == _tensors(_json(str(files / rel), capsys))
    ranged = [r for r in http.counter.gets() if r[2]]
    listing = [r for r in http.counter.gets() if not r[2]]
    assert all(r[1].endswith("/") for r in listing)  # a folder's listing, never a whole file
    assert len(ranged) <= 8 and http.counter.body_bytes <= OPEN_BOUND, http.counter.requests
    if rel == "big.pth":
        assert (files / rel).stat().st_size >= 100_000_000
    # Second open: the object's info is asked again; every byte range comes from the cache.
    http.counter.reset()
    assert _tensors(_json(http.url(rel), capsys)) == _tensors(doc)
    assert [r for r in http.counter.gets() if r[2]] == []


def test_clear_cache(http, cache, capsys):
    assert main([http.url("m.safetensors"), "--print"]) == 0
    assert any(cache.rglob("*"))
    assert main(["--clear-cache"]) == 0
    assert not (cache / "ranges").exists() and "cleared" in capsys.readouterr().err
    http.counter.reset()
    assert main([http.url("m.safetensors"), "--print"]) == 0
    assert [r for r in http.counter.gets() if r[2]]


def test_cache_is_pruned_to_its_limit(http, cache, monkeypatch):
    assert main([http.url("big.pth"), "--print"]) == 0
    assert main([http.url("m.safetensors"), "--print"]) == 0
    files = [p for p in cache.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) > 300_000
    remote.prune(limit=300_000)
    left = [p for p in cache.rglob("*") if p.is_file()]
    assert 0 < len(left) < len(files) and sum(p.stat().st_size for p in left) <= 300_000


@pytest.mark.parametrize("rel,fmt", [("legacy.pth", "state_dict"), ("m.safetensors", "safetensors"),
                                     ("sharded/", "state_dict"), ("dcp/", "safetensors")])
def test_http_save_streams_exact(rel, fmt, files, http, tmp_path, capsys):
    out_remote, out_local = tmp_path / f"r.{fmt}", tmp_path / f"l.{fmt}"
    assert main([http.url(rel), "--save", str(out_remote), "--format", fmt]) == 0
    assert main([str(files / rel), "--save", str(out_local), "--format", fmt]) == 0
    if fmt == "safetensors":
        from safetensors.torch import load_file

        a, b = load_file(out_remote), load_file(out_local)
    else:
        a, b = torch.load(out_remote, weights_only=True), torch.load(out_local, weights_only=True)
    assert list(a) == list(b)
    assert all(torch.equal(bits(a[k]), bits(b[k])) for k in a)


def _fails(argv: list[str], capsys, out=None) -> str:
    assert main(argv + (["--save", str(out)] if out else ["--print"])) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("modeltree: ")
    if out is not None:
        assert not out.exists() and not list(out.parent.glob(".*tmp*"))
    return err[0]


def test_http_errors(http, tmp_path, capsys):
    out = tmp_path / "o.pth"
    assert "not found (404)" in _fails([http.url("missing.pth")], capsys, out)
    assert "access denied (403)" in _fails([http.url("forbidden/x.pth")], capsys, out)
    assert main([http.url("missing.pth")]) == 1  # the app is not started on a 404
    assert capsys.readouterr().err.strip().endswith("not found (404)")
    line = _fails([f"http://127.0.0.1:{free_port()}/x.pth"], capsys, out)
    assert "network error" in line
    secret = http.url("missing.pth").replace("http://", "http://me:hunter2@") + "?X-Sig=abc"
    line = _fails([secret], capsys)
    assert "hunter2" not in line and "abc" not in line and "not found" in line
    doc = _json(http.url("m.safetensors").replace("http://", "http://me:hunter2@") + "?X-Sig=abc",
                capsys)
    assert "hunter2" not in json.dumps(doc) and "X-Sig" not in json.dumps(doc)


@pytest.mark.parametrize("rel", ["big.pth", "m.safetensors"])
def test_server_without_range_is_refused(rel, files, tmp_path, capsys):
    out = tmp_path / "o.pth"
    size = (files / rel).stat().st_size
    before = remote.Stats.fetched
    with HTTPFiles(files, ranges=False) as s:
        line = _fails([s.url(rel)], capsys, out)
        assert "does not support range requests" in line
        assert remote.Stats.fetched == before  # refused, not downloaded
        if size > 50_000_000:  # what sat in socket buffers when the client hung up
            assert s.counter.body_bytes < size // 10


def test_without_the_extra(http, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "fsspec", None)  # as if not installed
    assert "pip install 'modeltree[remote]'" in _fails([http.url("m.safetensors")], capsys)


def test_progress_is_reported(http, capsys):
    import io

    out = io.StringIO()
    remote.set_progress(remote.StderrProgress(out, after=0))
    open_model(http.url("big.pth"))
    assert "modeltree: fetched" in out.getvalue() and "requests from http://127.0.0.1" in out.getvalue()


# -- S3 (moto on 127.0.0.1) ----------------------------------------------------------
@pytest.fixture(scope="module")
def s3(files):
    pytest.importorskip("s3fs")
    pytest.importorskip("moto.server")
    with S3Server() as server:
        server.upload("models", files, prefix="")
        yield server


@pytest.fixture
def s3_env(s3, monkeypatch):
    for k, v in s3.env().items():
        monkeypatch.setenv(k, v)
    import fsspec

    fsspec.config.conf.pop("s3", None)
    fsspec.filesystem("s3").clear_instance_cache()
    yield s3


@pytest.mark.parametrize("rel", ["legacy.pth", "m.safetensors", "sharded", "dcp"])
def test_s3_open_bounded_and_cached(rel, files, s3_env, capsys):
    before = remote.Stats.fetched, remote.Stats.requests
    doc = _json(f"s3://models/{rel}", capsys)
    assert _tensors(doc) == _tensors(_json(str(files / rel), capsys))
    fetched = remote.Stats.fetched - before[0]
    assert 0 < fetched <= OPEN_BOUND and remote.Stats.requests - before[1] <= 8
    before = remote.Stats.fetched
    assert _tensors(_json(f"s3://models/{rel}", capsys)) == _tensors(doc)
    assert remote.Stats.fetched == before  # second open: all from the cache


def test_s3_dcp_save_and_missing(files, s3_env, tmp_path, capsys):
    out = tmp_path / "o.pth"
    assert main(["s3://models/dcp", "--save", str(out)]) == 0
    ref = tmp_path / "ref.pth"
    assert main([str(files / "dcp"), "--save", str(ref)]) == 0
    a, b = torch.load(out, weights_only=True), torch.load(ref, weights_only=True)
    assert list(a) == list(b) and all(torch.equal(bits(a[k]), bits(b[k])) for k in a)
    assert "not found (404)" in _fails(["s3://models/nope.pth"], capsys, tmp_path / "x.pth")
