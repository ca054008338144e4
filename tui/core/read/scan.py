"""What a plain torch.load(weights_only=False) would run: an allowlist, not a blocklist.

The restricted unpickler never runs anything; it records every global the file names,
every call the pickle asks for (REDUCE, INST/OBJ with arguments, NEWOBJ_EX keywords,
objects made from the file then called) and everything that is code rather than data
(BUILD on a global, a data builtin converting an object, copyreg extension codes).
Here those records become Findings: 'danger' for every call whose callable is not on
the allowlist of pure data constructors (tui.core.read.allow) — with the callable's
qualified name, its constant arguments and where it sits —; 'info' naming each package
whose classes torch.load would import and instantiate (NEWOBJ + BUILD, how nn.Modules
and configs are pickled); 'unknown-class' for classes this machine doesn't have.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import io
import os
import pickletools
from collections import deque
from dataclasses import replace
from typing import Any

from tui.core.model import Finding
from tui.core.read.allow import QUIET_PACKAGES, is_safe_call
from tui.core.read.guard import brief
from tui.core.read.records import ParamRec, TensorRec, module_state, qualname

MAX_CALLS_SHOWN = 20
LOCATE_BUDGET = 200_000
STATIC_OPS = 2_000_000  # opcodes walked to list the globals of a pickle that won't load


def classify_global(module: str, name: str) -> str:
    """'safe' (calling it builds data), 'main' (a script's class), 'missing' (not
    installed here) or 'code' (calling it would run code)."""
    if is_safe_call(f"{module}.{name}", name):
        return "safe"
    if module == "__main__":
        return "main"
    top = module.split(".", 1)[0]
    if top in QUIET_PACKAGES:
        return "code"
    try:
        if importlib.util.find_spec(top) is not None:
            return "code"
        # `python` started in this folder would import it from here (e.g. a repo's package).
        if importlib.machinery.PathFinder.find_spec(top, [os.getcwd()]) is not None:
            return "code"
    except (ImportError, ValueError, OSError):
        pass
    return "missing"


def findings(read: Any) -> list[Finding]:
    """One Finding per call that is not data, per package imported, per class missing."""
    by_cls: dict[type, list[Any]] = {}
    for call in read.calls:
        by_cls.setdefault(type(call), []).append(call)
    out: list[Finding] = [Finding("danger", c, d) for c, d in read.suspect]
    objs: dict[int, Any] = {}  # finding index -> the object whose place in the file to show
    packages: dict[str, list[str]] = {}
    for qual, cls in read.globals.items():
        module, name = cls._mt_module, cls._mt_name
        kind = classify_global(module, name)
        made = by_cls.get(cls, [])
        # Called: REDUCE/INST/OBJ with arguments (they run __init__), NEWOBJ_EX keywords.
        called = [c for c in made if c.__dict__.get("_mt_init") or c._mt_kwargs]
        if "." in name and made and not called:
            called = made  # a dotted path reached through __new__ is a call all the same
        if qual == "builtins.getattr" and called and all(map(_benign_getattr, called)) \
                and not any(c.__dict__.get("_mt_called") for c in called):
            continue  # getattr(<module>, 'method'): how bound-method hooks pickle
        if kind != "safe" or "." in name:
            for c in called[:MAX_CALLS_SHOWN]:
                objs[len(out)] = c
                out.append(Finding("danger", qual, f"would call {describe_call(c)}"))
                for g in _handed(c):  # a callable passed on: partial(torch.load, …), …
                    objs[len(out)] = c
                    out.append(Finding("danger", g, f"handed to {qual}, which may call it"))
            if len(called) > MAX_CALLS_SHOWN:
                out.append(Finding("danger", qual, f"… and {len(called) - MAX_CALLS_SHOWN} more calls"))
        else:
            for c in called[:MAX_CALLS_SHOWN]:  # data constructor given an object from the file
                obj = _object_arg(c)
                if obj is not None:
                    objs[len(out)] = c
                    out.append(Finding("danger", qual, f"would pass a {obj} object made from the "
                                       f"file to {qual} (running that class's code)"))
        reused = [c for c in made if c.__dict__.get("_mt_called") and c not in called]
        for c in reused[:MAX_CALLS_SHOWN]:  # an object built from the file, then called
            objs[len(out)] = c
            out.append(Finding("danger", qual, f"would call a {qual} object made from the file: "
                               f"{describe_call(c)}"))
        if kind == "main":
            out.append(Finding("unknown-class", qual, "defined in a script or notebook (__main__): "
                               "torch.load needs that class's code"))
        elif kind == "missing":
            out.append(Finding("unknown-class", qual, f"package '{module.split('.')[0]}' is "
                               "not installed here: torch.load would fail"))
        elif module.split(".", 1)[0] not in QUIET_PACKAGES and kind != "safe" and not called:
            packages.setdefault(module.split(".", 1)[0], []).append(qual)
    for top, quals in packages.items():
        shown = ", ".join(quals[:3]) + (", …" if len(quals) > 3 else "")
        out.append(Finding("info", top, f"torch.load would import {top} (its code runs on "
                           f"import) to rebuild {shown}"))
    if objs:  # only then walk the graph (it can be large) to say where each one sits
        where = _locate(read.root)
        for i, obj in objs.items():
            out[i] = replace(out[i], where=where.get(id(obj), ""))
    return out


def static_findings(data: bytes, start: int = 0, context: str = "") -> list[Finding]:
    """The globals a pickle names, read from its opcodes alone (nothing unpickled): for a
    pickle that won't load, what torch.load would have imported and perhaps called
    before it got to the broken part. Every one off the allowlist is reported."""
    out: list[Finding] = []
    memo: dict[Any, Any] = {}
    seen: set[str] = set()
    why = context or "named in a pickle that does not read to its end"

    def add(module: Any, name: Any) -> None:
        qual = f"{module}.{name}"
        if qual in seen or len(out) >= 200:
            return
        seen.add(qual)
        if not isinstance(module, str) or not isinstance(name, str) or \
                not is_safe_call(qual, name):
            out.append(Finding("danger", qual, f"{why}: torch.load would import it and may call it"))

    # A light simulation of the unpickler's stack (strings only; anything else is None):
    # it stops where the real one would fail, so nothing after that point is reported.
    stack: list[Any] = []
    marks: list[int] = []
    try:
        ops = pickletools.genops(io.BytesIO(bytes(memoryview(data)[start:])))
        for i, (op, arg, _pos) in enumerate(ops):
            if i > STATIC_OPS or op.name == "STOP":
                break
            if op.name == "MARK":
                marks.append(len(stack))
                continue
            before = op.stack_before
            if pickletools.markobject in before:
                if not marks:
                    break
                del stack[marks.pop():]
                before = [b for b in before if b not in (pickletools.markobject, pickletools.stackslice)]
            if len(stack) < len(before):
                break  # the real unpickler fails here: nothing after it runs
            top = stack[len(stack) - len(before):]
            del stack[len(stack) - len(before):]
            name = op.name
            if name in ("GLOBAL", "INST"):
                module, _, attr = str(arg).partition(" ")
                add(module, attr)
            elif name == "STACK_GLOBAL":
                if not all(isinstance(x, str) for x in top):
                    break  # STACK_GLOBAL needs two strings: torch.load stops here
                add(*top)
            elif name in ("EXT1", "EXT2", "EXT4"):
                out.append(Finding("danger", f"copyreg extension code {arg}", "resolved through "
                                   "the loading process's copyreg registry: any registered callable"))
            if name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
                if not stack:
                    break
                memo[len(memo) if name == "MEMOIZE" else arg] = stack[-1]
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                if arg not in memo:
                    break
                stack.append(memo[arg])
            elif "UNICODE" in name or "STRING" in name:
                stack.append(arg)
            else:
                stack.extend(None for _ in op.stack_after)
    except Exception:  # noqa: BLE001 - the broken part: everything before it was listed
        pass
    return out


def _object_arg(call: Any) -> str | None:
    """The class of an argument that is an object of a class off the allowlist."""
    for a in (*call._mt_args, *(call._mt_kwargs or {}).values()):
        cls = type(a)
        if getattr(cls, "_mt_name", "") and "_mt_args" in getattr(a, "__dict__", {}) \
                and not is_safe_call(qualname(cls), cls._mt_name):
            return qualname(cls)
    return None


def _handed(call: Any) -> list[str]:
    """Globals (off the allowlist) among a call's arguments."""
    out = []
    for a in (*call._mt_args, *(call._mt_kwargs or {}).values()):
        if isinstance(a, type) and getattr(a, "_mt_name", "") and not is_safe_call(
                qualname(a), a._mt_name):
            out.append(qualname(a))
    return out


def _benign_getattr(call: Any) -> bool:
    """getattr(<a pickled nn.Module>, 'method') (how bound-method hooks pickle) or
    getattr(<a torch class>, 'name') (how torch.relu & co. pickle), never called after."""
    args = call._mt_args
    if len(args) != 2 or not isinstance(args[1], str) or args[1].startswith("__"):
        return False
    target = args[0]
    if isinstance(target, type) and getattr(target, "_mt_name", ""):
        return target._mt_module.split(".", 1)[0] == "torch"
    return module_state(target) is not None


def describe_call(call: Any) -> str:
    """`qual(args…)` with constants shown, then any state and later calls of the result."""
    text = f"{qualname(type(call))}({_render_args(call._mt_args, call._mt_kwargs)})"
    if call._mt_state is not None:
        text += f" with state {render(call._mt_state)}"
    for args in call.__dict__.get("_mt_called", ()):
        text += f", then call the result with ({_render_args(args, {})})"
    return text if len(text) <= 600 else text[:599] + "…"


def _render_args(args: tuple, kwargs: dict) -> str:
    parts = [render(a) for a in args] + [f"{k}={render(v)}" for k, v in (kwargs or {}).items()]
    return ", ".join(parts)


def render(obj: Any, depth: int = 3) -> str:
    """Constants as Python literals, stand-ins by qualified name, calls as calls; bounded."""
    if isinstance(obj, type) and getattr(obj, "_mt_name", ""):
        return qualname(obj)
    if hasattr(type(obj), "_mt_name") and "_mt_args" in getattr(obj, "__dict__", {}):
        if depth <= 0:
            return f"{qualname(type(obj))}(…)"
        return f"{qualname(type(obj))}({', '.join(render(a, depth - 1) for a in obj._mt_args[:6])})"
    data = obj.data if isinstance(obj, ParamRec) else obj
    if isinstance(data, TensorRec):
        return f"<tensor {data.dtype}{list(data.shape)}>"
    if isinstance(obj, (tuple, list)) and depth > 0:
        inner = ", ".join(render(v, depth - 1) for v in obj[:6]) + (", …" if len(obj) > 6 else "")
        if isinstance(obj, tuple):
            return f"({inner}{',' if len(obj) == 1 else ''})"
        return f"[{inner}]"
    if isinstance(obj, dict) and depth > 0:
        items = list(obj.items())[:6]
        inner = ", ".join(f"{render(k, depth - 1)}: {render(v, depth - 1)}" for k, v in items)
        return "{" + inner + (", …" if len(obj) > 6 else "") + "}"
    return brief(obj, depth=1, width=200)


def _locate(root: Any) -> dict[int, str]:
    """id → a short key path (breadth-first, bounded) for every stand-in in the graph."""
    where: dict[int, str] = {}
    seen: set[int] = set()
    queue: deque[tuple[Any, str]] = deque([(root, "")])
    budget = LOCATE_BUDGET
    while queue and budget > 0:
        obj, path = queue.popleft()
        budget -= 1
        if id(obj) in seen or isinstance(obj, (str, bytes, int, float, type(None))):
            continue
        seen.add(id(obj))
        if isinstance(obj, type):
            if getattr(obj, "_mt_name", ""):
                where.setdefault(id(obj), path or "(top level)")
            continue
        kids: list[tuple[str, Any]] = []
        if isinstance(obj, dict):
            kids = [(k if isinstance(k, str) else brief(k, 1, 40), v) for k, v in obj.items()]
        elif isinstance(obj, (list, tuple, set, frozenset)):
            kids = [(f"[{i}]", v) for i, v in enumerate(obj)]
        elif "_mt_args" in getattr(obj, "__dict__", {}):
            where.setdefault(id(obj), path or "(top level)")
            kids = _standin_kids(obj, module_state(obj))
        for key, v in kids:
            sep = "" if not path or key.startswith("[") else "."
            queue.append((v, f"{path}{sep}{key}"))
    return where


def _standin_kids(obj: Any, state: dict | None) -> list[tuple[str, Any]]:
    if state is not None:  # an nn.Module: children by name, attributes by name
        mods = state.get("_modules")
        kids = [(brief(k, 1, 40) if not isinstance(k, str) else k, v)
                for k, v in (mods.items() if isinstance(mods, dict) else ())]
        kids += [(k, v) for k, v in state.items() if isinstance(k, str) and k != "_modules"]
        return kids
    kids = [(f"[arg {i}]", a) for i, a in enumerate(obj._mt_args)]
    st = obj._mt_state
    if isinstance(st, dict):
        kids += [(k if isinstance(k, str) else brief(k, 1, 40), v) for k, v in st.items()]
    elif st is not None:
        kids.append(("[state]", st))
    kids += [(f"[{i}]", v) for i, (_, v) in enumerate(obj._mt_items or ())]
    for args in obj.__dict__.get("_mt_called", ()):
        kids += [(f"[call arg {i}]", a) for i, a in enumerate(args)]
    return kids
