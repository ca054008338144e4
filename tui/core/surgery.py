"""Checkpoint surgery as data: rename by prefix, drop, extract a subtree, cast.

A `Surgery` is immutable; the Editor keeps the current one (undo/redo swap whole
values) and the writers ask it what each tensor name becomes:

    s = Surgery(renames=(("module.", ""),), drops=("fc",), dtype="bfloat16")
    s.out_name("module.fc.weight")  # None: dropped
    s.out_name("module.conv.weight")  # "conv.weight"

Order, always: drops and extract look at the names as stored; renames then apply in
the order given to what extract left. A cast touches floating tensors only.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass, replace

CAST_DTYPES = ("float16", "bfloat16", "float32")
# What a cast may convert from (complex stays: Module.to(float dtype) leaves it too).
CASTABLE = frozenset({"float64", "float32", "float16", "bfloat16", "float8_e4m3fn", "float8_e5m2"})


class SurgeryError(ValueError):
    """An edit that can't apply (matches nothing, names collide): the message says why."""


def matches(name: str, pattern: str) -> bool:
    """A glob over the full name; a plain module name also means its subtree."""
    if any(ch in pattern for ch in "*?["):
        return fnmatch.fnmatchcase(name, pattern)
    return name == pattern or name.startswith(pattern + ".")


def parse_rename(spec: str) -> tuple[str, str]:
    """'module.=' → ('module.', ''); '=model.' → ('', 'model.')."""
    if "=" not in spec:
        raise SurgeryError(f"--rename {spec!r}: write OLD=NEW (module.= strips, =model. adds)")
    old, new = spec.split("=", 1)
    if not old and not new:
        raise SurgeryError("--rename '=': give a prefix to strip or to add")
    return old, new


@dataclass(frozen=True)
class Surgery:
    renames: tuple[tuple[str, str], ...] = ()
    drops: tuple[str, ...] = ()  # globs or module names, as given
    extract: str | None = None  # a module's qualified name
    dtype: str | None = None  # one of CAST_DTYPES

    @property
    def empty(self) -> bool:
        return not (self.renames or self.drops or self.extract or self.dtype)

    @property
    def renames_names(self) -> bool:
        """Anything that changes the set of names (not only the values)."""
        return bool(self.renames or self.drops or self.extract)

    def dropped(self, name: str) -> bool:
        return any(matches(name, p) for p in self.drops)

    def out_name(self, name: str) -> str | None:
        """What `name` is called in the output; None when it is not written."""
        if self.dropped(name):
            return None
        if self.extract:
            if not name.startswith(self.extract + "."):
                return None
            name = name[len(self.extract) + 1:]
        for old, new in self.renames:
            if name.startswith(old):
                name = new + name[len(old):]
        return name

    def cast_to(self, dtype: str) -> str:
        """The dtype a tensor of `dtype` is written as."""
        return self.dtype if self.dtype and dtype in CASTABLE else dtype

    def describe(self) -> list[str]:
        """One short phrase per edit, for summaries and the UI."""
        out = [f"rename {old or '(start)'} → {new or '(nothing)'}" for old, new in self.renames]
        out += [f"drop {p}" for p in self.drops]
        if self.extract:
            out.append(f"extract {self.extract}")
        if self.dtype:
            out.append(f"cast to {self.dtype}")
        return out

    # -- building new values -------------------------------------------------------
    def with_rename(self, old: str, new: str) -> Surgery:
        return replace(self, renames=(*self.renames, (old, new)))

    def with_drop(self, pattern: str) -> Surgery:
        return self if pattern in self.drops else replace(self, drops=(*self.drops, pattern))

    def without_drop(self, pattern: str) -> Surgery:
        return replace(self, drops=tuple(p for p in self.drops if p != pattern))

    def with_extract(self, prefix: str | None) -> Surgery:
        return replace(self, extract=prefix or None)

    def with_dtype(self, dtype: str | None) -> Surgery:
        if dtype is not None and dtype not in CAST_DTYPES:
            raise SurgeryError(f"can't cast to {dtype!r} (float16, bfloat16 or float32)")
        return replace(self, dtype=dtype)


def name_map(s: Surgery, names: Iterable[str]) -> dict[str, str | None]:
    """name → output name (None: not written). Refuses two names becoming one."""
    out: dict[str, str | None] = {}
    back: dict[str, str] = {}
    for n in names:
        new = s.out_name(n)
        out[n] = new
        if new is None:
            continue
        if new == "":
            raise SurgeryError(f"{n} would be renamed to an empty name")
        other = back.setdefault(new, n)
        if other != n:
            raise SurgeryError(f"{other} and {n} would both be written as {new}")
    return out


def check(s: Surgery, names: list[str]) -> None:
    """Every part of the surgery applies to something in `names`; raises SurgeryError."""
    for p in s.drops:
        if not any(matches(n, p) for n in names):
            raise SurgeryError(f"--drop {p!r} matches no tensor")
    kept = names  # renames are checked against what extract leaves, drops aside
    if s.extract:
        kept = [n[len(s.extract) + 1:] for n in kept if n.startswith(s.extract + ".")]
        if not kept:
            raise SurgeryError(f"--extract {s.extract!r}: no tensor under that module")
    if all(s.out_name(n) is None for n in names):
        raise SurgeryError("that would leave nothing to save")
    for old, new in s.renames:
        if old and not any(n.startswith(old) for n in kept):
            raise SurgeryError(f"--rename {old}={new}: no tensor name starts with {old!r}")
        kept = [new + n[len(old):] if n.startswith(old) else n for n in kept]
    name_map(s, names)


def module_note(s: Surgery, prefix: str) -> str:
    """How the tree shows a module under the surgery: dropped, left out, or renamed."""
    if not s.renames_names or not prefix:
        return ""
    if any(matches(prefix, p) for p in s.drops):
        return "✗ dropped"
    if s.extract and not (prefix == s.extract or prefix.startswith(s.extract + ".")):
        return "" if s.extract.startswith(prefix + ".") else "✗ not extracted"
    probe = s.out_name(prefix + ".\0")
    if probe is None:
        return ""
    new = probe[:-2]
    return "" if new == prefix else f"→ {new or '(top level)'}"


def tensor_note(s: Surgery, name: str, dtype: str) -> str:
    """How the table shows one tensor: dropped, renamed, cast."""
    out = []
    if s.renames_names:
        new = s.out_name(name)
        if new is None:
            return "✗ not saved"
        if new != name:
            out.append(f"→ {new}")
    if s.dtype and s.cast_to(dtype) != dtype:
        out.append(f"→ {s.dtype}")
    return ", ".join(out)


def preview(s: Surgery, names: list[str]) -> dict:
    """What `--json` shows before saving: the edits, and every name that changes."""
    changed = {n: new for n, new in name_map(s, names).items() if new != n}
    return {"renames": [f"{old}={new}" for old, new in s.renames], "drops": list(s.drops),
            "extract": s.extract, "dtype": s.dtype, "names": changed}
