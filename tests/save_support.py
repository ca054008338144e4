"""Helpers for the writer tests: edit + save in one call, and torch-side comparisons."""

from __future__ import annotations

import fnmatch
import struct
import zipfile
from pathlib import Path
from typing import Any

import torch

from tui.core.edit import Editor
from tui.core.read.reader import open_model
from tui.core.write.save import SaveResult, save


def edit_and_save(src: Path, out: Path, fmt: str | None, ops: list[tuple[str, bool]],
                  **kwargs: Any) -> tuple[SaveResult, Editor]:
    mf = open_model(str(src), key=kwargs.pop("key", None))
    editor = Editor(mf)
    for pattern, value in ops:
        editor.apply_pattern(pattern, value)
    return save(mf, str(out), fmt=fmt, **kwargs), editor


def expected_flags(model: torch.nn.Module, ops: list[tuple[str, bool]]) -> dict[str, bool]:
    """requires_grad per parameter name after the glob ops, computed with torch alone:
    a pattern matching any name of a (tied) Parameter changes that Parameter."""
    names: dict[int, list[str]] = {}
    params: dict[int, torch.nn.Parameter] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(p), []).append(name)
        params[id(p)] = p
    flags = {pid: bool(p.requires_grad) for pid, p in params.items()}
    for pattern, value in ops:
        for pid, ns in names.items():
            if any(fnmatch.fnmatchcase(n, pattern) or n.startswith(pattern + ".") for n in ns):
                flags[pid] = value
    return {n: flags[pid] for pid, ns in names.items() for n in ns}


def raw(t: torch.Tensor) -> torch.Tensor:
    """A tensor's bytes, for bitwise comparison (NaNs and -0.0 included)."""
    return t.detach().cpu().contiguous().reshape(-1).view(torch.uint8)


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(raw(a), raw(b))


def assert_state_equal(got: dict, want: dict) -> None:
    assert list(got) == list(want)
    for k in want:
        assert same_bits(got[k], want[k]), k


def aligned_entries(path: Path) -> bool:
    """Every data/ entry of a torch zip starts on a 64-byte boundary (mmap-able)."""
    with open(path, "rb") as f, zipfile.ZipFile(f) as z:
        for info in z.infolist():
            if "/data/" not in info.filename:
                continue
            f.seek(info.header_offset)
            head = f.read(30)
            n, m = struct.unpack("<HH", head[26:30])
            if (info.header_offset + 30 + n + m) % 64:
                return False
    return True
