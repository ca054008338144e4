"""Builders of small PyTorch files of every kind the structural reader must handle.

This is a helper module for tests, not a test file. Every ``build_*`` function takes a target
directory (``pathlib.Path``, created if missing), writes one file (or one directory, for the
sharded checkpoints) there with torch, and returns a :class:`Built`:

- ``path``: the file (or directory) to open,
- ``obj``: the in-memory object that was saved (for comparison), ``None`` where there is none,
- ``files``: every path written,
- ``expected``: the :func:`expected_facts` of the saved object when it is not available in this
  process (the ``__main__`` class built in a subprocess), else ``None``.

Builders are deterministic (seeded through a forked RNG, so the caller's RNG state is untouched).

``build_hostile_*`` write pickles that run ``os.system('touch MARKER')`` when unpickled. They
exist to prove that the structural reader never executes them. NEVER pass their output to
``torch.load(weights_only=False)``, ``pickle.load`` or anything else that executes pickles.

Classes defined here are pickled under this module's import name (``torch_models.X`` or
``tests.torch_models.X``, depending on how it was imported); the article's CNN is always
``sample_models.models.ConvNet``. :func:`expected_facts` reports the names as they were pickled.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickletools
import shlex
import struct
import subprocess
import sys
import warnings
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

_REPO_ROOT = Path(__file__).resolve().parents[1]
if str(_REPO_ROOT) not in sys.path:  # make ``sample_models`` importable under plain pytest
    sys.path.insert(0, str(_REPO_ROOT))

from sample_models.models import article_frozen_model  # noqa: E402


@dataclass(frozen=True)
class Built:
    """What a builder wrote: the main ``path``, the saved ``obj``, all ``files``, ``expected``."""

    path: Path
    obj: Any = None
    files: tuple[Path, ...] = ()
    expected: dict[str, Any] | None = field(default=None, compare=False)


# --------------------------------------------------------------------------------------------
# helpers


@contextlib.contextmanager
def _seeded(seed: int = 0) -> Iterator[None]:
    """Seed torch's CPU RNG for the block, restoring the caller's RNG state afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence torch's deprecation chatter (torch.ao.quantization, TypedStorage …)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _dir(target: Path) -> Path:
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    return target


def _save(obj: Any, path: Path, **kwargs: Any) -> Built:
    with _quiet():
        torch.save(obj, path, **kwargs)
    return Built(path=path, obj=obj, files=(path,))


def _dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")


def _is_uninitialized(t: Any) -> bool:
    return isinstance(t, nn.parameter.UninitializedTensorMixin)


def _shape(t: torch.Tensor) -> list[int] | None:
    return None if _is_uninitialized(t) else list(t.shape)


def _numel(t: torch.Tensor) -> int | None:
    return None if _is_uninitialized(t) else t.numel()


def _type_name(module: nn.Module) -> str:
    if isinstance(module, torch.jit.ScriptModule):
        return module._c._type().qualified_name()  # e.g. __torch__.sample_models.models.ConvNet
    cls = type(module)
    return f"{cls.__module__}.{cls.__qualname__}"


def _state_entry(key: str, value: Any) -> list[Any]:
    if isinstance(value, torch.Tensor):
        return [key, _shape(value), _dtype_name(value.dtype)]
    return [key, None, None]


def expected_facts(obj: nn.Module | Mapping[str, Any]) -> dict[str, Any]:
    """What torch itself says about ``obj``, JSON-ready (lists, not tuples).

    For an ``nn.Module`` (including ScriptModules and DataParallel wrappers)::

        {
          "modules":         [[name, type_name], ...],       # named_modules(); "" is the root
          "parameters":      [[name, shape, dtype, numel, requires_grad], ...],  # deduplicated
          "parameters_all":  same, with remove_duplicate=False (tied weights appear twice),
          "buffers":         [[name, shape, dtype, numel], ...],   # incl. non-persistent ones
          "state_dict_keys": [key, ...],
          "state_dict":      [[key, shape, dtype], ...],   # shape/dtype None for non-tensors
        }

    For a mapping (a saved state_dict) only ``state_dict_keys`` and ``state_dict``.
    ``type_name`` is ``module.qualname`` as pickled (``sample_models.models.ConvNet``,
    ``__main__.Net``); for ScriptModules the TorchScript name (``__torch__.…``).
    ``dtype`` is torch's name without ``torch.`` (``float32``, ``bfloat16``, ``qint8``).
    ``shape``/``numel`` are ``None`` for uninitialized (lazy) parameters.
    """
    if isinstance(obj, nn.Module):
        state = obj.state_dict()

        def params(remove_duplicate: bool) -> list[list[Any]]:
            return [
                [name, _shape(p), _dtype_name(p.dtype), _numel(p), bool(p.requires_grad)]
                for name, p in obj.named_parameters(remove_duplicate=remove_duplicate)
            ]

        return {
            "modules": [[name, _type_name(m)] for name, m in obj.named_modules()],
            "parameters": params(True),
            "parameters_all": params(False),
            "buffers": [
                [name, _shape(b), _dtype_name(b.dtype), _numel(b)]
                for name, b in obj.named_buffers()
            ],
            "state_dict_keys": list(state.keys()),
            "state_dict": [_state_entry(k, v) for k, v in state.items()],
        }
    if isinstance(obj, Mapping):
        return {
            "state_dict_keys": list(obj.keys()),
            "state_dict": [_state_entry(k, v) for k, v in obj.items()],
        }
    raise TypeError(f"expected an nn.Module or a mapping, got {type(obj).__name__}")


def read_data_pkl(path: Path) -> bytes:
    """The object pickle of a torch file: ``*/data.pkl`` of a zip, or the 4th legacy pickle."""
    path = Path(path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            name = next(n for n in zf.namelist() if n.endswith("data.pkl"))
            return zf.read(name)
    data = path.read_bytes()
    starts = _legacy_pickle_bounds(data)
    return data[starts[3][0] : starts[3][1]]


def pickle_globals(path_or_bytes: Path | bytes) -> set[str]:
    """The set of ``"module name"`` globals a pickle (or a torch file's data.pkl) refers to.

    Reads opcodes only (``pickletools.genops``); nothing is executed. Handles ``GLOBAL`` and
    protocol-4 ``STACK_GLOBAL`` (whose operands are the two preceding string pushes/memo gets).
    """
    data = path_or_bytes if isinstance(path_or_bytes, bytes) else read_data_pkl(path_or_bytes)
    found: set[str] = set()
    memo: dict[int, Any] = {}
    strings: list[Any] = []
    last: Any = None
    for op, arg, _pos in pickletools.genops(data):
        if op.name == "GLOBAL":
            found.add(arg)
            last = None
        elif op.name in _STRING_OPS:
            last = arg
            strings.append(arg)
        elif op.name in ("BINPUT", "LONG_BINPUT", "PUT"):
            memo[int(arg)] = last
        elif op.name == "MEMOIZE":
            memo[len(memo)] = last
        elif op.name in ("BINGET", "LONG_BINGET", "GET"):
            last = memo.get(int(arg))
            strings.append(last)
        elif op.name == "STACK_GLOBAL":
            found.add(f"{strings[-2]} {strings[-1]}")
            last = None
        else:
            last = None
    return found


_STRING_OPS = {
    "SHORT_BINUNICODE",
    "BINUNICODE",
    "BINUNICODE8",
    "UNICODE",
    "SHORT_BINSTRING",
    "BINSTRING",
    "STRING",
}
_PUT_OPS = {"BINPUT", "LONG_BINPUT", "PUT", "MEMOIZE"}
_GET_OPS = {"BINGET", "LONG_BINGET", "GET"}


def _legacy_pickle_bounds(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of the five pickles at the head of a legacy torch file."""
    bounds = []
    pos = 0
    for _ in range(5):
        end = pos
        for op, _arg, op_pos in pickletools.genops(io.BytesIO(data[pos:])):
            if op.name == "STOP":
                end = pos + op_pos + 1
                break
        bounds.append((pos, end))
        pos = end
    return bounds


def _binunicode(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw  # BINUNICODE: valid in every protocol


def _rewrite_pickle_locations(data: bytes, old: str, new: str) -> tuple[bytes, int]:
    """Replace the location in every storage persistent id ``('storage', type, key, LOC, …)``.

    Works on opcodes, so the rest of the pickle stays byte-identical and uses only opcodes the
    original used plus BINUNICODE (so ``weights_only=True`` still loads a rewritten
    state_dict). A memoized location string is replaced in place, memo put kept; any memo
    reference to it outside a storage id (some other ``'cpu'`` string of the object) is
    replaced by the old string literal, so it keeps its value.
    """
    ops = list(pickletools.genops(data))
    ends = [pos for _op, _arg, pos in ops[1:]] + [len(data)]
    memo: dict[int, Any] = {}
    last: Any = None
    values: list[Any] = []  # value pushed by each op (strings only; None otherwise)
    for op, arg, _pos in ops:
        if op.name in _STRING_OPS:
            last = arg
        elif op.name in _GET_OPS:
            last = memo.get(int(arg))
        elif op.name in _PUT_OPS:
            memo[len(memo) if op.name == "MEMOIZE" else int(arg)] = last
        else:
            last = None
        values.append(last if op.name in _STRING_OPS | _GET_OPS else None)

    def after_element(i: int) -> int:
        i += 1
        while i < len(ops) and ops[i][0].name in _PUT_OPS:
            i += 1
        return i

    def memo_index(i: int, count: int) -> int:
        return count if ops[i][0].name == "MEMOIZE" else int(ops[i][1])

    replace: dict[int, bytes] = {}
    slots: set[int] = set()
    rewritten_memo: set[int] = set()
    memo_count = 0
    put_index: dict[int, int] = {}  # op index of a put -> memo index it writes
    for i, (op, _arg, _pos) in enumerate(ops):
        if op.name in _PUT_OPS:
            put_index[i] = memo_index(i, memo_count)
            memo_count += 1
    for i, (op, _arg, _pos) in enumerate(ops):
        if op.name != "MARK" or i + 1 >= len(ops) or values[i + 1] != "storage":
            continue
        j = after_element(i + 1)  # -> storage type
        j = after_element(j)  # -> key
        k = after_element(j)  # -> location
        if k >= len(ops) or values[k] != old:
            continue
        slots.add(k)
        replace[k] = _binunicode(new)
        if ops[k][0].name in _STRING_OPS:
            rewritten_memo.update(put_index[p] for p in range(k + 1, after_element(k)))
    for i, (op, arg, _pos) in enumerate(ops):
        if op.name in _GET_OPS and i not in slots and int(arg) in rewritten_memo:
            replace[i] = _binunicode(old)
    out = bytearray()
    for i, (op, _arg, pos) in enumerate(ops):
        if op.name == "FRAME":  # frames are optional; their lengths would be stale
            continue
        out += replace.get(i, data[pos : ends[i]])
    return bytes(out), len(slots)


def _rewrite_zip(path: Path, replacements: Mapping[str, bytes]) -> None:
    """Rewrite entries of a torch zip, keeping entry order and 64-byte data alignment."""
    with zipfile.ZipFile(path) as zin:
        entries = [(info, zin.read(info)) for info in zin.infolist()]
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED) as zout:
        for info, payload in entries:
            payload = replacements.get(info.filename, payload)
            zi = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            zi.compress_type = zipfile.ZIP_STORED
            data_start = fh.tell() + 30 + len(info.filename.encode()) + 4
            pad = -data_start % 64
            zi.extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
            zout.writestr(zi, payload)
    os.replace(tmp, path)


def rewrite_storage_location(path: Path, old: str = "cpu", new: str = "cuda:0") -> int:
    """Make a CPU-saved torch file look saved on another device (zip or legacy format).

    Rewrites the location of each storage persistent id in the object pickle, at opcode
    level. Returns how many persistent ids were changed. Intended for files we wrote.
    """
    path = Path(path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            name = next(n for n in zf.namelist() if n.endswith("data.pkl"))
            pkl = zf.read(name)
        new_pkl, count = _rewrite_pickle_locations(pkl, old, new)
        _rewrite_zip(path, {name: new_pkl})
        return count
    data = path.read_bytes()
    start, end = _legacy_pickle_bounds(data)[3]
    new_pkl, count = _rewrite_pickle_locations(data[start:end], old, new)
    path.write_bytes(data[:start] + new_pkl + data[end:])
    return count


# --------------------------------------------------------------------------------------------
# small model classes (pickled as <this module>.<Class>)


class SmallMLP(nn.Module):
    """Linear(8,16) -> ReLU -> Linear(16,4) under ``net``."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class TiedNet(nn.Module):
    """Embedding(10,4) and Linear(4,10, bias=False) sharing one weight Parameter."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.head = nn.Linear(4, 10, bias=False)
        self.head.weight = self.embed.weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(idx))


class BatchNormNet(nn.Module):
    """BatchNorm2d (3 persistent buffers), BatchNorm1d without running stats (``None``
    buffers), and a non-persistent buffer ``scratch`` on the root."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.bn_nostats = nn.BatchNorm1d(4, track_running_stats=False)
        self.register_buffer("scratch", torch.arange(6, dtype=torch.float32), persistent=False)


class NoneEntriesNet(nn.Module):
    """``None`` in each registry: ``fc.bias`` (Linear without bias), child ``skip``,
    parameter ``maybe_scale`` and buffer ``maybe_stats``."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 2, bias=False)
        self.register_module("skip", None)
        self.register_parameter("maybe_scale", None)
        self.register_buffer("maybe_stats", None)
        self.out = nn.Linear(2, 1)


class ParamContainersNet(nn.Module):
    """An ``nn.ParameterList`` (one frozen entry) and an ``nn.ParameterDict``."""

    def __init__(self) -> None:
        super().__init__()
        self.plist = nn.ParameterList(
            [nn.Parameter(torch.randn(3)), nn.Parameter(torch.randn(2, 2), requires_grad=False)]
        )
        self.pdict = nn.ParameterDict(
            {"alpha": nn.Parameter(torch.ones(1)), "beta": nn.Parameter(torch.zeros(4))}
        )


class RootParamsNet(nn.Module):
    """Parameters and a buffer directly on the root, next to a child ``fc``."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(3))
        self.shift = nn.Parameter(torch.zeros(3), requires_grad=False)
        self.fc = nn.Linear(3, 3)
        self.register_buffer("count", torch.tensor(0))


class LazyNet(nn.Module):
    """An un-initialized ``nn.LazyLinear`` and an initialized Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.lazy = nn.LazyLinear(5)
        self.fc = nn.Linear(5, 2)


class DtypesNet(nn.Module):
    """Parameters and buffers of many dtypes (see :func:`build_dtypes`)."""

    def __init__(self) -> None:
        super().__init__()
        base = torch.randn(2, 3)
        self.p_bf16 = nn.Parameter(base.to(torch.bfloat16))
        self.p_fp16 = nn.Parameter(base.to(torch.float16))
        self.p_fp32 = nn.Parameter(base.clone())
        self.p_fp64 = nn.Parameter(base.to(torch.float64))
        self.p_f8e4m3 = nn.Parameter(base.to(torch.float8_e4m3fn), requires_grad=False)
        self.p_f8e5m2 = nn.Parameter(base.to(torch.float8_e5m2), requires_grad=False)
        self.p_c64 = nn.Parameter(torch.complex(base, -base))
        self.register_buffer("b_int8", torch.tensor([-128, 0, 127], dtype=torch.int8))
        self.register_buffer("b_uint8", torch.tensor([0, 255], dtype=torch.uint8))
        self.register_buffer("b_int16", torch.tensor([-1, 1], dtype=torch.int16))
        self.register_buffer("b_int32", torch.tensor([-1, 1], dtype=torch.int32))
        self.register_buffer("b_int64", torch.tensor([-1, 1], dtype=torch.int64))
        self.register_buffer(
            "b_uint16", torch.tensor([0, 65535], dtype=torch.int32).to(torch.uint16)
        )
        self.register_buffer("b_bool", torch.tensor([True, False, True]))
        self.register_buffer("b_c128", torch.zeros(2, dtype=torch.complex128))


class ViewBuffersNet(nn.Module):
    """Buffers sharing one storage: ``base`` (3x4), ``base_t`` (= base.T, non-contiguous),
    ``row`` (= base[1], storage offset 4), ``col`` (= base[:, 2], stride 4, offset 2)."""

    def __init__(self) -> None:
        super().__init__()
        base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
        self.register_buffer("base", base)
        self.register_buffer("base_t", base.T)
        self.register_buffer("row", base[1])
        self.register_buffer("col", base[:, 2])
        self.fc = nn.Linear(4, 3)


class QuantStaticNet(nn.Module):
    """QuantStub -> Linear -> ReLU -> DeQuantStub, for eager static quantization."""

    def __init__(self) -> None:
        super().__init__()
        self.quant = torch.ao.quantization.QuantStub()
        self.fc = nn.Linear(4, 3)
        self.relu = nn.ReLU()
        self.dequant = torch.ao.quantization.DeQuantStub()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dequant(self.relu(self.fc(self.quant(x))))


class SystemCallPayload:
    """Pickles as ``os.system(command)`` (GLOBAL ``posix system`` on Linux).

    Unpickling it RUNS the command. Only for the hostile builders.
    """

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[str]]:
        return (os.system, (self.command,))


def _payload(marker: Path) -> SystemCallPayload:
    return SystemCallPayload(f"touch {shlex.quote(str(Path(marker)))}")


# --------------------------------------------------------------------------------------------
# builders: full models and state dicts


def build_article_full_model(target: Path) -> Built:
    """The article's frozen ConvNet (only ``fc.*`` trainable), saved whole: ``article_full.pth``.

    ``obj`` is the model; its class pickles as ``sample_models.models.ConvNet``.
    """
    with _seeded():
        model = article_frozen_model()
    return _save(model, _dir(target) / "article_full.pth")


def build_article_state_dict(target: Path) -> Built:
    """The article ConvNet's ``state_dict()``: ``article_state_dict.pth``. ``obj`` is the dict
    (an OrderedDict with ``_metadata``; no requires_grad, no parameter/buffer distinction)."""
    with _seeded():
        model = article_frozen_model()
    return _save(model.state_dict(), _dir(target) / "article_state_dict.pth")


def build_tied_weights(target: Path) -> Built:
    """:class:`TiedNet` saved whole: ``tied.pth``. ``embed.weight`` and ``head.weight`` are one
    Parameter, pickled once (the second is a memo reference). ``obj`` is the model."""
    with _seeded():
        model = TiedNet()
    return _save(model, _dir(target) / "tied.pth")


def build_batchnorm_nonpersistent(target: Path) -> Built:
    """:class:`BatchNormNet` saved whole: ``batchnorm.pth``. Has BatchNorm running stats,
    a BatchNorm1d whose running_mean/var/num_batches_tracked are ``None``, and a
    non-persistent buffer ``scratch`` (in the pickle, absent from state_dict)."""
    with _seeded():
        model = BatchNormNet()
    return _save(model, _dir(target) / "batchnorm.pth")


def build_data_parallel(target: Path) -> Built:
    """``nn.DataParallel(SmallMLP())`` saved whole on CPU: ``data_parallel.pth``.

    Names carry the ``module.`` prefix; the wrapper's ``__dict__`` has ``device_ids == []``.
    """
    with _seeded():
        model = nn.DataParallel(SmallMLP())
    return _save(model, _dir(target) / "data_parallel.pth")


def build_data_parallel_state_dict(target: Path) -> Built:
    """``nn.DataParallel(SmallMLP()).state_dict()``: ``data_parallel_state_dict.pth``,
    keys ``module.net.0.weight`` …"""
    with _seeded():
        model = nn.DataParallel(SmallMLP())
    return _save(model.state_dict(), _dir(target) / "data_parallel_state_dict.pth")


def build_none_entries(target: Path) -> Built:
    """:class:`NoneEntriesNet` saved whole: ``none_entries.pth`` (``None`` child, parameters
    and buffer in the module registries)."""
    with _seeded():
        model = NoneEntriesNet()
    return _save(model, _dir(target) / "none_entries.pth")


def build_parameter_containers(target: Path) -> Built:
    """:class:`ParamContainersNet` saved whole: ``param_containers.pth`` (ParameterList with
    names ``plist.0``/``plist.1``, ParameterDict ``pdict.alpha``/``pdict.beta``)."""
    with _seeded():
        model = ParamContainersNet()
    return _save(model, _dir(target) / "param_containers.pth")


def build_root_parameters(target: Path) -> Built:
    """:class:`RootParamsNet` saved whole: ``root_params.pth`` (parameters ``scale``, frozen
    ``shift`` and buffer ``count`` directly on the root module)."""
    with _seeded():
        model = RootParamsNet()
    return _save(model, _dir(target) / "root_params.pth")


def build_lazy(target: Path) -> Built:
    """:class:`LazyNet` saved whole with ``lazy`` un-initialized: ``lazy.pth``.

    ``lazy.weight``/``lazy.bias`` are ``torch.nn.parameter.UninitializedParameter`` (no shape,
    no storage); the lazy module's hooks pickle ``builtins.getattr`` + ``_WrappedHook``.
    """
    with _seeded():
        model = LazyNet()
    return _save(model, _dir(target) / "lazy.pth")


def build_dynamic_quantized(target: Path) -> Built:
    """``quantize_dynamic(SmallMLP(), {nn.Linear}, qint8)`` saved whole: ``dynamic_quant.pth``.

    The Linears become ``DynamicQuantizedLinear`` with a ``LinearPackedParams`` child whose
    state holds a qint8 weight (``_rebuild_qtensor``) and a float bias; no parameters at all.
    """
    with _seeded(), _quiet():
        model = torch.ao.quantization.quantize_dynamic(
            SmallMLP().eval(), {nn.Linear}, dtype=torch.qint8
        )
    return _save(model, _dir(target) / "dynamic_quant.pth")


def build_static_quantized(target: Path) -> Built:
    """Eager-mode static quantization of :class:`QuantStaticNet` (x86/fbgemm), saved whole:
    ``static_quant.pth`` (``Quantize``, ``quantized.Linear``, ``DeQuantize`` modules)."""
    with _seeded(), _quiet():
        model = QuantStaticNet().eval()
        model.qconfig = torch.ao.quantization.get_default_qconfig("x86")
        torch.ao.quantization.prepare(model, inplace=True)
        model(torch.randn(16, 4))
        torch.ao.quantization.convert(model, inplace=True)
    return _save(model, _dir(target) / "static_quant.pth")


def build_quantized_tensors(target: Path) -> Built:
    """A dict of quantized tensors: ``quantized_tensors.pth`` with ``per_tensor`` (qint8,
    scale 0.1, zero_point 0), ``per_channel`` (quint8, axis 0) and ``float`` (reference)."""
    with _seeded(), _quiet():
        x = torch.randn(3, 4)
        obj = {
            "per_tensor": torch.quantize_per_tensor(x, 0.1, 0, torch.qint8),
            "per_channel": torch.quantize_per_channel(
                x, torch.tensor([0.1, 0.2, 0.3]), torch.tensor([0, 1, 2]), 0, torch.quint8
            ),
            "float": x,
        }
    return _save(obj, _dir(target) / "quantized_tensors.pth")


def build_dtypes(target: Path) -> Built:
    """:class:`DtypesNet` saved whole: ``dtypes.pth``. Parameters bf16, fp16, fp32, fp64,
    float8_e4m3fn, float8_e5m2 (both frozen), complex64; buffers int8, uint8, int16, int32,
    int64, uint16, bool, complex128."""
    with _seeded():
        model = DtypesNet()
    return _save(model, _dir(target) / "dtypes.pth")


def build_dtypes_state_dict(target: Path) -> Built:
    """``DtypesNet().state_dict()``: ``dtypes_state_dict.pth``."""
    with _seeded():
        model = DtypesNet()
    return _save(model.state_dict(), _dir(target) / "dtypes_state_dict.pth")


def build_view_buffers(target: Path) -> Built:
    """:class:`ViewBuffersNet` saved whole: ``view_buffers.pth``. Four buffers are views of
    one storage (one ``data/<key>`` entry) with different offsets/strides."""
    with _seeded():
        model = ViewBuffersNet()
    return _save(model, _dir(target) / "view_buffers.pth")


_MAIN_SCRIPT = """\
import json
import sys

import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.head = nn.Linear(4, 2)
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def forward(self, x):
        return self.head(self.conv(x).mean(dim=(2, 3)))


if __name__ == "__main__":
    out, facts_out, helper_dir = sys.argv[1:4]
    torch.manual_seed(0)
    net = Net()
    net.conv.weight.requires_grad_(False)
    torch.save(net, out)
    sys.path.insert(0, helper_dir)
    import torch_models

    with open(facts_out, "w") as fh:
        json.dump(torch_models.expected_facts(net), fh)
"""


def build_main_class(target: Path) -> Built:
    """A model whose class is ``__main__.Net`` of another process: ``main_class.pth``.

    Runs a generated script with ``sys.executable`` in a subprocess. ``obj`` is ``None`` (the
    class can't be imported here); ``expected`` holds its :func:`expected_facts`, also written
    to ``main_class.expected.json``. Files: the .pth, the script and the JSON.
    """
    target = _dir(target)
    script = target / "main_class_script.py"
    script.write_text(_MAIN_SCRIPT)
    out = target / "main_class.pth"
    facts = target / "main_class.expected.json"
    subprocess.run(
        [sys.executable, str(script), str(out), str(facts), str(Path(__file__).resolve().parent)],
        check=True,
        capture_output=True,
        cwd=target,
    )
    expected = json.loads(facts.read_text())
    return Built(path=out, obj=None, files=(out, script, facts), expected=expected)


def build_legacy(target: Path, *, state_dict: bool = False) -> Built:
    """The article ConvNet (or its state_dict) in the legacy (< 1.6) non-zip format:
    ``legacy.pth`` / ``legacy_state_dict.pth``. ``obj`` is what was saved."""
    with _seeded():
        model = article_frozen_model()
    obj: Any = model.state_dict() if state_dict else model
    name = "legacy_state_dict.pth" if state_dict else "legacy.pth"
    return _save(obj, _dir(target) / name, _use_new_zipfile_serialization=False)


def build_cuda_saved(target: Path, *, legacy: bool = False, state_dict: bool = False) -> Built:
    """The article ConvNet (or its state_dict) as if saved on ``cuda:0``: ``cuda_saved.pth``
    (``cuda_saved_legacy.pth`` with ``legacy=True``; ``_state_dict`` added if ``state_dict``).

    Saved on CPU, then every storage location is rewritten ``'cpu'`` -> ``'cuda:0'`` in the
    object pickle (:func:`rewrite_storage_location`). On a CPU-only machine
    ``torch.load(p, map_location='cpu', weights_only=False)`` works and ``torch.load(p)`` fails
    with "Attempting to deserialize object on a CUDA device …". ``obj`` is the CPU object.
    """
    with _seeded():
        model = article_frozen_model()
    obj: Any = model.state_dict() if state_dict else model
    name = "cuda_saved" + ("_legacy" if legacy else "") + ("_state_dict" if state_dict else "")
    built = _save(obj, _dir(target) / f"{name}.pth", _use_new_zipfile_serialization=not legacy)
    count = rewrite_storage_location(built.path, "cpu", "cuda:0")
    assert count > 0, "no storage location rewritten"
    return built


# --------------------------------------------------------------------------------------------
# builders: checkpoints and containers


def _adam_after_one_step(model: nn.Module, inputs: torch.Tensor) -> torch.optim.Adam:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    out = model(inputs)
    loss = out.float().pow(2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return optimizer


def build_training_checkpoint(target: Path) -> Built:
    """Tutorial layout: ``checkpoint.pth`` = ``{'epoch': 5, 'model_state_dict',
    'optimizer_state_dict' (Adam after one step, state only for trainable fc.*), 'loss': 0.25}``.
    ``obj`` is the dict."""
    with _seeded():
        model = article_frozen_model().train()
        optimizer = _adam_after_one_step(model, torch.randn(4, 1, 28, 28))
        obj = {
            "epoch": 5,
            "model_state_dict": model.state_dict(),
            "optimizer_state_dict": optimizer.state_dict(),
            "loss": 0.25,
        }
    return _save(obj, _dir(target) / "checkpoint.pth")


def build_model_in_dict(target: Path) -> Built:
    """``{'model': <full article ConvNet>, 'epoch': 3}``: ``model_in_dict.pth``."""
    with _seeded():
        obj = {"model": article_frozen_model(), "epoch": 3}
    return _save(obj, _dir(target) / "model_in_dict.pth")


def build_lightning_ckpt(target: Path) -> Built:
    """A PyTorch-Lightning-like checkpoint: ``lightning.ckpt``.

    Keys: ``epoch``, ``global_step``, ``pytorch-lightning_version``, ``state_dict`` (the
    article ConvNet's, keys prefixed ``model.``), ``loops``, ``callbacks``,
    ``optimizer_states`` (one Adam), ``lr_schedulers`` (one StepLR), ``hparams_name``,
    ``hyper_parameters`` (a plain dict).
    """
    with _seeded():
        model = article_frozen_model().train()
        optimizer = _adam_after_one_step(model, torch.randn(4, 1, 28, 28))
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=10, gamma=0.5)
        state = OrderedDict((f"model.{k}", v) for k, v in model.state_dict().items())
    obj = {
        "epoch": 2,
        "global_step": 300,
        "pytorch-lightning_version": "2.4.0",
        "state_dict": state,
        "loops": {
            "fit_loop": {
                "state_dict": {},
                "epoch_loop.state_dict": {"_batches_that_stepped": 300},
                "epoch_progress": {
                    "total": {"ready": 3, "started": 3, "processed": 3, "completed": 2},
                    "current": {"ready": 3, "started": 3, "processed": 3, "completed": 2},
                },
            },
            "validate_loop": {"state_dict": {}},
        },
        "callbacks": {
            "ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min', 'every_n_train_steps': 0, "
            "'every_n_epochs': 1, 'train_time_interval': None}": {
                "monitor": "val_loss",
                "best_model_score": torch.tensor(0.25),
                "best_model_path": "/tmp/ckpts/epoch=1-step=200.ckpt",
                "current_score": torch.tensor(0.3),
                "dirpath": "/tmp/ckpts",
                "best_k_models": {},
                "kth_best_model_path": "",
                "kth_value": torch.tensor(float("inf")),
                "last_model_path": "",
            }
        },
        "optimizer_states": [optimizer.state_dict()],
        "lr_schedulers": [scheduler.state_dict()],
        "hparams_name": "kwargs",
        "hyper_parameters": {"lr": 1e-3, "batch_size": 64, "num_classes": 10, "arch": "ConvNet"},
    }
    return _save(obj, _dir(target) / "lightning.ckpt")


def build_torchscript(target: Path) -> Built:
    """``torch.jit.script`` of the article's frozen ConvNet, ``torch.jit.save``-d:
    ``scripted.pt`` (has ``constants.pkl`` and ``code/``). ``obj`` is the ScriptModule."""
    with _seeded():
        scripted = torch.jit.script(article_frozen_model().eval())
    path = _dir(target) / "scripted.pt"
    torch.jit.save(scripted, str(path))
    return Built(path=path, obj=scripted, files=(path,))


def build_safetensors(target: Path) -> Built:
    """The article ConvNet's state_dict as ``model.safetensors`` with metadata
    ``{"format": "pt"}``. ``obj`` is the state_dict."""
    from safetensors.torch import save_file

    with _seeded():
        state = article_frozen_model().state_dict()
    path = _dir(target) / "model.safetensors"
    save_file(state, str(path), metadata={"format": "pt"})
    return Built(path=path, obj=state, files=(path,))


def _split_keys(keys: list[str], n: int) -> list[list[str]]:
    size = -(-len(keys) // n)
    return [keys[i : i + size] for i in range(0, len(keys), size)]


def build_sharded_safetensors(target: Path, *, n_shards: int = 3) -> Built:
    """A Hugging Face sharded safetensors checkpoint in ``target/sharded_safetensors/``:
    ``model-0000i-of-0000n.safetensors`` + ``model.safetensors.index.json``
    (``{"metadata": {"total_size": N}, "weight_map": {name: shard}}``). ``path`` is the
    directory, ``obj`` the full state_dict (article ConvNet)."""
    from safetensors.torch import save_file

    with _seeded():
        state = article_frozen_model().state_dict()
    out = _dir(Path(target) / "sharded_safetensors")
    groups = _split_keys(list(state), n_shards)
    weight_map: dict[str, str] = {}
    files: list[Path] = []
    for i, keys in enumerate(groups, start=1):
        shard = f"model-{i:05d}-of-{len(groups):05d}.safetensors"
        save_file({k: state[k] for k in keys}, str(out / shard), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(keys, shard))
        files.append(out / shard)
    total = sum(t.numel() * t.element_size() for t in state.values())
    index = out / "model.safetensors.index.json"
    index.write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2)
    )
    return Built(path=out, obj=state, files=(index, *files))


def build_sharded_torch(target: Path, *, n_shards: int = 2) -> Built:
    """A Hugging Face sharded torch checkpoint in ``target/sharded_torch/``:
    ``pytorch_model-0000i-of-0000n.bin`` (torch.save of state_dict pieces) +
    ``pytorch_model.bin.index.json``. ``path`` is the directory, ``obj`` the full state_dict."""
    with _seeded():
        state = article_frozen_model().state_dict()
    out = _dir(Path(target) / "sharded_torch")
    groups = _split_keys(list(state), n_shards)
    weight_map: dict[str, str] = {}
    files: list[Path] = []
    for i, keys in enumerate(groups, start=1):
        shard = f"pytorch_model-{i:05d}-of-{len(groups):05d}.bin"
        torch.save(OrderedDict((k, state[k]) for k in keys), out / shard)
        weight_map.update(dict.fromkeys(keys, shard))
        files.append(out / shard)
    total = sum(t.numel() * t.element_size() for t in state.values())
    index = out / "pytorch_model.bin.index.json"
    index.write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2)
    )
    return Built(path=out, obj=state, files=(index, *files))


def build_lone_tensor(target: Path) -> Built:
    """A single float32 tensor of shape (2, 3, 4): ``tensor.pt``."""
    with _seeded():
        t = torch.randn(2, 3, 4)
    return _save(t, _dir(target) / "tensor.pt")


def build_tensor_list(target: Path) -> Built:
    """A list of tensors: ``tensor_list.pt`` = [float32 (3,), int64 (2,2), fp16 (4,), a view
    of the first (slice [1:], same storage)]."""
    with _seeded():
        a = torch.randn(3)
        obj = [a, torch.arange(4).reshape(2, 2), torch.randn(4).half(), a[1:]]
    return _save(obj, _dir(target) / "tensor_list.pt")


def build_plain_dict(target: Path) -> Built:
    """A dict with no tensors: ``plain_dict.pt`` (str, int, float, bool, None, list, tuple,
    nested dict, bytes)."""
    obj = {
        "name": "run-7",
        "epoch": 3,
        "lr": 0.001,
        "done": False,
        "notes": None,
        "layers": [16, 32, 64],
        "shape": (1, 28, 28),
        "nested": {"a": 1, "b": [1.5, "x"]},
        "blob": b"\x00\x01",
    }
    return _save(obj, _dir(target) / "plain_dict.pt")


# --------------------------------------------------------------------------------------------
# hostile payloads: NEVER load these with anything that executes pickles


def build_hostile_top_level(target: Path, marker: Path) -> Built:
    """HOSTILE. ``torch.save(payload)``: the whole object is ``os.system('touch MARKER')``:
    ``hostile_top.pth``. Loading it with pickle creates ``marker``."""
    return _save(_payload(marker), _dir(target) / "hostile_top.pth")


def build_hostile_module_attr(target: Path, marker: Path) -> Built:
    """HOSTILE. A full SmallMLP with the payload as a plain attribute (in its ``__dict__``):
    ``hostile_module_attr.pth``."""
    with _seeded():
        model = SmallMLP()
    model.payload = _payload(marker)
    return _save(model, _dir(target) / "hostile_module_attr.pth")


def build_hostile_state_dict_value(target: Path, marker: Path) -> Built:
    """HOSTILE. A SmallMLP state_dict with the payload as value of key ``evil``:
    ``hostile_state_dict.pth``."""
    with _seeded():
        state = SmallMLP().state_dict()
    state["evil"] = _payload(marker)
    return _save(state, _dir(target) / "hostile_state_dict.pth")


def build_hostile_checkpoint_extra(target: Path, marker: Path) -> Built:
    """HOSTILE. A tutorial-style checkpoint whose extra key ``config`` holds the payload:
    ``hostile_checkpoint.pth``."""
    with _seeded():
        state = SmallMLP().state_dict()
    obj = {"epoch": 1, "model_state_dict": state, "loss": 0.5, "config": _payload(marker)}
    return _save(obj, _dir(target) / "hostile_checkpoint.pth")


def build_hostile_legacy(target: Path, marker: Path) -> Built:
    """HOSTILE. A SmallMLP state_dict with the payload under ``evil``, in the legacy non-zip
    format: ``hostile_legacy.pth``."""
    with _seeded():
        state = SmallMLP().state_dict()
    state["evil"] = _payload(marker)
    return _save(state, _dir(target) / "hostile_legacy.pth", _use_new_zipfile_serialization=False)


# --------------------------------------------------------------------------------------------
# registries

SAFE_BUILDERS: dict[str, Callable[[Path], Built]] = {
    "article_full_model": build_article_full_model,
    "article_state_dict": build_article_state_dict,
    "tied_weights": build_tied_weights,
    "batchnorm_nonpersistent": build_batchnorm_nonpersistent,
    "data_parallel": build_data_parallel,
    "data_parallel_state_dict": build_data_parallel_state_dict,
    "none_entries": build_none_entries,
    "parameter_containers": build_parameter_containers,
    "root_parameters": build_root_parameters,
    "lazy": build_lazy,
    "dynamic_quantized": build_dynamic_quantized,
    "static_quantized": build_static_quantized,
    "quantized_tensors": build_quantized_tensors,
    "dtypes": build_dtypes,
    "dtypes_state_dict": build_dtypes_state_dict,
    "view_buffers": build_view_buffers,
    "main_class": build_main_class,
    "legacy": build_legacy,
    "cuda_saved": build_cuda_saved,
    "training_checkpoint": build_training_checkpoint,
    "model_in_dict": build_model_in_dict,
    "lightning_ckpt": build_lightning_ckpt,
    "torchscript": build_torchscript,
    "safetensors": build_safetensors,
    "sharded_safetensors": build_sharded_safetensors,
    "sharded_torch": build_sharded_torch,
    "lone_tensor": build_lone_tensor,
    "tensor_list": build_tensor_list,
    "plain_dict": build_plain_dict,
}
"""Builders that are safe to ``torch.load`` (all with ``weights_only=False``; CUDA-saved
needs ``map_location='cpu'``; main_class can't be loaded here; TorchScript needs
``torch.jit.load``; safetensors/sharded are not torch.load files)."""

HOSTILE_BUILDERS: dict[str, Callable[[Path, Path], Built]] = {
    "top_level": build_hostile_top_level,
    "module_attr": build_hostile_module_attr,
    "state_dict_value": build_hostile_state_dict_value,
    "checkpoint_extra": build_hostile_checkpoint_extra,
    "legacy": build_hostile_legacy,
}
"""Builders ``(target, marker)`` whose files run ``touch marker`` if unpickled."""
