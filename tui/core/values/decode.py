"""torch dtypes → numpy: how each dtype's bytes sit in a storage and what numbers they are.

Formats numpy lacks (bfloat16, the float8 family, e8m0, complex32) are decoded from
their bits: bfloat16 is the top half of a float32; every 8-bit float goes through a
256-entry table built from its sign/exponent/mantissa layout. Widening to float32 is
bitwise what torch's `.to(torch.float32)` gives, NaN payloads included (the casts on
save, tui.core.write.cast, rely on it).
"""

from __future__ import annotations

from functools import cache

import numpy as np

# Storage element → numpy dtype of its raw bytes (little-endian, as torch writes them).
RAW: dict[str, str] = {
    "float64": "<f8", "float32": "<f4", "float16": "<u2", "bfloat16": "<u2",
    "float8_e4m3fn": "u1", "float8_e5m2": "u1", "float8_e4m3fnuz": "u1",
    "float8_e5m2fnuz": "u1", "float8_e8m0fnu": "u1",
    "complex128": "<c16", "complex64": "<c8", "complex32": "<u4",
    "int64": "<i8", "int32": "<i4", "int16": "<i2", "int8": "i1", "uint8": "u1",
    "uint16": "<u2", "uint32": "<u4", "uint64": "<u8", "bool": "u1",
    "qint8": "i1", "quint8": "u1", "qint32": "<i4",
}
# (exponent bits, mantissa bits, bias, special values) of the 8-bit floats.
FP8: dict[str, tuple[int, int, int, str]] = {
    "float8_e4m3fn": (4, 3, 7, "fn"),  # no inf; S.1111.111 is NaN
    "float8_e5m2": (5, 2, 15, "ieee"),  # inf and NaN as IEEE 754
    "float8_e4m3fnuz": (4, 3, 8, "fnuz"),  # no inf, no -0; 0x80 is the only NaN
    "float8_e5m2fnuz": (5, 2, 16, "fnuz"),
}
QUANT_INT = {"qint8": "int8", "quint8": "uint8", "qint32": "int32"}
COMPLEX = {"complex128", "complex64", "complex32"}
FLOATS = {"float64", "float32", "float16", "bfloat16", "float8_e8m0fnu", *FP8}


def supported(dtype: str) -> bool:
    return dtype in RAW


def why_not(dtype: str) -> str:
    """Why a dtype's values can't be shown (packed sub-byte and raw-bits types)."""
    return f"{dtype} values can't be decoded (packed or raw-bit dtype)"


def itemsize(dtype: str) -> int:
    return np.dtype(RAW[dtype]).itemsize


def kind(dtype: str) -> str:
    """'float', 'complex', 'int' or 'bool' — what the decoded numbers are."""
    if dtype in COMPLEX:
        return "complex"
    if dtype in FLOATS:
        return "float"
    return "bool" if dtype == "bool" else "int"


def table_bits(dtype: str) -> int:
    """8 or 16 when every bit pattern of the dtype can be counted in a table, else 0."""
    if dtype in COMPLEX:
        return 0
    return 8 * itemsize(dtype) if itemsize(dtype) <= 2 else 0


@cache
def table(dtype: str) -> np.ndarray:
    """The value of every bit pattern of a 1- or 2-byte dtype (float64, or int64 for ints)."""
    bits = table_bits(dtype)
    patterns = np.arange(1 << bits, dtype=np.uint16 if bits == 16 else np.uint8)
    with np.errstate(invalid="ignore"):  # signalling NaN patterns
        values = decode(patterns.view(RAW[dtype]), dtype)
        out = values.astype(np.float64 if kind(dtype) == "float" else np.int64)
    out.flags.writeable = False
    return out


def decode(raw: np.ndarray, dtype: str) -> np.ndarray:
    """Raw storage elements (numpy dtype RAW[dtype]) → numbers numpy can compute with.

    Floats of 16 bits or fewer come out as float32 (every one of their values is exact
    there), complex32 as complex64, bool as bool, quantized tensors as their integers."""
    if dtype == "bfloat16":
        return (raw.astype(np.uint32) << 16).view(np.float32)
    if dtype == "float16":
        with np.errstate(invalid="ignore"):
            out = raw.view("<f2").astype(np.float32)
        nan = np.isnan(out)
        if nan.any():  # torch (F16C) widens signalling NaNs quiet; numpy keeps them
            out.view(np.uint32)[nan] |= 0x00400000
        return out
    if dtype in FP8 or dtype == "float8_e8m0fnu":
        return _fp8_table(dtype)[raw]
    if dtype == "complex32":
        with np.errstate(invalid="ignore"):
            halves = np.ascontiguousarray(raw).view("<f2").astype(np.float32)
        return (halves[..., 0::2] + 1j * halves[..., 1::2]).astype(np.complex64)
    if dtype == "bool":
        return raw != 0
    return raw


def from_bytes(data: bytes | memoryview, dtype: str) -> np.ndarray:
    """Little-endian bytes of whole elements → decoded numbers (as `decode`)."""
    return decode(np.frombuffer(data, RAW[dtype]), dtype)


@cache
def _fp8_table(dtype: str) -> np.ndarray:
    b = np.arange(256, dtype=np.int64)
    if dtype == "float8_e8m0fnu":  # unsigned exponent only: 2**(b-127), 0xFF is NaN
        vals = np.ldexp(1.0, b - 127)
        vals[255] = np.nan
        return vals.astype(np.float32)
    e_bits, m_bits, bias, special = FP8[dtype]
    sign = np.where(b >> 7, -1.0, 1.0)
    e = (b >> m_bits) & ((1 << e_bits) - 1)
    m = b & ((1 << m_bits) - 1)
    frac = m / float(1 << m_bits)
    vals = sign * np.where(e == 0, np.ldexp(frac, 1 - bias), np.ldexp(1.0 + frac, e - bias))
    top = (1 << e_bits) - 1
    if special == "ieee":
        vals = np.where(e == top, np.where(m == 0, sign * np.inf, np.copysign(np.nan, sign)), vals)
    elif special == "fn":
        vals = np.where((e == top) & (m == (1 << m_bits) - 1), np.copysign(np.nan, sign), vals)
    else:  # fnuz: the negative-zero pattern is the NaN
        vals[0x80] = np.nan
    out = vals.astype(np.float32)
    if special != "fnuz":  # NaNs widened as torch does: sign and payload kept, quieted
        nan = np.isnan(out)
        bits = (b >> 7 << 31) | 0x7FC00000 | (m << (23 - m_bits))
        out.view(np.uint32)[nan] = bits[nan].astype(np.uint32)
    out.flags.writeable = False
    return out
