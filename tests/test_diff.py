"""`modeltree A B`: the diff equals what torch's load_state_dict reports; the proposed
rename, applied and saved, loads with strict=True; --values figures match torch's."""

from __future__ import annotations

import json

import pytest
import torch
import torch_models as tm
from torch import nn
from torch_builders_modules import SmallMLP

from tui.cli import main
from tui.core.diff import compare
from tui.core.diff_values import fill_values
from tui.core.edit import Editor
from tui.core.read.reader import open_model
from tui.core.surgery import Surgery
from tui.core.write.save import save


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("diff")
    torch.manual_seed(0)
    out = {"dp_sd": tm.build_data_parallel_state_dict(root).path,
           "lightning": tm.build_lightning_ckpt(root).path,
           "article": tm.build_article_full_model(root).path}
    torch.manual_seed(0)
    bare = SmallMLP()
    torch.save(bare, root / "bare.pth")
    torch.save(bare.state_dict(), root / "bare_sd.pth")
    head = SmallMLP()
    head.net[2] = nn.Linear(16, 7)
    head.extra = nn.Linear(2, 2)
    torch.save(head, root / "head.pth")
    out.update(bare=root / "bare.pth", bare_sd=root / "bare_sd.pth", head=root / "head.pth")
    # BatchNorm: with _metadata version 2 a missing num_batches_tracked is reported; an
    # old version (or none) lets torch fill it in.
    sd = torch.load(out["article"], weights_only=False).state_dict()
    for k in [k for k in sd if k.endswith("num_batches_tracked")]:
        del sd[k]
    torch.save(sd, root / "nobt.pth")
    sd._metadata["layer1.1"]["version"] = 1
    torch.save(sd, root / "nobt_v1.pth")
    out.update(nobt=root / "nobt.pth", nobt_v1=root / "nobt_v1.pth")
    # Unexpected keys at every level: the root, a module's own names, a parameter-less module.
    extra = bare.state_dict()
    extra["stray"] = torch.ones(1)
    extra["net.0.extra"] = torch.ones(2)
    extra["net.1.x.y"] = torch.ones(1)
    extra.move_to_end("net.0.weight")
    torch.save(extra, root / "extra.pth")
    out["extra"] = root / "extra.pth"
    return out


def _torch_report(model: nn.Module, sd: dict) -> tuple[list, list, list[str]]:
    """torch's own answer: (missing, unexpected) from strict=False, and its error lines."""
    try:
        res = model.load_state_dict(sd, strict=False)
        missing, unexpected, lines = res.missing_keys, res.unexpected_keys, []
    except RuntimeError as e:
        lines = str(e).split("\n\t")[1:]
        missing = unexpected = None
    try:
        model.load_state_dict(sd, strict=True)
        strict = ""
    except RuntimeError as e:
        strict = str(e)
    return missing, unexpected, lines, strict


CASES = {
    # name: (model file, weights file, weights key to compare with torch)
    "data_parallel": ("bare", "dp_sd"),
    "lightning": ("article", "lightning"),
    "changed_head": ("head", "bare_sd"),
    "batchnorm_v2": ("article", "nobt"),
    "batchnorm_v1": ("article", "nobt_v1"),
    "extra_keys": ("bare", "extra"),
}


def _weights(files, which):
    obj = torch.load(files[which], weights_only=True)
    return obj["state_dict"] if which == "lightning" else obj


@pytest.mark.parametrize("case", list(CASES))
def test_report_equals_torch(files, case):
    model_name, weights_name = CASES[case]
    model = torch.load(files[model_name], weights_only=False)
    sd = _weights(files, weights_name)
    missing, unexpected, lines, strict = _torch_report(model, sd)
    d = compare(open_model(str(files[model_name])), open_model(str(files[weights_name])))
    r = d.load
    assert r is not None and r.model_side == "a"
    assert r.message() == strict  # torch's words, whole
    if missing is not None:
        assert (r.missing, r.unexpected) == (missing, unexpected)
    mismatch_lines = [ln for ln in r.error_lines() if ln.startswith("size mismatch")]
    torch_mismatch = [ln for ln in (lines or strict.split("\n\t")[1:]) if ln.startswith("size mismatch")]
    assert mismatch_lines == torch_mismatch
    if case == "changed_head":
        assert [k for k, _, _ in r.size_mismatch] == ["net.2.weight", "net.2.bias"]
        assert r.missing == ["extra.weight", "extra.bias"] and r.proposal is None
    # The same diff with the sides swapped: the weights are A now.
    swapped = compare(open_model(str(files[weights_name])), open_model(str(files[model_name]))).load
    assert swapped.model_side == "b" and swapped.message() == strict


@pytest.mark.parametrize("case", ["data_parallel", "lightning"])
def test_proposed_rename_loads_strict(files, case, tmp_path):
    model_name, weights_name = CASES[case]
    d = compare(open_model(str(files[model_name])), open_model(str(files[weights_name])))
    fix = d.load.proposal
    assert fix is not None and fix.renames == ((("module." if case == "data_parallel" else "model."), ""),)
    # The diff with the fix applied to the weights side: nothing left to report.
    after = compare(d.a, d.b, surgery_b=fix)
    assert after.load.ok and after.structures_match
    mf = open_model(str(files[weights_name]))
    ed = Editor(mf)
    ed.apply_surgery(fix)
    save(mf, str(tmp_path / "fixed.pth"), "state_dict", surgery=ed.surgery)
    model = torch.load(files[model_name], weights_only=False)
    model.load_state_dict(torch.load(tmp_path / "fixed.pth", weights_only=True), strict=True)


def test_values_match_torch(tmp_path):
    g = torch.Generator().manual_seed(5)
    a = {"w32": torch.randn(300, 70, generator=g), "w16": torch.randn(999, generator=g).half(),
         "wbf": torch.randn(64, 3, generator=g).bfloat16(), "same": torch.randn(10, generator=g),
         "ints": torch.arange(12).reshape(3, 4), "zero": torch.zeros(4)}
    b = {k: v.clone() for k, v in a.items()}
    b["w32"] += 1e-3 * torch.randn(300, 70, generator=g)
    b["w16"] = (b["w16"].float() * 1.01).half()
    b["wbf"] = (b["wbf"].float() + 0.5).bfloat16()
    b["ints"][1, 1] = 99
    b["zero"][0] = 1.0
    b["t"] = a["w32"].t()  # a strided view on one side only
    a["t"] = a["w32"].t().contiguous()
    torch.save(a, tmp_path / "a.pth")
    torch.save(b, tmp_path / "b.pth")
    d = compare(open_model(str(tmp_path / "a.pth")), open_model(str(tmp_path / "b.pth")))
    fill_values(d)
    by = {e.name: e for e in d.entries}
    for k in a:
        x, y = a[k].double(), b[k].double()
        want_max = (x - y).abs().max().item()
        na, nd = torch.linalg.norm(x).item(), torch.linalg.norm(x - y).item()
        want_rel = nd / na if na else (float("inf") if nd else 0.0)
        e = by[k]
        assert e.bitwise_equal == torch.equal(a[k], b[k]), k
        assert e.max_abs == pytest.approx(want_max, rel=1e-6, abs=0), k
        assert e.rel_l2 == pytest.approx(want_rel, rel=1e-6, abs=0), k
    assert by["same"].status == "same" and by["t"].status == "same"
    assert by["w32"].status == "changed" and d.modules[""]["changed"] == 5


def test_headless_json_and_exit_codes(files, tmp_path, capsys):
    assert main([str(files["bare"]), str(files["bare_sd"]), "--diff"]) == 0
    capsys.readouterr()
    assert main([str(files["head"]), str(files["bare_sd"]), "--diff", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["only_a"] == ["extra.weight", "extra.bias"] and doc["only_b"] == []
    assert doc["mismatched"][0] == {"name": "net.2.weight", "shape_a": [7, 16], "shape_b": [4, 16],
                                    "dtype_a": "float32", "dtype_b": "float32"}
    assert doc["same"] == ["net.0.weight", "net.0.bias"]
    assert doc["load_state_dict"]["missing_keys"] == ["extra.weight", "extra.bias"]
    assert main([str(files["bare"]), str(files["dp_sd"]), "--diff"]) == 1
    text = capsys.readouterr().out
    assert "proposed fix: --rename 'module.='" in text and "Missing key(s) in state_dict" in text
    assert main([str(files["bare"]), str(files["bare_sd"]), "--diff", "--values", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert all(v["bitwise_equal"] for v in doc["values"]) and len(doc["values"]) == 4
    assert main([str(files["bare"]), str(tmp_path / "missing.pth"), "--diff"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_diff_reads_no_torch(files):
    """Comparing (values too) stays on the torch-free read path."""
    import subprocess
    import sys

    code = ("import sys\nfrom tui.core.read.reader import open_model\n"
            "from tui.core.diff import compare\nfrom tui.core.diff_values import fill_values\n"
            f"d = compare(open_model({str(files['bare'])!r}), open_model({str(files['dp_sd'])!r}))\n"
            "fill_values(d)\nassert d.load.proposal is not None\n"
            "print('torch' in sys.modules)")
    root = __import__("pathlib").Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=root)
    assert out.stdout.strip() == "False"


def test_safetensors_side(files, tmp_path, capsys):
    from safetensors.torch import save_file

    sd = torch.load(files["dp_sd"], weights_only=True)
    save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp_path / "w.safetensors"))
    assert main([str(files["dp_sd"]), str(tmp_path / "w.safetensors"), "--diff", "--values"]) == 0
    assert "bitwise equal: 4" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main([str(files["dp_sd"]), str(tmp_path / "w.safetensors"), "--print"])


def test_values_stream_in_chunks(files, monkeypatch):
    """Tiny chunks give the same figures (bitwise and numeric) as one chunk."""
    import tui.core.diff_values as dv

    a, b = open_model(str(files["article"])), open_model(str(files["lightning"]))
    whole = compare(a, b, surgery_b=Surgery(renames=(("model.", ""),)))
    fill_values(whole)
    monkeypatch.setattr(dv, "CHUNK_BYTES", 16)
    small = compare(a, b, surgery_b=Surgery(renames=(("model.", ""),)))
    fill_values(small)
    assert [(e.bitwise_equal, e.max_abs) for e in whole.entries] == \
        [(e.bitwise_equal, e.max_abs) for e in small.entries]
    for x, y in zip(whole.entries, small.entries, strict=True):
        assert x.rel_l2 == pytest.approx(y.rel_l2, rel=1e-12)
    assert any(e.status == "changed" for e in small.entries)


@pytest.mark.parametrize("chunk", [16, 1 << 20])
def test_values_nan_difference_is_reported_whatever_the_chunking(tmp_path, monkeypatch, chunk):
    """A NaN difference in an early chunk must not be hidden by a later finite maximum."""
    import tui.core.diff_values as dv

    a = torch.zeros(64)
    b = a.clone()
    b[0] = float("nan")
    b[-1] = 5.0
    torch.save({"w": a}, tmp_path / "a.pth")
    torch.save({"w": b}, tmp_path / "b.pth")
    monkeypatch.setattr(dv, "CHUNK_BYTES", chunk)
    d = compare(open_model(str(tmp_path / "a.pth")), open_model(str(tmp_path / "b.pth")))
    fill_values(d)
    (e,) = d.entries
    expected = (a - b).abs().max().item()  # torch: nan
    assert e.max_abs != e.max_abs and expected != expected


def test_dcp_folder_values_and_cast(tmp_path):
    """A DCP folder compared with the same tensors saved plainly; cast + rename out of it."""
    from dcp_support import save_one_process

    folder = save_one_process(tmp_path / "dcp")
    g = torch.Generator().manual_seed(1)  # the tensors save_one_process writes
    want = {"fc.weight": torch.randn(8, 4, generator=g), "fc.bias": torch.zeros(8),
            "norm.weight": torch.ones(4, dtype=torch.float16),
            "big": torch.randn(256, 512, generator=g)}
    torch.save(want, tmp_path / "plain.pth")
    d = compare(open_model(str(folder)), open_model(str(tmp_path / "plain.pth")))
    fill_values(d)
    assert d.structures_match and all(e.bitwise_equal for e in d.entries)
    mf = open_model(str(folder))
    save(mf, str(tmp_path / "o.pth"), "state_dict",
         surgery=Surgery(renames=(("", "m."),), dtype="bfloat16"))
    got = torch.load(tmp_path / "o.pth", weights_only=True)
    for k, v in want.items():
        w = v.to(torch.bfloat16)
        assert got[f"m.{k}"].dtype == torch.bfloat16
        assert torch.equal(got[f"m.{k}"].view(torch.int16), w.view(torch.int16)), k
