"""Tensor values read without torch equal torch's own, for every dtype and container."""

from __future__ import annotations

import warnings

import pytest
import safetensors.torch
import torch
from values_support import (
    ALL_DTYPES,
    LEGACY_DTYPES,
    ST_DTYPES,
    check,
    decoded,
    make,
    reference,
    same,
)

from tui.core.read.reader import open_model
from tui.core.values.source import ModelValues

SMALL_CHUNK = 40  # bytes: a 7x13 tensor spans many pieces, merged across


def _save_torch(sd: dict, path, legacy: bool = False) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save(sd, path, _use_new_zipfile_serialization=not legacy)


def _sharded(sd: dict, folder, kind: str) -> None:
    """Two shards and an index, as save_pretrained writes them."""
    import json

    folder.mkdir()
    names = list(sd)
    halves = [names[: len(names) // 2], names[len(names) // 2:]]
    ext = "safetensors" if kind == "safetensors" else "bin"
    weight_map = {}
    for i, part in enumerate(halves):
        shard = f"model-{i + 1:05d}-of-00002.{ext}"
        sub = {k: sd[k] for k in part}
        if kind == "safetensors":
            safetensors.torch.save_file(sub, str(folder / shard))
        else:
            _save_torch(sub, folder / shard)
        weight_map.update({k: shard for k in part})
    index = "model.safetensors.index.json" if kind == "safetensors" else "pytorch_model.bin.index.json"
    (folder / index).write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))


def _build(container: str, tmp_path):
    dtypes = {"zip": ALL_DTYPES, "legacy": LEGACY_DTYPES, "safetensors": ST_DTYPES,
              "sharded-safetensors": ST_DTYPES, "sharded-torch": ALL_DTYPES}[container]
    sd = {f"t.{d}": make(d, seed=i) for i, d in enumerate(dtypes)}
    if container in ("zip", "legacy"):
        path = tmp_path / "m.pth"
        _save_torch(sd, path, legacy=container == "legacy")
    elif container == "safetensors":
        path = tmp_path / "m.safetensors"
        safetensors.torch.save_file(sd, str(path))
    else:
        path = tmp_path / "shards"
        _sharded(sd, path, container.removeprefix("sharded-"))
    return sd, str(path)


@pytest.mark.parametrize("container", ["zip", "legacy", "safetensors", "sharded-safetensors",
                                       "sharded-torch"])
def test_every_dtype_matches_torch(container, tmp_path):
    sd, path = _build(container, tmp_path)
    mf = open_model(path)
    assert mf.container == container or container in ("zip", "legacy")
    assert {t.name for t in mf.tensors} == set(sd)
    for chunk in (SMALL_CHUNK, 8 << 20):
        with ModelValues(mf, chunk_bytes=chunk) as mv:
            for t in mf.tensors:
                ref = sd[t.name]
                check(mv.stats(t), reference(ref), f"{t.name} chunk={chunk}")
                assert same(mv.reader.read(mv.view(t)), decoded(ref)), t.name
            if chunk == SMALL_CHUNK:
                assert mv.reader.max_piece <= SMALL_CHUNK


def test_planted_nan_inf_are_counted(tmp_path):
    sd = {d: make(d) for d in ALL_DTYPES}
    _save_torch(sd, tmp_path / "m.pth")
    mf = open_model(str(tmp_path / "m.pth"))
    with ModelValues(mf) as mv:
        got = {t.name: mv.stats(t) for t in mf.tensors}
    assert got["float32"].nan == 1 and got["float32"].inf == 2
    assert got["bfloat16"].nan == 1 and got["bfloat16"].inf == 2
    assert got["float8_e5m2"].inf == 2  # e5m2 has infinities
    assert got["float8_e4m3fn"].inf == 0 and got["float8_e4m3fn"].nan == 1  # no inf (saturates)
    assert got["complex64"].nan == 1 and got["complex64"].inf == 1
    assert all(got[d].finite for d in ("int64", "uint8", "bool"))


def test_finite_only_counts_without_moments(tmp_path):
    sd = {"a": make("float32"), "b": make("bfloat16"), "i": make("int32")}
    _save_torch(sd, tmp_path / "m.pth")
    mf = open_model(str(tmp_path / "m.pth"))
    with ModelValues(mf) as mv:
        s = {t.name: mv.stats(t, finite_only=True) for t in mf.tensors}
        assert mv.reader.bytes_read == sd["a"].nbytes + sd["b"].nbytes  # ints are never read
    assert (s["a"].nan, s["a"].inf, s["a"].mean) == (1, 2, None)
    assert (s["b"].nan, s["b"].inf) == (1, 2)
    assert s["i"].finite


def test_int64_extremes_are_exact(tmp_path):
    t = torch.tensor([2**62 + 1, -(2**62) - 3, 7, 0], dtype=torch.int64)
    u = torch.tensor([2**64 - 1, 5], dtype=torch.uint64)
    _save_torch({"t": t, "u": u}, tmp_path / "m.pth")
    mf = open_model(str(tmp_path / "m.pth"))
    with ModelValues(mf, chunk_bytes=16) as mv:
        s = {x.name: mv.stats(x) for x in mf.tensors}
    assert (s["t"].min, s["t"].max, s["t"].absmax) == (-(2**62) - 3, 2**62 + 1, 2**62 + 3)
    assert (s["u"].min, s["u"].max) == (5, 2**64 - 1)


def test_quantized_as_integers_with_scale_and_zero_point(tmp_path):
    x = torch.randn(5, 6, generator=torch.Generator().manual_seed(1))
    sd = {"pt": torch.quantize_per_tensor(x, 0.1, 3, torch.qint8),
          "pu": torch.quantize_per_tensor(x, 0.05, 128, torch.quint8),
          "pi": torch.quantize_per_tensor(x, 0.01, -2, torch.qint32),
          "pc": torch.quantize_per_channel(x, torch.rand(5) + 0.01, torch.arange(5) - 2, 0, torch.qint8)}
    _save_torch(sd, tmp_path / "q.pth")
    mf = open_model(str(tmp_path / "q.pth"))
    by = {t.name: t for t in mf.tensors}
    assert (by["pt"].qparams.scale, by["pt"].qparams.zero_point) == (pytest.approx(0.1), 3)
    assert by["pc"].qparams.axis == 0
    with ModelValues(mf, chunk_bytes=SMALL_CHUNK) as mv:
        for name, ref in sd.items():
            check(mv.stats(by[name]), reference(ref), name)
            assert same(mv.reader.read(mv.view(by[name])), decoded(ref))
        scales = mv.reader.read(mv.view(by["pc"].qparams.scales))
    assert scales.tolist() == sd["pc"].q_per_channel_scales().tolist()


def test_torchscript_values(tmp_path):
    m = torch.jit.script(torch.nn.Linear(6, 4))
    path = tmp_path / "s.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(m, str(path))
        mf = open_model(str(path))
    with ModelValues(mf) as mv:
        for t in mf.tensors:
            ref = dict(m.named_parameters())[t.name].detach()
            check(mv.stats(t), reference(ref), t.name)
            assert same(mv.reader.read(mv.view(t)), ref.numpy())


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "int16", "uint16"])
def test_two_byte_dtypes_counted_per_bit_pattern(dtype, tmp_path):
    from tui.core.values.stats import TABLE_MIN, by_table

    sd = {"big": make(dtype, (256, 160), seed=5), "view": make(dtype, (256, 160), seed=6)[:, ::2]}
    assert sd["big"].numel() >= TABLE_MIN
    _save_torch(sd, tmp_path / "m.pth")
    mf = open_model(str(tmp_path / "m.pth"))
    with ModelValues(mf, chunk_bytes=4096) as mv:
        for t in mf.tensors:
            view = mv.view(t)
            assert by_table(view) == (t.name == "big")
            check(mv.stats(t), reference(sd[t.name]), t.name)
