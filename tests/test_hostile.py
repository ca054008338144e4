"""Hostile files: no payload ever runs, and every payload is named with its arguments.

The corpus (tests/hostile_files.py) hides `os.system('touch MARKER')` and friends in
every place a real file could: top level, a module's __dict__, a state_dict value, a
checkpoint's extra key, deep in lists/dicts, the legacy format, plain pickles, and
variants through subprocess, exec/eval/compile, __import__+getattr, runpy, shutil,
webbrowser, socket, functools.partial, operator.attrgetter and a nested torch.load.
Each file goes through --json, --print and --scan (in-process for speed, plus a few
real subprocesses), the app (Pilot) and saving; the marker must never appear.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from app_support import SIZE, loaded, sync
from hostile_files import (
    Hostile,
    benign_files,
    corpus,
    dumps,
    legacy_key_list_payload,
    system_payload,
    variants,
)

from tui.cli import main
from tui.core.errors import ModelFileError
from tui.core.read.reader import open_model
from tui.core.read.scan import classify_global
from tui.core.write.save import save

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_models"

PLACEMENTS = [
    "top_level_zip", "top_level_legacy", "top_level_plain_pickle", "top_level_protocol0",
    "module_attr_zip", "module_attr_legacy", "child_module_attr_zip", "state_dict_value_zip",
    "state_dict_value_legacy", "checkpoint_extra_zip", "checkpoint_extra_legacy",
    "nested_deep_zip", "nested_deep_legacy",
]
VARIANTS = [
    "posix_system_zip", "popen_zip", "popen_legacy", "check_output_zip", "exec_zip", "eval_zip",
    "exec_compile_zip", "exec_compile_legacy", "getattr_import_zip", "getattr_import_legacy",
    "import_zip", "runpy_zip", "runpy_legacy", "shutil_zip", "webbrowser_zip", "socket_zip",
    "partial_zip", "partial_legacy", "attrgetter_zip", "nested_load_zip",
    "exec_compile_in_state_dict",
]
NAMES = PLACEMENTS + VARIANTS
# Expected location of the payload in the object graph, per placement.
WHERE = {"module_attr_zip": "payload", "module_attr_legacy": "payload",
         "child_module_attr_zip": "fc2.config.post[0]", "state_dict_value_zip": "evil",
         "checkpoint_extra_zip": "config.callback", "top_level_zip": "(top level)"}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> tuple[dict[str, Hostile], Path]:
    d = tmp_path_factory.mktemp("hostile")
    marker = d / "MARKER"
    files = {h.name: h for h in corpus(d, marker)}
    assert sorted(files) == sorted(NAMES)
    return files, marker


@pytest.fixture(autouse=True)
def _no_marker(request):
    """Every test: whatever ran, no payload created its marker."""
    yield
    if "hostile" in request.fixturenames:
        _, marker = request.getfixturevalue("hostile")
        assert not marker.exists(), "a payload RAN"


def _danger(warnings: list[dict]) -> list[dict]:
    return [w for w in warnings if w["severity"] == "danger"]


def _named(h: Hostile, danger: list[dict]) -> None:
    """The payload's callable is reported, and its argument shows in a warning about it."""
    assert h.callable in {w["callable"] for w in danger}, danger
    about = [w for w in danger if w["callable"] == h.callable or h.callable in w["detail"]]
    assert any(h.argument in w["detail"] for w in about), about


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("name", NAMES)
def test_json_names_every_payload_and_runs_none(name, hostile, capsys):
    h = hostile[0][name]
    code, out, err = _run(capsys, "--json", str(h.path))
    assert (code, err) == (0, "")
    doc = json.loads(out)
    danger = _danger(doc["warnings"])
    _named(h, danger)
    if name in WHERE:
        assert WHERE[name] in {w["where"] for w in danger}


@pytest.mark.parametrize("name", NAMES)
def test_print_and_scan_name_every_payload(name, hostile, capsys):
    h = hostile[0][name]
    code, out, err = _run(capsys, "--print", str(h.path))
    assert (code, err) == (0, "")
    assert f"WARNING would run code: {h.callable}" in out
    assert h.argument in out.replace("\n", "")
    code, out, err = _run(capsys, "--scan", str(h.path))
    assert code == 3 and err == ""
    assert "SUSPICIOUS" in out and h.callable in out


def test_real_cli_processes_on_each_container(hostile):
    """The same through the installed entry point, one file per container kind."""
    files, marker = hostile
    for name in ("module_attr_zip", "checkpoint_extra_legacy", "top_level_plain_pickle",
                 "getattr_import_zip"):
        h = files[name]
        for flag, want in (("--json", 0), ("--print", 0), ("--scan", 3)):
            r = subprocess.run([sys.executable, "-m", "tui", flag, str(h.path)], cwd=ROOT,
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == want, (name, flag, r.stderr)
            assert "Traceback" not in r.stderr and h.callable in r.stdout
    out = marker.parent / "cli_saved.pth"
    cmd = [sys.executable, "-m", "tui", str(files["module_attr_zip"].path), "--freeze",
           "fc1.*", "--save", str(out), "--format", "full"]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
    # A full model would pass the payload on: refused unless asked for.
    assert r.returncode == 1 and not out.exists() and "--keep-code" in r.stderr, r.stderr
    r = subprocess.run([*cmd, "--keep-code"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and out.exists(), r.stderr
    assert not marker.exists()


def test_the_payloads_are_live(tmp_path):
    """Control: the same payload bytes DO run under plain pickle (in a child process), so a
    missing marker above means "not executed", not "payload broken"."""
    marker = tmp_path / "CANARY"
    for obj in (system_payload(marker), variants(marker, tmp_path)["exec"][0]):
        code = f"import pickle; pickle.loads({dumps(obj)!r})"
        subprocess.run([sys.executable, "-c", code], check=True, timeout=60, cwd=tmp_path)
        assert marker.exists()
        marker.unlink()


def test_legacy_key_list_payload_reported_and_never_run_on_save(tmp_path):
    """torch.load also unpickles the legacy storage-key list: a payload there is reported,
    and saving (which reads that list to find tensor bytes) refuses instead of running it."""
    marker = tmp_path / "MARKER"
    path = legacy_key_list_payload(tmp_path, marker)
    mf = open_model(str(path))
    assert [(w.severity, w.callable) for w in mf.warnings] == [("danger", "posix.system")]
    for fmt in ("state_dict", "safetensors"):
        with pytest.raises(ModelFileError, match="storage key list"):
            save(mf, str(tmp_path / f"out.{fmt}"), fmt=fmt)
        assert not (tmp_path / f"out.{fmt}").exists()
    assert not marker.exists()


@pytest.mark.parametrize("name", ["module_attr_zip", "module_attr_legacy", "child_module_attr_zip",
                                  "state_dict_value_zip", "state_dict_value_legacy",
                                  "checkpoint_extra_zip", "checkpoint_extra_legacy",
                                  "exec_compile_in_state_dict"])
def test_saving_a_hostile_file_runs_nothing(name, hostile, tmp_path):
    h = hostile[0][name]
    mf = open_model(str(h.path))
    if mf.root is None:  # a state_dict with a non-tensor entry reads as plain values
        with pytest.raises(ModelFileError, match="nothing to save"):
            save(mf, str(tmp_path / "x.pth"), fmt="state_dict")
        return
    fmts = ["full", "state_dict"] if mf.format == "full_model" else ["state_dict"]
    for fmt in fmts:
        out = tmp_path / f"saved_{fmt}.pth"
        if fmt == "full":
            with pytest.raises(ModelFileError, match="keep-code"):
                save(mf, str(out), fmt=fmt)
            assert not out.exists()
        save(mf, str(out), fmt=fmt, keep_code=fmt == "full")
        again = open_model(str(out))
        danger = [w.callable for w in again.warnings if w.severity == "danger"]
        # A full model is the pickle as stored (payload kept, still reported, still not
        # run); a state_dict holds tensors only.
        assert danger == ([h.callable] if fmt == "full" else [])
    if mf.format == "checkpoint":
        out = tmp_path / "whole.pth"
        with pytest.raises(ModelFileError, match="keep-code"):
            save(mf, str(out), fmt="state_dict", whole_checkpoint=True)
        save(mf, str(out), fmt="state_dict", whole_checkpoint=True, keep_code=True)
        assert h.callable in {w.callable for w in open_model(str(out)).warnings}


@pytest.mark.parametrize("name", ["module_attr_zip", "top_level_legacy", "partial_zip"])
@sync
async def test_app_shows_danger_banner_and_runs_nothing(name, hostile):
    from tui.app import ModelTreeApp
    from tui.widgets.warning_banner import WarningBanner

    h = hostile[0][name]
    app = ModelTreeApp(str(h.path))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        banner = app.query_one(WarningBanner)
        assert banner.display and banner.has_class("-danger")
        text = str(banner.render())
        assert "DANGER" in text and h.callable in text
        await pilot.press("v")  # the values view walks the payload's stand-ins too
        await pilot.pause()
    assert not hostile[1].exists()


# -- no crying wolf ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def benign(tmp_path_factory) -> dict[str, Path]:
    return benign_files(tmp_path_factory.mktemp("benign"))


@pytest.mark.parametrize("name", ["lazy_with_hooks", "weight_norm_hooks", "plain_model",
                                  "plain_model_legacy", "state_dict", "checkpoint"])
def test_benign_files_give_no_danger(name, benign, capsys):
    code, out, _ = _run(capsys, "--json", str(benign[name]))
    assert code == 0 and _danger(json.loads(out)["warnings"]) == []
    assert _run(capsys, "--scan", str(benign[name]))[0] == 0


def test_lazy_module_really_pickles_getattr(benign):
    """The benign-getattr rule is exercised, not vacuous."""
    src = open_model(str(benign["lazy_with_hooks"])).source.torch
    assert "builtins.getattr" in src.read.globals


@pytest.mark.parametrize("sample", ["entire_model.pth", "weights_only.pth", "transformer.pth",
                                    "checkpoint.pth", "scripted.pt", "transformer.safetensors"])
def test_sample_models_are_clean(sample, capsys):
    code, out, _ = _run(capsys, "--scan", str(SAMPLES / sample))
    assert code == 0 and "clean" in out


# -- classification details ---------------------------------------------------------------
@pytest.mark.parametrize("module,name,kind", [
    ("posix", "system", "code"), ("nt", "system", "missing"), ("subprocess", "Popen", "code"),
    ("builtins", "exec", "code"), ("builtins", "__import__", "code"),
    ("builtins", "print", "code"), ("builtins", "map", "code"), ("runpy", "run_path", "code"),
    ("operator", "call", "code"), ("torch.serialization", "load", "code"),
    ("torch.hub", "load", "code"), ("torch.utils.cpp_extension", "load_inline", "code"),
    ("torch.fx.graph_module", "reduce_graph_module", "code"),
    ("torch.storage", "_load_from_bytes", "code"), ("torch", "os.system", "code"),
    ("builtins", "set", "safe"), ("collections", "OrderedDict", "safe"),
    ("torch.nn.modules.linear", "Linear", "code"), ("torch._utils", "_rebuild_tensor_v2", "safe"),
    ("pathlib", "PosixPath", "safe"), ("argparse", "Namespace", "safe"),
    ("__main__", "Net", "main"), ("surely_not_installed_pkg", "Model", "missing"),
])
def test_classify_global(module, name, kind):
    """What *calling* each global would be: an allowlist of data constructors, else code."""
    assert classify_global(module, name) == kind


def _warnings_of(tmp_path: Path, obj) -> list[tuple[str, str, str]]:
    import torch

    path = tmp_path / "g.pth"
    torch.save(obj, path)  # pickles Call objects by their __reduce__: nothing runs
    return [(w.severity, w.callable, w.detail) for w in open_model(str(path)).warnings]


def test_getattr_is_judged_by_how_it_is_used(tmp_path):
    import builtins

    from hostile_files import Call
    from torch import nn

    model = nn.Linear(2, 2)
    # getattr(<module>, 'forward'): how bound-method hooks pickle: fine if never called.
    assert _warnings_of(tmp_path, [model, Call(builtins.getattr, model, "forward")]) == []
    # ...but calling the bound method at load time would run code.
    called = _warnings_of(tmp_path, Call(Call(builtins.getattr, model, "forward"), 3))
    assert [w[:2] for w in called] == [("danger", "builtins.getattr")]
    assert "then call the result with (3)" in called[0][2]
    # dunder attributes and non-module targets are never benign.
    dunder = _warnings_of(tmp_path, Call(builtins.getattr, model, "__class__"))
    assert [w[:2] for w in dunder] == [("danger", "builtins.getattr")]
    plain = _warnings_of(tmp_path, Call(builtins.getattr, "text", "upper"))
    assert [w[:2] for w in plain] == [("danger", "builtins.getattr")]


def test_subprocess_is_reported_under_its_python3_name(tmp_path):
    """Protocol 2 pickles say `commands.Popen`; Python 3 would import subprocess.Popen."""
    data = dumps(variants(tmp_path / "M", tmp_path)["popen"][0])
    assert b"commands" in data
    assert {w[1] for w in _warnings_of(tmp_path, variants(tmp_path / "M", tmp_path)["popen"][0])} \
        == {"subprocess.Popen"}


def test_named_but_never_called_global_is_a_note(tmp_path):
    """A function kept as a value (an activation in hparams) is imported, not called."""
    warnings = _warnings_of(tmp_path, {"fn": os.system})
    assert [(w[0], w[1]) for w in warnings] == [("info", "posix")]
    assert "would import posix" in warnings[0][2]


def test_missing_class_is_unknown_class_not_danger(tmp_path, capsys):
    """A class that isn't installed would make torch.load fail, not run code: a note,
    and --scan stays clean (exit 0)."""
    from hostile_files import torch_zip

    data = b"\x80\x02cnot_installed_pkg.models\nMyNet\n)\x81}X\x01\x00\x00\x00aK\x01sb."
    path = torch_zip(tmp_path / "missing.pth", data)
    code, out, _ = _run(capsys, "--json", str(path))
    warnings = json.loads(out)["warnings"]
    assert [(w["severity"], w["callable"]) for w in warnings] == [
        ("unknown-class", "not_installed_pkg.models.MyNet")]
    assert _run(capsys, "--scan", str(path))[0] == 0
