"""The one error type a user can cause by pointing modeltree at a bad file or path."""

from __future__ import annotations


class ModelFileError(Exception):
    """A file that can't be read or written. `str()` is one line for the user."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem
