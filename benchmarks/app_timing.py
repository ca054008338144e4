"""App timings with Textual's Pilot, headless (run by run.py).

    python benchmarks/app_timing.py WIDE DEEP MANY [BIG]

Prints one JSON line: {"rows": [{target, figure, met}], "detail": [str]}.

A "paint" is the moment the compositor has produced a screen update and it has
been turned into terminal output: App._display is wrapped to render the update
(headless Textual skips that step) and note the time. So
- first paint: process spawn → first paint (fresh interpreter, imports included);
- loaded: spawn → first paint after the app's show_model() returned;
- keypress → repaint: pilot.press(key) issued (the app quiet) → first paint after it;
  also → the last paint of the burst it causes (side panes filled in).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time

SIZE = (120, 40)


class Paints:
    """Wraps app._display: times of every real screen update."""

    def __init__(self, app) -> None:
        from textual._compositor import CompositorUpdate

        self.times: list[float] = []
        self.shown: float | None = None
        screen = app.main  # the main screen reads the file and shows the model
        original, original_show = app._display, screen.show_model

        def display(screen, renderable) -> None:
            if renderable is not None:
                if isinstance(renderable, CompositorUpdate):
                    renderable.render_segments(app.console)  # what a terminal run would write
                self.times.append(time.perf_counter())
            original(screen, renderable)

        def show_model(mf) -> None:
            original_show(mf)
            self.shown = time.perf_counter()

        app._display, screen.show_model = display, show_model

    def after(self, t: float) -> float | None:
        return next((x for x in self.times if x > t), None)

    async def wait_after(self, t: float, timeout: float = 10.0) -> float:
        deadline = time.perf_counter() + timeout
        while (p := self.after(t)) is None:
            if time.perf_counter() > deadline:
                raise TimeoutError("no repaint")
            await asyncio.sleep(0.0005)
        return p


# -- startup, in a fresh process per run ------------------------------------------
def child_startup(path: str, spawned: float) -> None:
    """Runs in the child: wall-clock from the parent's spawn to first paint / loaded tree.
    The imports are those of `modeltree FILE`: the CLI, its quick probe of the path, the app."""
    import tui.cli  # noqa: F401
    from tui.core.read.probe import probe

    probe(path)
    from tui.app import ModelTreeApp

    app = ModelTreeApp(path)
    paints = Paints(app)
    base = time.perf_counter() - (time.time() - spawned)  # spawn time on the perf clock
    imported = time.perf_counter()

    async def run() -> dict:
        started = time.perf_counter()
        async with app.run_test(size=SIZE) as pilot:
            while paints.shown is None:
                await asyncio.sleep(0.001)
                if app.main.load_error:
                    raise SystemExit(app.main.load_error)
            loaded = await paints.wait_after(paints.shown)
            await pilot.pause()
        return {"first_paint": paints.times[0] - base, "loaded": loaded - base,
                "imports": imported - base, "app_first_paint": paints.times[0] - started}

    print(json.dumps(asyncio.run(run())))


def startup(path: str, runs: int) -> dict[str, tuple[float, float]]:
    """(median, max) over `runs` fresh processes of the child_startup figures."""
    got: dict[str, list[float]] = {}
    for _ in range(runs):
        spawned = time.time()
        out = subprocess.run([sys.executable, __file__, "--startup", path, repr(spawned)],
                             capture_output=True, text=True, check=True)
        for k, v in json.loads(out.stdout.strip().splitlines()[-1]).items():
            got.setdefault(k, []).append(v)
    return {k: (statistics.median(v), max(v)) for k, v in got.items()}


# -- keypress → repaint, in this process --------------------------------------------
async def settle(paints: Paints, quiet: float = 0.08, timeout: float = 10.0) -> None:
    """Until no paint has happened for `quiet` seconds."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        last = paints.times[-1] if paints.times else 0.0
        if time.perf_counter() - last >= quiet:
            return
        await asyncio.sleep(0.01)


async def press(pilot, paints: Paints, key: str) -> tuple[float, float]:
    """(key → first paint, key → last paint of the burst it causes).

    Things are quiet before the key is sent, so the first paint after it is the key's
    (the cursor moved, the glyphs changed); side panes that fill in later (the
    parameter table) land by the last paint of the burst."""
    await settle(paints)
    t0 = time.perf_counter()
    await pilot.press(key)
    first = await paints.wait_after(t0)
    await settle(paints)
    return first - t0, paints.times[-1] - t0


async def burst(pilot, paints: Paints, key: str, n: int) -> tuple[float, float]:
    """n presses arriving at once, as a terminal delivers a held key: (time per key until
    the last paint of the burst, the longest gap between two paints in it)."""
    from textual import events

    await settle(paints)
    t0 = time.perf_counter()
    for _ in range(n):
        pilot.app.post_message(events.Key(key, None))
    await paints.wait_after(t0)
    await pilot.pause()
    await settle(paints)
    inside = [t0] + [t for t in paints.times if t > t0]
    gaps = [b - a for a, b in zip(inside, inside[1:], strict=False)]
    return (inside[-1] - t0) / n, max(gaps)


async def filter_keys(pilot, paints: Paints, app, keys: list[str]) -> list[tuple[float, float]]:
    """Each key typed into the open filter: (→ first paint: the key shows in the field,
    → first paint after the tree took that pattern's matches)."""
    tree = app.main.mtree
    applied: list[tuple[float, str]] = []
    original = tree.apply_filter

    def apply_filter(root, result) -> None:
        original(root, result)
        applied.append((time.perf_counter(), result.pattern if result is not None else ""))

    tree.apply_filter = apply_filter
    out = []
    for key in keys:
        await settle(paints)
        t0 = time.perf_counter()
        await pilot.press(key)
        first = await paints.wait_after(t0)
        want = app.main.query_one("#filter").value.strip()
        deadline = time.perf_counter() + 10
        while not applied or applied[-1][1] != want:
            if time.perf_counter() > deadline:
                raise TimeoutError("filter never shown")
            await asyncio.sleep(0.0005)
        shown = await paints.wait_after(applied[-1][0])
        await settle(paints)
        out.append((first - t0, shown - t0))
    tree.apply_filter = original
    return out


async def interactions(path: str, kind: str) -> dict[str, list[tuple[float, float]]]:
    from tui.app import ModelTreeApp

    app = ModelTreeApp(path)
    paints = Paints(app)
    out: dict[str, list[tuple[float, float]]] = {"move": [], "expand": [], "freeze_root": [],
                                                  "burst": [], "table_down": [], "filter": []}
    async with app.run_test(size=SIZE) as pilot:
        while paints.shown is None:
            await asyncio.sleep(0.001)
        await paints.wait_after(paints.shown)
        screen = app.main
        tree = screen.mtree
        if kind == "deep":  # right: expand a level, then step into it, 15 levels down
            for _ in range(15):
                out["expand"].append(await press(pilot, paints, "right"))
                await press(pilot, paints, "right")  # expanded already: moves down
            for key in ["up", "down"] * 5:
                out["move"].append(await press(pilot, paints, key))
        elif kind == "wide":  # `blocks` (5,000 children): expand it, walk its children
            tree.move_cursor(tree.loaded["blocks"])
            for _ in range(5):
                out["expand"].append(await press(pilot, paints, "right"))  # adds a chunk first time
                await press(pilot, paints, "left")
            await press(pilot, paints, "right")
            for key in ["down"] * 10:
                out["move"].append(await press(pilot, paints, key))
            line = tree.cursor_line
            for _ in range(5):  # a held ↓ in the tree: 20 modules, each refilling the table
                out["burst"].append(await burst(pilot, paints, "down", 20))
            assert tree.cursor_line == line + 100, (line, tree.cursor_line)  # every key taken
            assert screen.table.node is tree.module  # and the table followed
            tree.move_cursor(tree.root)  # the root's table: all 10,000 tensors
            await press(pilot, paints, "tab")
            for _ in range(10):
                out["table_down"].append(await press(pilot, paints, "down"))
            await press(pilot, paints, "tab")
            await press(pilot, paints, "slash")
            out["filter"] = await filter_keys(pilot, paints, app, list("blocks.12") + ["4"])
            await press(pilot, paints, "escape")
            await settle(paints)
        tree.move_cursor(tree.root)
        for _ in range(5):
            out["freeze_root"].append(await press(pilot, paints, "f"))
            assert screen.mf is not None and screen.mf.root.status == "frozen", screen.mf.root.status
            await press(pilot, paints, "u")
        await pilot.pause()
    return out


def ms(s: float) -> str:
    return f"{s * 1000:.0f} ms"


def main(files: list[str]) -> None:
    wide, deep, many = files[:3]
    big = files[3] if len(files) > 3 else None
    rows: list[dict] = []
    detail: list[str] = []

    def row(target: str, figure: str, met: bool | None) -> None:
        rows.append({"target": target, "figure": figure, "met": met})

    for label, path in (("wide", wide), ("2.2 GB full model", big)):
        if path is None:
            continue
        st = startup(path, runs=5)

        def mm(key: str, st: dict = st) -> str:
            return f"median {ms(st[key][0])}, max {ms(st[key][1])}"

        row(f"app first paint ({label}), from App start <= 0.5 s", mm("app_first_paint"),
            st["app_first_paint"][0] <= 0.5)
        row(f"app first paint ({label}), from process launch <= 0.5 s",
            f"{mm('first_paint')} (imports alone: median {ms(st['imports'][0])})",
            st["first_paint"][0] <= 0.5)
        row(f"app tree shown ({label}), from launch <= 1 s", mm("loaded"), st["loaded"][0] <= 1.0)
    names = {"move": "move cursor", "expand": "expand", "freeze_root": "freeze root",
             "burst": "held ↓ in the tree (20 keys back to back), per key",
             "table_down": "↓ in the 10,000-row table",
             "filter": "one filter keystroke (key shown / matches shown)"}
    for kind, path in (("wide", wide), ("deep", deep), ("many", many)):
        res = asyncio.run(interactions(path, kind))
        for what, pairs in res.items():
            if not pairs:
                continue
            firsts, lasts = [p[0] for p in pairs], [p[1] for p in pairs]
            limit = 0.1 if what == "freeze_root" and kind in ("wide", "many") else 0.05
            med = statistics.median(firsts)
            if what == "burst":  # (per key, longest gap between paints)
                row(f"app {names[what]} on {kind} <= {ms(limit)}",
                    f"median {ms(med)}, max {ms(max(firsts))}; longest gap between paints "
                    f"{ms(max(lasts))} (n={len(pairs)} bursts)", med <= limit)
            elif what == "filter":  # the matches, not just the echo, are what the user waits for
                medl = statistics.median(lasts)
                row(f"app {names[what]} on {kind} <= {ms(limit)}",
                    f"key shown: median {ms(med)}, max {ms(max(firsts))}; matches shown: median "
                    f"{ms(medl)}, max {ms(max(lasts))} (n={len(pairs)})",
                    med <= limit and medl <= 2 * limit)
            else:
                row(f"app {names[what]} on {kind}: keypress -> repaint <= {ms(limit)}",
                    f"median {ms(med)}, max {ms(max(firsts))}; all panes done: median "
                    f"{ms(statistics.median(lasts))}, max {ms(max(lasts))} (n={len(pairs)})",
                    med <= limit)
            detail.append(f"app {kind} {what} (first / last): "
                          + ", ".join(f"{ms(a)}/{ms(b)}" for a, b in pairs))
    print(json.dumps({"rows": rows, "detail": detail}))


if __name__ == "__main__":
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    if sys.argv[1] == "--startup":
        child_startup(sys.argv[2], float(sys.argv[3]))
    else:
        main(sys.argv[1:])
