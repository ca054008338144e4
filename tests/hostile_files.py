"""Builders of HOSTILE model files: pickles that run code when loaded with pickle/torch.load.

This is a helper module for tests, not a test file. Every payload, if it ever ran, would create
a marker file (or try to reach the network, for the socket/webbrowser variants); the tests
assert the marker never appears. NEVER pass these files to ``torch.load(weights_only=False)``,
``pickle.load`` or anything else that executes pickles.

Payloads are plain Python objects whose ``__reduce__`` names the dangerous callable, pickled
with plain ``pickle`` (nothing runs while pickling). They are wrapped three ways:

- a torch-like zip (``archive/data.pkl`` + ``archive/version`` + ``archive/byteorder``),
- a legacy-format stream (magic number, protocol 1001, sys-info dict, object, key list),
- ``torch.save`` of real models/state dicts holding the payload (torch pickles the payload's
  ``__reduce__``; saving never runs it).
"""

from __future__ import annotations

import builtins
import functools
import io
import operator
import os
import pickle
import runpy
import shlex
import shutil
import socket
import subprocess
import warnings
import webbrowser
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
SYS_INFO = {"protocol_version": 1001, "little_endian": True,
            "type_sizes": {"short": 2, "int": 4, "long": 4}}


class Call:
    """Pickles as ``fn(*args)``; ``fn`` may itself be a Call (a REDUCE chain)."""

    def __init__(self, fn: Any, *args: Any) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (self.fn, self.args)

    def __call__(self, *args: Any) -> Any:  # pickle insists a reduce callable is callable
        raise RuntimeError("a pickling stand-in; never called")


@dataclass(frozen=True)
class Hostile:
    """One hostile file: where it is, what it would call and what the warning must mention."""

    name: str
    path: Path
    callable: str  # qualified name the danger warning must carry, e.g. "posix.system"
    argument: str  # a constant argument the warning must show
    container: str  # "zip" | "legacy" | "pickle"


# -- containers --------------------------------------------------------------------------
def torch_zip(path: Path, data_pkl: bytes, folder: str = "archive", compress: bool = False) -> Path:
    """A zip laid out like torch.save's (tensor-free: no data/ entries)."""
    mode = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", compression=mode) as z:
        z.writestr(f"{folder}/data.pkl", data_pkl)
        z.writestr(f"{folder}/byteorder", b"little")
        z.writestr(f"{folder}/version", b"3\n")
    return path


def legacy_stream(data_pkl: bytes, keys: list[str] | None = None) -> bytes:
    """The legacy (torch < 1.6) layout around an object pickle that names no storages."""
    out = io.BytesIO()
    for header in (LEGACY_MAGIC, 1001, SYS_INFO):
        pickle.dump(header, out, protocol=2)
    out.write(data_pkl)
    pickle.dump(keys or [], out, protocol=2)
    return out.getvalue()


def legacy_file(path: Path, data_pkl: bytes) -> Path:
    path.write_bytes(legacy_stream(data_pkl))
    return path


def dumps(obj: Any, protocol: int = 2) -> bytes:
    return pickle.dumps(obj, protocol=protocol)


# -- payloads ----------------------------------------------------------------------------
def touch(marker: Path) -> str:
    return f"touch {shlex.quote(str(marker))}"


def system_payload(marker: Path) -> Call:
    """``os.system('touch MARKER')``; on Linux it pickles as ``posix.system``."""
    return Call(os.system, touch(marker))


def variants(marker: Path, workdir: Path) -> dict[str, tuple[Any, str, str]]:
    """name -> (payload object, qualified callable to report, constant argument to report)."""
    m = str(marker)
    script = workdir / "payload_script.py"
    script.write_text(f"open({m!r}, 'w').close()\n")
    code = f"open({m!r}, 'w').close()"
    nested = workdir / "nested_hostile.pth"
    torch_zip(nested, dumps(system_payload(marker)))
    import torch.serialization

    return {
        "posix_system": (system_payload(marker), "posix.system", touch(marker)),
        "popen": (Call(subprocess.Popen, ["touch", m]), "subprocess.Popen", m),
        "check_output": (Call(subprocess.check_output, ["touch", m]), "subprocess.check_output", m),
        "exec": (Call(builtins.exec, code), "builtins.exec", m),
        "eval": (Call(builtins.eval, code), "builtins.eval", m),
        # exec(compile(...)): the payload sits in the arguments of a REDUCE chain.
        "exec_compile": (Call(builtins.exec, Call(builtins.compile, code, "<x>", "exec")),
                         "builtins.compile", m),
        # getattr(__import__('os'), 'system')('touch M'): getattr on a non-module object.
        "getattr_import": (Call(Call(builtins.getattr, Call(builtins.__import__, "os"), "system"),
                                touch(marker)), "builtins.getattr", "system"),
        "import": (Call(builtins.__import__, "os"), "builtins.__import__", "'os'"),
        "runpy": (Call(runpy.run_path, str(script)), "runpy.run_path", str(script)),
        "shutil": (Call(shutil.copyfile, str(script), m), "shutil.copyfile", m),
        "webbrowser": (Call(webbrowser.open, "http://127.0.0.1:9/evil"), "webbrowser.open",
                       "http://127.0.0.1:9/evil"),
        "socket": (Call(socket.create_connection, ("127.0.0.1", 9)), "socket.create_connection",
                   "127.0.0.1"),
        # partial(os.system, 'touch M')(): the call goes to a partial object.
        "partial": (Call(functools.partial(os.system, touch(marker))), "functools.partial", m),
        # attrgetter('system')(__import__('os'))('touch M')
        "attrgetter": (Call(Call(operator.attrgetter("system"), Call(builtins.__import__, "os")),
                            touch(marker)), "operator.attrgetter", "system"),
        # A nested torch.load of another hostile file, with weights_only switched off.
        "nested_load": (Call(functools.partial(torch.serialization.load, weights_only=False),
                             str(nested)), "torch.serialization.load", str(nested)),
    }


# -- placements (torch.save of real objects) ---------------------------------------------
def _small_model() -> Any:
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(OrderedDict(fc1=nn.Linear(4, 3), act=nn.ReLU(), fc2=nn.Linear(3, 2)))


def _tsave(obj: Any, path: Path, legacy: bool = False) -> Path:
    import torch

    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    return path


def _deep(payload: Any, levels: int = 12) -> Any:
    obj: Any = payload
    for i in range(levels):
        obj = {"level": i, "items": [1, obj]} if i % 2 else [obj, "x"]
    return obj


def placements(d: Path, marker: Path) -> list[Hostile]:
    """``posix.system('touch MARKER')`` in every place a real file could hide it."""
    cmd = touch(marker)
    p = system_payload(marker)
    out: list[Hostile] = []

    def add(name: str, path: Path, container: str) -> None:
        out.append(Hostile(name, path, "posix.system", cmd, container))

    add("top_level_zip", torch_zip(d / "top.pth", dumps(p)), "zip")
    add("top_level_legacy", legacy_file(d / "top_legacy.pth", dumps(p)), "legacy")
    add("top_level_plain_pickle", _write(d / "top.pkl", dumps(p, protocol=4)), "pickle")
    add("top_level_protocol0", _write(d / "top0.pkl", dumps(p, protocol=0)), "pickle")
    model = _small_model()
    model.payload = p  # an attribute in the module's __dict__
    add("module_attr_zip", _tsave(model, d / "module_attr.pth"), "zip")
    add("module_attr_legacy", _tsave(model, d / "module_attr_legacy.pth", legacy=True), "legacy")
    child = _small_model()
    child.fc2.config = {"post": [p]}  # deeper: a child module's attribute, inside a dict
    add("child_module_attr_zip", _tsave(child, d / "child_attr.pth"), "zip")
    sd = _small_model().state_dict()
    sd["evil"] = p
    add("state_dict_value_zip", _tsave(sd, d / "state_dict.pth"), "zip")
    add("state_dict_value_legacy", _tsave(sd, d / "state_dict_legacy.pth", legacy=True), "legacy")
    ckpt = {"epoch": 3, "model_state_dict": _small_model().state_dict(), "loss": 0.25,
            "config": {"lr": 0.1, "callback": p}}
    add("checkpoint_extra_zip", _tsave(ckpt, d / "checkpoint.pth"), "zip")
    add("checkpoint_extra_legacy", _tsave(ckpt, d / "checkpoint_legacy.pth", legacy=True), "legacy")
    add("nested_deep_zip", torch_zip(d / "nested.pth", dumps({"a": _deep(p)})), "zip")
    add("nested_deep_legacy", legacy_file(d / "nested_legacy.pth", dumps({"a": _deep(p)})), "legacy")
    return out


def variant_files(d: Path, marker: Path) -> list[Hostile]:
    """Every dangerous-callable variant, as a torch zip; a few also legacy and in a state_dict."""
    out: list[Hostile] = []
    for name, (obj, qual, arg) in variants(marker, d).items():
        out.append(Hostile(f"{name}_zip", torch_zip(d / f"v_{name}.pth", dumps(obj)), qual, arg, "zip"))
        if name in ("popen", "exec_compile", "partial", "getattr_import", "runpy"):
            out.append(Hostile(f"{name}_legacy", legacy_file(d / f"v_{name}_legacy.pth", dumps(obj)),
                               qual, arg, "legacy"))
    sd = _small_model().state_dict()
    sd["hook"] = variants(marker, d)["exec_compile"][0]
    out.append(Hostile("exec_compile_in_state_dict", _tsave(sd, d / "v_sd_exec.pth"),
                       "builtins.exec", "builtins.compile", "zip"))
    return out


def corpus(d: Path, marker: Path) -> list[Hostile]:
    d.mkdir(parents=True, exist_ok=True)
    return placements(d, marker) + variant_files(d, marker)


def legacy_key_list_payload(d: Path, marker: Path) -> Path:
    """A real legacy state_dict whose storage-key list (read only when tensor bytes are
    needed, e.g. on save) is replaced by the payload. The object pickle itself is clean."""
    import pickletools

    src = _tsave(_small_model().state_dict(), d / "legacy_keys_src.pth", legacy=True)
    data = src.read_bytes()
    stream = io.BytesIO(data)
    for _ in range(4):  # magic, protocol, sys info, object
        for op, _arg, _pos in pickletools.genops(stream):
            if op.name == "STOP":
                break
    keys_start = stream.tell()
    for op, _arg, _pos in pickletools.genops(stream):
        if op.name == "STOP":
            break
    out = d / "legacy_key_list_payload.pth"
    out.write_bytes(data[:keys_start] + dumps(system_payload(marker)) + data[stream.tell():])
    return out


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# -- benign files that use scary-looking globals ------------------------------------------
def benign_files(d: Path) -> dict[str, Path]:
    """Files real users have that must NOT raise a danger warning."""
    import torch
    from torch import nn

    d.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    plain = _small_model()
    sd = plain.state_dict()
    ckpt = {"epoch": 1, "model_state_dict": sd, "optimizer_state_dict":
            torch.optim.SGD(plain.parameters(), lr=0.1).state_dict(), "loss": 0.5,
            "shape": torch.Size([1, 2]), "dtype": torch.float16, "device": torch.device("cpu")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # weight_norm's deprecation notice
        normed = nn.Sequential(nn.utils.weight_norm(nn.Linear(3, 3)), nn.ReLU())
    return {
        # LazyLinear's load hooks pickle builtins.getattr(<module>, '_infer_parameters').
        "lazy_with_hooks": _tsave(nn.Sequential(nn.LazyLinear(3), nn.ReLU()), d / "lazy.pth"),
        "weight_norm_hooks": _tsave(normed, d / "weight_norm.pth"),
        "plain_model": _tsave(plain, d / "plain.pth"),
        "plain_model_legacy": _tsave(plain, d / "plain_legacy.pth", legacy=True),
        "state_dict": _tsave(sd, d / "sd.pth"),
        "checkpoint": _tsave(ckpt, d / "ckpt.pth"),
    }
