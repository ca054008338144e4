"""Third-party models: transformers objects with tokenizers inside, and classes
from a package that is not installed where the file is opened."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tui.core.read.reader import open_model
from tui.core.report import to_json

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")


def test_transformers_model_with_tokenizer(tmp_path):
    import torch

    torch.manual_seed(0)
    cfg = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=100, n_positions=64,
                                  bos_token_id=0, eos_token_id=0)
    model = transformers.GPT2LMHeadModel(cfg)
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel({"a": 0, "[UNK]": 1}, unk_token="[UNK]"))
    model.my_tokenizer = tok
    model.transformer.h[0].requires_grad_(False)
    path = tmp_path / "gpt2.pth"
    torch.save(model, path)

    doc = to_json(open_model(str(path)))
    assert [[m["name"], m["type"]] for m in doc["modules"]] == [
        [n, f"{type(m).__module__}.{type(m).__qualname__}"] for n, m in model.named_modules()]
    assert [[p["name"], p["shape"], p["requires_grad"]] for p in doc["parameters"]] == [
        [n, list(p.shape), p.requires_grad] for n, p in model.named_parameters()]
    # lm_head.weight is tied to transformer.wte.weight: one tensor, two names.
    wte = next(p for p in doc["parameters"] if p["name"] == "transformer.wte.weight")
    assert "lm_head.weight" in wte["aliases"]
    values = {c["key"]: c["summary"] for c in doc["values"]["children"]}
    assert "tokenizers.Tokenizer" in values["my_tokenizer"]
    assert "GPT2Config" in values["config"]
    assert not [w for w in doc["warnings"] if w["severity"] == "danger"]


def test_class_from_package_not_installed_here(tmp_path):
    pkg = tmp_path / "pkgs" / "privatenet"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent("""
        import torch.nn as nn
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.body = nn.Linear(3, 4)
                self.head = nn.Linear(4, 2)
    """))
    out = tmp_path / "net.pth"
    subprocess.run([sys.executable, "-c", "import torch, privatenet; "
                    f"torch.save(privatenet.Net(), {str(out)!r})"],
                   check=True, env={"PYTHONPATH": str(tmp_path / "pkgs"), "PATH": "/usr/bin:/bin"})
    mf = open_model(str(out))
    assert mf.root.type == "privatenet.Net"
    assert [c.key for c in mf.root.children] == ["body", "head"]
    kinds = {(w.severity, w.callable) for w in mf.warnings}
    assert kinds == {("unknown-class", "privatenet.Net")}
