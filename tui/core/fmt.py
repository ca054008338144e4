"""Human-readable numbers and the status glyphs shared by --print and the UI."""

from __future__ import annotations

from tui.core.model import Status

# A glyph per status so the marks read without colour.
GLYPHS: dict[str, str] = {
    "trainable": "●", "frozen": "○", "partial": "◐", "unknown": "?", "empty": "·",
}
FORMAT_NAMES = {
    "full_model": "full model", "state_dict": "state_dict", "checkpoint": "checkpoint",
    "torchscript": "TorchScript", "safetensors": "safetensors", "value": "value",
}


def glyph(status: Status | str) -> str:
    return GLYPHS.get(status, "?")


def count(n: int) -> str:
    """1234 → 1.2K, 1_200_000 → 1.2M (like torchinfo/HF summaries)."""
    for unit, size in (("T", 10**12), ("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if abs(n) >= size:
            v = n / size
            return f"{v:.1f}{unit}" if v < 100 else f"{v:.0f}{unit}"
    return str(n)


def size(nbytes: int | float) -> str:
    v = float(nbytes)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(v) < 1024 or unit == "TB":
            return f"{v:.0f} {unit}" if unit == "B" else f"{v:.1f} {unit}"
        v /= 1024
    return f"{v:.1f} TB"


def shape(s: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(x) for x in s) + "]"


def flag(rg: bool | None) -> str:
    return {True: "yes", False: "no", None: "?"}[rg]
