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

This module is the façade: :class:`Built`, :func:`expected_facts`, the pickle helpers and the
registries here, every builder and model class re-exported from ``torch_builders_base``,
``torch_builders_modules`` (module structure, dtypes, quantization), ``torch_builders_formats``
(legacy, CUDA, checkpoints, TorchScript, safetensors, sharded, plain values) and
``torch_builders_hostile``. The small model classes are pickled under the import name of
``torch_builders_modules`` (``torch_builders_modules.X`` or ``tests.torch_builders_modules.X``);
the article's CNN is always ``sample_models.models.ConvNet``. :func:`expected_facts` reports the
names as they were pickled.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch_builders_base import (
    Built,
    pickle_globals,
    read_data_pkl,
    rewrite_storage_location,
)
from torch_builders_formats import (
    build_cuda_saved,
    build_legacy,
    build_lightning_ckpt,
    build_lone_tensor,
    build_main_class,
    build_model_in_dict,
    build_plain_dict,
    build_safetensors,
    build_sharded_safetensors,
    build_sharded_torch,
    build_tensor_list,
    build_torchscript,
    build_training_checkpoint,
)
from torch_builders_hostile import (
    SystemCallPayload,
    build_hostile_checkpoint_extra,
    build_hostile_legacy,
    build_hostile_module_attr,
    build_hostile_state_dict_value,
    build_hostile_top_level,
)
from torch_builders_modules import (
    BatchNormNet,
    DtypesNet,
    LazyNet,
    NoneEntriesNet,
    ParamContainersNet,
    QuantStaticNet,
    RootParamsNet,
    SmallMLP,
    TiedNet,
    ViewBuffersNet,
    build_article_full_model,
    build_article_state_dict,
    build_batchnorm_nonpersistent,
    build_data_parallel,
    build_data_parallel_state_dict,
    build_dtypes,
    build_dtypes_state_dict,
    build_dynamic_quantized,
    build_lazy,
    build_none_entries,
    build_parameter_containers,
    build_quantized_tensors,
    build_root_parameters,
    build_static_quantized,
    build_tied_weights,
    build_view_buffers,
)

__all__ = [
    "BatchNormNet",
    "Built",
    "DtypesNet",
    "HOSTILE_BUILDERS",
    "LazyNet",
    "NoneEntriesNet",
    "ParamContainersNet",
    "QuantStaticNet",
    "RootParamsNet",
    "SAFE_BUILDERS",
    "SmallMLP",
    "SystemCallPayload",
    "TiedNet",
    "ViewBuffersNet",
    "build_article_full_model",
    "build_article_state_dict",
    "build_batchnorm_nonpersistent",
    "build_cuda_saved",
    "build_data_parallel",
    "build_data_parallel_state_dict",
    "build_dtypes",
    "build_dtypes_state_dict",
    "build_dynamic_quantized",
    "build_hostile_checkpoint_extra",
    "build_hostile_legacy",
    "build_hostile_module_attr",
    "build_hostile_state_dict_value",
    "build_hostile_top_level",
    "build_lazy",
    "build_legacy",
    "build_lightning_ckpt",
    "build_lone_tensor",
    "build_main_class",
    "build_model_in_dict",
    "build_none_entries",
    "build_parameter_containers",
    "build_plain_dict",
    "build_quantized_tensors",
    "build_root_parameters",
    "build_safetensors",
    "build_sharded_safetensors",
    "build_sharded_torch",
    "build_static_quantized",
    "build_tensor_list",
    "build_tied_weights",
    "build_torchscript",
    "build_training_checkpoint",
    "build_view_buffers",
    "expected_facts",
    "pickle_globals",
    "read_data_pkl",
    "rewrite_storage_location",
]


# --------------------------------------------------------------------------------------------
# expected facts


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
