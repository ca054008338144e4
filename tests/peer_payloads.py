"""Payload pickles modelled on the public corpora of picklescan (tests/init_data_files.py),
fickling (test/test_bypasses.py) and modelscan (its fixture generators), rebuilt here from
opcodes: no file or code of theirs is copied. Helper module for tests, not a test file.

Every payload, if it ever ran, would create `marker` (the command each one names is
`touch <marker>` where the callable takes a command); NEVER load these with pickle or
torch.load(weights_only=False).
"""

from __future__ import annotations

import io
import pickle
import struct
import tarfile
import zipfile
from pathlib import Path

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

# (module, name) pairs: the callables of those corpora, from os.system to the gadgets a
# blocklist missed (idlelib, lib2to3, doctest, uuid, imaplib, torch helpers, …).
GADGETS: list[tuple[str, str]] = [
    ("os", "system"), ("posix", "system"), ("builtins", "eval"), ("builtins", "exec"),
    ("subprocess", "run"), ("subprocess", "Popen"), ("subprocess", "check_output"),
    ("runpy", "_run_code"), ("runpy", "run_path"), ("pty", "spawn"), ("sys", "exit"),
    ("pickle", "loads"), ("_pickle", "loads"), ("marshal", "loads"), ("types", "FunctionType"),
    ("types", "CodeType"), ("bdb", "Bdb.run"), ("pip", "main"), ("pydoc", "pipepager"),
    ("pydoc", "locate"), ("venv", "create"), ("timeit", "timeit"), ("cProfile", "run"),
    ("cProfile", "runctx"), ("profile", "run"), ("trace", "Trace.run"),
    ("torch.storage", "_load_from_bytes"), ("torch.serialization", "load"), ("torch", "load"),
    ("torch.utils.collect_env", "run"), ("torch.utils.collect_env", "run_and_read_all"),
    ("torch.utils.bottleneck.__main__", "run_cprofile"),
    ("torch.fx.experimental.symbolic_shapes", "ShapeEnv.evaluate_guards_expression"),
    ("torch.utils._config_module", "ConfigModule.load_config"),
    ("torch.utils.data.datapipes.utils.decoder", "basichandlers"),
    ("idlelib.autocomplete", "AutoComplete.fetch_completions"), ("idlelib.calltip", "get_entity"),
    ("idlelib.run", "Executive.runcode"), ("idlelib.pyshell", "ModifiedInterpreter.runcode"),
    ("lib2to3.pgen2.grammar", "Grammar.loads"), ("lib2to3.pgen2.pgen", "ParserGenerator.make_label"),
    ("doctest", "debug_script"), ("uuid", "_get_command_stdout"), ("_aix_support", "_read_cmd_output"),
    ("_osx_support", "_read_output"), ("imaplib", "IMAP4_stream"), ("nntplib", "NNTP"),
    ("poplib", "POP3"), ("_pyrepl.pager", "pipe_pager"), ("test.support.script_helper", "assert_python_ok"),
    ("code", "InteractiveInterpreter.runcode"), ("pkgutil", "resolve_name"), ("ctypes", "CDLL"),
    ("logging", "FileHandler"), ("io", "FileIO"), ("urllib.request", "urlopen"),
    ("http.client", "HTTPSConnection"), ("socket", "create_connection"), ("webbrowser", "open"),
    ("asyncio.unix_events", "_UnixSubprocessTransport._start"), ("distutils.file_util", "write_file"),
    ("numpy.testing._private.utils", "runstring"), ("numpy.f2py.crackfortran", "getlincoef"),
    ("builtins", "getattr"), ("builtins", "__import__"), ("builtins", "open"), ("builtins", "print"),
    ("functools", "partial"), ("operator", "methodcaller"), ("operator", "attrgetter"),
    ("shutil", "rmtree"), ("tempfile", "mkstemp"), ("os", "remove"), ("copyreg", "_reconstructor_ex"),
    # dotted attribute paths from an innocent module
    ("torch", "os.system"), ("posixpath", "os.system"), ("collections", "_sys.exit"),
    ("builtins", "__builtins__.exec"),
]


def _str(s: str) -> bytes:
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b if len(b) < 256 else b"X" + struct.pack("<I", len(b)) + b


def call(module: str, name: str, arg: str, proto: int = 4, how: str = "stack") -> bytes:
    """A pickle whose whole content is `module.name(arg)`."""
    if how == "global":  # GLOBAL + REDUCE (protocol 0-3 style)
        return (b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"X" + struct.pack("<I", len(arg))
                + arg.encode() + b"\x85R.")
    if how == "inst":  # INST: MARK args INST module name
        return b"(" + b"V" + arg.encode("raw_unicode_escape") + b"\ni" + f"{module}\n{name}\n".encode() + b"."
    if how == "obj":  # OBJ: MARK callable args OBJ
        return b"\x80\x02(c" + f"{module}\n{name}\n".encode() + _str(arg) + b"o."
    return (b"\x80" + bytes([proto]) + _str(module) + _str(name) + b"\x93" + _str(arg) + b"\x85R.")


def in_state_dict(payload_body: bytes) -> bytes:
    """A state_dict-like dict {'weight': 1, 'x': <payload>} with the payload inside."""
    body = payload_body[2:-1] if payload_body[:1] == b"\x80" else payload_body[:-1]
    return b"\x80\x04}(" + _str("weight") + b"K\x01" + _str("x") + body + b"u."


def torch_zip(path: Path, data_pkl: bytes, extra: dict[str, bytes] | None = None,
              dup: bytes | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", data_pkl)
        if dup is not None:  # a second entry of the same name (zipfile warns; torch reads the first)
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                z.writestr("archive/data.pkl", dup)
        for k, v in (extra or {}).items():
            z.writestr(f"archive/{k}", v)
        z.writestr("archive/version", b"3\n")
    return path


def legacy(obj_pkl: bytes, magic: bytes | None = None, sys_info: bytes | None = None,
           keys: bytes | None = None) -> bytes:
    return ((magic or pickle.dumps(LEGACY_MAGIC, 2)) + pickle.dumps(1001, 2)
            + (sys_info or pickle.dumps({"protocol_version": 1001, "little_endian": True}, 2))
            + obj_pkl + (keys or pickle.dumps([], 2)))


def legacy_tar(path: Path, pickle_member: bytes, storages: bytes | None = None) -> Path:
    def add(t: tarfile.TarFile, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))

    with tarfile.open(path, "w:", format=tarfile.PAX_FORMAT) as t:
        add(t, "sys_info", pickle.dumps({}, 2))
        add(t, "storages", storages or (pickle.dumps(0, 2) + pickle.dumps([], 2)))
        add(t, "tensors", pickle.dumps(0, 2))
        add(t, "pickle", pickle_member)
    return path


def corpus(d: Path, marker: Path) -> dict[str, Path]:
    """Every payload file: each gadget in a zip (and a sample in other containers and
    opcode forms), plus the structural tricks."""
    cmd = f"touch {marker}"
    out: dict[str, Path] = {}
    for i, (module, name) in enumerate(GADGETS):
        out[f"zip_{module}.{name}"] = torch_zip(d / f"g{i}.pth", in_state_dict(call(module, name, cmd)))
    os_sys = call("os", "system", cmd)
    for how in ("global", "inst", "obj"):
        out[f"op_{how}"] = _w(d / f"op_{how}.pkl", call("os", "system", cmd, how=how))
    for first in (b"N0", b"]0", b"(0", b"K\x010", b"\x88" + b"0"):  # any first opcode
        out[f"first_{first[:1].hex()}"] = _w(d / f"first_{first[:1].hex()}.pth", first + os_sys)
    # the legacy magic number as any pickle that evaluates to it, then a payload
    long1 = b"\x80\x02\x8a\x0b" + LEGACY_MAGIC.to_bytes(11, "little") + b"."
    out["magic_long1"] = _w(d / "magic_long1.pth", legacy(os_sys, magic=long1))
    out["magic_eval"] = _w(d / "magic_eval.pth", call("builtins", "eval", hex(LEGACY_MAGIC))
                           + pickle.dumps(1001, 2) + os_sys)
    out["legacy_sys_info"] = _w(d / "legacy_sys_info.pth", legacy(pickle.dumps({}, 2), sys_info=os_sys))
    out["legacy_keys"] = _w(d / "legacy_keys.pth", legacy(pickle.dumps({}, 2), keys=os_sys))
    out["legacy_object"] = _w(d / "legacy_object.pth", legacy(os_sys))
    out["tar_pickle"] = legacy_tar(d / "tar_pickle.tar", os_sys)
    out["tar_storages"] = legacy_tar(d / "tar_storages.tar", pickle.dumps({}, 2),
                                     storages=os_sys + pickle.dumps([], 2))
    out["broken_tail"] = _w(d / "broken_tail.pth", os_sys[:-1] + b"\xff\xff garbage")
    out["ext1"] = _w(d / "ext1.pth", b"\x80\x02\x82\x01" + _str(cmd)[0:0] + b"X"
                     + struct.pack("<I", len(cmd)) + cmd.encode() + b"\x85R.")
    out["duplicate_entry"] = torch_zip(d / "dup.pth", in_state_dict(os_sys),
                                       dup=pickle.dumps({"weight": 1}, 2))
    out["nested_torch_load"] = torch_zip(d / "nested.pth", in_state_dict(
        call("torch.storage", "_load_from_bytes", "PK…")))
    build_global = (b"\x80\x04" + _str("torch") + _str("os") + b"\x93" + b"N}" + _str("system")
                    + _str("x") + b"s\x86b.")  # BUILD with slot state on the os module
    out["build_on_global"] = _w(d / "build_global.pth", build_global)
    out["convert_object"] = _w(d / "convert.pth", b"\x80\x04" + _str("builtins") + _str("str")
                               + b"\x93" + _str("evilpkg") + _str("Evil") + b"\x93)\x81\x85R.")
    out["reconstructor_base"] = _w(d / "reconstructor.pth", b"\x80\x02ccopyreg\n_reconstructor\n"
                                   b"ctorch.nn\nModule\ncos\nsystem\n" + b"X" + struct.pack(
                                       "<I", len(cmd)) + cmd.encode() + b"\x87R.")
    out["called_instance"] = _w(d / "called.pth", b"\x80\x04" + _str("functools") + _str("partial")
                                + b"\x93" + _str("os") + _str("system") + b"\x93\x85R" + _str(cmd)
                                + b"\x85R.")
    out["keyword_newobj_ex"] = _w(d / "newobj_ex.pth", b"\x80\x04" + _str("subprocess")
                                  + _str("Popen") + b"\x93)}" + _str("args") + _str(cmd)
                                  + b"s\x92.")
    # INST/OBJ without arguments call a function global (a bare __new__ only for classes)
    out["inst_no_args"] = _w(d / "inst_no_args.pth", b"(ibuiltins\nbreakpoint\n.")
    out["obj_no_args"] = _w(d / "obj_no_args.pth", b"\x80\x02(cos\ngetcwd\no.")
    # a data constructor handed an object whose class code it would run
    out["odict_of_object"] = _w(d / "odict_obj.pth", b"\x80\x04" + _str("collections")
                                + _str("OrderedDict") + b"\x93" + _str("evilpkg") + _str("Items")
                                + b"\x93)\x81\x85R.")
    out["path_of_object"] = _w(d / "path_obj.pth", b"\x80\x04" + _str("pathlib") + _str("PosixPath")
                               + b"\x93" + _str("evilpkg") + _str("FsPath") + b"\x93)\x81\x85R.")
    out["shadowed_archive"] = shadowed_archive(d / "shadowed.pth", marker)
    # BUILD on a module found through STACK_GLOBAL rewrites one of its names, then the
    # pickle looks that name up again: a global turned into another (a monkeypatch)
    patch = (b"\x80\x04" + _str("torch") + _str("_utils") + b"\x93\x94" + b"}" + _str("_rebuild_tensor")
             + _str("os") + b"s" + b"b0" + _str("torch._utils") + _str("_rebuild_tensor") + b"\x93"
             + _str("system") + b"\x93" + _str(cmd) + b"\x85R.")
    out["module_monkeypatch"] = _w(d / "monkeypatch.pth", patch)
    # a dotted name reached through NEWOBJ + BUILD rather than REDUCE
    out["dotted_newobj_build"] = _w(d / "dotted_build.pth", b"\x80\x04" + _str("posixpath")
                                    + _str("os.system") + b"\x93)\x81" + _str(cmd) + b"b.")
    return out


def _w(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def shadowed_archive(path: Path, marker: Path) -> Path:
    """torch reads the folder of the zip's first entry: a clean data.pkl in another folder
    listed first among the .pkl names must not hide it."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("evil/version", b"3\n")
        z.writestr("clean/data.pkl", pickle.dumps({"weight": 1}, 2))
        z.writestr("evil/data.pkl", in_state_dict(call("os", "system", f"touch {marker}")))
    return path


PLACEHOLDER = ("peer_payloads", "placeholder")


def placeholder(*args: object) -> None:
    """Stands for a gadget while torch.save pickles a model; retargeted in the bytes after."""
    raise RuntimeError("never called")


class Payload:
    """A model attribute that pickles as placeholder(cmd): GLOBAL + REDUCE."""

    def __init__(self, cmd: str) -> None:
        self.cmd = cmd

    def __reduce__(self):
        return (placeholder, (self.cmd,))


def retarget(base: Path, out: Path, module: str, name: str) -> Path:
    """A copy of a torch.save zip whose placeholder global names `module.name` instead."""
    old = f"c{PLACEHOLDER[0]}\n{PLACEHOLDER[1]}\n".encode()
    new = f"c{module}\n{name}\n".encode()
    with zipfile.ZipFile(base) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("data.pkl"):
                assert old in data
                data = data.replace(old, new)
            dst.writestr(info.filename, data)
    return out
