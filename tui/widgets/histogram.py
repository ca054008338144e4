"""A histogram drawn with block characters: one column group per bucket, min and max below."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from tui.core.values.torchfmt import number

EIGHTHS = " ▁▂▃▄▅▆▇█"


def bars(counts: list[int], width: int, height: int) -> list[str]:
    """Rows of block characters, top row first, for `counts` in `width` x `height` cells.
    Buckets share the width (neighbours merge when it is narrower than their number).
    A nonzero bucket always shows at least one eighth, so a lone outlier is visible."""
    if not counts or width <= 0 or height <= 0:
        return []
    n = len(counts)
    if width < n:  # merge neighbours until they fit
        k = -(-n // width)
        counts = [sum(counts[i:i + k]) for i in range(0, n, k)]
        n = len(counts)
    spans = [(i + 1) * width // n - i * width // n for i in range(n)]
    top = max(counts) or 1
    levels = [0 if c == 0 else max(1, round(c * height * 8 / top)) for c in counts]
    rows = []
    for r in range(height - 1, -1, -1):  # from the top row down
        rows.append("".join(EIGHTHS[min(8, max(0, lv - r * 8))] * w
                            for lv, w in zip(levels, spans, strict=True)))
    return rows


class Histogram(Widget):
    """Set `data` to (counts, edges); an empty tuple shows a placeholder."""

    DEFAULT_CSS = """
    Histogram { height: 8; padding: 0 1; }
    Histogram > .histogram--bars { color: $primary; }
    Histogram > .histogram--axis { color: $text-muted; }
    """
    COMPONENT_CLASSES = {"histogram--bars", "histogram--axis"}

    data: reactive[tuple] = reactive(tuple, layout=False)
    placeholder: reactive[str] = reactive("")

    def render(self) -> Text:
        if not self.data:
            return Text(self.placeholder, style="dim")
        counts, edges = self.data
        width, height = self.content_size.width, max(1, self.content_size.height - 1)
        rows = bars(list(counts), width, height)
        bar_style = self.get_component_rich_style("histogram--bars")
        axis_style = self.get_component_rich_style("histogram--axis")
        out = Text()
        for row in rows:
            out.append(row + "\n", style=bar_style)
        lo, hi = number(edges[0], 4), number(edges[-1], 4)
        used = len(rows[0]) if rows else width
        out.append(lo + " " * max(1, used - len(lo) - len(hi)) + hi, style=axis_style)
        return out
