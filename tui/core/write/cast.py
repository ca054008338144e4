"""Floating-point casts on raw little-endian bytes, bitwise what torch's `.to(dtype)` gives.

numpy has float16 (round to nearest even, as torch) but no bfloat16 or float8, so:
- to bfloat16: the float32 bits rounded to nearest even on the low 16 bits (torch's
  `round_to_nearest_even`); NaN → 0xFFFF from float32/float64 (torch's vectorized CPU
  kernel) and 0x7FC0 from the narrower types (torch's scalar path);
- to float16: numpy's rounding (nearest even), NaN quieted (bit 9 set) as the F16C
  instruction torch uses does — numpy alone keeps signalling NaNs signalling;
- from bfloat16: the 16 bits shifted up into a float32 (exact);
- float8 (e4m3fn, e5m2): decoded through a 256-entry table (every value is exact in
  float32);
- float64 → float16/bfloat16 goes through float32 first, as torch's CPU kernel does
  (c10::Half and c10::BFloat16 are built from a float).
"""

from __future__ import annotations

from functools import cache

import numpy as np

from tui.core.model import DTYPE_SIZES

_NP = {"float64": np.float64, "float32": np.float32, "float16": np.float16}


def itemsize(dtype: str) -> int:
    return int(DTYPE_SIZES[dtype])


@cache
def _fp8_table(dtype: str) -> np.ndarray:
    """float32 value of every float8 byte (NaN payloads as torch widens them)."""
    b = np.arange(256, dtype=np.uint16)
    if dtype == "float8_e5m2":  # the top byte of a float16
        out = (b << 8).astype("<u2").view(np.float16).astype(np.float32)
        nan = np.isnan(out)
        out.view(np.uint32)[nan] |= 0x00400000  # widened NaNs come out quiet
        return out
    out = np.empty(256, dtype=np.float32)
    for v in range(256):  # e4m3fn: 4 exponent bits (bias 7), 3 mantissa bits, no inf
        sign = -1.0 if v & 0x80 else 1.0
        e, m = (v >> 3) & 0xF, v & 7
        out[v] = sign * (m * 2.0 ** -9 if e == 0 else (1 + m / 8) * 2.0 ** (e - 7))
    bits = out.view(np.uint32)
    bits[0x7F], bits[0xFF] = 0x7FF00000, 0xFFF00000  # S.1111.111 is NaN
    return out


def to_float32(raw: bytes | memoryview, dtype: str) -> np.ndarray:
    """Decode little-endian elements of `dtype` to float32 (exact for 16/8-bit types)."""
    if dtype == "bfloat16":
        return (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    if dtype in ("float8_e4m3fn", "float8_e5m2"):
        return _fp8_table(dtype)[np.frombuffer(raw, dtype=np.uint8)]
    out = np.frombuffer(raw, dtype=np.dtype(_NP[dtype]).newbyteorder("<")).astype(np.float32)
    if dtype == "float16":  # torch (F16C) widens signalling NaNs quiet; numpy keeps them
        nan = np.isnan(out)
        if nan.any():
            out.view(np.uint32)[nan] |= 0x00400000
    return out


def to_float64(raw: bytes | memoryview, dtype: str) -> np.ndarray:
    """Decode to float64 for comparisons (float64 stays exact; integers and bool too)."""
    if dtype == "float64":
        return np.frombuffer(raw, dtype="<f8")
    if dtype in ("float32", "float16", "bfloat16", "float8_e4m3fn", "float8_e5m2"):
        return to_float32(raw, dtype).astype(np.float64)
    ints = {"int64": "<i8", "int32": "<i4", "int16": "<i2", "int8": "i1", "uint8": "u1",
            "uint16": "<u2", "uint32": "<u4", "uint64": "<u8", "bool": "u1"}
    if dtype in ints:
        return np.frombuffer(raw, dtype=ints[dtype]).astype(np.float64)
    raise ValueError(f"can't compare values of dtype {dtype}")


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
    f32 = to_float32(raw, src) if src != "float64" else \
        np.frombuffer(raw, dtype="<f8").astype(np.float32)
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
