"""Numbers as torch prints them (torch/_tensor_str.py `_Formatter`, default print options).

One formatter per block of values: integral floats print as `3.`, others with 4
decimals, or in scientific notation when the nonzero magnitudes span more than 1000x,
exceed 1e8 or go below 1e-4; every string is right-aligned to the block's widest.
"""

from __future__ import annotations

import math

import numpy as np

PRECISION = 4


class Formatter:
    def __init__(self, values: np.ndarray, kind: str) -> None:
        """`values`: the decoded numbers shown together; `kind` from decode.kind()."""
        self.kind = kind
        self.int_mode = True
        self.sci_mode = False
        self.max_width = 1
        if kind == "complex":
            self.real = Formatter(np.real(values), "float")
            self.imag = Formatter(np.imag(values), "float")
            return
        flat = np.asarray(values).reshape(-1)
        if kind != "float":
            for v in np.unique(flat):
                self.max_width = max(self.max_width, len(_plain(v, kind)))
            return
        f = flat.astype(np.float64)
        nz = f[np.isfinite(f) & (f != 0)]
        if nz.size == 0:
            return
        mags = np.abs(nz)
        lo, hi = float(mags.min()), float(mags.max())
        self.int_mode = bool(np.all(nz == np.ceil(nz)))
        self.sci_mode = hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4
        uniq = np.unique(nz)
        if self.sci_mode:
            width = max(len(f"{v:.{PRECISION}e}") for v in uniq)
        elif self.int_mode:
            width = max(len(f"{v:.0f}") + 1 for v in uniq)
        else:
            width = max(len(f"{v:.{PRECISION}f}") for v in uniq)
        self.max_width = max(self.max_width, width)

    def format(self, value: object) -> str:
        if self.kind == "complex":
            z = complex(value)  # type: ignore[arg-type]
            real = self.real.format(z.real)
            imag = (self.imag.format(z.imag) + "j").lstrip()
            return real + imag if imag[0] in "+-" else real + "+" + imag
        if self.kind != "float":
            ret = _plain(value, self.kind)
        else:
            v = float(value)  # type: ignore[arg-type]
            if self.sci_mode:
                ret = f"{v:{self.max_width}.{PRECISION}e}"
            elif self.int_mode:
                ret = f"{v:.0f}" + ("" if math.isinf(v) or math.isnan(v) else ".")
            else:
                ret = f"{v:.{PRECISION}f}"
        return (self.max_width - len(ret)) * " " + ret


def _plain(v: object, kind: str) -> str:
    if kind == "bool":
        return "True" if bool(v) else "False"
    return str(int(v))  # type: ignore[call-overload]


def format_block(values: np.ndarray, kind: str) -> list[list[str]]:
    """A 1- or 2-D block of numbers → rows of equally wide strings."""
    arr = np.asarray(values)
    if arr.ndim < 2:
        arr = arr.reshape(1, -1)
    fmt = Formatter(arr, kind)
    return [[fmt.format(v) for v in row] for row in arr.tolist()]


def number(x: object, digits: int = 5) -> str:
    """A statistic in a table cell: short, exact for integers."""
    if x is None:
        return "—"
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, complex):
        return f"{x.real:.{digits}g}{x.imag:+.{digits}g}j"
    v = float(x)  # type: ignore[arg-type]
    return f"{v:.{digits}g}"
