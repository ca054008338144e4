"""Freeze plans: which tensors are trainable, kept beside a weights file."""

from __future__ import annotations

from tui.core.model import ModelFile


def apply_plan_beside(mf: ModelFile) -> None:
    """Placeholder hook point; the freeze-plan reader is added with the writers."""
    return None
