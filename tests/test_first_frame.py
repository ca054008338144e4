"""First frame first: what the first paint doesn't need is not imported with the app (the
editor, the reader, the dialogs, the palette's provider come after it). Checked on
sys.modules in a fresh interpreter (work, not time)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFERRED = ("tui.core.edit", "tui.core.read.reader", "tui.core.read.build", "tui.commands",
            "tui.screens.save_dialog", "tui.screens.help", "tui.screens.quit",
            "tui.screens.error", "tui.core.write.save", "tui.screens.tensor_view",
            "tui.screens.health_check", "numpy")


def test_the_app_module_imports_only_what_the_first_frame_needs():
    code = ("import sys, json; from tui.app import ModelTreeApp; "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('tui', 'numpy')))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True, timeout=120)
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert "tui.screens.main_screen" in loaded and "tui.widgets.param_table" in loaded
    assert not loaded & set(DEFERRED), sorted(loaded & set(DEFERRED))
