"""Floating-point casts on raw little-endian bytes, bitwise what torch's `.to(dtype)` gives.

numpy has float16 (round to nearest even, as torch) but no bfloat16 or float8, so:
- to bfloat16: the float32 bits rounded to nearest even on the low 16 bits (torch's
  `round_to_nearest_even`); NaN → 0xFFFF from float32/float64 (torch's vectorized CPU
  kernel) and 0x7FC0 from the narrower types (torch's scalar path);
- to float16: numpy's rounding (nearest even), NaN quieted (bit 9 set) as the F16C
  instruction torch uses does — numpy alone keeps signalling NaNs signalling;
- from bfloat16, float16 and float8 (e4m3fn, e5m2): decoded to float32 by
  tui.core.values.decode (exact, NaN payloads as torch widens them);
- float64 → float16/bfloat16 goes through float32 first, as torch's CPU kernel does
  (c10::Half and c10::BFloat16 are built from a float).
"""

from __future__ import annotations

import numpy as np

from tui.core.model import DTYPE_SIZES
from tui.core.values.decode import from_bytes


def itemsize(dtype: str) -> int:
    return int(DTYPE_SIZES[dtype])


def _bf16_bits(f32: np.ndarray, nan_bits: int) -> np.ndarray:
    u = f32.view(np.uint32)
    out = ((u + (np.uint32(0x7FFF) + ((u >> 16) & 1))) >> 16).astype(np.uint16)
    nan = np.isnan(f32)
    if nan.any():
        out[nan] = nan_bits
    return out


def convert(raw: bytes | memoryview, src: str, dst: str) -> bytes:
    """Elements of `src` → bytes of `dst` (whole elements only)."""
    if src == dst:
        return bytes(raw)
    if src == "float64" and dst == "float32":
        return np.frombuffer(raw, dtype="<f8").astype("<f4").tobytes()
    f32 = from_bytes(raw, src).astype(np.float32, copy=False)
    if dst == "float32":
        return f32.astype("<f4").tobytes()
    if dst == "float16":
        with np.errstate(over="ignore", invalid="ignore"):
            half = f32.astype("<f2")
        nan = np.isnan(f32)
        if nan.any():  # sign, quiet NaN, the top 10 payload bits
            u = f32.view(np.uint32)[nan]
            half.view("<u2")[nan] = (((u >> 16) & 0x8000) | 0x7E00 | ((u >> 13) & 0x3FF)).astype(np.uint16)
        return half.tobytes()
    if dst == "bfloat16":
        nan_bits = 0xFFFF if src in ("float32", "float64") else 0x7FC0
        return _bf16_bits(f32, nan_bits).astype("<u2").tobytes()
    raise ValueError(f"can't cast to {dst}")
