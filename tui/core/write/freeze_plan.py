"""Freeze plans: which tensors are trainable, kept beside a weights file.

A state_dict or safetensors file can't store requires_grad. A plan is a small JSON
beside it (`weights.pth` → `weights.freeze.json`):

    {"modeltree_freeze_plan": 1, "source": "entire_model.pth", "model_key": "",
     "trainable": {"fc.weight": true, "sequential.0.weight": false, ...}}

It is applied automatically when the weights file is opened, and `plan_snippet`
gives the three lines of Python that apply it to a model in a training script.
"""

from __future__ import annotations

import json
import os

from tui.core.model import Finding, ModelFile
from tui.core.read.build import rollup

PLAN_KEY = "modeltree_freeze_plan"
PLAN_VERSION = 1
MAX_PLAN = 64 << 20


def plan_path(weights: str) -> str:
    """`dir/weights.pth` → `dir/weights.freeze.json` (a shard folder: `dir.freeze.json`)."""
    weights = weights.rstrip(os.sep) or weights
    if weights.endswith(".index.json"):
        return weights[: -len(".index.json")] + ".freeze.json"
    stem, ext = os.path.splitext(weights)
    return (stem if ext and not os.path.isdir(weights) else weights) + ".freeze.json"


def trainable_map(mf: ModelFile) -> dict[str, bool]:
    """Every name of every tensor whose flag is known (tied weights: all their names).
    Integer tensors (counters, buffers) can't require grad: a plan has nothing to say."""
    out: dict[str, bool] = {}
    for t in mf.tensors:
        if t.kind == "buffer" or t.requires_grad is None or not t.can_require_grad:
            continue
        for name in t.names:
            out[name] = bool(t.requires_grad)
    return out


def plan_document(mf: ModelFile, model_key: str = "") -> dict:
    """`model_key`: where the model sits in the file the plan goes beside ("" = all of it)."""
    return {PLAN_KEY: PLAN_VERSION, "source": os.path.basename(mf.path.rstrip(os.sep)),
            "model_key": model_key, "trainable": trainable_map(mf)}


def plan_bytes(mf: ModelFile, model_key: str = "") -> bytes:
    doc = plan_document(mf, model_key)
    return (json.dumps(doc, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


def write_plan(mf: ModelFile, weights_path: str, force: bool = False, model_key: str = "") -> str:
    """Write the plan beside `weights_path` atomically; returns the plan's path."""
    from tui.core.write.atomic import write_small

    path = plan_path(weights_path)
    write_small(path, plan_bytes(mf, model_key), force=force)
    return path


def read_plan(path: str) -> dict:
    """The parsed plan; ValueError (with a reason) if it isn't one."""
    if os.path.getsize(path) > MAX_PLAN:
        raise ValueError("too large")
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    if not isinstance(doc, dict) or doc.get(PLAN_KEY) != PLAN_VERSION:
        raise ValueError("not a modeltree freeze plan (version 1)")
    trainable = doc.get("trainable")
    if not isinstance(trainable, dict) or not all(isinstance(v, bool) for v in trainable.values()):
        raise ValueError("'trainable' must map names to true/false")
    return doc


def is_plan(path: str) -> bool:
    try:
        read_plan(path)
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return True


def apply_plan_beside(mf: ModelFile) -> None:
    """Weights without stored flags: take them from `<weights>.freeze.json` if present."""
    if mf.requires_grad_stored or mf.root is None:
        return
    path = plan_path(mf.path)
    if not os.path.isfile(path):
        return
    try:
        doc = read_plan(path)
    except (OSError, ValueError, UnicodeDecodeError) as e:
        mf.warnings.append(Finding("info", "freeze plan", f"{os.path.basename(path)} ignored: {e}"))
        return
    if (doc.get("model_key") or "") != (mf.model_key or ""):
        return  # a plan for another part of the checkpoint
    trainable: dict[str, bool] = doc["trainable"]
    hit = False
    for t in mf.tensors:
        if t.kind == "buffer" or not t.can_require_grad:
            continue
        for name in t.names:
            if name in trainable:
                t.requires_grad = t.original_requires_grad = trainable[name]
                hit = True
                break
    if hit:
        mf.freeze_plan = path
        rollup(mf.root)


def plan_snippet(mf: ModelFile) -> str:
    """Python that applies the current flags to a model built from the class code."""
    flags = {}
    for t in mf.tensors:
        if t.kind != "buffer" and t.can_require_grad:
            for name in t.names:
                flags[name] = t.requires_grad
    trainable = sorted(n for n, v in flags.items() if v is True)
    frozen = sorted(n for n, v in flags.items() if v is False)
    head = (f"# requires_grad as modeltree shows it for {os.path.basename(mf.path.rstrip(os.sep))}: "
            f"{len(trainable):,} trainable, {len(frozen):,} frozen")
    if any(v is None for v in flags.values()) or not flags:
        plan = {n: v for n, v in flags.items() if v is not None}
        return "\n".join([
            head + " (the others are left as they are)",
            "plan = {" + "".join(f"\n    {n!r}: {v}," for n, v in plan.items()) + ("\n}" if plan else "}"),
            "for name, p in model.named_parameters():",
            "    p.requires_grad = plan.get(name, p.requires_grad)",
        ]) + "\n"
    if len(trainable) <= len(frozen):
        return "\n".join([head, f"trainable = {_set(trainable)}",
                          "for name, p in model.named_parameters():",
                          "    p.requires_grad = name in trainable"]) + "\n"
    return "\n".join([head, f"frozen = {_set(frozen)}",
                      "for name, p in model.named_parameters():",
                      "    p.requires_grad = name not in frozen"]) + "\n"


def _set(names: list[str]) -> str:
    if not names:
        return "set()"
    if len(names) <= 3:
        return "{" + ", ".join(repr(n) for n in names) + "}"
    return "{\n" + "".join(f"    {n!r},\n" for n in names) + "}"
