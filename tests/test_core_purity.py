"""tui/core stays pure: no textual anywhere, no torch on the read path.

Each check runs in a fresh interpreter so imports hidden inside functions
(and pulled in by whatever the read path calls) show up in sys.modules.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import tui.core

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_models"
CORE_MODULES = sorted(m.name for m in pkgutil.walk_packages(tui.core.__path__, "tui.core."))


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys, json\n"
                          "print(json.dumps(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_core_modules_exist():
    assert "tui.core.read.reader" in CORE_MODULES and "tui.core.read.unpickle" in CORE_MODULES


@pytest.mark.parametrize("module", CORE_MODULES)
def test_importing_core_module_imports_neither_textual_nor_torch(module):
    loaded = _modules_after(f"import {module}")
    assert not any(m == "textual" or m.startswith("textual.") for m in loaded)
    assert "torch" not in loaded


@pytest.mark.parametrize("sample", ["entire_model.pth", "weights_only.pth", "checkpoint.pth",
                                    "transformer.pth", "transformer.safetensors"])
def test_read_path_never_imports_torch(sample):
    code = (
        "from tui.core.read.reader import open_model\n"
        "from tui.core.report import to_json\n"
        "from tui.core.edit import Editor\n"
        f"mf = open_model({str(SAMPLES / sample)!r})\n"
        "to_json(mf)\n"
        "e = Editor(mf)\n"
        "e.set_subtree(mf.root, False)\n"
    )
    loaded = _modules_after(code)
    assert "torch" not in loaded
    assert not any(m == "textual" or m.startswith("textual.") for m in loaded)


def test_headless_json_cli_never_imports_torch_or_textual():
    code = (
        "import io, contextlib\n"
        "from tui.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    main([{str(SAMPLES / 'entire_model.pth')!r}, '--json'])\n"
    )
    loaded = _modules_after(code)
    assert "torch" not in loaded
    assert not any(m.startswith("textual") for m in loaded)


def test_no_textual_import_in_core_sources():
    for path in (ROOT / "tui" / "core").rglob("*.py"):
        text = path.read_text()
        assert "import textual" not in text and "from textual" not in text, path


@pytest.mark.parametrize("sample", ["entire_model.pth", "checkpoint.pth", "transformer.safetensors"])
def test_value_reader_never_imports_torch_or_textual(sample):
    code = (
        "from tui.core.read.reader import open_model\n"
        "from tui.core.values.source import ModelValues\n"
        f"mf = open_model({str(SAMPLES / sample)!r})\n"
        "with ModelValues(mf, chunk_bytes=256) as mv:\n"
        "    for t in mf.tensors:\n"
        "        mv.stats(t)\n"
        "        mv.reader.read(mv.view(t))\n"
        "        assert t.dtype != 'float32' or mv.stats(t, finite_only=True).finite\n"
    )
    loaded = _modules_after(code)
    assert "torch" not in loaded
    assert not any(m == "textual" or m.startswith("textual.") for m in loaded)


def test_headless_stats_cli_never_imports_torch_or_textual():
    code = (
        "import io, contextlib\n"
        "from tui.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert main([{str(SAMPLES / 'entire_model.pth')!r}, '--stats', '--json']) == 0\n"
        f"    assert main([{str(SAMPLES / 'entire_model.pth')!r}, '--check-finite']) == 0\n"
    )
    loaded = _modules_after(code)
    assert "torch" not in loaded
    assert not any(m.startswith("textual") for m in loaded)
