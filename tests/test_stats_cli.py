"""`modeltree FILE --stats [GLOB ...]`, `--json` stats and `--check-finite` exit codes."""

from __future__ import annotations

import contextlib
import io
import json
import warnings

import pytest
import torch
from values_support import check, make, reference

from tui.cli import main
from tui.core.values.stats import Stats


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as e:  # argparse usage errors
            code = int(e.code)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def files(tmp_path):
    clean = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    bad = {"enc.weight": make("float32", (5, 3), plant=False), "enc.bias": make("bfloat16", (9,)),
           "dec.weight": make("float16", (4, 4), plant=False), "steps": torch.tensor(3)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save(clean, tmp_path / "clean.pth")
        torch.save(bad, tmp_path / "bad.pth")
        q = {"packed": torch.quantize_per_tensor(torch.randn(4, 6), 0.1, 0, torch.quint4x2)}
        torch.save(q, tmp_path / "packed.pth")
    return tmp_path, clean, bad


def test_stats_table_lists_matching_tensors(files):
    tmp, clean, _ = files
    code, out, _ = _run(str(tmp / "clean.pth"), "--stats")
    assert code == 0
    assert all(n in out for n in ("0.weight", "0.bias", "2.weight", "2.bias", "absmax", "zeros"))
    code, out, _ = _run(str(tmp / "clean.pth"), "--stats", "2.*")
    assert code == 0 and "2.weight" in out and "0.weight" not in out
    code, out, _ = _run(str(tmp / "clean.pth"), "--stats", "0")  # a module name: its subtree
    assert "0.weight" in out and "0.bias" in out and "2.bias" not in out


def test_stats_json_adds_stats_to_each_tensor(files):
    tmp, clean, _ = files
    code, out, _ = _run(str(tmp / "clean.pth"), "--stats", "--json")
    assert code == 0
    doc = json.loads(out)
    params = dict(clean.named_parameters())
    assert len(doc["parameters"]) == 4
    for entry in doc["parameters"]:
        st = entry["stats"]
        assert set(st) == {"min", "max", "mean", "std", "absmax", "zeros", "nan", "inf", "hist"}
        assert len(st["hist"]["counts"]) == 32 and len(st["hist"]["edges"]) == 33
        s = Stats(entry["numel"], "float", st["min"], st["max"], st["mean"], st["std"], st["absmax"],
                  round(st["zeros"] * entry["numel"]), st["nan"], st["inf"], counts=st["hist"]["counts"])
        check(s, reference(params[entry["name"]].detach()), entry["name"])


def test_check_finite_exit_codes(files):
    tmp, _, _ = files
    code, out, _ = _run(str(tmp / "clean.pth"), "--check-finite")
    assert code == 0 and "all 4 tensors are finite" in out
    code, out, _ = _run(str(tmp / "bad.pth"), "--check-finite")
    assert code == 4
    assert "enc.bias: 1 NaN, 2 Inf" in out
    assert "enc.weight" not in out and "dec.weight" not in out
    code, out, _ = _run(str(tmp / "bad.pth"), "--check-finite", "--json")
    assert code == 4
    doc = json.loads(out)
    got = {e["name"]: e["stats"] for e in doc["parameters"]}
    assert (got["enc.bias"]["nan"], got["enc.bias"]["inf"]) == (1, 2)
    assert got["dec.weight"]["nan"] == 0


def test_check_finite_with_stats_prints_both(files):
    tmp, _, _ = files
    code, out, _ = _run(str(tmp / "bad.pth"), "--stats", "enc.*", "--check-finite")
    assert code == 4 and "histogram" in out and "1 of 2 tensors hold NaN or Inf" in out


def test_unreadable_tensors_are_skipped_and_said(files):
    tmp, _, _ = files
    code, out, _ = _run(str(tmp / "packed.pth"), "--stats")
    assert code == 0 and "skipped: quint4x2" in out
    code, out, _ = _run(str(tmp / "packed.pth"), "--check-finite")
    assert code == 0 and "1 without values skipped" in out
    code, out, _ = _run(str(tmp / "packed.pth"), "--stats", "--json")
    assert "quint4x2" in json.loads(out)["parameters"][0]["stats_skipped"]


def test_user_errors(files, tmp_path):
    tmp, _, _ = files
    code, _, err = _run(str(tmp / "clean.pth"), "--stats", "nope.*")
    assert code == 1 and err.startswith("modeltree: ") and "no tensor matches nope.*" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = _run(str(tmp / "clean.pth"), "--stats", "--save", str(tmp_path / "o.pth"))
    assert code == 2
    code, _, err = _run(str(tmp_path / "missing.pth"), "--check-finite")
    assert code == 1
    truncated = tmp_path / "cut.safetensors"
    import safetensors.torch

    safetensors.torch.save_file({"w": torch.ones(1000)}, str(truncated))
    data = truncated.read_bytes()
    truncated.write_bytes(data[:-8])  # header still says 4000 bytes
    code, _, err = _run(str(truncated), "--check-finite")
    assert code == 1 and "modeltree:" in err


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal_stderr(files, monkeypatch):
    import tui.headless.stats as hs

    tmp, _, _ = files
    monkeypatch.setattr(hs, "PROGRESS_MIN", 0)  # any work counts as long here
    err = _Tty()
    monkeypatch.setattr("sys.stderr", err)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main([str(tmp / "bad.pth"), "--stats"]) == 0
    assert "reading tensors" in err.getvalue()
    assert "reading tensors" not in out.getvalue() and "enc.weight" in out.getvalue()
    err2 = io.StringIO()  # not a terminal: no bar
    monkeypatch.setattr("sys.stderr", err2)
    with contextlib.redirect_stdout(io.StringIO()):
        assert main([str(tmp / "bad.pth"), "--stats"]) == 0
    assert err2.getvalue() == ""
