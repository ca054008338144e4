"""Headless `modeltree FILE --freeze/--unfreeze --save OUT`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import torch

from tui.cli import main
from tui.core.read.reader import open_model

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_models" / "entire_model.pth"


def test_article_command(tmp_path):
    """The issue's example, run as a user would."""
    exe = shutil.which("modeltree") or str(Path(sys.executable).with_name("modeltree"))
    proc = subprocess.run(
        [exe, str(SAMPLE), "--freeze", "*", "--unfreeze", "layer2.*", "--unfreeze", "fc.*",
         "--save", "out.pth", "--format", "full"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("\n") == 1 and "out.pth" in proc.stdout and "full model" in proc.stdout
    model = torch.load(tmp_path / "out.pth", weights_only=False)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {n for n, _ in model.named_parameters() if n.startswith(("layer2.", "fc."))}


def test_patterns_apply_in_order(tmp_path, capsys):
    out = tmp_path / "w.pth"
    assert main([str(SAMPLE), "--unfreeze", "*", "--freeze", "layer1", "--save", str(out),
                 "--format", "state_dict", "--freeze-plan"]) == 0
    line = capsys.readouterr().out
    assert "freeze plan" in line and "state_dict" in line
    mf = open_model(str(out))
    frozen = {t.name.split(".")[0] for t in mf.parameters()
              if t.requires_grad is False and t.can_require_grad}
    assert frozen == {"layer1"}


def test_default_format_and_errors(tmp_path, capsys):
    out = tmp_path / "m.pth"
    assert main([str(SAMPLE), "--save", str(out)]) == 0
    assert "full model" in capsys.readouterr().out
    assert out.read_bytes() == SAMPLE.read_bytes()  # nothing changed: an exact copy
    for argv, message in (
        ([str(SAMPLE), "--save", str(out)], "already exists"),
        ([str(SAMPLE), "--freeze", "nope.*", "--save", str(tmp_path / "x.pth")], "matches no parameter"),
        ([str(tmp_path / "m.pth"), "--save", str(tmp_path / "no" / "x.pth")], "does not exist"),
    ):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pth"]
