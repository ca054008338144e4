"""What a pickle may call and still be plain data: the scan's allowlist.

Starts from torch's own `weights_only` allowlist (torch/_weights_only_unpickler.py,
`_get_allowed_globals`: the `_rebuild_*` functions, storages, dtypes, `OrderedDict`,
`torch.Size`, …), written out here so reading never imports torch, plus the pure data
constructors real checkpoints use: numpy's reconstructors, datetime, pathlib paths,
set/frozenset/complex/slice, `argparse.Namespace`. Anything else a pickle *calls* is
code as far as modeltree can tell.
"""

from __future__ import annotations

_REBUILD = ("_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_qtensor",
            "_rebuild_parameter", "_rebuild_parameter_with_state", "_rebuild_sparse_tensor",
            "_rebuild_nested_tensor", "_rebuild_meta_tensor_no_storage",
            "_rebuild_wrapper_subclass", "_rebuild_device_tensor_from_cpu_tensor",
            "_rebuild_device_tensor_from_numpy", "_rebuild_xla_tensor", "_rebuild_mtia_tensor",
            "_rebuild_sparse_csr_tensor")
_TYPES = ("Double", "Float", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool")
_STORAGES = _TYPES + ("ComplexDouble", "ComplexFloat", "QInt8", "QUInt8", "QInt32", "QUInt4x2",
                      "QUInt2x4")
_DTYPES = ("float64", "float32", "float16", "bfloat16", "complex128", "complex64", "complex32",
           "int64", "int32", "int16", "int8", "uint8", "bool", "qint8", "quint8", "qint32",
           "quint4x2", "quint2x4", "bits8", "bits16", "bits1x8", "bits2x4", "bits4x2",
           "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz",
           "float8_e8m0fnu", "float4_e2m1fn_x2", "uint16", "uint32", "uint64",
           *(f"uint{i}" for i in range(1, 8)), *(f"int{i}" for i in range(1, 8)),
           "float", "double", "half", "long", "int", "short", "cfloat", "cdouble", "chalf")

SAFE_CALLS: frozenset[str] = frozenset({
    # torch/_weights_only_unpickler.py
    "collections.OrderedDict", "collections.Counter", "torch.nn.parameter.Parameter",
    "torch.serialization._get_layout", "torch.Size", "torch.Tensor", "torch.device",
    "_codecs.encode", "builtins.bytearray", "builtins.set", "builtins.complex",
    "torch._tensor._rebuild_from_type_v2", "torch._tensor._rebuild_from_type",
    "torch.storage.TypedStorage", "torch.storage.UntypedStorage",
    *(f"torch._utils.{f}" for f in _REBUILD),
    *(f"torch.{t}Storage" for t in _STORAGES), *(f"torch.cuda.{t}Storage" for t in _STORAGES),
    *(f"torch.{t}Tensor" for t in _TYPES), *(f"torch.cuda.{t}Tensor" for t in _TYPES),
    *(f"torch.sparse.{t}Tensor" for t in _TYPES), *(f"torch.cuda.sparse.{t}Tensor" for t in _TYPES),
    *(f"torch.{d}" for d in _DTYPES),
    "torch.per_tensor_affine", "torch.per_tensor_symmetric", "torch.per_channel_affine",
    "torch.per_channel_symmetric", "torch.per_channel_affine_float_qparams",
    "torch.strided", "torch.sparse_coo", "torch.sparse_csr", "torch.sparse_csc",
    "torch.sparse_bsr", "torch.sparse_bsc", "torch._mkldnn", "torch.jagged",
    "torch.nn.parameter.UninitializedParameter", "torch.nn.parameter.UninitializedBuffer",
    # TorchScript archives' list/type helpers (data only; torch's C++ unpickler reads them)
    *(f"torch.jit._pickle.{f}" for f in ("build_intlist", "build_tensorlist", "build_doublelist",
                                         "build_boollist", "build_tensor_from_id",
                                         "restore_type_tag")),
    # torch's own enum in DCP .metadata (an enum call looks its member up by value)
    "torch.distributed.checkpoint.metadata._MEM_FORMAT_ENCODING",
    # plain data
    "builtins.frozenset", "builtins.slice", "builtins.list", "builtins.tuple", "builtins.dict",
    "builtins.int", "builtins.float", "builtins.str", "builtins.bool", "builtins.bytes",
    "builtins.range", "builtins.len", "builtins.object",
    "collections.defaultdict", "collections.deque",
    "datetime.datetime", "datetime.date", "datetime.time", "datetime.timedelta",
    "datetime.timezone", "decimal.Decimal", "fractions.Fraction", "uuid.UUID",
    "types.SimpleNamespace", "argparse.Namespace",
    *(f"{m}.{c}" for m in ("pathlib", "pathlib._local") for c in (
        "Path", "PosixPath", "WindowsPath", "PurePath", "PurePosixPath", "PureWindowsPath")),
    *(f"{m}.multiarray.{f}" for m in ("numpy.core", "numpy._core")
      for f in ("_reconstruct", "scalar")),
    "numpy.core.numeric._frombuffer", "numpy._core.numeric._frombuffer",
    "numpy.dtype", "numpy.ndarray",
})

# Builtins that convert their argument: an object made from the file passed to one of
# them would run that object's class code (__iter__, __index__, __str__, …).
CONVERTERS = frozenset({"builtins.frozenset", "builtins.list", "builtins.tuple", "builtins.dict",
                        "builtins.int", "builtins.float", "builtins.str", "builtins.bool",
                        "builtins.bytes", "builtins.bytearray", "builtins.set",
                        "builtins.complex", "builtins.len", "builtins.range",
                        "builtins.slice"})

# Packages whose import is no news: torch.load imports them anyway (or they are stdlib data).
QUIET_PACKAGES = frozenset({"torch", "builtins", "collections", "numpy", "_codecs", "copyreg",
                            "datetime", "pathlib", "argparse", "decimal", "fractions", "uuid",
                            "types", "__main__"})


def is_safe_call(qual: str, name: str) -> bool:
    """A call of this global builds data only (a dotted attribute path never does)."""
    return "." not in name and qual in SAFE_CALLS
