"""Trust by construction (issue 10): an allowlist scan that misses none of the peers'
payloads and flags none of the benign files; TorchScript read without torch; every
tensor kind listed and written exactly or refused; save targets; folders; no terminal."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch_builders_trust as tb
from peer_payloads import corpus

from tui.cli import main
from tui.core.errors import ModelFileError
from tui.core.read.reader import open_model
from tui.core.write.save import save

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_models"


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def payloads(tmp_path_factory) -> tuple[dict[str, Path], Path]:
    d = tmp_path_factory.mktemp("payloads")
    marker = d / "MARKER"
    return corpus(d, marker), marker


def test_every_peer_payload_is_flagged_and_none_runs(payloads, capsys):
    files, marker = payloads
    missed = []
    for name, path in files.items():
        code, out, err = _run(capsys, "--scan", str(path))
        if code != 3 or "Traceback" in err:
            missed.append((name, code, err))
        code, out, err = _run(capsys, "--json", str(path))
        assert code in (0, 1) and "Traceback" not in err, (name, err)
        if code == 1:
            assert len(err.splitlines()) == 1
    assert missed == [], missed
    assert len(files) > 100
    assert not marker.exists()


def test_full_save_of_every_suspicious_file_needs_keep_code(tmp_path):
    """Every gadget as an attribute of a real full model: refused without --keep-code;
    with it, the new file scans exactly as the source did."""
    from peer_payloads import GADGETS, Payload, retarget
    from torch import nn

    marker = tmp_path / "MARKER"
    model = nn.Sequential(nn.Linear(2, 2))
    model.extra = Payload(f"touch {marker}")
    base = tmp_path / "base.pth"
    torch.save(model, base)
    for i, (module, name) in enumerate(GADGETS):
        src = retarget(base, tmp_path / f"m{i}.pth", module, name)
        mf = open_model(str(src))
        assert mf.format == "full_model" and any(w.severity == "danger" for w in mf.warnings)
        out = tmp_path / f"o{i}.pth"
        with pytest.raises(ModelFileError, match="keep-code"):
            save(mf, str(out), fmt="full")
        assert not out.exists()
        save(mf, str(out), fmt="full", keep_code=True)
        assert [w.line() for w in open_model(str(out)).warnings] == [w.line() for w in mf.warnings]
    assert not marker.exists()


def test_the_payloads_are_live(payloads, tmp_path):
    """Control: the zip payload's pickle does run under plain pickle (in a child)."""
    from peer_payloads import call

    marker = tmp_path / "LIVE"
    subprocess.run([sys.executable, "-c", f"import pickle; pickle.loads({call('os', 'system', f'touch {marker}')!r})"],
                   check=True, timeout=60)
    assert marker.exists()


@pytest.fixture(scope="module")
def benign(tmp_path_factory) -> dict[str, Path]:
    return tb.benign(tmp_path_factory.mktemp("benign"))


def test_benign_files_are_clean(benign, capsys):
    flagged = []
    for name, path in benign.items():
        code, out, _ = _run(capsys, "--scan", str(path))
        if code != 0:
            flagged.append((name, out))
    assert flagged == []
    assert len(benign) >= 12


@pytest.mark.parametrize("sample", ["entire_model.pth", "weights_only.pth", "transformer.pth",
                                    "checkpoint.pth", "scripted.pt", "transformer.safetensors"])
def test_samples_are_clean(sample, capsys):
    assert _run(capsys, "--scan", str(SAMPLES / sample))[0] == 0


# -- TorchScript ---------------------------------------------------------------------------
def test_torchscript_setstate_is_flagged_and_never_runs(tmp_path, capsys):
    marker = tmp_path / "TS_MARKER"
    path = tb.setstate_archive(tmp_path / "evil.pt", marker)
    code, out, _ = _run(capsys, "--scan", str(path))
    assert code == 3 and "__setstate__" in out
    assert _run(capsys, "--json", str(path))[0] == 0
    assert _run(capsys, "--print", str(path))[0] == 0
    with pytest.raises(ModelFileError, match="TorchScript saving"):
        save(open_model(str(path)), str(tmp_path / "again.pt"), fmt="full", keep_code=True)
    assert not marker.exists()
    # control: torch.jit.load really runs it (in a child process)
    subprocess.run([sys.executable, "-c", f"import torch; torch.jit.load({str(path)!r})"],
                   capture_output=True, timeout=120)  # it may fail after the file is made
    assert marker.exists()


def test_reading_torchscript_never_imports_torch():
    code = ("import sys; from tui.core.read.reader import open_model; "
            f"open_model({str(SAMPLES / 'scripted.pt')!r}); assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)


def test_torchscript_saved_twice_is_identical(tmp_path):
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    save(open_model(str(SAMPLES / "scripted.pt")), str(a), fmt="full")
    save(open_model(str(a)), str(b), fmt="full")
    assert a.read_bytes() == b.read_bytes()


# -- tensor kinds --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", list(tb.tensor_kinds()))
def test_every_tensor_kind_listed_and_written_exactly_or_refused(kind, tmp_path, capsys):
    src = tmp_path / "m.pth"
    model = tb.kind_model(kind)
    torch.save(model, src)
    code, out, _ = _run(capsys, "--json", str(src))
    names = [t["name"] for t in json.loads(out)["buffers"]]
    assert code == 0 and "extra" in names
    for fmt in ("full", "state_dict", "safetensors"):
        out_path = tmp_path / f"o_{fmt}.{'safetensors' if fmt == 'safetensors' else 'pth'}"
        code, _, err = _run(capsys, str(src), "--save", str(out_path), "--format", fmt)
        if code == 1:
            assert "extra" in err and len(err.splitlines()) == 1 and not out_path.exists()
            continue
        assert code == 0, err
        if fmt == "full":
            got = torch.load(out_path, weights_only=False).extra
            assert _same(got, model.extra), kind
        else:
            assert fmt == "full", f"{kind} written as {fmt}"


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.layout != b.layout or a.dtype != b.dtype or a.device != b.device:
        return False
    if a.device.type == "meta":
        return a.shape == b.shape
    if a.is_nested:
        return all(torch.equal(x, y) for x, y in zip(a.unbind(), b.unbind(), strict=True))
    if a.is_quantized:
        return torch.equal(a.int_repr(), b.int_repr()) and a.qscheme() == b.qscheme()
    if a.layout != torch.strided:
        return torch.equal(a.to_dense(), b.to_dense())
    return torch.equal(a, b)


# -- save targets, folders, terminals -------------------------------------------------------
def test_safetensors_target_means_safetensors(tmp_path, capsys):
    out = tmp_path / "w.safetensors"
    code, _, err = _run(capsys, str(SAMPLES / "entire_model.pth"), "--save", str(out))
    assert code == 0, err
    assert open_model(str(out)).format == "safetensors"
    with pytest.raises(SystemExit) as e:
        main([str(SAMPLES / "entire_model.pth"), "--save", str(tmp_path / "x.safetensors"),
              "--format", "full"])
    assert e.value.code == 2


def test_folder_of_models_is_not_one_model(tmp_path, capsys):
    code, _, err = _run(capsys, "--print", str(SAMPLES))
    assert code == 1 and "6 model files" in err and len(err.splitlines()) == 1
    one = tmp_path / "hf"
    one.mkdir()
    (one / "model.safetensors").write_bytes((SAMPLES / "transformer.safetensors").read_bytes())
    (one / "config.json").write_text("{}")
    code, out, _ = _run(capsys, "--json", str(one))
    doc = json.loads(out)
    assert code == 0 and doc["format"] == "safetensors"
    assert doc["totals"]["file_size"] == (one / "model.safetensors").stat().st_size


def test_no_terminal(tmp_path):
    path = str(SAMPLES / "entire_model.pth")
    piped = subprocess.run([sys.executable, "-m", "tui", path], cwd=ROOT, capture_output=True,
                           text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert piped.returncode == 0 and "Total params" in piped.stdout
    code = ("import sys, pty, os; from tui.cli import main; "
            "sys.stdout.isatty = lambda: True; sys.exit(main([sys.argv[1]]))")
    r = subprocess.run([sys.executable, "-c", code, path], cwd=ROOT, capture_output=True,
                       text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1 and "terminal" in r.stderr


def test_transformers_and_sentence_transformers_style_models_are_clean(tmp_path, capsys):
    """Full models of real third-party classes (configs, tokenizers inside): NEWOBJ + BUILD
    only, so no danger — just a note naming the packages torch.load would import."""
    transformers = pytest.importorskip("transformers")
    tokenizers = pytest.importorskip("tokenizers")
    from torch import nn

    cfg = transformers.BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                  intermediate_size=32, vocab_size=50, max_position_embeddings=32)

    class Pooling(nn.Module):  # sentence-transformers' layout: [Transformer, Pooling, Normalize]
        def __init__(self) -> None:
            super().__init__()
            self.config_keys = ["pooling_mode_mean_tokens"]
            self.pooling_mode_mean_tokens = True

    encoder = transformers.BertModel(cfg)
    encoder.tokenizer = tokenizers.Tokenizer(
        tokenizers.models.WordLevel({"a": 0, "[UNK]": 1}, unk_token="[UNK]"))
    model = nn.Sequential(encoder, Pooling())
    import types

    name = "sentence_transformers.models.Pooling"  # where the package defines it
    Pooling.__module__, Pooling.__qualname__ = name, "Pooling"
    parts = name.split(".")
    fakes = {".".join(parts[:i]): types.ModuleType(".".join(parts[:i])) for i in (1, 2, 3)}
    fakes[name].Pooling = Pooling
    sys.modules.update(fakes)
    path = tmp_path / "st.pth"
    try:
        torch.save(model, path)
    finally:
        for k in fakes:
            del sys.modules[k]
    code, out, _ = _run(capsys, "--scan", str(path))
    assert code == 0, out
    assert "info: transformers" in out


def test_numpy_and_wrapper_tensors_listed_and_refused_by_weights_writers(tmp_path, capsys):
    """Kinds torch can save but a CPU machine can't make directly, pickled by hand."""
    import numpy as np
    from hostile_files import Call

    from_numpy = Call(torch._utils._rebuild_device_tensor_from_numpy,
                      np.arange(6, dtype=np.float32).reshape(2, 3), torch.float32, "xla:0", False)
    wrapper = Call(torch._utils._rebuild_wrapper_subclass, torch.Tensor, torch.float32, (2, 2),
                   (2, 1), 0, torch.strided, torch.device("meta"), False)
    src = tmp_path / "kinds.pth"
    torch.save({"a": torch.ones(2), "np": from_numpy, "wrap": wrapper}, src)
    code, out, _ = _run(capsys, "--json", str(src))
    params = {t["name"]: t for t in json.loads(out)["parameters"]}
    assert code == 0 and params["np"]["shape"] == [2, 3] and params["np"]["layout"] == "numpy"
    assert params["wrap"]["shape"] == [2, 2] and "without storage" in params["wrap"]["note"]
    for fmt, ext in (("state_dict", "pth"), ("safetensors", "safetensors")):
        out_path = tmp_path / f"o.{ext}"
        code, _, err = _run(capsys, str(src), "--save", str(out_path), "--format", fmt)
        assert code == 1 and ("np" in err or "wrap" in err) and not out_path.exists(), err


def test_legacy_tar_is_read_like_torch_reads_it(tmp_path, capsys):
    src = tmp_path / "old.tar"
    sd = tb.legacy_tar_state_dict(src)
    loaded = torch.load(src, weights_only=False)  # control: torch reads the hand-made file
    assert all(torch.equal(loaded[k], v) for k, v in sd.items())
    code, out, _ = _run(capsys, "--json", str(src))
    doc = json.loads(out)
    assert code == 0 and doc["container"] == "legacy-tar"
    assert {p["name"]: p["shape"] for p in doc["parameters"] + doc["buffers"]} == {
        k: list(v.shape) for k, v in sd.items()}
    out_path = tmp_path / "new.pth"
    code, _, err = _run(capsys, str(src), "--save", str(out_path), "--format", "state_dict")
    assert code == 0, err
    again = torch.load(out_path, weights_only=True)
    assert list(again) == list(sd) and all(torch.equal(again[k], v) for k, v in sd.items())


class TaggedTensor(torch.Tensor):
    """A tensor subclass (pickled with _rebuild_from_type_v2)."""


def test_tensor_subclass_kept_by_full_refused_by_weights_formats(tmp_path, capsys):
    from torch import nn

    model = nn.Linear(2, 2)
    model.register_buffer("tag", torch.arange(3.0).as_subclass(TaggedTensor))
    src = tmp_path / "sub.pth"
    torch.save(model, src)
    code, out, _ = _run(capsys, "--json", str(src))
    tag = next(b for b in json.loads(out)["buffers"] if b["name"] == "tag")
    assert code == 0 and "TaggedTensor" in tag["note"]
    code, _, err = _run(capsys, str(src), "--save", str(tmp_path / "o.pth"), "--format", "state_dict")
    assert code == 1 and "tag" in err and "subclass" in err
    code, _, err = _run(capsys, str(src), "--save", str(tmp_path / "f.pth"), "--format", "full")
    assert code == 0, err
    got = torch.load(tmp_path / "f.pth", weights_only=False).tag
    assert type(got) is TaggedTensor and torch.equal(got, model.tag)
