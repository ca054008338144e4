"""Builders of torch files that exercise module structure, dtypes and quantization.

Tests helper, not a test file; import through the ``torch_models`` façade. The small model
classes here are pickled under this module's import name (``torch_builders_modules.X`` or
``tests.torch_builders_modules.X``); the article's CNN is always ``sample_models.models.ConvNet``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch_builders_base import Built, _dir, _quiet, _save, _seeded

from sample_models.models import article_frozen_model

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
