"""Checkpoint surgery (rename, drop, extract, cast) → save in every format it applies to →
load with torch → keys, bitwise values, casts equal to .to(dtype), tied tensors shared.

Sources are built with torch in the test; only files built here are loaded with
weights_only=False.
"""

from __future__ import annotations

import pytest
import torch
import torch_models as tm
from safetensors.torch import load_file
from save_support import same_bits
from torch_builders_modules import SmallMLP

from tui.core.edit import Editor
from tui.core.errors import ModelFileError
from tui.core.read.reader import open_model
from tui.core.surgery import Surgery, SurgeryError
from tui.core.write.save import save
from tui.core.write.surgery_out import metadata

FLOATS = (torch.float64, torch.float32, torch.float16, torch.bfloat16,
          torch.float8_e4m3fn, torch.float8_e5m2)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("surgery")
    out = {b.__name__[6:]: b(root).path for b in (
        tm.build_tied_weights, tm.build_data_parallel, tm.build_data_parallel_state_dict,
        tm.build_dtypes, tm.build_article_full_model, tm.build_lightning_ckpt, tm.build_safetensors)}
    g = torch.Generator().manual_seed(3)
    bits = torch.randint(-2**31, 2**31 - 1, (4099,), generator=g, dtype=torch.int64).to(torch.int32)
    special = torch.tensor([float("nan"), -float("nan"), float("inf"), -float("inf"), -0.0, 1e-45,
                            3.4e38, 65504.0, 65520.0, 1.00048828125, 1.0 + 2**-8, 1.0 + 3 * 2**-8])
    sd = {"bits.f32": bits.view(torch.float32).clone(),
          "bits.f16": bits[:2048].clone().view(torch.float16),
          "bits.bf16": bits[2048:].clone().view(torch.bfloat16), "special": special,
          "f64": torch.randn(33, generator=g, dtype=torch.float64),
          "fp8": torch.arange(256, dtype=torch.int32).to(torch.uint8).view(torch.float8_e4m3fn).clone(),
          "fp8b": torch.arange(256, dtype=torch.int32).to(torch.uint8).view(torch.float8_e5m2).clone(),
          "ints": torch.arange(5), "mask": torch.tensor([True, False]),
          "cplx": torch.zeros(2, dtype=torch.complex64)}
    sd["view"] = sd["bits.f32"][10:20]  # shares its storage
    out["values"] = root / "values.pth"
    torch.save(sd, out["values"])
    return out


def _save(path, out, fmt, key=None, **surgery):
    mf = open_model(str(path), key=key)
    ed = Editor(mf)
    for p in surgery.get("drops", ()):
        ed.drop(p)
    if surgery.get("extract"):
        ed.extract(surgery["extract"])
    for old, new in surgery.get("renames", ()):
        ed.rename(old, new)
    if surgery.get("dtype"):
        ed.cast(surgery["dtype"])
    return save(mf, str(out), fmt=fmt, surgery=ed.surgery), ed


def _load(path, fmt):
    if fmt == "safetensors":
        return load_file(str(path))
    return torch.load(path, weights_only=True)


def test_surgery_names():
    s = Surgery(renames=(("module.", ""), ("", "m.")), drops=("*.bias", "net.2"), extract=None)
    assert s.out_name("module.net.0.weight") == "m.net.0.weight"
    assert s.out_name("module.net.0.bias") is None
    assert Surgery(drops=("net.2",)).out_name("net.2.weight") is None
    assert Surgery(drops=("net.2",)).out_name("net.20.weight") == "net.20.weight"
    assert Surgery(extract="enc").out_name("enc.l.w") == "l.w"
    assert Surgery(extract="enc").out_name("encoder.l.w") is None
    meta = {"": {"version": 1}, "module": {"version": 2}, "module.fc": {"version": 3}}
    assert metadata(meta, Surgery(renames=(("module.", ""),))) == {"": {"version": 1}, "fc": {"version": 3}}
    assert metadata(meta, Surgery(extract="module")) == {"": {"version": 2}, "fc": {"version": 3}}


@pytest.mark.parametrize("fmt", ["state_dict", "safetensors"])
def test_rename_strip_and_add(built, tmp_path, fmt):
    src = torch.load(built["data_parallel_state_dict"], weights_only=True)
    _save(built["data_parallel_state_dict"], tmp_path / "a", fmt, renames=[("module.", "")])
    got = _load(tmp_path / "a", fmt)
    assert sorted(got) == sorted(k[len("module."):] for k in src)
    for k, v in src.items():
        assert same_bits(got[k[len("module."):]], v)
    SmallMLP().load_state_dict(got, strict=True)
    _save(built["data_parallel_state_dict"], tmp_path / "b", fmt, renames=[("module.", ""), ("", "model.")])
    assert sorted(_load(tmp_path / "b", fmt)) == sorted("model." + k[len("module."):] for k in src)


@pytest.mark.parametrize("fmt", ["state_dict", "safetensors"])
def test_drop_tensors_and_subtree(built, tmp_path, fmt):
    ref = torch.load(built["article_full_model"], weights_only=False).state_dict()
    _save(built["article_full_model"], tmp_path / "o", fmt, drops=["layer2", "*.num_batches_tracked"])
    got = _load(tmp_path / "o", fmt)
    want = [k for k in ref if not k.startswith("layer2.") and not k.endswith("num_batches_tracked")]
    assert sorted(got) == sorted(want)
    if fmt == "state_dict":
        assert list(got) == want  # state_dict order kept
    assert all(same_bits(got[k], ref[k]) for k in want)


@pytest.mark.parametrize("fmt", ["state_dict", "safetensors", "full"])
def test_extract_subtree(built, tmp_path, fmt):
    ref = torch.load(built["article_full_model"], weights_only=False)
    _save(built["article_full_model"], tmp_path / "o", fmt, extract="layer1")
    if fmt == "full":
        got = torch.load(tmp_path / "o", weights_only=False)
        assert type(got) is type(ref.layer1)
        assert [n for n, _ in got.named_modules()] == [n for n, _ in ref.layer1.named_modules()]
        want, sd = ref.layer1.state_dict(), got.state_dict()
        assert [p.requires_grad for p in got.parameters()] == [p.requires_grad for p in ref.layer1.parameters()]
    else:
        want, sd = ref.layer1.state_dict(), _load(tmp_path / "o", fmt)
    assert sorted(sd) == sorted(want)
    assert all(same_bits(sd[k], want[k]) for k in want)
    if fmt == "state_dict":
        torch.nn.Sequential(torch.nn.Conv2d(16, 32, 5), torch.nn.BatchNorm2d(32), torch.nn.ReLU(),
                            torch.nn.MaxPool2d(2)).load_state_dict(sd, strict=True)


def test_extract_from_data_parallel_full_model_with_cast(built, tmp_path):
    ref = torch.load(built["data_parallel"], weights_only=False).module
    _save(built["data_parallel"], tmp_path / "o.pth", "full", extract="module", dtype="bfloat16")
    got = torch.load(tmp_path / "o.pth", weights_only=False)
    assert type(got) is SmallMLP
    for (k, v), (k2, w) in zip(got.state_dict().items(), ref.state_dict().items(), strict=True):
        assert k == k2 and same_bits(v, w.to(torch.bfloat16))
    assert isinstance(got.net[0].weight, torch.nn.Parameter)


def test_extract_model_part_of_checkpoint(built, tmp_path):
    lightning = torch.load(built["lightning_ckpt"], weights_only=False)["state_dict"]
    _save(built["lightning_ckpt"], tmp_path / "o.pth", "state_dict", extract="model")
    got = torch.load(tmp_path / "o.pth", weights_only=True)
    assert list(got) == [k[len("model."):] for k in lightning]
    assert all(same_bits(got[k[6:]], v) for k, v in lightning.items())


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
@pytest.mark.parametrize("fmt", ["state_dict", "safetensors"])
def test_cast_equals_torch(built, tmp_path, dtype, fmt):
    src = torch.load(built["values"], weights_only=True)
    _save(built["values"], tmp_path / "o", fmt, dtype=dtype)
    got = _load(tmp_path / "o", fmt)
    target = getattr(torch, dtype)
    assert sorted(got) == sorted(src)
    for k, v in src.items():
        want = v.to(target) if v.dtype in FLOATS else v
        assert same_bits(got[k], want), k
    if fmt == "state_dict":  # the view still shares the cast storage
        assert got["view"].untyped_storage().data_ptr() == got["bits.f32"].untyped_storage().data_ptr()


@pytest.mark.parametrize("fmt", ["state_dict", "full"])
def test_cast_full_model_dtypes(built, tmp_path, fmt):
    ref = torch.load(built["tied_weights"], weights_only=False)
    _save(built["tied_weights"], tmp_path / "o.pth", fmt, dtype="float16", renames=[] if fmt == "full" else [("", "x.")])
    if fmt == "full":
        got = torch.load(tmp_path / "o.pth", weights_only=False)
        assert got.head.weight is got.embed.weight  # still one Parameter
        assert same_bits(got.embed.weight, ref.embed.weight.to(torch.float16))
        assert got.embed.weight.requires_grad
    else:
        sd = torch.load(tmp_path / "o.pth", weights_only=True)
        assert list(sd) == ["x.embed.weight", "x.head.weight"]
        assert sd["x.embed.weight"].data_ptr() == sd["x.head.weight"].data_ptr()  # tied: shared
        assert same_bits(sd["x.head.weight"], ref.embed.weight.to(torch.float16))


def test_refusals(built, tmp_path):
    with pytest.raises(ModelFileError, match="rename can't apply to a full model"):
        _save(built["tied_weights"], tmp_path / "o.pth", "full", renames=[("head.", "h.")])
    with pytest.raises(ModelFileError, match="drop can't apply to a full model"):
        _save(built["tied_weights"], tmp_path / "o.pth", "full", drops=["head"])
    assert not (tmp_path / "o.pth").exists()
    with pytest.raises(ModelFileError, match="whole checkpoint"):
        mf = open_model(str(built["lightning_ckpt"]))
        save(mf, str(tmp_path / "w.ckpt"), "state_dict", whole_checkpoint=True,
             surgery=Surgery(dtype="float16"))
    ed = Editor(open_model(str(built["tied_weights"])))
    with pytest.raises(SurgeryError, match="matches no tensor"):
        ed.drop("nothing")
    with pytest.raises(SurgeryError, match="no tensor name starts with"):
        ed.rename("zzz.", "")
    with pytest.raises(SurgeryError, match="both be written as"):
        ed.rename("head.", "embed.")
    with pytest.raises(SurgeryError, match="no tensor under"):
        ed.extract("nope")
    assert ed.surgery.empty and not ed.dirty


def test_undo_redo(built):
    ed = Editor(open_model(str(built["data_parallel_state_dict"])))
    ed.rename("module.", "")
    ed.drop("module.net.2")
    ed.cast("bfloat16")
    assert ed.dirty and ed.surgery.dtype == "bfloat16"
    ed.undo()
    ed.undo()
    assert ed.surgery == Surgery(renames=(("module.", ""),))
    ed.redo()
    assert ed.surgery.drops == ("module.net.2",)
    ed.undo()
    ed.undo()
    assert ed.surgery.empty and not ed.dirty


def test_cli_surgery(built, tmp_path, capsys):
    from tui.cli import main

    out = tmp_path / "o.safetensors"
    assert main([str(built["lightning_ckpt"]), "--rename", "model.=", "--drop", "model.fc",
                 "--dtype", "bfloat16", "--save", str(out), "--format", "safetensors"]) == 0
    got = load_file(str(out))
    assert "fc.weight" not in got and got["layer1.0.weight"].dtype == torch.bfloat16
    assert main([str(built["tied_weights"]), "--rename", "head.=h.", "--save", str(tmp_path / "f.pth"),
                 "--format", "full"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "rename can't apply to a full model" in err
    assert main([str(built["tied_weights"]), "--rename", "nomatch", "--save", str(tmp_path / "g.pth")]) == 1


def test_cast_streams_in_chunks(built, tmp_path, monkeypatch):
    """Tiny chunks: the conversion is the same when a tensor spans many of them."""
    import tui.core.write.stream as stream

    monkeypatch.setattr(stream, "CHUNK", 40)
    src = torch.load(built["values"], weights_only=True)
    _save(built["values"], tmp_path / "o.pth", "state_dict", dtype="bfloat16")
    got = torch.load(tmp_path / "o.pth", weights_only=True)
    for k, v in src.items():
        assert same_bits(got[k], v.to(torch.bfloat16) if v.dtype in FLOATS else v), k


def test_json_preview(built, capsys):
    import json

    from tui.cli import main

    assert main([str(built["data_parallel_state_dict"]), "--rename", "module.=", "--drop",
                 "module.net.2", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["surgery"]["names"] == {"module.net.0.weight": "net.0.weight",
                                       "module.net.0.bias": "net.0.bias",
                                       "module.net.2.weight": None, "module.net.2.bias": None}


@pytest.mark.parametrize("fmt", ["state_dict", "safetensors"])
def test_safetensors_source(built, tmp_path, fmt):
    src = load_file(str(built["safetensors"]))
    first = next(iter(src)).split(".")[0]
    _save(built["safetensors"], tmp_path / "o", fmt, drops=[first], renames=[("", "x.")],
          dtype="float16")
    got = _load(tmp_path / "o", fmt)
    want = {f"x.{k}": v for k, v in src.items() if not (k == first or k.startswith(first + "."))}
    assert sorted(got) == sorted(want) and want
    for k, v in want.items():
        assert same_bits(got[k], v.to(torch.float16) if v.dtype in FLOATS else v), k


def test_legacy_source_cast_and_extract(tmp_path):
    """Pre-1.6 files: the state_dict output casts; a full-model cast is refused in one line."""
    path = tm.build_legacy(tmp_path).path
    ref = torch.load(path, weights_only=False)
    _save(path, tmp_path / "o.pth", "state_dict", dtype="bfloat16", extract="layer1")
    got = torch.load(tmp_path / "o.pth", weights_only=True)
    want = ref.layer1.state_dict()
    assert list(got) == list(want)
    assert all(same_bits(got[k], v.to(torch.bfloat16) if v.dtype in FLOATS else v) for k, v in want.items())
    _save(path, tmp_path / "l1.pth", "full", extract="layer1")
    assert type(torch.load(tmp_path / "l1.pth", weights_only=False)) is type(ref.layer1)
    with pytest.raises(ModelFileError, match="legacy-format"):
        _save(path, tmp_path / "f.pth", "full", dtype="float16")


def test_save_summary_counts_what_is_written(tmp_path, capsys):
    """After --extract/--drop the summary's parameter counts are those of the file written
    (they were the whole model's: "5.8K of 37.7K trainable" for a frozen 12.9K layer)."""
    from pathlib import Path

    from tui.cli import main

    src = str(Path(__file__).parent.parent / "sample_models" / "entire_model.pth")
    assert main([src, "--extract", "layer1", "--save", str(tmp_path / "a.pth"),
                 "--format", "state_dict"]) == 0
    assert "(0 of 12.9K parameters trainable)" in capsys.readouterr().out
    assert main([src, "--drop", "layer*", "--unfreeze", "sequential.*", "--save",
                 str(tmp_path / "b.pth"), "--format", "state_dict"]) == 0
    assert "(6.2K of 6.2K parameters trainable)" in capsys.readouterr().out
    assert main([src, "--save", str(tmp_path / "c.pth"), "--format", "state_dict"]) == 0
    assert "(5.8K of 37.7K parameters trainable)" in capsys.readouterr().out
