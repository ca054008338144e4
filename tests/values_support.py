"""Helpers for the value-reading tests: tensors of every dtype, and torch's own statistics.

Not a test file. `reference(t)` computes what `tui.core.values.stats` must give, with
torch in float64 (NaN and Inf counted apart; the rest over the finite elements).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

FLOAT_DTYPES = ["float64", "float32", "float16", "bfloat16", "float8_e4m3fn", "float8_e5m2",
                "float8_e4m3fnuz", "float8_e5m2fnuz", "float8_e8m0fnu"]
INT_DTYPES = ["int64", "int32", "int16", "int8", "uint8", "uint16", "uint32", "uint64", "bool"]
COMPLEX_DTYPES = ["complex128", "complex64", "complex32"]
ALL_DTYPES = FLOAT_DTYPES + INT_DTYPES + COMPLEX_DTYPES
# What each container can hold (torch's legacy writer has no typed storage for the newer
# dtypes; safetensors has no complex32 / complex128).
LEGACY_DTYPES = ["float64", "float32", "float16", "bfloat16", "int64", "int32", "int16", "int8",
                 "uint8", "bool", "complex128", "complex64"]
ST_DTYPES = [d for d in ALL_DTYPES if d not in ("complex32", "complex128")]


def make(dtype: str, shape: tuple[int, ...] = (7, 13), seed: int = 0, plant: bool = True) -> torch.Tensor:
    """Random values of `dtype`, with a zero, and NaN/Inf planted where the dtype has them."""
    g = torch.Generator().manual_seed(seed)
    n = math.prod(shape)
    base = torch.randn(n, generator=g, dtype=torch.float64) * 40
    if dtype == "bool":
        return (base > 0).reshape(shape)
    if dtype.startswith("uint"):
        base = base.abs()
    if dtype == "float8_e8m0fnu":
        base = base.abs() + 0.01
    base[3] = 0
    dt = getattr(torch, dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dtype.startswith("complex"):
            im = torch.randn(n, generator=g, dtype=torch.float64)
            t = torch.complex(base, im)
            if plant:
                t[5] = complex(float("nan"), 1.0)
                t[6] = complex(float("inf"), 0.0)
            return t.to(dt).reshape(shape)
        if plant and dtype in FLOAT_DTYPES:
            base[5] = float("nan")
            if dtype != "float8_e8m0fnu":
                base[6] = float("-inf")
                base[7] = float("inf")
        return base.to(dt).reshape(shape)


def values64(t: torch.Tensor) -> np.ndarray:
    """The tensor's numbers as numpy float64 (complex128 for complex, ints for quantized)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if t.is_quantized:
            return t.int_repr().to(torch.float64).numpy().reshape(-1)
        if t.is_complex():
            return t.to(torch.complex128).numpy().reshape(-1)
        if t.dtype.itemsize == 1 and t.dtype.is_floating_point:
            t = t.float()
        return t.to(torch.float64).numpy().reshape(-1)


def reference(t: torch.Tensor) -> dict:
    """What the statistics must be, by torch (float64) and numpy's histogram."""
    v = values64(t)
    complex_ = np.iscomplexobj(v)
    nan = int(np.isnan(v).sum())
    inf = int(np.isinf(v).sum())
    fin = v[np.isfinite(v)]
    out = {"nan": nan, "inf": inf, "zeros": int((v == 0).sum()), "numel": v.size}
    if fin.size == 0:
        return out
    ft = torch.from_numpy(fin)
    mag = np.abs(fin) if complex_ else fin
    if complex_:  # |z| in float64; torch's abs may differ in the last bit (hypot)
        assert np.allclose(torch.from_numpy(fin).abs().numpy(), mag, rtol=1e-15, atol=0)
    out.update(min=float(mag.min()), max=float(mag.max()), mean=complex(ft.mean()) if complex_ else float(ft.mean()),
               std=float(ft.std()) if fin.size > 1 else None)
    out["hist"] = np.histogram(mag, bins=32, range=(out["min"], out["max"]))[0].tolist()
    return out


def check(stats, ref: dict, what: str = "") -> None:
    """Assert stats == ref: counts, min, max exact; mean, std to 1e-6 relative."""
    assert stats.nan == ref["nan"], what
    assert stats.inf == ref["inf"], what
    assert stats.zeros == ref["zeros"], what
    if "min" not in ref:
        assert stats.min is None, what
        return
    assert stats.min == ref["min"] and stats.max == ref["max"], what
    assert abs(stats.mean - ref["mean"]) <= 1e-6 * max(abs(ref["mean"]), 1e-12), what
    if ref["std"] is None:
        assert stats.std is None, what
    else:
        assert abs(stats.std - ref["std"]) <= 1e-6 * ref["std"], what
    assert stats.counts == ref["hist"], what


def decoded(t: torch.Tensor) -> np.ndarray:
    """The tensor's values as the reader must return them (shape kept)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if t.is_quantized:
            return t.int_repr().numpy()
        if t.dtype == torch.complex32:
            return t.to(torch.complex64).numpy()
        if t.dtype == torch.bool:
            return t.numpy()
        if t.dtype.is_floating_point and t.dtype not in (torch.float64, torch.float32):
            return t.float().numpy()
        return t.numpy()


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
