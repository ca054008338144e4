"""HOSTILE builders: pickles that run ``os.system('touch MARKER')`` when unpickled.

They exist to prove that the structural reader never executes them. NEVER pass their output to
``torch.load(weights_only=False)``, ``pickle.load`` or anything else that executes pickles.
Tests helper, not a test file; import through the ``torch_models`` façade.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch_builders_base import Built, _dir, _save, _seeded
from torch_builders_modules import SmallMLP


class SystemCallPayload:
    """Pickles as ``os.system(command)`` (GLOBAL ``posix system`` on Linux).

    Unpickling it RUNS the command. Only for the hostile builders.
    """

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[str]]:
        return (os.system, (self.command,))


def _payload(marker: Path) -> SystemCallPayload:
    return SystemCallPayload(f"touch {shlex.quote(str(Path(marker)))}")


# --------------------------------------------------------------------------------------------
# hostile payloads: NEVER load these with anything that executes pickles


def build_hostile_top_level(target: Path, marker: Path) -> Built:
    """HOSTILE. ``torch.save(payload)``: the whole object is ``os.system('touch MARKER')``:
    ``hostile_top.pth``. Loading it with pickle creates ``marker``."""
    return _save(_payload(marker), _dir(target) / "hostile_top.pth")


def build_hostile_module_attr(target: Path, marker: Path) -> Built:
    """HOSTILE. A full SmallMLP with the payload as a plain attribute (in its ``__dict__``):
    ``hostile_module_attr.pth``."""
    with _seeded():
        model = SmallMLP()
    model.payload = _payload(marker)
    return _save(model, _dir(target) / "hostile_module_attr.pth")


def build_hostile_state_dict_value(target: Path, marker: Path) -> Built:
    """HOSTILE. A SmallMLP state_dict with the payload as value of key ``evil``:
    ``hostile_state_dict.pth``."""
    with _seeded():
        state = SmallMLP().state_dict()
    state["evil"] = _payload(marker)
    return _save(state, _dir(target) / "hostile_state_dict.pth")


def build_hostile_checkpoint_extra(target: Path, marker: Path) -> Built:
    """HOSTILE. A tutorial-style checkpoint whose extra key ``config`` holds the payload:
    ``hostile_checkpoint.pth``."""
    with _seeded():
        state = SmallMLP().state_dict()
    obj = {"epoch": 1, "model_state_dict": state, "loss": 0.5, "config": _payload(marker)}
    return _save(obj, _dir(target) / "hostile_checkpoint.pth")


def build_hostile_legacy(target: Path, marker: Path) -> Built:
    """HOSTILE. A SmallMLP state_dict with the payload under ``evil``, in the legacy non-zip
    format: ``hostile_legacy.pth``."""
    with _seeded():
        state = SmallMLP().state_dict()
    state["evil"] = _payload(marker)
