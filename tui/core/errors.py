"""The one error type a user can cause by pointing modeltree at a bad file or path."""

from __future__ import annotations

import re

_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/@]*@")


def public(path: str) -> str:
    """A path as it may be shown: a URL without user info or query (credentials, signatures)."""
    if "://" not in path:
        return path
    return _USERINFO.sub(r"\1", path).split("?", 1)[0]


class ModelFileError(Exception):
    """A file that can't be read or written. `str()` is one line for the user."""

    def __init__(self, path: str, problem: str) -> None:
        path = public(path)
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem
