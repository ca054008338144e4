"""Human-readable numbers and the status glyphs shared by --print and the UI."""

from __future__ import annotations

from tui.core.model import Status

# A glyph per status so the marks read without colour.
GLYPHS: dict[str, str] = {
    "trainable": "●", "frozen": "○", "partial": "◐", "unknown": "?", "empty": "·",
}
# What each status means, in words (node pane, --print legend, help).
STATUS_WORDS: dict[str, str] = {
    "trainable": "trainable", "frozen": "frozen", "partial": "partly frozen",
    "unknown": "requires_grad not stored", "empty": "no parameters",
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


def tensor_status(requires_grad: bool | None) -> Status:
    """One tensor's status from its flag (None: the format does not store it)."""
    return "unknown" if requires_grad is None else ("trainable" if requires_grad else "frozen")
