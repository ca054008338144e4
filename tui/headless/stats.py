"""`--stats [GLOB ...]` and `--check-finite`: tensor values, streamed from the file.

`--stats` prints a table (min, max, mean, std, absmax, zeros, NaN, Inf, a histogram
sparkline) of the matching tensors, or with `--json` adds `"stats"` to each of them in
the usual document. `--check-finite` lists the tensors holding NaN or Inf: exit 4 when
there is one, 0 otherwise. A progress bar goes to stderr when it is a terminal.
"""

from __future__ import annotations

import fnmatch
import sys
from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from tui.core import human
from tui.core.errors import ModelFileError
from tui.core.model import ModelFile, TensorInfo
from tui.core.values.source import ModelValues, Unreadable
from tui.core.values.stats import Stats
from tui.core.values.torchfmt import number

NOT_FINITE = 4
PROGRESS_MIN = 256 << 20  # bytes: below this a bar would only flicker
SPARK = "▁▂▃▄▅▆▇█"


@dataclass
class Row:
    tensor: TensorInfo
    stats: Stats | None = None
    skipped: str = ""  # why there are no values (meta, lazy, packed dtype)


def select(mf: ModelFile, globs: list[str]) -> list[TensorInfo]:
    """Tensors any of whose names match a glob (a plain module name: its subtree)."""
    if not globs:
        return list(mf.tensors)
    out = []
    for t in mf.tensors:
        for g in globs:
            wild = any(ch in g for ch in "*?[")
            if any(fnmatch.fnmatchcase(n, g) or (not wild and (n == g or n.startswith(g + ".")))
                   for n in t.names):
                out.append(t)
                break
    return out


def gather(mf: ModelFile, tensors: list[TensorInfo], finite_only: bool,
           progress: Callable[[int], None] | None = None, values: ModelValues | None = None) -> list[Row]:
    rows = []
    mv = values or ModelValues(mf)
    try:
        for t in tensors:
            try:
                rows.append(Row(t, mv.stats(t, finite_only=finite_only, progress=progress)))
            except Unreadable as e:
                rows.append(Row(t, skipped=str(e)))
    finally:
        if values is None:
            mv.close()
    return rows


def run(mf: ModelFile, globs: list[str] | None, check_finite: bool, as_json: bool,
        out: Console | None = None) -> int:
    """The headless command; returns the exit code."""
    tensors = select(mf, globs or [])
    if globs and not tensors:
        raise ModelFileError(mf.path, f"no tensor matches {' '.join(globs)}")
    finite_only = globs is None  # --check-finite alone: only NaN/Inf are counted
    rows = _with_progress(mf, tensors, finite_only)
    tty = sys.stdout.isatty()
    console = out or Console(highlight=False, file=sys.stdout, width=None if tty else 200)
    bad = [r for r in rows if r.stats is not None and not r.stats.finite]
    if as_json:
        from tui.core.report import to_json, write_json

        write_json(add_stats(to_json(mf), rows), console.file)
    else:
        if globs is not None:
            console.print(stats_table(rows))
        if check_finite:
            print_finite(rows, bad, console)
    return NOT_FINITE if check_finite and bad else 0


def _with_progress(mf: ModelFile, tensors: list[TensorInfo], finite_only: bool) -> list[Row]:
    with ModelValues(mf) as mv:
        total = sum(mv.cost(t, finite_only) for t in tensors)
        if not sys.stderr.isatty() or total < PROGRESS_MIN:
            return gather(mf, tensors, finite_only, values=mv)
        bar = Progress(TextColumn("reading tensors"), BarColumn(), DownloadColumn(),
                       TimeRemainingColumn(), console=Console(file=sys.stderr), transient=True)
        with bar:
            task = bar.add_task("values", total=total)
            return gather(mf, tensors, finite_only, values=mv,
                          progress=lambda n: bar.advance(task, n))


def add_stats(doc: dict, rows: list[Row]) -> dict:
    """The --json document with "stats" (or "stats_skipped") on each tensor read."""
    by_name = {r.tensor.name: r for r in rows}
    for entry in doc["parameters"] + doc["buffers"]:
        r = by_name.get(entry["name"])
        if r is None:
            continue
        if r.stats is None:
            entry["stats_skipped"] = r.skipped
            continue
        entry["stats"] = r.stats.as_json()
        q = r.tensor.qparams
        if q is not None:  # the stats are of the integers; this maps them to reals
            entry["stats"]["quant"] = {"scheme": q.scheme.removeprefix("torch."), "scale": q.scale,
                                       "zero_point": q.zero_point, "axis": q.axis}
    return doc


def sparkline(counts: list[int]) -> str:
    top = max(counts, default=0)
    if not top:
        return ""
    return "".join(" " if c == 0 else SPARK[min(len(SPARK) - 1, c * len(SPARK) // (top + 1))]
                   for c in counts)


def stats_table(rows: list[Row]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("tensor", "dtype", "shape", "min", "max", "mean", "std", "absmax", "zeros",
                "nan", "inf", "histogram"):
        table.add_column(col, justify="right" if col in ("min", "max", "mean", "std", "absmax",
                                                          "zeros", "nan", "inf") else "left",
                         no_wrap=col != "tensor")
    for r in rows:
        t = r.tensor
        head = [t.name, t.dtype, human.shape(t.shape)]
        s = r.stats
        if s is None:
            table.add_row(*head, *["—"] * 8, Text(f"skipped: {r.skipped}", style="dim"))
            continue
        zeros = f"{100 * s.zeros_fraction:.1f}%" if s.zeros_fraction is not None else "—"
        bad = "bold red"
        table.add_row(*head, number(s.min), number(s.max), number(s.mean), number(s.std),
                      number(s.absmax), zeros, Text(str(s.nan), style=bad if s.nan else ""),
                      Text(str(s.inf), style=bad if s.inf else ""), sparkline(s.counts))
    return table


def print_finite(rows: list[Row], bad: list[Row], console: Console) -> None:
    for r in bad:
        s = r.stats
        assert s is not None
        console.print(Text(f"{r.tensor.name}: {s.nan} NaN, {s.inf} Inf "
                           f"({human.shape(r.tensor.shape)} {r.tensor.dtype})", style="bold red"))
    checked = sum(1 for r in rows if r.stats is not None)
    skipped = [r for r in rows if r.stats is None]
    note = f" ({len(skipped)} without values skipped)" if skipped else ""
    if bad:
        console.print(f"{len(bad)} of {checked} tensors hold NaN or Inf{note}")
    else:
        console.print(f"all {checked} tensors are finite{note}")
