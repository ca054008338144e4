"""A cheap look at a path before the app starts: can it be a model file at all?

Reads at most 512 bytes. `modeltree missing.pth` then fails on the command line with
one line, instead of opening the full-screen app on an error box. `read_head` and
`head_kind` are also how `open_model` picks the container.
"""

from __future__ import annotations

import os

from tui.core.errors import ModelFileError
from tui.core.read.containers import PICKLE_OPCODES, is_zip
from tui.core.read.safetensors import is_safetensors
from tui.core.read.source import fileobj, is_url, kind


def probe(path: str) -> None:
    """Raise ModelFileError if `path` can't be a model file, directory or index."""
    what, size = kind(path)
    if is_url(path):  # one request for the object's info: a 404 or 403 is one line here too
        return
    if what == "dir":
        if not os.access(path, os.R_OK | os.X_OK):
            raise ModelFileError(path, "permission denied")
        return
    if what != "file":
        raise ModelFileError(path, "not a regular file")
    head_kind(path, read_head(path), size)


def read_head(path: str) -> bytes:
    """The first 512 bytes of a file or URL (a tar's magic is at 257)."""
    try:
        with fileobj(path) as f:
            return f.read(512)
    except OSError as e:
        raise ModelFileError(path, e.strerror or str(e)) from None


def head_kind(path: str, head: bytes, size: int) -> str:
    """'index', 'zip', 'safetensors' or 'pickle' (a legacy tar too) by the file's name
    and first bytes."""
    if not head:
        raise ModelFileError(path, "the file is empty")
    if path.endswith(".index.json"):
        return "index"
    if is_zip(head):
        return "zip"
    if is_safetensors(head, size):
        return "safetensors"
    # torch.load reads any other file as a legacy tar or a pickle, whatever its opcode.
    if head[0] in PICKLE_OPCODES or head[257:262] == b"ustar":
        return "pickle"
    raise ModelFileError(path, "not a PyTorch or safetensors file")
