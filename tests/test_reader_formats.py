"""--json matches what torch itself reports, for every format the reader handles.

Files are built with torch in the test (tests/torch_models.py); the reader
never sees torch objects, only the bytes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch_models as tm

from tui.core.errors import ModelFileError
from tui.core.read.reader import open_model
from tui.core.report import to_json

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Every safe builder's output, built once for this module."""
    base = tmp_path_factory.mktemp("formats")
    cache: dict[str, tm.Built] = {}

    def get(name: str) -> tm.Built:
        if name not in cache:
            cache[name] = tm.SAFE_BUILDERS[name](base / name)
        return cache[name]

    return get


def facts(path: Path, key: str | None = None) -> dict:
    return to_json(open_model(str(path), key=key))


def _json_params(doc: dict) -> list[list]:
    return [[p["name"], p["shape"], p["dtype"], p["numel"], p["requires_grad"]] for p in doc["parameters"]]


def _expected_params(exp: dict) -> list[list]:
    return [list(p) for p in exp["parameters"]]


def _check_module(doc: dict, exp: dict) -> None:
    assert [[m["name"], m["type"]] for m in doc["modules"]] == exp["modules"]
    assert _json_params(doc) == _expected_params(exp)
    assert [[b["name"], b["shape"], b["dtype"], b["numel"]] for b in doc["buffers"]] == exp["buffers"]
    # Tied parameters: every extra name from named_parameters(remove_duplicate=False) is an alias.
    all_names = [p[0] for p in exp["parameters_all"]]
    assert sorted(all_names) == sorted(
        n for p in doc["parameters"] for n in [p["name"], *p["aliases"]])


MODULE_CASES = ["article_full_model", "tied_weights", "batchnorm_nonpersistent", "data_parallel",
                "none_entries", "parameter_containers", "root_parameters", "lazy", "dtypes",
                "view_buffers", "legacy", "cuda_saved", "dynamic_quantized", "static_quantized"]


@pytest.mark.parametrize("case", MODULE_CASES)
def test_full_model_json_matches_torch(built, case):
    b = built(case)
    doc = facts(b.path)
    assert doc["format"] == "full_model"
    _check_module(doc, tm.expected_facts(b.obj))
    assert [w for w in doc["warnings"] if w["severity"] == "danger"] == []


def test_model_class_from_another_process_main(built):
    b = built("main_class")
    doc = facts(b.path)
    _check_module(doc, b.expected)
    assert doc["modules"][0]["type"] == "__main__.Net"
    kinds = {(w["severity"], w["callable"]) for w in doc["warnings"]}
    assert ("unknown-class", "__main__.Net") in kinds


def test_tied_weights_counted_once(built):
    b = built("tied_weights")
    doc = facts(b.path)
    total = sum(p.numel() for p in b.obj.parameters())  # parameters() dedups like named_parameters
    assert doc["totals"]["parameters"] == total
    assert any(p["aliases"] for p in doc["parameters"])


def test_cuda_saved_reports_device(built):
    doc = facts(built("cuda_saved").path)
    assert {p["device"] for p in doc["parameters"]} == {"cuda:0"}


def test_non_persistent_buffers_marked(built):
    b = built("batchnorm_nonpersistent")
    doc = facts(b.path)
    keys = set(b.obj.state_dict().keys())
    for buf in doc["buffers"]:
        assert buf["persistent"] == (buf["name"] in keys)


def test_lazy_parameters_have_no_shape(built):
    doc = facts(built("lazy").path)
    lazy = [p for p in doc["parameters"] if p["shape"] is None]
    assert lazy and all(p["numel"] is None and "uninitialized" in p["note"] for p in lazy)


STATE_DICT_CASES = ["article_state_dict", "dtypes_state_dict", "data_parallel_state_dict"]


@pytest.mark.parametrize("case", STATE_DICT_CASES)
def test_state_dict_json_matches_torch(built, case):
    b = built(case)
    doc = facts(b.path)
    assert doc["format"] == "state_dict"
    exp = tm.expected_facts(b.obj)
    tensors = doc["parameters"] + doc["buffers"]
    names = [n for p in tensors for n in [p["name"], *p["aliases"]]]
    assert sorted(names) == sorted(exp["state_dict_keys"])
    by_name = {n: p for p in tensors for n in [p["name"], *p["aliases"]]}
    for key, shape, dtype in exp["state_dict"]:
        assert by_name[key]["shape"] == shape and by_name[key]["dtype"] == dtype
        floating = dtype.startswith(("float", "bfloat", "complex"))
        # Without architecture: torch.nn buffer names and integer/bool tensors are buffers
        # (marked inferred); the rest can't be told apart ("unknown"), nor their flags.
        buffer = key.rsplit(".", 1)[-1] in ("running_mean", "running_var", "num_batches_tracked") \
            or not floating
        assert by_name[key]["kind"] == ("buffer" if buffer else "unknown")
        assert by_name[key].get("inferred", False) is buffer
        assert by_name[key]["requires_grad"] is (False if buffer else None)
    assert doc["requires_grad_stored"] is False


def test_state_dict_tree_rebuilt_from_dotted_names(built):
    mf = open_model(str(built("article_state_dict").path))
    assert [c.key for c in mf.root.children] == ["sequential", "layer1", "layer2", "fc"]
    assert all(n.type is None for n in mf.root.walk())


def test_training_checkpoint_picks_model_and_keeps_values(built):
    b = built("training_checkpoint")
    mf = open_model(str(b.path))
    assert mf.format == "checkpoint" and mf.model_key == "model_state_dict"
    keys = [c.key for c in mf.values.children]
    assert {"epoch", "optimizer_state_dict", "loss"} <= set(keys)
    epoch = next(c for c in mf.values.children if c.key == "epoch")
    assert epoch.summary == repr(b.obj["epoch"])
    exp = list(b.obj["model_state_dict"].keys())
    assert sorted(t for p in mf.tensors for t in p.names) == sorted(exp)


def test_optimizer_state_is_not_offered_as_a_model(built):
    mf = open_model(str(built("training_checkpoint").path))
    assert mf.model_keys == ["model_state_dict"]
    assert open_model(str(built("lightning_ckpt").path)).model_keys == ["state_dict"]


def test_checkpoint_with_full_module_and_key_choice(built):
    b = built("model_in_dict")
    doc = facts(b.path)
    assert doc["format"] == "checkpoint" and doc["model_key"] == "model"
    _check_module(doc, tm.expected_facts(b.obj["model"]))


def test_lightning_checkpoint(built):
    b = built("lightning_ckpt")
    mf = open_model(str(b.path))
    assert mf.model_key == "state_dict"
    names = sorted(n for t in mf.tensors for n in t.names)
    assert names == sorted(b.obj["state_dict"].keys())
    assert "hyper_parameters" in [c.key for c in mf.values.children]


def test_key_option_selects_and_rejects(built):
    path = built("training_checkpoint").path
    assert open_model(str(path), key="model_state_dict").model_key == "model_state_dict"
    with pytest.raises(ModelFileError, match="no model under key"):
        open_model(str(path), key="nope")


def test_torchscript(built):
    b = built("torchscript")
    doc = facts(b.path)
    assert doc["format"] == "torchscript"
    exp = tm.expected_facts(torch.jit.load(str(b.path)))
    # Class names as the user wrote them: __torch__. and ___torch_mangle_N. dropped.
    from tui.core.read.torchscript import demangle

    exp["modules"] = [[n, demangle(t)] for n, t in exp["modules"]]
    _check_module(doc, exp)


def test_safetensors_header_only(built):
    b = built("safetensors")
    doc = facts(b.path)
    assert doc["format"] == "safetensors"
    exp = tm.expected_facts(b.obj)
    # The file holds each tied tensor once (as safetensors requires): every name is a saved key.
    tensors = doc["parameters"] + doc["buffers"]
    assert sorted(p["name"] for p in tensors) == sorted(exp["state_dict_keys"])
    by = {p["name"]: p for p in tensors}
    for key, shape, dtype in exp["state_dict"]:
        assert by[key]["shape"] == shape and by[key]["dtype"] == dtype


@pytest.mark.parametrize("case", ["sharded_safetensors", "sharded_torch"])
def test_sharded_checkpoints_merge(built, case):
    b = built(case)
    exp = tm.expected_facts(b.obj)
    index = next(p for p in b.files if str(p).endswith(".index.json"))
    for target in (b.path, index):
        doc = facts(target)
        names = sorted(n for p in doc["parameters"] + doc["buffers"] for n in [p["name"], *p["aliases"]])
        assert names == sorted(exp["state_dict_keys"])


@pytest.mark.parametrize("case", ["lone_tensor", "tensor_list", "plain_dict"])
def test_other_values_shown_as_value_tree(built, case):
    b = built(case)
    mf = open_model(str(b.path))
    assert mf.format == "value" and mf.root is None
    assert mf.values.summary
    doc = to_json(mf)
    assert doc["modules"] == [] and doc["parameters"] == []


def test_sample_model_print_shows_article_flags():
    out = subprocess.run([sys.executable, "-m", "tui", str(ROOT / "sample_models/entire_model.pth"),
                          "--print"], capture_output=True, text=True, check=True).stdout
    rows = {}
    for ln in out.splitlines():
        for name in ("sequential", "layer1", "layer2", "fc"):
            if f" ({name}): " in ln:
                rows[name] = ln
    assert set(rows) == {"sequential", "layer1", "layer2", "fc"}, out
    assert "trainable" in rows["fc"]
    for name in ("sequential", "layer1", "layer2"):
        assert "frozen" in rows[name]
    assert "Trainable params: 5,770" in out


def test_json_cli_is_one_document_and_exit_codes(tmp_path):
    sample = ROOT / "sample_models/entire_model.pth"
    out = subprocess.run([sys.executable, "-m", "tui", str(sample), "--json"],
                         capture_output=True, text=True, check=True).stdout
    doc = json.loads(out)
    assert doc["modules"][0] == {"name": "", "type": "sample_models.models.ConvNet", "extra_repr": "",
                                 "attributes": {}}
    missing = subprocess.run([sys.executable, "-m", "tui", str(tmp_path / "nope.pth"), "--json"],
                             capture_output=True, text=True)
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1 and "nope.pth" in missing.stderr
    usage = subprocess.run([sys.executable, "-m", "tui"], capture_output=True, text=True)
    assert usage.returncode == 2
