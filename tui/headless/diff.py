"""`modeltree A B --diff [--json] [--values]`: what differs between two files.

Exit codes follow diff(1): 0 the structures match (same names, shapes and dtypes),
1 they differ, 2 trouble (a file can't be read).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from tui.core.diff import Diff, DiffEntry, compare
from tui.core.errors import ModelFileError
from tui.core.formats import kind_label
from tui.core.surgery import Surgery


def main(args: argparse.Namespace) -> int:
    from tui.core.read.reader import open_model

    try:
        a = open_model(args.file, key=args.key)
        b = open_model(args.other)
        d = compare(a, b)
        if args.values:
            from tui.core.diff_values import fill_values

            fill_values(d)
    except ModelFileError as e:
        print(f"modeltree: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("modeltree: interrupted", file=sys.stderr)
        return 2
    try:
        if args.json:
            json.dump(to_json(d), sys.stdout, indent=1)
            sys.stdout.write("\n")
        else:
            sys.stdout.write(to_text(d))
    except BrokenPipeError:
        pass
    return 0 if d.structures_match else 1


def surgery_args(s: Surgery) -> str:
    """The command-line flags that apply `s`."""
    parts = [f"--rename '{old}={new}'" for old, new in s.renames]
    parts += [f"--drop '{p}'" for p in s.drops]
    if s.extract:
        parts.append(f"--extract '{s.extract}'")
    return " ".join(parts)


def _num(x: float | None) -> Any:
    if x is None:
        return None
    return x if math.isfinite(x) else str(x)


def _values(e: DiffEntry) -> dict:
    return {"name": e.name, "bitwise_equal": e.bitwise_equal, "max_abs_diff": _num(e.max_abs),
            "rel_l2": _num(e.rel_l2)}


def to_json(d: Diff) -> dict:
    doc: dict[str, Any] = {
        "a": d.a.path, "b": d.b.path, "structures_match": d.structures_match,
        "same": [e.name for e in d.of("same")],
        "only_a": [e.name for e in d.of("only_a")],
        "only_b": [e.name for e in d.of("only_b")],
        "mismatched": [{"name": e.name, "shape_a": list(e.a.shape), "shape_b": list(e.b.shape),
                        "dtype_a": e.a.dtype, "dtype_b": e.b.dtype} for e in d.of("mismatch")],
    }
    if d.values_compared:
        doc["changed"] = [e.name for e in d.of("changed")]
        doc["values"] = [_values(e) for e in d.entries if e.bitwise_equal is not None]
    if d.load is not None:
        r = d.load
        doc["load_state_dict"] = {
            "model": r.model_side, "class": r.class_name,
            "missing_keys": r.missing, "unexpected_keys": r.unexpected,
            "size_mismatch": [{"name": k, "shape_checkpoint": list(c), "shape_model": list(m)}
                              for k, c, m in r.size_mismatch],
            "message": r.message(),
            "proposed": surgery_args(r.proposal) if r.proposal else None,
        }
    return doc


def _shape(e: DiffEntry, side: str) -> str:
    t = e.a if side == "a" else e.b
    return f"{list(t.shape)} {t.dtype}" if t is not None else "—"


def to_text(d: Diff) -> str:
    lines = [f"A: {d.a.path} ({kind_label(d.a.format)}, {len(d.a.tensors)} tensors)",
             f"B: {d.b.path} ({kind_label(d.b.format)}, {len(d.b.tensors)} tensors)"]
    for status, title in (("only_a", "only in A"), ("only_b", "only in B")):
        got = d.of(status)
        if got:
            lines.append(f"{title} ({len(got)}):")
            lines += [f"  {e.name}  {_shape(e, status[-1])}" for e in got]
    got = d.of("mismatch")
    if got:
        lines.append(f"shape/dtype mismatch ({len(got)}):")
        lines += [f"  {e.name}  A {_shape(e, 'a')}  B {_shape(e, 'b')}" for e in got]
    if d.values_compared:
        got = d.of("changed")
        if got:
            lines.append(f"values changed ({len(got)}):")
            lines += [f"  {e.name}  max|a-b| {e.max_abs:.6g}  relative L2 {e.rel_l2:.6g}" for e in got]
        equal = sum(1 for e in d.entries if e.bitwise_equal)
        lines.append(f"same: {len(d.of('same'))} tensors, bitwise equal: {equal}")
    else:
        lines.append(f"same shape and dtype: {len(d.of('same'))} tensors")
    if d.load is not None:
        r = d.load
        model = "A" if r.model_side == "a" else "B"
        lines.append(f"load_state_dict ({model} is the model, {r.class_name}):")
        lines.append("  loads with strict=True" if r.ok else "  " + r.message().replace("\n", "\n  "))
        if r.proposal:
            lines.append(f"  proposed fix: {surgery_args(r.proposal)}")
    lines.append("structures match" if d.structures_match else "structures differ")
    return "\n".join(lines) + "\n"
