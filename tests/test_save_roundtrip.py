"""Freeze/unfreeze by glob → save in each format → load with torch → check everything.

Source files are built with torch in the test (tests/torch_models.py); only files
built here are loaded with weights_only=False.
"""

from __future__ import annotations

import json

import pytest
import torch
import torch_models as tm
from safetensors import safe_open
from safetensors.torch import load_file
from save_support import (
    aligned_entries,
    assert_state_equal,
    edit_and_save,
    expected_flags,
    same_bits,
)

from tui.core.errors import ModelFileError
from tui.core.read.reader import open_model

CASES = {
    "article": (tm.build_article_full_model, [("*", False), ("layer2.*", True), ("fc.*", True)]),
    "tied": (tm.build_tied_weights, [("*", False), ("head.*", True)]),
    "batchnorm": (tm.build_batchnorm_nonpersistent, [("bn.*", False), ("conv.bias", False)]),
    "dtypes": (tm.build_dtypes, [("*", False), ("p_bf16", True), ("p_fp16", True)]),
    "cuda": (tm.build_cuda_saved, [("sequential.*", True), ("fc.*", False)]),
    "legacy": (tm.build_legacy, [("*", False), ("layer1.*", True)]),
    "views": (tm.build_view_buffers, []),
    "params": (tm.build_parameter_containers, [("plist.*", True), ("pdict.alpha", False)]),
}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("src")
    return {name: build(root / name) for name, (build, _) in CASES.items()}


def _reference(path):
    return torch.load(path, weights_only=False, map_location="cpu")  # a file built in this test


@pytest.mark.parametrize("case", list(CASES))
def test_full_model(case, built, tmp_path):
    src, ops = built[case].path, CASES[case][1]
    ref = _reference(src)
    result, _ = edit_and_save(src, tmp_path / "out.pth", "full", ops)
    assert result.format == "full"
    got = torch.load(result.path, weights_only=False, map_location="cpu")
    assert type(got) is type(ref)
    assert [(n, type(m)) for n, m in got.named_modules()] == [(n, type(m)) for n, m in ref.named_modules()]
    assert_state_equal(got.state_dict(), ref.state_dict())
    for (n, b), (_, rb) in zip(got.named_buffers(), ref.named_buffers(), strict=True):
        assert same_bits(b, rb), n  # non-persistent buffers too
    want = expected_flags(ref, ops)
    assert {n: p.requires_grad for n, p in got.named_parameters(remove_duplicate=False)} == want
    if case == "tied":
        assert got.head.weight is got.embed.weight
    if case != "legacy":  # a legacy source is written back in the legacy layout
        assert aligned_entries(result.path)
        mapped = torch.load(result.path, weights_only=False, map_location="cpu", mmap=True)
        assert_state_equal(mapped.state_dict(), ref.state_dict())


@pytest.mark.parametrize("case", list(CASES))
def test_state_dict(case, built, tmp_path):
    src, ops = built[case].path, CASES[case][1]
    ref = _reference(src)
    result, _ = edit_and_save(src, tmp_path / "weights.pth", "state_dict", ops, freeze_plan=True)
    sd = torch.load(result.path, weights_only=True, map_location="cpu")
    assert_state_equal(sd, ref.state_dict())
    assert not any(t.requires_grad for t in sd.values())
    assert aligned_entries(result.path)
    # The freeze plan brings the flags back when the weights are opened again.
    assert result.plan_path == str(tmp_path / "weights.freeze.json")
    mf = open_model(result.path)
    assert mf.freeze_plan == result.plan_path
    flags = {n: t.requires_grad for t in mf.tensors for n in t.names}
    for name, value in expected_flags(ref, ops).items():
        assert flags[name] is value, name
    if case == "tied":
        assert sd["head.weight"].untyped_storage().data_ptr() == sd["embed.weight"].untyped_storage().data_ptr()
    if case == "views":  # views of one storage stay views, offsets and strides kept
        ptr = sd["base"].untyped_storage().data_ptr()
        assert all(sd[k].untyped_storage().data_ptr() == ptr for k in ("base_t", "row", "col"))
        assert sd["base_t"].stride() == ref.base_t.stride()
        assert sd["col"].storage_offset() == ref.col.storage_offset()
    if case == "batchnorm":
        assert "scratch" not in sd


@pytest.mark.parametrize("case", list(CASES))
def test_safetensors(case, built, tmp_path):
    src, ops = built[case].path, CASES[case][1]
    ref = _reference(src)
    if case == "dtypes":  # a complex128 buffer: the format has no such dtype
        with pytest.raises(ModelFileError, match="complex128"):
            edit_and_save(src, tmp_path / "model.safetensors", "safetensors", ops)
        assert list(tmp_path.iterdir()) == []
        return
    result, _ = edit_and_save(src, tmp_path / "model.safetensors", "safetensors", ops)
    with safe_open(result.path, framework="pt") as f:
        meta = f.metadata()
    aliases = json.loads(meta.get("modeltree.aliases", "{}"))
    assert meta["format"] == "pt" and meta["source"] == src.name and "modeltree.version" in meta
    got = load_file(result.path)
    want = ref.state_dict()
    assert set(got) == set(want) - set(aliases)
    for k in want:
        assert same_bits(got[aliases.get(k, k)], want[k]), k
    if case == "tied":
        assert aliases == {"head.weight": "embed.weight"}


def test_cuda_location_kept(built, tmp_path):
    """The state_dict keeps the device it was saved on, like torch.save on that device."""
    result, _ = edit_and_save(built["cuda"].path, tmp_path / "w.pth", "state_dict", [])
    with pytest.raises(RuntimeError, match="CUDA"):
        torch.load(result.path, weights_only=True)
    assert torch.load(result.path, weights_only=True, map_location="cpu")["fc.bias"].device.type == "cpu"


def test_lazy_model(tmp_path):
    built = tm.build_lazy(tmp_path)
    result, _ = edit_and_save(built.path, tmp_path / "out.pth", "full", [("*", False)])
    got = torch.load(result.path, weights_only=False)
    assert isinstance(got.lazy.weight, torch.nn.parameter.UninitializedParameter)
    assert not got.lazy.weight.requires_grad and not got.fc.weight.requires_grad
    with pytest.raises(ModelFileError, match="uninitialized"):
        edit_and_save(built.path, tmp_path / "w.pth", "state_dict", [])
