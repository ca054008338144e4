"""A cheap look at a path before the app starts: can it be a model file at all?

Reads at most 512 bytes. `modeltree missing.pth` then fails on the command line with
one line, instead of opening the full-screen app on an error box.
"""

from __future__ import annotations

import os
import stat

from tui.core.errors import ModelFileError
from tui.core.read.containers import PICKLE_OPCODES, is_zip
from tui.core.read.safetensors import is_safetensors
from tui.core.read.source import is_url, kind


def probe(path: str) -> None:
    """Raise ModelFileError if `path` can't be a model file, directory or index."""
    if is_url(path):  # one request for the object's info: a 404 or 403 is one line here too
        kind(path)
        return
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ModelFileError(path, "no such file or directory") from None
    except OSError as e:
        raise ModelFileError(path, e.strerror or str(e)) from None
    if stat.S_ISDIR(st.st_mode):
        if not os.access(path, os.R_OK | os.X_OK):
            raise ModelFileError(path, "permission denied")
        return
    if not stat.S_ISREG(st.st_mode):
        raise ModelFileError(path, "not a regular file")
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as e:
        raise ModelFileError(path, e.strerror or str(e)) from None
    if not head:
        raise ModelFileError(path, "the file is empty")
    # torch.load reads any other file as a legacy tar or a pickle, whatever its opcode.
    if path.endswith(".index.json") or is_zip(head) or is_safetensors(head, st.st_size) \
            or head[0] in PICKLE_OPCODES or head[257:262] == b"ustar":
        return
    raise ModelFileError(path, "not a PyTorch or safetensors file")
