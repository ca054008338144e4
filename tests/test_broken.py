"""Broken input: every bad file gets one clear line on stderr, exit 1, no traceback, and
nothing written.

Every case runs the real CLI in a child process (`python -m tui`), in the case's own
folder, with a generous timeout as a hang guard (not a timing assertion). The cases are built by
``broken_support.CASES``; valid-but-extreme files are in ``test_broken_extremes.py``.
"""

from __future__ import annotations

import os
import shutil

import pytest
from broken_support import CASES, check_case, make_base_dir, run_cli


@pytest.fixture(scope="module")
def base_dir():
    d = make_base_dir()
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("name", sorted(n for n in CASES if n != "unreadable_chmod_000"))
def test_broken_input(name, base_dir):
    folder = base_dir / name
    folder.mkdir()
    path = CASES[name][0](folder)
    flags = ["--json"] if CASES[name][1] == 1 else ["--json", "--print"]
    check_case(name, path, folder, flags)


def test_unreadable_file(base_dir):
    """chmod 000. Root ignores permission bits (CAP_DAC_OVERRIDE), so as root the CLI runs
    with those capabilities dropped (util-linux setpriv)."""
    folder = base_dir / "unreadable"
    folder.mkdir()
    path = CASES["unreadable_chmod_000"][0](folder)
    prefix = None
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: permission bits can't be tested")
        drop = "-dac_override,-dac_read_search"
        prefix = ["setpriv", f"--bounding-set={drop}", f"--inh-caps={drop}", "--"]
    check_case("unreadable_chmod_000", path, folder, ["--json", "--scan"], prefix)


def test_unreadable_regular_file_eio(base_dir):
    """A regular file whose read fails (EIO): /proc/self/mem, read at offset 0."""
    r = run_cli(["--json", "/proc/self/mem"], base_dir)
    assert r.returncode == 1 and len(r.stderr.splitlines()) == 1
    assert "/proc/self/mem" in r.stderr and "Traceback" not in r.stderr
