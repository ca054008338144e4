"""A TorchScript module's attributes for layer_repr, from its archive's code files.

A scripted class keeps torch.nn's `__constants__` (in_features, kernel_size, eps, …) only
in its code: `  out_channels : Final[int] = 16`. They are read as literals (never run).
"""

from __future__ import annotations

import ast
import re
from typing import Any

_FINAL = re.compile(r"^  (\w+) : Final\[.*\] = (.+)$")
_FIELD = re.compile(r"^  (\w+) : (bool|int|float|str|Optional\[(?:int|float|str|bool)\]|"
                    r"List\[(?:int|float)\]|Tuple\[[\w, ]+\])$")
_MANGLE = re.compile(r"\.___torch_mangle_\d+")


def clean_type(qualname: str) -> str:
    """`__torch__.torch.nn.modules.conv.___torch_mangle_0.Conv2d` → `torch.nn.modules.conv.Conv2d`."""
    return _MANGLE.sub("", qualname.removeprefix("__torch__."))


def code_path(qualname: str) -> str:
    """The archive entry (under the top folder) holding a scripted class's code."""
    return "code/" + "/".join(qualname.split(".")[:-1]) + ".py"


def class_fields(source: str, class_name: str) -> tuple[dict[str, Any], list[str], list[str]]:
    """(constants from `name : Final[T] = literal`, other attribute names, __parameters__)
    of `class_name` in a code file."""
    consts: dict[str, Any] = {}
    fields: list[str] = []
    params: list[str] = []
    inside = False
    for line in source.splitlines():
        if line.startswith("class "):
            inside = line.startswith(f"class {class_name}(")
            continue
        if not inside or not line.startswith("  ") or line.startswith("   "):
            continue
        m = _FINAL.match(line)
        if m:
            try:
                consts[m.group(1)] = ast.literal_eval(m.group(2))
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                pass
        elif line.startswith("  __parameters__ = "):
            params = re.findall(r'"(\w+)"', line)
        else:
            f = _FIELD.match(line)
            if f and not f.group(1).startswith("_"):
                fields.append(f.group(1))
    return consts, fields, params
