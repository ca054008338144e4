"""Writing safely: refusals, disk full, interrupts, kill -9, saving over the open file."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from save_support import assert_state_equal, edit_and_save

from tui.core.edit import Editor
from tui.core.errors import ModelFileError
from tui.core.read.reader import open_model
from tui.core.write.atomic import TMP_SUFFIX, TargetExists, os_error
from tui.core.write.save import save

SAMPLE = Path(__file__).resolve().parents[1] / "sample_models" / "entire_model.pth"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def src(tmp_path) -> Path:
    p = tmp_path / "model.pth"
    shutil.copyfile(SAMPLE, p)
    return p


def _temps(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.endswith(TMP_SUFFIX)]


def test_refusals(src, tmp_path):
    mf = open_model(str(src))
    with pytest.raises(ModelFileError, match="does not exist"):
        save(mf, str(tmp_path / "no" / "such" / "out.pth"))
    (tmp_path / "adir").mkdir()
    with pytest.raises(ModelFileError, match="is a directory"):
        save(mf, str(tmp_path / "adir"))
    with pytest.raises(TargetExists, match="already exists"):
        save(mf, str(src))
    with pytest.raises(ModelFileError, match="unknown format"):
        save(mf, str(tmp_path / "x.pth"), fmt="onnx")
    # A freeze plan in the way: refused before the weights are written.
    (tmp_path / "w.freeze.json").write_text("{}")
    with pytest.raises(TargetExists):
        save(mf, str(tmp_path / "w.pth"), fmt="state_dict", freeze_plan=True)
    assert not (tmp_path / "w.pth").exists()
    assert src.read_bytes() == SAMPLE.read_bytes() and not _temps(tmp_path)


def test_permissions_kept_on_overwrite(src, tmp_path):
    out = tmp_path / "out.pth"
    out.write_bytes(b"old")
    os.chmod(out, 0o640)
    save(open_model(str(src)), str(out), force=True)
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    fresh = tmp_path / "fresh.pth"
    save(open_model(str(src)), str(fresh))
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~umask


def test_os_errors_read_clearly():
    assert "disk full" in str(os_error("/x/out.pth", OSError(errno.ENOSPC, "No space left")))
    assert "too large" in str(os_error("/x/out.pth", OSError(errno.EFBIG, "File too large")))
    assert "permission denied" in str(os_error("/x/out.pth", OSError(errno.EACCES, "Permission denied")))


def test_interrupt_removes_temp(src, tmp_path):
    def interrupt(done, total):
        assert _temps(tmp_path)
        raise KeyboardInterrupt

    mf = open_model(str(src))
    for fmt in ("full", "state_dict", "safetensors"):
        with pytest.raises(KeyboardInterrupt):
            save(mf, str(tmp_path / f"out.{fmt}"), fmt=fmt, progress=interrupt)
        assert not (tmp_path / f"out.{fmt}").exists() and not _temps(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        save(mf, str(src), force=True, progress=interrupt)
    assert src.read_bytes() == SAMPLE.read_bytes() and not _temps(tmp_path)


def test_disk_full_in_subprocess(src, tmp_path):
    """RLIMIT_FSIZE makes writes past the limit fail with EFBIG (SIGXFSZ ignored)."""
    code = textwrap.dedent(f"""
        import resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000))
        from tui.cli import main
        sys.exit(main([{str(src)!r}, "--freeze", "*", "--save", {str(tmp_path / 'out.pth')!r}]))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "file too large" in proc.stderr, proc.stderr
    assert not (tmp_path / "out.pth").exists() and not _temps(tmp_path)
    assert src.read_bytes() == SAMPLE.read_bytes()


KILLED = textwrap.dedent("""
    import os, sys, time
    from tui.core.edit import Editor
    from tui.core.read.reader import open_model
    from tui.core.write.save import save

    src, out, ready = sys.argv[1:4]
    mf = open_model(src)
    Editor(mf).apply_pattern("*", True)

    def stall(done, total):  # the temp is written: say so, then wait to be killed
        if not os.path.exists(ready):
            open(ready, "w").close()
        time.sleep(60)

    save(mf, out, force=True, progress=stall)
""")


def test_kill_9_mid_write(src, tmp_path):
    """SIGKILL can't be caught: the target stays as it was; the temp is left behind
    (named .<target>.<random>.modeltree-tmp) for the user to delete."""
    script = tmp_path / "killed.py"
    script.write_text(KILLED)
    for out in (tmp_path / "out.pth", src):  # a new file, and over the open source itself
        ready = tmp_path / "ready"
        proc = subprocess.Popen([sys.executable, str(script), str(src), str(out), str(ready)],
                                cwd=REPO, stderr=subprocess.PIPE)
        try:
            while not ready.exists():
                assert proc.poll() is None, proc.stderr.read()
                time.sleep(0.05)
            assert _temps(tmp_path)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        assert src.read_bytes() == SAMPLE.read_bytes()
        assert out == src or not out.exists()
        leftovers = _temps(tmp_path)
        assert len(leftovers) == 1 and leftovers[0].name.startswith(f".{out.name}.")
        leftovers[0].unlink()
        ready.unlink()


def test_save_over_open_source(src, tmp_path):
    ref = torch.load(src, weights_only=False)
    mapped = torch.load(src, weights_only=False, mmap=True)  # tensors mapped from the file
    mf = open_model(str(src))
    editor = Editor(mf)
    editor.apply_pattern("*", True)
    result = save(mf, str(src), force=True)
    assert result.replaced_source and editor.changed() == []  # the disk has the flags now
    got = torch.load(src, weights_only=False)
    assert all(p.requires_grad for p in got.parameters())
    assert_state_equal(got.state_dict(), ref.state_dict())
    assert_state_equal(mapped.state_dict(), ref.state_dict())  # the old inode is intact
    # Same layout after a full save: the open model can be saved over itself again.
    editor.apply_pattern("fc.*", False)
    save(mf, str(src), force=True)
    got = torch.load(src, weights_only=False)
    assert [n for n, p in got.named_parameters() if not p.requires_grad] == ["fc.weight", "fc.bias"]
    # As a state_dict over itself: correct file, and the open model is now stale.
    save(mf, str(src), fmt="state_dict", force=True)
    assert_state_equal(torch.load(src, weights_only=True), ref.state_dict())
    with pytest.raises(ModelFileError, match="open it again"):
        save(mf, str(tmp_path / "again.pth"))


def test_source_replaced_behind_our_back(src, tmp_path):
    mf = open_model(str(src))
    edit_and_save(src, src, "state_dict", [], force=True)  # another program rewrote it
    with pytest.raises(ModelFileError, match="changed on disk"):
        save(mf, str(tmp_path / "out.pth"))
    assert not (tmp_path / "out.pth").exists()


def test_no_room_is_refused_before_writing(src, tmp_path, monkeypatch):
    real = os.statvfs

    class Tiny:
        def __init__(self, st):
            self.f_frsize, self.f_blocks, self.f_bavail = st.f_frsize, st.f_blocks, 1

    monkeypatch.setattr(os, "statvfs", lambda p: Tiny(real(p)))
    with pytest.raises(ModelFileError, match="disk full: .* MB needed"):
        save(open_model(str(src)), str(tmp_path / "out.pth"))
    assert not (tmp_path / "out.pth").exists() and not _temps(tmp_path)


def test_save_through_a_symlink(src, tmp_path):
    link = tmp_path / "link.pth"
    link.symlink_to(src)
    mf = open_model(str(src))
    Editor(mf).apply_pattern("*", True)
    save(mf, str(link), force=True)
    assert link.is_symlink()  # the link still names the file, which now has the edit
    assert all(p.requires_grad for p in torch.load(src, weights_only=False).parameters())
