"""The --json document: the facts torch itself would report, plus warnings."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import fields
from operator import attrgetter
from typing import Any, TextIO

from tui.core.composition import devices
from tui.core.model import ModelFile, ModuleNode, TensorInfo, ValueNode

_str = json.encoder.encode_basestring_ascii  # what json.dumps itself writes a str with (C)
_HEAD = '{"name": '  # how each module's and tensor's JSON begins


class Encoded(list):
    """A list whose items are already JSON text (to_json(encoded=True)): write_json writes
    them as they are. Only write_json reads it; json.dumps would quote the texts."""


def _tensor(t: TensorInfo, persistent: bool | None = None) -> dict[str, Any]:
    """What the JSON says of a tensor: the one description (the fast writer encodes it)."""
    lazy = t.storage is None and t.note.startswith("uninitialized")
    d: dict[str, Any] = {
        "name": t.name, "shape": None if lazy else list(t.shape), "dtype": t.dtype,
        "numel": None if lazy else t.numel,
        "requires_grad": t.requires_grad, "kind": t.kind, "aliases": t.aliases,
        "device": t.device, "nbytes": t.nbytes,
    }
    if t.quantized:
        d["quantized"] = t.quantized
    if t.note:
        d["note"] = t.note
    if t.layout != "strided":
        d["layout"] = t.layout
    if t.inferred:
        d["inferred"] = True  # told from its name or dtype: the file has no architecture
    if persistent is not None:  # buffers only
        d["persistent"] = persistent
    return d


# The fields _tensor's text after the name may depend on: every TensorInfo field but these
# (a tensor with aliases or without a storage is encoded whole), so a new field counts by
# default; test_report_json changes each field in turn and compares with json.dumps. Keys
# compare with ==: fields hold their declared types (a requires_grad of 1 would pass as True).
_NOT_SHOWN = {"names", "storage", "storage_offset", "stride", "qparams",
              "original_requires_grad", "uid", "param_index"}
_SHOWN = attrgetter(*(f.name for f in fields(TensorInfo) if f.name not in _NOT_SHOWN))


def _tensor_lines(tensors: Iterable[TensorInfo], non_persistent: set[str] | None,
                  line: Callable[[Any], str]) -> Encoded:
    """Each tensor's JSON text, exactly json.dumps(_tensor(t)) without building it: after
    the name the text depends only on the _SHOWN fields, so _tensor is built and encoded
    once per distinct set of them (a handful on a 10,000-tensor model)."""
    out = Encoded()
    tails: dict[Any, str] = {}
    for t in tensors:
        names = t.names
        name = names[0]
        persistent = None if non_persistent is None else name not in non_persistent
        key = (_SHOWN(t), persistent) \
            if len(names) == 1 and t.storage is not None and type(name) is str else None
        tail = tails.get(key)
        if tail is not None:
            out.append(f"{_HEAD}{_str(name)}{tail}")
            continue
        text = line(_tensor(t, persistent))
        out.append(text)
        head = f"{_HEAD}{_str(name)}" if key is not None else None
        if head is not None and text.startswith(head):
            tails[key] = text[len(head):]
    return out


def _module(n: ModuleNode) -> dict[str, Any]:
    return {"name": n.name, "type": n.type, "extra_repr": n.extra_repr, "attributes": n.attributes}


def _module_line(n: ModuleNode, line: Callable[[Any], str]) -> str:
    """json.dumps(_module(n)) without the dict (test_report_json checks they agree)."""
    tp, a = n.type, n.attributes
    return (f'{_HEAD}{_str(n.name)}, "type": {_str(tp) if type(tp) is str else line(tp)}, '
            f'"extra_repr": {_str(n.extra_repr)}, "attributes": {line(a) if a else "{}"}}}')


def _values(v: ValueNode, depth: int = 0) -> dict[str, Any]:
    out: dict[str, Any] = {"key": v.key, "type": v.type, "summary": v.summary}
    if v.children and depth < 6:
        out["children"] = [_values(c, depth + 1) for c in v.children[:200]]
    return out


def to_json(mf: ModelFile, *, encoded: bool = False) -> dict[str, Any]:
    """The document. encoded=True: "modules", "parameters" and "buffers" are Encoded lists
    (each item's JSON text, no dict built: what --json writes, 3x faster on 10k tensors)."""
    nodes = list(mf.root.walk()) if mf.root else []
    dev = devices(mf)
    non_persistent = {n.qualify(b) for n in nodes for b in n.non_persistent}
    c = mf.totals
    if encoded:
        line = _line_encoder()
        modules: list = Encoded(_module_line(n, line) for n in nodes)
        params: list = _tensor_lines(mf.parameters(), None, line)
        buffers: list = _tensor_lines(mf.buffers(), non_persistent, line)
    else:
        modules = [_module(n) for n in nodes]
        params = [_tensor(t) for t in mf.parameters()]
        buffers = [_tensor(t, t.name not in non_persistent) for t in mf.buffers()]
    return {
        "file": mf.path,
        "format": mf.format,
        "container": mf.container,
        "model_key": mf.model_key,
        "model_keys": mf.model_keys,
        "requires_grad_stored": mf.requires_grad_stored,
        "freeze_plan": mf.freeze_plan,
        "devices": dev.storages,
        "needs_map_location": dev.needs_map_location,
        "modules": modules,
        "parameters": params,
        "buffers": buffers,
        "totals": {
            "parameters": c.numel, "trainable": c.trainable, "frozen": c.frozen,
            "unknown": c.unknown, "tensors": c.tensors, "parameter_bytes": c.nbytes,
            "buffers": c.buffer_numel, "buffer_bytes": c.buffer_nbytes, "file_size": mf.file_size,
            # no architecture: parameters and buffers told apart by name and dtype only
            "inferred": any(t.inferred for t in mf.tensors),
        },
        "warnings": [{"severity": w.severity, "callable": w.callable, "detail": w.detail,
                      "where": w.where} for w in mf.warnings],
        "values": _values(mf.values),
    }


def write_json(doc: dict, out: TextIO) -> None:
    """One top-level key per line, lists one item per line. Each line goes through the
    C encoder; json.dump(indent=...) would use the pure-Python one (5x slower on 10k tensors)."""
    out.write("{\n")
    last = len(doc) - 1
    line = _line_encoder()
    for i, (k, v) in enumerate(doc.items()):
        end = ",\n" if i < last else "\n"
        if isinstance(v, list) and v:
            out.write(f" {json.dumps(k)}: [\n  ")
            out.write(",\n  ".join(v if type(v) is Encoded else map(line, v)))
            out.write(f"\n ]{end}")
        else:
            out.write(f" {json.dumps(k)}: {json.dumps(v)}{end}")
    out.write("}\n")


def _line_encoder() -> Callable[[Any], str]:
    """json.dumps without its per-call set-up (it builds a C encoder each call: a third of
    the cost of 15,000 one-line items). Same output as json.dumps with default settings."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return json.dumps
    enc = json.JSONEncoder()
    c = make({}, enc.default, json.encoder.encode_basestring_ascii, None, ": ", ", ",
             False, False, True)
    return lambda obj: "".join(c(obj, 0))
