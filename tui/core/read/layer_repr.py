"""What `print(model)` shows for a module, from its pickled attributes (no torch).

    extra_repr("torch.nn.modules.linear.Linear", state) → "in_features=4, out_features=2, bias=True"

For every `torch.nn` class the text is exactly what torch's own `extra_repr()` returns
(each handler below restates torch's, read from torch/nn/modules/*.py); other classes
show their plain attributes (not tensors, not modules) as `key=value`. `state` is the
module's `__dict__` as pickled: parameters, buffers and children are looked up in its
`_parameters`/`_buffers`/`_modules` the way `nn.Module.__getattr__` does, so any
reader that can give a module's attribute dict (torch.save pickles, TorchScript
archives) can use it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from tui.core.read.pyrepr import MISSING, is_plain, py_repr, py_str, to_json
from tui.core.read.records import Flag, ParamRec, is_standin, is_tensor, type_name
from tui.core.read.script_attrs import clean_type

Handler = Callable[[Callable[[str], Any], Mapping], str]

# Attribute values longer than this are cut in key=value text (a tokenizer's vocab…).
MAX_VALUE_TEXT = 120
MAX_ATTRS = 40


def _inplace(get: Callable[[str], Any], lead: str = ", ") -> str:
    return f"{lead}inplace=True" if _truthy(get("inplace")) else ""


def _truthy(v: Any) -> bool:
    return bool(v) if v is not MISSING else False


def _fmt(template: str, d: Mapping, **extra: Any) -> str:
    """str.format(**self.__dict__), with torch's str() of each value."""
    return template.format_map(_Fields(d, extra))


class _Str:
    """Formats as str(value) would in Python."""

    __slots__ = ("v",)

    def __init__(self, v: Any) -> None:
        self.v = v

    def __format__(self, spec: str) -> str:
        return py_str(self.v)


class _Defaulting(dict):
    def __missing__(self, key: str) -> _Str:  # an attribute the file lacks: show it as torch can't
        return _Str(MISSING)


class _Fields:
    """The fields a template names, looked up when formatted (a module's __dict__ holds
    ~20 entries, a template names ~5: 5,000 modules are opened 3x faster)."""

    __slots__ = ("d", "extra")

    def __init__(self, d: Mapping, extra: dict) -> None:
        self.d, self.extra = d, extra

    def __getitem__(self, key: str) -> _Str:
        if key in self.extra:
            return _Str(self.extra[key])
        return _Str(self.d.get(key, MISSING))  # an attribute the file lacks: as torch can't


def _conv(get, d) -> str:
    s = "{in_channels}, {out_channels}, kernel_size={kernel_size}, stride={stride}"
    for attr, neutral in (("padding", 0), ("dilation", 1), ("output_padding", 0)):
        v = get(attr)
        if isinstance(v, (tuple, list, str)) and (len(v) > 8 or v != (neutral,) * len(v)):
            s += f", {attr}={{{attr}}}"
    if get("groups") != 1:
        s += ", groups={groups}"
    if get("bias") is None:
        s += ", bias=False"
    if get("padding_mode") != "zeros":
        s += ", padding_mode={padding_mode}"
    return _fmt(s, d)


def _norm(get, d) -> str:
    return _fmt("{num_features}, eps={eps}, momentum={momentum}, affine={affine}, bias={use_bias}, "
                "track_running_stats={track_running_stats}", d, use_bias=get("bias") is not None)


def _rnn(get, d) -> str:
    s = "{input_size}, {hidden_size}"
    if get("proj_size") not in (0, MISSING):
        s += ", proj_size={proj_size}"
    if get("num_layers") != 1:
        s += ", num_layers={num_layers}"
    if get("bias") is not True:
        s += ", bias={bias}"
    if get("batch_first") is not False:
        s += ", batch_first={batch_first}"
    if get("dropout") != 0:
        s += ", dropout={dropout}"
    if get("bidirectional") is not False:
        s += ", bidirectional={bidirectional}"
    return _fmt(s, d)


def _rnn_cell(get, d) -> str:
    s = "{input_size}, {hidden_size}"
    if "bias" in d and d["bias"] is not True:
        s += ", bias={bias}"
    if "nonlinearity" in d and d["nonlinearity"] != "tanh":
        s += ", nonlinearity={nonlinearity}"
    return _fmt(s, d)


def _norm_options(get) -> str:
    """The max-norm options Embedding and EmbeddingBag both print, in torch's order."""
    s = ""
    if get("max_norm") is not None:
        s += ", max_norm={max_norm}"
    if get("norm_type") != 2:
        s += ", norm_type={norm_type}"
    if get("scale_grad_by_freq") is not False:
        s += ", scale_grad_by_freq={scale_grad_by_freq}"
    return s


def _embedding(get, d) -> str:
    s = "{num_embeddings}, {embedding_dim}"
    if get("padding_idx") is not None:
        s += ", padding_idx={padding_idx}"
    s += _norm_options(get)
    if get("sparse") is not False:
        s += ", sparse=True"
    return _fmt(s, d)


def _embedding_bag(get, d) -> str:
    s = "{num_embeddings}, {embedding_dim}" + _norm_options(get) + ", mode={mode}"
    if get("padding_idx") is not None:
        s += ", padding_idx={padding_idx}"
    return s.format_map(_Defaulting({k: py_repr(v) for k, v in d.items() if isinstance(k, str)}))


def _upsample(get, d) -> str:
    sf = get("scale_factor")
    info = f"scale_factor={py_repr(sf)}" if sf is not None else f"size={py_repr(get('size'))}"
    return info + f", mode={py_repr(get('mode'))}"


def _f(template: str, **derived: Callable[[Callable[[str], Any]], Any]) -> Handler:
    """A handler for an f-string over attributes: `_f("dim={dim}")`."""
    def handler(get, d) -> str:
        return _fmt(template, d, **{k: fn(get) for k, fn in derived.items()})
    return handler


def _with_inplace(template: str, lead: str = ", ") -> Handler:
    def handler(get, d) -> str:
        return (_fmt(template, d) if template else "") + _inplace(get, lead)
    return handler


def _has_bias(get: Callable[[str], Any]) -> bool:
    return get("bias") is not None


# torch.nn class name → handler; the classes sharing a base's extra_repr are listed with it.
_HANDLERS: dict[str, Handler] = {}


def _register(names: str, handler: Handler) -> None:
    for n in names.split():
        _HANDLERS[n] = handler


_register("Threshold", _with_inplace("threshold={threshold}, value={value}"))
_register("ReLU ReLU6 SiLU Mish SELU", _with_inplace("", lead=""))
_register("RReLU", _with_inplace("lower={lower}, upper={upper}"))
_register("Hardtanh", _with_inplace("min_val={min_val}, max_val={max_val}"))
_register("ELU CELU", _with_inplace("alpha={alpha}"))
_register("LeakyReLU", _with_inplace("negative_slope={negative_slope}"))
_register("GLU Softmin Softmax LogSoftmax", _f("dim={dim}"))
_register("GELU", lambda get, d: f"approximate={py_repr(get('approximate'))}")
_register("Hardshrink Softshrink", _f("{lambd}"))
_register("Softplus", _f("beta={beta}, threshold={threshold}"))
_register("PReLU", _f("num_parameters={num_parameters}"))
_register("BatchNorm1d BatchNorm2d BatchNorm3d InstanceNorm1d InstanceNorm2d InstanceNorm3d "
          "LazyBatchNorm1d LazyBatchNorm2d LazyBatchNorm3d LazyInstanceNorm1d LazyInstanceNorm2d "
          "LazyInstanceNorm3d SyncBatchNorm _NormBase _BatchNorm _InstanceNorm _LazyNormBase", _norm)
_register("ChannelShuffle", _f("groups={groups}"))
_register("Conv1d Conv2d Conv3d ConvTranspose1d ConvTranspose2d ConvTranspose3d LazyConv1d "
          "LazyConv2d LazyConv3d LazyConvTranspose1d LazyConvTranspose2d LazyConvTranspose3d "
          "_ConvNd _ConvTransposeNd _ConvTransposeMixin", _conv)
_register("AlphaDropout Dropout Dropout1d Dropout2d Dropout3d FeatureAlphaDropout _DropoutNd",
          _f("p={p}, inplace={inplace}"))
_register("Flatten", _f("start_dim={start_dim}, end_dim={end_dim}"))
_register("Unflatten", _f("dim={dim}, unflattened_size={unflattened_size}"))
_register("Fold", _f("output_size={output_size}, kernel_size={kernel_size}, dilation={dilation}, "
                     "padding={padding}, stride={stride}"))
_register("Unfold", _f("kernel_size={kernel_size}, dilation={dilation}, padding={padding}, "
                       "stride={stride}"))
_register("Linear LazyLinear NonDynamicallyQuantizableLinear",
          _f("in_features={in_features}, out_features={out_features}, bias={has_bias}",
             has_bias=_has_bias))
_register("Bilinear", _f("in1_features={in1_features}, in2_features={in2_features}, "
                         "out_features={out_features}, bias={has_bias}", has_bias=_has_bias))
_register("LocalResponseNorm CrossMapLRN2d", _f("{size}, alpha={alpha}, beta={beta}, k={k}"))
_register("LayerNorm", _f("{normalized_shape}, eps={eps}, elementwise_affine={elementwise_affine}, "
                          "bias={has_bias}", has_bias=_has_bias))
_register("GroupNorm", _f("{num_groups}, {num_channels}, eps={eps}, affine={affine}, bias={has_bias}",
                          has_bias=_has_bias))
_register("RMSNorm", _f("{normalized_shape}, eps={eps}, elementwise_affine={elementwise_affine}"))
_register("CircularPad1d CircularPad2d CircularPad3d ReflectionPad1d ReflectionPad2d ReflectionPad3d "
          "ReplicationPad1d ReplicationPad2d ReplicationPad3d ZeroPad1d ZeroPad2d ZeroPad3d",
          _f("{padding}"))
_register("ConstantPad1d ConstantPad2d ConstantPad3d", _f("padding={padding}, value={value}"))
_register("PixelShuffle", _f("upscale_factor={upscale_factor}"))
_register("PixelUnshuffle", _f("downscale_factor={downscale_factor}"))
_register("MaxPool1d MaxPool2d MaxPool3d", _f("kernel_size={kernel_size}, stride={stride}, "
                                              "padding={padding}, dilation={dilation}, ceil_mode={ceil_mode}"))
_register("MaxUnpool1d MaxUnpool2d MaxUnpool3d AvgPool1d AvgPool2d AvgPool3d",
          _f("kernel_size={kernel_size}, stride={stride}, padding={padding}"))
_register("LPPool1d LPPool2d LPPool3d", _f("norm_type={norm_type}, kernel_size={kernel_size}, "
                                           "stride={stride}, ceil_mode={ceil_mode}"))
_register("AdaptiveMaxPool1d AdaptiveMaxPool2d AdaptiveMaxPool3d AdaptiveAvgPool1d AdaptiveAvgPool2d "
          "AdaptiveAvgPool3d", _f("output_size={output_size}"))
_register("RNN LSTM GRU RNNBase", _rnn)
_register("RNNCell LSTMCell GRUCell RNNCellBase", _rnn_cell)
_register("Embedding", _embedding)
_register("EmbeddingBag", _embedding_bag)
_register("Upsample UpsamplingNearest2d UpsamplingBilinear2d", _upsample)

_TYPENAMES = {"float32": "Float", "float64": "Double", "float16": "Half", "bfloat16": "BFloat16",
              "int64": "Long", "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte",
              "bool": "Bool", "complex64": "ComplexFloat", "complex128": "ComplexDouble"}


def _param_line(k: str, p: Any, typename: bool) -> str:
    """One `  (k): Parameter containing: [torch.float32 of size 2x3]` line of a parameter container."""
    if not is_tensor(p):
        if p is MISSING or p is None:
            return f"  ({k}): Object of type: NoneType"
        return f"  ({k}): Object of type: {type_name(p).rsplit('.', 1)[-1] if is_standin(p) else type(p).__name__}"
    data = getattr(p, "data", p)
    loc = data.storage.location if getattr(data, "storage", None) is not None else "cpu"
    cuda = loc.split(":")[0] not in ("cpu", "meta", "mps", "xpu")
    if typename:
        base = _TYPENAMES.get(data.dtype, data.dtype)
        kind = f"torch.{'cuda.' if cuda else ''}{base}Tensor"
    else:
        kind = f"torch.{data.dtype}"
    size = "x".join(str(x) for x in data.shape)
    what = "Parameter" if isinstance(p, ParamRec) else "Tensor"
    return f"  ({k}): {what} containing: [{kind} of size {size}{f' ({loc})' if cuda else ''}]"


def _parameter_list(get, d) -> str:
    n = d.get("_size")
    if not isinstance(n, int):
        return ""
    return "\n".join(_param_line(str(i), get(str(i)), False) for i in range(min(n, 10_000)))


def _parameter_dict(get, d) -> str:
    keys = d.get("_keys")
    if not isinstance(keys, dict):
        return ""
    return "\n".join(_param_line(str(k), get(str(k)), True) for k in list(keys)[:10_000])


_register("ParameterList", _parameter_list)
_register("ParameterDict", _parameter_dict)

# torch.nn classes whose extra_repr is nn.Module's: the empty string.
_EMPTY = set(
    "Module Identity Sequential ModuleList ModuleDict Container DataParallel MultiheadAttention "
    "Transformer TransformerEncoder TransformerDecoder TransformerEncoderLayer TransformerDecoderLayer "
    "Sigmoid Tanh Softsign Tanhshrink LogSigmoid Hardsigmoid Hardswish Softmax2d CosineSimilarity "
    "PairwiseDistance FractionalMaxPool2d FractionalMaxPool3d AdaptiveLogSoftmaxWithLoss "
    "L1Loss MSELoss CrossEntropyLoss NLLLoss NLLLoss2d BCELoss BCEWithLogitsLoss CTCLoss KLDivLoss "
    "HuberLoss SmoothL1Loss SoftMarginLoss HingeEmbeddingLoss MarginRankingLoss CosineEmbeddingLoss "
    "MultiLabelMarginLoss MultiLabelSoftMarginLoss MultiMarginLoss PoissonNLLLoss GaussianNLLLoss "
    "TripletMarginLoss TripletMarginWithDistanceLoss".split())


def is_torch_nn(type_qualname: str | None) -> bool:
    return bool(type_qualname) and type_qualname.startswith("torch.nn.")  # type: ignore[union-attr]


def _getter(state: Mapping) -> Callable[[str], Any]:
    """self.<name> as nn.Module.__getattr__ resolves it (own dict, then params/buffers/children)."""
    def get(name: str) -> Any:
        if name in state:
            return state[name]
        for group in ("_parameters", "_buffers", "_modules"):
            d = state.get(group)
            if isinstance(d, Mapping) and name in d:
                return d[name]
        return MISSING
    return get


def plain_attributes(state: Mapping) -> dict[str, Any]:
    """The module's own attributes that are neither tensors nor modules (nor torch internals)."""
    out: dict[str, Any] = {}
    for k, v in state.items():
        if not isinstance(k, str) or k.startswith("_") or k == "training":
            continue
        if is_plain(v):
            out[k] = v
            if len(out) >= MAX_ATTRS:
                break
    return out


def extra_repr(type_qualname: str | None, attrs: Mapping) -> str:
    """The text inside `Class(...)` in print(model): torch's for torch.nn classes, else key=value."""
    if not isinstance(attrs, Mapping):
        return ""
    if Flag in set(map(type, attrs.values())):  # traced pickles: flags as the bools they are
        attrs = {k: bool(v) if isinstance(v, Flag) else v for k, v in attrs.items()}
    if type_qualname and type_qualname.startswith("__torch__."):  # a TorchScript class name
        type_qualname = clean_type(type_qualname)
    name = (type_qualname or "").rsplit(".", 1)[-1]
    if is_torch_nn(type_qualname):
        handler = _HANDLERS.get(name)
        if handler is not None:
            try:
                return handler(_getter(attrs), attrs)
            except (TypeError, ValueError, KeyError, IndexError):
                pass  # odd values for this class: fall back to key=value below
        elif name in _EMPTY:
            return ""
    return ", ".join(f"{k}={py_repr(v, MAX_VALUE_TEXT)}" for k, v in plain_attributes(attrs).items())


def attributes_json(state: Mapping) -> dict[str, Any]:
    """plain_attributes as JSON values (--json "attributes", the node pane)."""
    if not isinstance(state, Mapping):
        return {}
    return {k: to_json(v) for k, v in plain_attributes(state).items()}
