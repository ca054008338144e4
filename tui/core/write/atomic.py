"""Atomic file replacement: the target is either the old file or the complete new one.

A temp file is made in the target's folder (so `os.replace` is a rename on one file
system), written, flushed and fsynced, then renamed over the target and the folder
fsynced. Any error, KeyboardInterrupt included, deletes the temp. Only SIGKILL or a
power cut can leave a temp behind: it is named `.<target name>.<random>.modeltree-tmp`
so it is easy to recognise and delete; the target itself is never half-written.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

from tui.core.errors import ModelFileError

TMP_SUFFIX = ".modeltree-tmp"


class TargetExists(ModelFileError):
    """The target exists and overwriting was not asked for (the UI asks, then retries)."""


@dataclass
class AtomicFile:
    fd: int  # open for writing, positioned at 0
    tmp: str  # the temp file's path (for writers that need a name, e.g. torch.jit.save)
    target: str


def check_target(path: str, force: bool) -> str:
    """Refuse what can't or mustn't be written, before anything is written."""
    path = os.path.abspath(os.fspath(path))
    if os.path.islink(path):  # save through a link to the file it names, as editors do
        path = os.path.realpath(path)
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise ModelFileError(path, f"folder {folder} does not exist")
    if os.path.isdir(path):
        raise ModelFileError(path, "is a directory")
    if os.path.lexists(path):
        if not force:
            raise TargetExists(path, "already exists (use --force to overwrite it)")
        if not os.path.isfile(path):
            raise ModelFileError(path, "exists and is not a regular file")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ModelFileError(path, f"permission denied: can't create files in {folder}")
    return path


def check_space(path: str, nbytes: int) -> None:
    """Refuse up front when the folder's file system can't hold nbytes more."""
    try:
        st = os.statvfs(os.path.dirname(path))
    except (OSError, AttributeError):
        return
    free = st.f_bavail * st.f_frsize
    if st.f_blocks > 0 and free < nbytes:
        raise ModelFileError(path, f"disk full: {nbytes / 1e6:.1f} MB needed, {free / 1e6:.1f} MB "
                             "free (nothing was written)")


def os_error(path: str, e: OSError) -> ModelFileError:
    """One clear line for the failures a user can cause or fix."""
    if e.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        what = "file too large for this file system or limit" if e.errno == errno.EFBIG else "disk full"
        return ModelFileError(path, f"{what}: nothing was written (the original is unchanged)")
    if e.errno in (errno.EACCES, errno.EPERM):
        return ModelFileError(path, "permission denied")
    if e.errno == errno.EROFS:
        return ModelFileError(path, "read-only file system")
    if e.errno == errno.ENOENT:
        return ModelFileError(path, "folder does not exist")
    if e.errno == errno.EISDIR:
        return ModelFileError(path, "is a directory")
    return ModelFileError(path, e.strerror or str(e))


def _umask() -> int:
    # /proc avoids os.umask(0), which would briefly change the umask of every thread.
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # some file systems can't open folders; the rename is done anyway
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path: str, force: bool = False) -> Iterator[AtomicFile]:
    """Yield a temp file beside `path`; on a clean exit it replaces `path`."""
    target = check_target(path, force)
    folder, name = os.path.split(target)
    try:
        old_mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        old_mode = 0o666 & ~_umask()  # what open() would have given a new file
    except OSError as e:
        raise os_error(target, e) from None
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=TMP_SUFFIX)
    except OSError as e:
        raise os_error(target, e) from None
    try:
        yield AtomicFile(fd, tmp, target)
        os.fsync(fd)
        os.fchmod(fd, old_mode)
        os.close(fd)
        fd = -1
        os.replace(tmp, target)
    except BaseException as e:
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError) and not isinstance(e, ModelFileError):
            raise os_error(target, e) from None
        raise
    _fsync_dir(folder)


def write_all(fd: int, data: bytes | memoryview) -> None:
    """os.write until everything is written (it may write less than asked)."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def write_small(path: str, data: bytes, force: bool = False) -> None:
    """A small file (a freeze plan), atomically."""
    with atomic_write(path, force=force) as af:
        write_all(af.fd, data)
