"""Honest counts without architecture, devices, --cpu saves, CLI open errors, plurals
(issue 11 items 4, 5, 12, 13) and unsaved changes against the last save (item 7)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch_models as tm
from torch_builders_formats import build_cuda_saved

from tui.cli import main
from tui.core import human
from tui.core.composition import devices, makeup
from tui.core.edit import Editor
from tui.core.read.build import describe
from tui.core.read.reader import open_model
from tui.core.write.relocate import to_cpu
from tui.core.write.save import save

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_models"


# -- item 4: counts ----------------------------------------------------------------
def test_state_dict_totals_equal_the_full_models():
    full, sd = (open_model(str(SAMPLES / n)) for n in ("entire_model.pth", "weights_only.pth"))
    for f in ("numel", "nbytes", "buffers", "buffer_numel", "buffer_nbytes"):
        assert getattr(sd.totals, f) == getattr(full.totals, f), f
    assert sd.totals.numel == 37_738 and sd.totals.tensors == full.totals.tensors
    assert {t.name for t in sd.buffers()} == {t.name for t in full.buffers()}
    assert all(t.inferred for t in sd.buffers()) and not any(t.inferred for t in full.tensors)


def test_integer_and_bool_tensors_are_inferred_buffers(tmp_path, capsys):
    sd = {"emb.weight": torch.zeros(4, 2), "position_ids": torch.arange(8),
          "attn.mask": torch.ones(3, dtype=torch.bool), "norm.running_var": torch.ones(2),
          "head.weight": torch.zeros(2, 2, dtype=torch.float16)}
    p = tmp_path / "sd.pth"
    torch.save(sd, p)
    assert main([str(p), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {b["name"] for b in doc["buffers"]} == {"position_ids", "attn.mask", "norm.running_var"}
    assert all(b["inferred"] is True and b["kind"] == "buffer" for b in doc["buffers"])
    assert {q["name"]: q["kind"] for q in doc["parameters"]} == {"emb.weight": "unknown",
                                                                 "head.weight": "unknown"}
    assert doc["totals"]["parameters"] == 12 and doc["totals"]["inferred"] is True
    assert main([str(p), "--print"]) == 0
    out = capsys.readouterr().out
    assert "told from buffers by name and dtype" in out and "inferred" in out


# -- item 5: devices ----------------------------------------------------------------
@pytest.fixture(scope="module")
def cuda_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cuda")
    return {"zip": build_cuda_saved(d), "legacy": build_cuda_saved(d, legacy=True),
            "state_dict": build_cuda_saved(d, state_dict=True)}


def test_cuda_saved_file_says_so(cuda_files, capsys):
    path = str(cuda_files["zip"].path)
    dev = devices(open_model(path))
    assert dev.non_cpu == ["cuda:0"] and dev.needs_map_location
    assert "cuda:0" in dev.line() and "map_location" in dev.line()
    assert main([path, "--print"]) == 0
    assert "saved on cuda:0" in capsys.readouterr().out
    assert main([path, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["needs_map_location"] is True and set(doc["devices"]) == {"cuda:0"}
    assert devices(open_model(str(SAMPLES / "entire_model.pth"))).line() is None


def _loads_plainly(path: Path) -> object:
    return torch.load(path, weights_only=False)


@pytest.mark.parametrize("kind,fmt", [("zip", "full"), ("legacy", "full"), ("zip", "state_dict"),
                                      ("state_dict", "state_dict")])
def test_cpu_save_loads_without_map_location(cuda_files, tmp_path, kind, fmt):
    b = cuda_files[kind]
    with pytest.raises(RuntimeError, match="CUDA"):
        torch.load(b.path, weights_only=False)  # as saved: needs a GPU or map_location
    out = tmp_path / f"{kind}-{fmt}.pth"
    mf = open_model(str(b.path))
    Editor(mf).apply_pattern("fc", False) if fmt == "full" else None
    save(mf, str(out), fmt, cpu=True)
    got = _loads_plainly(out)
    ref = b.obj.state_dict() if isinstance(b.obj, torch.nn.Module) else b.obj
    sd = got.state_dict() if isinstance(got, torch.nn.Module) else got
    assert sd.keys() == ref.keys() and all(torch.equal(sd[k], ref[k]) for k in ref)
    if fmt == "full":
        assert not any(p.requires_grad for n, p in got.named_parameters() if n.startswith("fc."))
    assert devices(open_model(str(out))).line() is None
    out2 = tmp_path / "kept.pth"
    save(open_model(str(b.path)), str(out2), fmt)  # without cpu=True: locations as they were
    assert devices(open_model(str(out2))).non_cpu == ["cuda:0"]


def test_cpu_save_of_a_checkpoint_part_and_whole(tmp_path):
    model = tm.SmallMLP()
    src = tmp_path / "ck.pth"
    torch.save({"model": model, "step": 3, "opt": {"m": torch.ones(2)}}, src)
    tm.rewrite_storage_location(src, "cpu", "cuda:1")
    for whole, out in ((False, tmp_path / "part.pth"), (True, tmp_path / "whole.pth")):
        save(open_model(str(src)), str(out), "full", cpu=True, whole_checkpoint=whole)
        got = _loads_plainly(out)
        m = got["model"] if whole else got
        assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(),
                                                     model.state_dict().values(), strict=True))
        if whole:
            assert got["step"] == 3 and torch.equal(got["opt"]["m"], torch.ones(2))


def test_cpu_relocation_handles_frames_and_memo(tmp_path):
    t = torch.arange(6.0)
    p = tmp_path / "p4.pth"
    torch.save({"a": t, "b": t[2:], "c": torch.ones(2)}, p, pickle_protocol=4)
    import zipfile

    with zipfile.ZipFile(p) as z:
        name = next(n for n in z.namelist() if n.endswith("data.pkl"))
        data = z.read(name)
    new, n = to_cpu(data.replace(b"cpu", b"mps"))  # same length: a valid "mps"-saved pickle
    assert n >= 1 and b"mps" not in new and to_cpu(new) == (new, 0)


def test_cli_cpu_flag(cuda_files, tmp_path, capsys):
    out = tmp_path / "o.pth"
    assert main([str(cuda_files["zip"].path), "--save", str(out), "--cpu"]) == 0
    assert isinstance(_loads_plainly(out), torch.nn.Module)
    with pytest.raises(SystemExit):
        main([str(cuda_files["zip"].path), "--cpu"])  # needs --save


# -- item 12: files that can't be opened --------------------------------------------
@pytest.mark.parametrize("make", ["missing", "empty", "text", "fifo"])
def test_cli_unopenable_file_one_line_no_app(tmp_path, make):
    p = tmp_path / "x.pth"
    if make == "empty":
        p.write_bytes(b"")
    elif make == "text":
        p.write_text("hello, not a model\n")
    elif make == "fifo":
        import os

        os.mkfifo(p)
    r = subprocess.run([sys.executable, "-m", "tui", str(p)], capture_output=True, text=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("modeltree: ") and "Traceback" not in r.stderr


# -- item 13: numbers and plurals ----------------------------------------------------
def test_plurals_and_separators():
    assert human.plural(4803, "tensor") == "4,803 tensors"
    assert human.plural(1, "item") == "1 item" and human.plural(0, "child", "children") == "0 children"
    assert describe([1]) == ("list", "list (1 item)")
    assert describe({"a": 1, "b": 2})[1] == "dict (2 items)"
    assert human.percent(0.004) == "<1 %" and human.percent(0.98) == "98 %"
    assert human.breakdown([("bfloat16", 0.98), ("float32", 0.02)]) == "bf16 98 % · f32 2 %"
    assert human.module_line("fc", "Linear", "in_features=2") == "(fc): Linear(in_features=2)"


def test_makeup_share_and_dtypes(tmp_path):
    m = torch.nn.Sequential(torch.nn.Linear(10, 10), torch.nn.Linear(10, 2).to(torch.bfloat16))
    p = tmp_path / "m.pth"
    torch.save(m, p)
    mf = open_model(str(p))
    root = makeup(mf.root, mf.root)
    assert root.share == 1.0 and [d for d, _ in root.dtypes] == ["float32", "bfloat16"]
    assert human.breakdown(root.dtypes) == "f32 83 % · bf16 17 %"
    one = makeup(mf.modules["1"], mf.root)
    assert one.share == pytest.approx(22 / 132) and one.devices == [("cpu", 1.0)]


# -- item 7: unsaved changes count from the last save ------------------------------------
def test_unsaved_counts_from_the_last_save():
    mf = open_model(str(SAMPLES / "entire_model.pth"))
    ed = Editor(mf)
    ed.apply_pattern("fc", False)
    assert [n for n, _, _ in ed.unsaved()] == ["fc.weight", "fc.bias"] and ed.dirty
    ed.mark_saved()
    assert ed.unsaved() == [] and not ed.dirty and len(ed.changed()) == 2
    ed.apply_pattern("layer2.0", True)
    assert {n for n, _, _ in ed.unsaved()} == {"layer2.0.weight", "layer2.0.bias"}
    ed.undo()
    assert ed.unsaved() == [] and not ed.dirty
    ed.undo()  # back past the save: differs from what was saved
    assert {n for n, was, now in ed.unsaved()} == {"fc.weight", "fc.bias"} and ed.dirty


def test_largest_tensors_and_elision():
    from tui.core.composition import largest_tensors

    mf = open_model(str(SAMPLES / "entire_model.pth"))
    top = largest_tensors(mf, 3)
    assert [t.name for t in top] == ["layer2.0.weight", "layer1.0.weight", "fc.weight"]
    assert len(largest_tensors(mf, 1000)) == len(mf.tensors)
    name = "encoder.layers.11.attention.self.query.weight"
    for w in (1, 5, 12, 30):
        cut = human.elide_middle(name, w)
        assert len(cut) == w and (w == 1 or cut.endswith("weight"[: max(0, w - 5)][-1:]))
    assert human.elide_middle(name, 30).endswith("query.weight") and human.elide_middle("ab", 5) == "ab"


def test_makeups_of_every_module_agree_with_one_at_a_time(tmp_path):
    from tui.core.composition import makeups

    tied = tm.TiedNet()
    tied.extra = torch.nn.Linear(4, 4).to(torch.float16)
    torch.save(tied, tmp_path / "tied.pth")
    for path in (SAMPLES / "entire_model.pth", SAMPLES / "weights_only.pth", tmp_path / "tied.pth"):
        mf = open_model(str(path))
        every = makeups(mf.root)
        for n in mf.root.walk():
            assert every[id(n)] == makeup(n, mf.root), (path, n.name)
    assert every[id(mf.root)].share == 1.0 and every[id(mf.modules["head"])].dtypes == [("float32", 1.0)]
    assert [d for d, _ in every[id(mf.root)].dtypes] == ["float32", "float16"]
