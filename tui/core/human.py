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


def plural(n: int, word: str, many: str | None = None) -> str:
    """4803 → "4,803 tensors", 1 → "1 item" (separators always)."""
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


def percent(fraction: float) -> str:
    """0.98 → "98 %"; a sliver is "<1 %", never "0 %" for something that is there."""
    p = fraction * 100
    if 0 < p < 1:
        return "<1 %"
    if 99 < p < 100:
        return ">99 %"
    return f"{p:.0f} %"


# Short dtype names for breakdowns (torch's names elsewhere).
SHORT_DTYPES = {"float32": "f32", "float16": "f16", "bfloat16": "bf16", "float64": "f64",
                "int64": "i64", "int32": "i32", "int16": "i16", "int8": "i8", "uint8": "u8"}


def breakdown(shares: list[tuple[str, float]]) -> str:
    """[("bfloat16", .98), ("float32", .02)] → "bf16 98 % · f32 2 %"."""
    return " · ".join(f"{SHORT_DTYPES.get(k, k)} {percent(v)}" for k, v in shares)


def module_line(key: str, short_type: str, extra_repr: str) -> str:
    """A module as print(model) shows it: "(fc): Linear(in_features=…, bias=True)"."""
    inner = one_line(extra_repr)
    return f"({key}): {short_type}({inner})" if key else f"{short_type}({inner})"


def one_line(extra_repr: str) -> str:
    """A multi-line extra_repr (ParameterList's) on one line: its lines joined by ", "."""
    if "\n" not in extra_repr:
        return extra_repr
    return ", ".join(ln.strip() for ln in extra_repr.splitlines() if ln.strip())


def elide_middle(text: str, width: int) -> str:
    """"encoder.layers.11.attention.self.query.weight" → "encoder.lay…query.weight" (keeps the
    end, where the tensor's own name is)."""
    if width <= 0:
        return ""
    if len(text) <= width:
        return text
    if width == 1:
        return "…"
    tail = (width - 1) * 3 // 5
    head = width - 1 - tail
    return text[:head] + "…" + text[len(text) - tail:]
