"""TorchScript archives read structurally: no torch, nothing from the archive run.

An archive (`torch.jit.save`) is a torch zip whose `data.pkl` holds objects of
`__torch__.` classes (NEWOBJ + BUILD of their attributes, tensors as in torch.save),
plus `constants.pkl` and one Python-like source file per class under `code/`. Each
class there lists which attributes are parameters and buffers:

    class Conv2d(Module):
      __parameters__ = ["weight", "bias", ]
      __buffers__ = []

So the module tree is data.pkl's object graph, typed by those lists (how Netron reads
archives). `torch.jit.load` compiles that code and runs any `__setstate__` it defines:
the scan reports such archives as suspicious, and every archive as holding code.
"""

from __future__ import annotations

import ast
import re
import zipfile
from dataclasses import dataclass, field
from typing import Any

from tui.core.errors import ModelFileError
from tui.core.model import Finding, ModuleNode
from tui.core.read.build import TreeBuilder
from tui.core.read.containers import TorchSource, Zipped, open_zip
from tui.core.read.loading import load
from tui.core.read.records import ParamRec, StandIn, TensorRec

MAX_CODE = 64 << 20  # bytes of code/ read in all
_MANGLE = re.compile(r"___torch_mangle_\d+\.")
_CLASS = re.compile(r"^class\s+(\w+)\s*(?:\(|:)")
_LIST = re.compile(r"^\s+(__parameters__|__buffers__)\s*=\s*(\[.*\])\s*$")
_SETSTATE = re.compile(r"^\s+def\s+__setstate__\s*\(")


@dataclass
class ScriptClass:
    parameters: list[str] = field(default_factory=list)
    buffers: list[str] = field(default_factory=list)
    setstate: bool = False
    source: str = ""  # the code file it is defined in
    text: str = ""  # that file's text (for layer settings)


def demangle(qual: str) -> str:
    """`__torch__.torch.nn.modules.conv.___torch_mangle_6.Conv1d` → `torch.nn.modules.conv.Conv1d`."""
    return _MANGLE.sub("", qual.removeprefix("__torch__."))


def read_classes(path: str, z: zipfile.ZipFile, prefix: str) -> dict[str, ScriptClass]:
    """Qualified class name → what its code file says about it (text only, never run)."""
    out: dict[str, ScriptClass] = {}
    budget = MAX_CODE
    for info in z.infolist():
        name = info.filename
        if not (name.startswith(prefix + "code/") and name.endswith(".py")):
            continue
        budget -= info.file_size
        if budget < 0:
            raise ModelFileError(path, "TorchScript archive with more than 64 MB of code")
        try:
            text = z.read(info).decode("utf-8", "replace")
        except Exception as e:  # noqa: BLE001 - bad CRC, unknown compression…
            raise ModelFileError(path, f"can't read {name} ({type(e).__name__})") from None
        module = name[len(prefix) + 5:-3].replace("/", ".")
        current: ScriptClass | None = None
        for line in text.splitlines():
            m = _CLASS.match(line)
            if m:
                current = out.setdefault(f"{module}.{m.group(1)}", ScriptClass(source=name, text=text))
                continue
            if current is None:
                continue
            m = _LIST.match(line)
            if m:
                try:
                    names = ast.literal_eval(m.group(2))
                except (ValueError, SyntaxError, MemoryError, RecursionError):
                    names = []
                setattr(current, m.group(1).strip("_"), [str(n) for n in names])
            elif _SETSTATE.match(line):
                current.setstate = True
    return out


def open_script(path: str, zipped: Zipped) -> tuple[TorchSource, dict]:
    """The archive's data.pkl (read like any torch pickle) and its class definitions."""
    prefix = zipped.prefix
    with zipfile.ZipFile(path) as again:  # not the hot path: zipfile reads the code files
        classes = read_classes(path, again, prefix)
        extra = []
        if prefix + "constants.pkl" in again.namelist():
            extra.append(load(path, again.read(prefix + "constants.pkl")))
    src = open_zip(path, zipped)
    src.extra += extra
    return src, classes


def script_findings(src: TorchSource, classes: dict[str, ScriptClass]) -> list[Finding]:
    """What torch.jit.load (and torch.load, which hands archives to it) would run."""
    # __torch__ classes are defined by the archive's code, not imported: no 'missing' notes.
    out = [f for f in src.findings()
           if f.severity == "danger" or not f.callable.startswith("__torch__")]
    for qual, c in classes.items():
        if c.setstate:
            out.append(Finding("danger", f"{qual}.__setstate__", f"TorchScript code in {c.source} "
                               "that torch.jit.load runs while loading (modeltree never runs it)"))
    out.append(Finding("info", "TorchScript code", f"the archive holds the code of {len(classes)} "
                       "class(es) (code/…): it runs when the loaded model is called"))
    return out


def script_tree(path: str, root_obj: Any, classes: dict[str, ScriptClass]
                ) -> tuple[ModuleNode, TreeBuilder, list[tuple[str, Any]]]:
    """The module tree, and (name, tensor record) in state_dict() order."""
    b = TreeBuilder(path)
    if not isinstance(root_obj, StandIn):
        raise ModelFileError(path, "TorchScript archive whose data.pkl holds no module")
    root = b.node("", "", demangle(_qual(root_obj)), None)
    stack: list[tuple[Any, ModuleNode]] = [(root_obj, root)]
    order: list[tuple[Any, ModuleNode, dict]] = []
    seen = {id(root_obj)}
    codes = {c.source.split("/", 1)[-1]: c.text for c in classes.values()}
    recs: dict[int, Any] = {}  # id(TensorInfo) → its record, for the writers

    def info(v: Any, name: str, kind: str) -> Any:
        t = b.info(v, name, kind)
        recs.setdefault(id(t), v)
        return t

    while stack:
        obj, node = stack.pop()
        state = obj._mt_state if isinstance(obj._mt_state, dict) else {}
        cls = classes.get(_qual(obj), ScriptClass())
        order.append((obj, node, state))
        _settings(_qual(obj), state, node, codes)
        params = set(cls.parameters)
        for k, v in state.items():
            if str(k) in params and isinstance(v, (TensorRec, ParamRec)):
                node.params.append((str(k), info(v, node.qualify(str(k)), "parameter")))
            elif str(k) in params and v is None:
                node.none_params.append(str(k))
        kids = []
        for k, v in state.items():
            if isinstance(v, StandIn) and "training" in (v._mt_state or {}) and id(v) not in seen:
                seen.add(id(v))
                kids.append((v, b.node(node.qualify(str(k)), str(k), demangle(_qual(v)), node)))
        stack.extend(reversed(kids))
    entries: list[tuple[str, Any]] = []
    for obj, node, state in order:  # named_buffers() after every parameter
        cls = classes.get(_qual(obj), ScriptClass())
        bufs = set(cls.buffers)
        for k, v in state.items():
            if str(k) in bufs and isinstance(v, (TensorRec, ParamRec)):
                node.buffers.append((str(k), info(v, node.qualify(str(k)), "buffer")))
    for node in root.walk():  # state_dict(): per module its parameters, then its buffers
        entries += [(node.qualify(k), recs[id(t)]) for k, t in node.params + node.buffers]
    return root, b, entries


def _qual(obj: Any) -> str:
    cls = type(obj)
    return f"{cls._mt_module}.{cls._mt_name}"


def _settings(qual: str, state: dict, node: ModuleNode, codes: dict[str, str]) -> None:
    """node.extra_repr/attributes from the class's constants (its code) and the plain
    attribute values data.pkl holds for the object."""
    from tui.core.read.layer_repr import attributes_json, extra_repr
    from tui.core.read.script_attrs import class_fields, code_path

    attrs, fields, params = class_fields(codes.get(code_path(qual), ""), qual.rsplit(".", 1)[-1])
    for name in fields:
        v = _plain(state.get(name))
        if v is None or isinstance(v, (bool, int, float, str, tuple, list)):
            attrs[name] = v
    attrs["_parameters"] = {p: state.get(p) for p in params}
    node.extra_repr = extra_repr(qual, attrs)
    node.attributes = attributes_json({k: v for k, v in attrs.items() if not k.startswith("_")})


def _plain(v: Any) -> Any:
    """TorchScript pickles typed lists as torch.jit._pickle.build_intlist([...]): the list."""
    if isinstance(v, StandIn) and type(v)._mt_module == "torch.jit._pickle" and v._mt_args:
        return v._mt_args[0]
    return v
