"""What a plain torch.load(weights_only=False) would run: classify globals, report calls.

The restricted unpickler never runs anything; it records every global the file
names and every call the pickle asks for. Here those records become Findings:
'danger' for calls (or mere imports) of things that can run code, with the
callable's qualified name, its constant arguments and where in the file it sits;
'unknown-class' for classes this machine doesn't have. Benign patterns real
models use (a lazy module's hooks pickle builtins.getattr(<module>, '_name'))
are not reported.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
from collections import deque
from dataclasses import replace
from typing import Any

from tui.core.model import Finding
from tui.core.read.guard import brief
from tui.core.read.records import ParamRec, TensorRec, module_state, qualname

DANGEROUS_MODULES = {
    "os", "posix", "nt", "subprocess", "sys", "socket", "shutil", "runpy", "pty",
    "pickle", "_pickle", "ctypes", "webbrowser", "importlib", "code", "codeop",
    "multiprocessing", "asyncio", "commands", "popen2", "platform", "signal",
    "requests", "urllib", "http", "ftplib", "telnetlib", "smtplib", "marshal",
    "pdb", "bdb", "timeit", "cProfile", "profile", "trace", "_posixsubprocess",
    "_thread", "threading",
    # Also able to run code, load native code, exec source or touch files/the network:
    "operator", "_operator", "pydoc", "pkgutil", "zipimport", "_imp", "imp", "inspect", "io",
    "_io", "pathlib", "tempfile", "fileinput", "logging", "xmlrpc", "ssl", "select",
    "selectors", "mmap", "gc", "atexit", "sqlite3", "shelve", "dbm", "tarfile", "zipfile",
    "setuptools", "distutils", "pip", "ensurepip", "venv", "site", "sysconfig", "_ctypes",
    "cffi", "cloudpickle", "dill", "joblib", "numpy.testing", "numpy.f2py", "numpy.distutils",
    "torch.hub", "torch.utils.cpp_extension", "torch.package", "torch._dynamo",
    "torch._inductor", "torch.jit",
}
# Pure data builtins a real file may construct; any other builtin is reported.
SAFE_BUILTINS = {
    "set", "frozenset", "complex", "slice", "bytearray", "bytes", "list", "tuple", "dict",
    "range", "float", "int", "str", "bool", "object", "type", "NoneType", "Ellipsis",
    "NotImplemented", "getattr",  # getattr: judged per call in findings (lazy-module hooks)
}
DANGEROUS_NAMES = {
    ("builtins", n) for n in (
        "eval", "exec", "compile", "open", "getattr", "setattr", "delattr", "__import__",
        "breakpoint", "input", "globals", "locals", "vars", "exit", "quit",
    )
} | {
    ("functools", "partial"), ("functools", "reduce"), ("operator", "attrgetter"),
    ("operator", "itemgetter"), ("operator", "methodcaller"), ("torch.serialization", "load"),
    ("torch", "load"), ("torch.hub", "load"), ("torch.hub", "load_state_dict_from_url"),
    ("numpy.testing._private.utils", "runstring"), ("torch.jit", "load"),
    ("torch._dynamo", "eval_frame"), ("copyreg", "_reconstructor_ex"), ("types", "FunctionType"),
    ("types", "CodeType"), ("io", "open"), ("_io", "open"), ("io", "open_code"),
    ("pathlib", "Path.write_text"), ("tempfile", "mkstemp"), ("functools", "partialmethod"),
    # fx GraphModules are rebuilt by exec'ing Python source stored in the file.
    ("torch.fx.graph_module", "reduce_graph_module"),
    ("torch.fx.graph_module", "reduce_package_graph_module"),
    ("torch.fx.graph_module", "reduce_deploy_graph_module"),
    ("torch.fx.graph_module", "_forward_from_src"), ("torch.fx.graph_module", "_exec_with_source"),
}


# Wrappers that only build a callable: harmless unless the pickle also calls the result.
WRAPPERS = {("functools", "partial"), ("operator", "attrgetter"), ("operator", "itemgetter"),
            ("operator", "methodcaller"), ("builtins", "getattr")}
MAX_CALLS_SHOWN = 20
LOCATE_BUDGET = 200_000


def classify_global(module: str, name: str) -> str | None:
    """'danger' for globals that would run code, 'missing' for classes not installed here."""
    top = module.split(".", 1)[0]
    parts = module.split(".")
    if (module, name) in DANGEROUS_NAMES or any(
            ".".join(parts[:i]) in DANGEROUS_MODULES for i in range(1, len(parts) + 1)):
        return "danger"
    if module == "builtins" and name not in SAFE_BUILTINS:
        return "danger"
    if module == "__main__":
        return "main"
    if top in ("torch", "collections", "builtins", "numpy", "_codecs", "copyreg"):
        return None
    try:
        if importlib.util.find_spec(top) is not None:
            return None
        # `python` started in this folder would import it from here (e.g. a repo's package).
        if importlib.machinery.PathFinder.find_spec(top, [os.getcwd()]) is not None:
            return None
    except (ImportError, ValueError, OSError):
        pass
    return "missing"


def findings(read: Any) -> list[Finding]:
    """One Finding per dangerous call (or import) and per class missing here."""
    by_cls: dict[type, list[Any]] = {}
    for call in read.calls:
        by_cls.setdefault(type(call), []).append(call)
    out: list[Finding] = []
    objs: dict[int, Any] = {}  # finding index -> the object whose place in the file to show
    for qual, cls in read.globals.items():
        module, name = cls._mt_module, cls._mt_name
        kind = classify_global(module, name)
        made = by_cls.get(cls, [])
        called = [c for c in made if c.__dict__.get("_mt_called")]
        if kind == "danger":
            if (module, name) in WRAPPERS and made and not called and (
                    (module, name) != ("builtins", "getattr") or all(map(_benign_getattr, made))):
                continue
            if not made:
                objs[len(out)] = cls
                out.append(Finding("danger", qual, "named in the file: torch.load would import it "
                                   "(and could hand it to something that calls it)"))
            for c in made[:MAX_CALLS_SHOWN]:
                objs[len(out)] = c
                out.append(Finding("danger", qual, f"would call {describe_call(c)}"))
            if len(made) > MAX_CALLS_SHOWN:
                out.append(Finding("danger", qual, f"… and {len(made) - MAX_CALLS_SHOWN} more calls"))
            continue
        for c in called[:MAX_CALLS_SHOWN]:  # an object built from the file, then called
            objs[len(out)] = c
            out.append(Finding("danger", qual, f"would call a {qual} object made from the file: "
                               f"{describe_call(c)}"))
        if kind == "main":
            out.append(Finding("unknown-class", qual, "defined in a script or notebook (__main__): "
                               "torch.load needs that class's code"))
        elif kind == "missing":
            out.append(Finding("unknown-class", qual, f"package '{module.split('.')[0]}' is "
                               "not installed here: torch.load would fail"))
    if objs:  # only then walk the graph (it can be large) to say where each one sits
        where = _locate(read.root)
        for i, obj in objs.items():
            out[i] = replace(out[i], where=where.get(id(obj), ""))
    return out


def _benign_getattr(call: Any) -> bool:
    """getattr(<a pickled nn.Module>, 'method'): how bound-method hooks pickle."""
    args = call._mt_args
    return (len(args) == 2 and module_state(args[0]) is not None and isinstance(args[1], str)
            and not args[1].startswith("__"))


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
