"""Byte sources: a local file or a remote object, read by (offset, length).

Readers reach every file through these few calls, so one code path opens a path or a
URL. A local path keeps its old, fast means (the OS file, mmap, os.pread); a URL
(http(s)://, s3://, hf://, anything fsspec knows) goes to tui.core.read.remote, which
fetches only the ranges asked for, through a block cache in memory and on disk.

    src = open_source(path_or_url)
    src.size, src.read_at(offset, n), src.fileobj()  # a seekable file for zipfile
"""

from __future__ import annotations

import os
import re
import stat as _stat
from typing import BinaryIO

from tui.core.errors import ModelFileError
from tui.core.read.bytesource import ByteSource, LocalSource

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(path: str) -> bool:
    """A URL (scheme://…) rather than a local path; file:// counts as local."""
    return bool(_URL.match(path)) and not path.startswith("file://")


def local_path(path: str) -> str:
    return path[len("file://"):] if path.startswith("file://") else path


def open_source(path: str) -> ByteSource:
    if is_url(path):
        from tui.core.read.remote import remote_source

        return remote_source(path)
    return LocalSource(local_path(path))


def fileobj(path: str) -> BinaryIO:
    return open_source(path).fileobj()


def size_of(path: str) -> int:
    return open_source(path).size


def kind(path: str) -> tuple[str, int]:
    """("dir" | "file" | "other", size in bytes) of a path or URL; ModelFileError if missing."""
    if is_url(path):
        from tui.core.read.remote import remote_kind

        return remote_kind(path)
    path = local_path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ModelFileError(path, "no such file or directory") from None
    except OSError as e:
        raise ModelFileError(path, e.strerror or str(e)) from None
    if _stat.S_ISDIR(st.st_mode):
        return "dir", 0
    return ("file" if _stat.S_ISREG(st.st_mode) else "other"), st.st_size


def listdir(path: str) -> list[str]:
    """Names (not paths) in a folder or under a remote prefix."""
    if is_url(path):
        from tui.core.read.remote import remote_listdir

        return remote_listdir(path)
    try:
        return os.listdir(local_path(path))
    except OSError as e:
        raise ModelFileError(path, e.strerror or str(e)) from None


def join(folder: str, name: str) -> str:
    if is_url(folder):
        return folder.rstrip("/") + "/" + name
    return os.path.join(folder, name)


def dirname(path: str) -> str:
    if is_url(path):
        return path.rstrip("/").rsplit("/", 1)[0]
    return os.path.dirname(os.path.abspath(path))


def basename(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1] if is_url(path) else os.path.basename(path)


def isfile(path: str) -> bool:
    if is_url(path):
        try:
            return kind(path)[0] == "file"
        except ModelFileError:
            return False
    return os.path.isfile(local_path(path))


def read_all(path: str, limit: int) -> bytes:
    """A whole small file (an index, DCP .metadata); refuses one larger than `limit`."""
    src = open_source(path)
    if src.size > limit:
        raise ModelFileError(path, f"is larger than {limit >> 20} MB")
    return src.read_at(0, src.size)
