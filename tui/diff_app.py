"""`modeltree A B`: the diff view (filled in by the UI work)."""
from __future__ import annotations


def run_diff_app(a: str, b: str, key: str | None = None) -> int:
    raise NotImplementedError
