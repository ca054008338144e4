"""modeltree against torch on big synthetic checkpoints: `python benchmarks/run.py`.

Generates the checkpoints (generate.py) under benchmarks/_generated/ (or --dir),
measures modeltree and the baselines in the same run, prints one row per target
(measured figure, met / NOT MET) and deletes what it generated, also on Ctrl-C.
Each command runs in a fresh process; wall time is the median of a few runs and
peak RSS comes from os.wait4 (that child's own ru_maxrss).
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PY = sys.executable
NEEDED_DISK = 12 << 30  # two 2.2 GB inputs + one save output + one cp output, with room


@dataclass
class Run:
    wall: float  # seconds, median
    rss: int  # bytes, max over runs
    walls: list[float]


@dataclass
class Row:
    target: str
    figure: str
    met: bool | None  # None: informational or not measurable here


def measure(cmd: list[str], runs: int = 3, env: dict | None = None, stdout=subprocess.DEVNULL,
            before=None) -> Run:
    """Median wall time and peak RSS of `cmd`, each run in a fresh process."""
    walls, rss = [], 0
    for _ in range(runs):
        if before is not None:
            before()
        with tempfile.TemporaryFile() as err:
            t0 = time.perf_counter()
            p = subprocess.Popen(cmd, stdout=stdout, stderr=err, env=env, cwd=ROOT)
            try:
                _, status, usage = os.wait4(p.pid, 0)
            except BaseException:  # Ctrl-C: don't leave it writing into what we delete
                p.kill()
                p.wait()
                raise
            walls.append(time.perf_counter() - t0)
            p.returncode = os.waitstatus_to_exitcode(status)
            if p.returncode != 0:
                err.seek(0)
                tail = err.read().decode(errors="replace").strip().splitlines()[-3:]
                raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}: {' | '.join(tail)}")
        rss = max(rss, usage.ru_maxrss * 1024)  # Linux reports KiB
    return Run(statistics.median(walls), rss, walls)


def modeltree_cmd() -> list[str]:
    script = os.path.join(os.path.dirname(PY), "modeltree")
    return [script] if os.path.exists(script) else [PY, "-m", "tui"]


def torch_env() -> dict:
    """Baselines that unpickle our own full-model file need its classes importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (HERE, env.get("PYTHONPATH")) if p)
    return env


def torch_load_cmd(path: str, mmap: bool, weights_only: bool) -> list[str]:
    code = ("import sys, torch; torch.load(sys.argv[1], "
            f"mmap={mmap}, weights_only={weights_only})")
    return [PY, "-c", code, path]


def mb(n: float) -> str:
    return f"{n / 2**20:.0f} MB"


def secs(s: float) -> str:
    return f"{s * 1000:.0f} ms" if s < 1 else f"{s:.2f} s"


# -- the measurements ------------------------------------------------------------
def bench_json(gen: str, rows: list[Row], detail: list[str], quick: bool) -> None:
    mt = modeltree_cmd()
    subprocess.run([PY, "-c", "import torch"], check=True, cwd=ROOT)  # warm torch's files
    for name, label, full in (("llama_sd.pth", "state_dict", False),
                              ("llama_full.pth", "full model", True)):
        path = os.path.join(gen, name)
        size = os.path.getsize(path)
        ours = measure(mt + [path, "--json"], runs=5)
        mmap = measure(torch_load_cmd(path, True, not full), runs=1 if quick else 3, env=torch_env())
        plain = measure(torch_load_cmd(path, False, not full), runs=1 if quick else 2, env=torch_env())
        wo = "weights_only=False (our own file)" if full else "weights_only=True"
        detail += [
            f"{label} {mb(size)}: modeltree --json {secs(ours.wall)} / {mb(ours.rss)}; "
            f"torch.load(mmap=True, {wo}) {secs(mmap.wall)} / {mb(mmap.rss)}; "
            f"torch.load({wo}) {secs(plain.wall)} / {mb(plain.rss)}",
        ]
        ratio = mmap.wall / ours.wall
        rows.append(Row(f"--json {label} 2.2 GB: >= 10x faster than torch.load(mmap=True)",
                        f"{ratio:.1f}x ({secs(ours.wall)} vs {secs(mmap.wall)})", ratio >= 10))
        rows.append(Row(f"--json {label} 2.2 GB: vs plain torch.load (info)",
                        f"{plain.wall / ours.wall:.1f}x ({secs(plain.wall)}, {mb(plain.rss)})", None))
        rows.append(Row(f"--json {label} 2.2 GB: peak RSS <= 100 MB",
                        f"{mb(ours.rss)} (mmap baseline {mb(mmap.rss)})", ours.rss <= 100 << 20))


def bench_sharded(gen: str, rows: list[Row], detail: list[str]) -> None:
    folder = os.path.join(gen, "llama405b")
    shards = [n for n in os.listdir(folder) if n.endswith(".safetensors")]
    apparent = sum(os.path.getsize(os.path.join(folder, n)) for n in shards)
    ours = measure(modeltree_cmd() + [folder, "--json"], runs=3)
    with tempfile.TemporaryFile() as out:
        subprocess.run(modeltree_cmd() + [folder, "--json"], stdout=out, check=True, cwd=ROOT)
        out.seek(0)
        params = json.load(out)["totals"]["parameters"]
    detail.append(f"405B-shaped: {len(shards)} shards, {apparent / 1e9:.0f} GB apparent, "
                  f"{params / 1e9:.1f} B parameters: --json {secs(ours.wall)} / {mb(ours.rss)} "
                  f"(runs: {', '.join(secs(w) for w in ours.walls)})")
    rows.append(Row(f"405B sharded ({len(shards)} shards) opens with --json <= 2 s",
                    f"{secs(ours.wall)}, {mb(ours.rss)}", ours.wall <= 2.0))


def bench_stats(gen: str, rows: list[Row], detail: list[str], quick: bool) -> None:
    """Statistics over every tensor: modeltree --stats against torch.load(mmap=True) + the
    same statistics computed by torch in float32 (torch_stats.py)."""
    path = os.path.join(gen, "llama_sd.pth")
    ours = measure(modeltree_cmd() + [path, "--stats"], runs=1 if quick else 3)
    theirs = measure([PY, os.path.join(HERE, "torch_stats.py"), path], runs=1, env=torch_env())
    ratio = ours.wall / theirs.wall
    detail.append(f"--stats state_dict 2.2 GB bf16: modeltree {secs(ours.wall)} / {mb(ours.rss)} "
                  f"(runs: {', '.join(secs(w) for w in ours.walls)}); torch.load(mmap=True) + float32 "
                  f"stats {secs(theirs.wall)} / {mb(theirs.rss)}")
    rows.append(Row("--stats 2.2 GB bf16: <= 1.5x torch.load(mmap=True) + torch float32 stats",
                    f"{ratio:.2f}x ({secs(ours.wall)} vs {secs(theirs.wall)})", ratio <= 1.5))
    rows.append(Row("--stats 2.2 GB bf16: peak RSS <= 256 MB",
                    f"{mb(ours.rss)} (torch {mb(theirs.rss)})", ours.rss <= 256 << 20))


def bench_wide(gen: str, rows: list[Row], detail: list[str], runs: int = 7) -> None:
    """--json of the small synthetic models, against the interpreter + imports floor."""
    mt = modeltree_cmd()
    floor = measure(mt + ["--version"], runs=runs)
    detail.append(f"floor (modeltree --version: python, site, the CLI's imports): median {secs(floor.wall)}, "
                  f"runs {', '.join(secs(w) for w in floor.walls)}")
    for name, label, target in (("wide.pth", "wide (5,000 modules / 10,000 tensors)", 0.3),
                                ("many.pth", "many (100 x 50 modules)", None),
                                ("deep.pth", "deep (300 levels)", None)):
        path = os.path.join(gen, name)
        if not os.path.exists(path):
            continue
        r = measure(mt + [path, "--json"], runs=runs)
        detail.append(f"--json {name} ({mb(os.path.getsize(path))}): runs "
                      f"{', '.join(secs(w) for w in r.walls)}; peak RSS {mb(r.rss)}")
        fig = (f"median {secs(r.wall)}, max {secs(max(r.walls))} (n={runs}); "
               f"{r.wall / floor.wall:.1f}x the launch floor {secs(floor.wall)}")
        rows.append(Row(f"--json {label}" + (f" <= {secs(target)}" if target else " (info)"), fig,
                        None if target is None else r.wall <= target))


def save_available() -> bool:
    return os.path.exists(os.path.join(ROOT, "tui", "core", "write", "save.py"))


def bench_save(gen: str, rows: list[Row], detail: list[str], quick: bool) -> None:
    if not save_available():
        rows.append(Row("save <= 1.2x cp + sync, peak RSS <= 25% of file", "tui/core/write/save.py missing", None))
        return
    out_dir = os.path.join(gen, "out")
    os.makedirs(out_dir, exist_ok=True)
    mt = modeltree_cmd()
    cases = (("llama_sd.pth", "state_dict"), ("llama_full.pth", "full"))
    runs = 3 if quick else 5
    for src_name, fmt in cases:
        src = os.path.join(gen, src_name)
        size = os.path.getsize(src)
        target = os.path.join(out_dir, "saved.pth")
        copy = os.path.join(out_dir, "copy.pth")
        clear = _remover(target, copy, sync=True)  # untimed: no write-back left over
        subprocess.run(["cp", src, copy], check=True)  # warm the source in the page cache
        clear()
        cps, cpsyncs, saves, rss = [], [], [], 0
        for _ in range(runs):  # alternate, so drift in the machine hits both alike
            cps.append(measure(["cp", src, copy], runs=1, before=clear).wall)
            cpsyncs.append(measure(["sh", "-c", 'cp "$0" "$1" && sync "$1"', src, copy],
                                   runs=1, before=clear).wall)
            r = measure(mt + [src, "--save", target, "--format", fmt, "--force"], runs=1,
                        before=clear, stdout=subprocess.DEVNULL)
            saves.append(r.wall)
            rss = max(rss, r.rss)
        clear()
        cp, cpsync, ours = (statistics.median(x) for x in (cps, cpsyncs, saves))
        ratio, durable = ours / cp, ours / cpsync
        # Per-run ratios against the cp + sync of the same round: the disk is shared, so
        # a pair measured back to back is the fairer comparison.
        pairs = [s / c for s, c in zip(saves, cpsyncs, strict=True)]
        detail.append(f"save {src_name} as {fmt}: {', '.join(secs(s) for s in saves)}; cp "
                      f"{', '.join(secs(s) for s in cps)}; cp+sync {', '.join(secs(s) for s in cpsyncs)}; "
                      f"per-round save/(cp+sync) {', '.join(f'{p:.2f}' for p in pairs)}; "
                      f"peak RSS {mb(rss)} (source in the page cache; the copies are written to disk "
                      "by sync / fsync, so this is disk-bound)")
        rows.append(Row(f"save {fmt} ({src_name}) <= 1.2x cp + sync of the same file",
                        f"{durable:.2f}x median, max {max(saves) / statistics.median(cpsyncs):.2f}x "
                        f"({secs(ours)} vs {secs(cpsync)}, n={runs})", durable <= 1.2))
        rows.append(Row(f"save {fmt} vs plain cp, data left in the page cache (info)",
                        f"{ratio:.2f}x (cp {secs(cp)})", None))
        rows.append(Row(f"save {fmt} peak RSS <= 25% of file ({mb(size / 4)})",
                        f"{mb(rss)} ({100 * rss / size:.1f}%)", rss <= size / 4))


def _remover(*paths: str, sync: bool = False):
    def clear() -> None:
        for p in paths:
            for q in (p, p + ".freeze.json"):
                if os.path.exists(q):
                    os.remove(q)
        if sync:  # the previous command's write-back must not slow the next one down
            os.sync()
    return clear


def app_available() -> bool:
    return os.path.exists(os.path.join(ROOT, "tui", "app.py"))


def bench_app(gen: str, rows: list[Row], detail: list[str]) -> None:
    if not app_available():
        rows.append(Row("app: first paint, keypress -> repaint", "tui/app.py missing", None))
        return
    files = [os.path.join(gen, n) for n in ("wide.pth", "deep.pth", "many.pth", "llama_full.pth")]
    files = [f for f in files if os.path.exists(f)]  # the 2.2 GB one only when generated
    proc = subprocess.run([PY, os.path.join(HERE, "app_timing.py"), *files], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        rows.append(Row("app measurements", f"failed: {tail[:200]}", False))
        return
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    for r in res["rows"]:
        rows.append(Row(r["target"], r["figure"], r["met"]))
    detail.extend(res["detail"])


def bench_remote(gen: str, rows: list[Row], detail: list[str]) -> None:
    from remote_bench import measure as remote_measure

    r = remote_measure(gen, modeltree_cmd())
    (cold, got, reqs), (warm, got2, reqs2), (dl, dl_bytes, _) = r["cold"], r["warm"], r["download"]
    detail.append(f"remote {mb(r['size'])} zip over loopback HTTP: --json cold {secs(cold)}, "
                  f"{got / 1024:.0f} KB in {reqs} requests; warm cache {secs(warm)}, "
                  f"{got2 / 1024:.0f} KB in {reqs2} requests; whole download {secs(dl)} ({mb(dl_bytes)})")
    rows.append(Row(f"remote --json {mb(r['size'])}: fetches <= 2 MB, faster than downloading it",
                    f"{got / 1024:.0f} KB, {secs(cold)} vs download {secs(dl)}",
                    got <= 2 << 20 and cold < dl))
    rows.append(Row("remote --json, second open: no byte ranges fetched (cache)",
                    f"{got2} B in {reqs2} requests, {secs(warm)}", got2 == 0))


# -- driver ------------------------------------------------------------------------
def generate(gen: str, parts: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([PY, os.path.join(HERE, "generate.py"), gen, *parts], check=True, cwd=ROOT,
                   env=torch_env())
    return time.perf_counter() - t0


GENERATED = ("llama_sd.pth", "llama_full.pth", "wide.pth", "deep.pth", "many.pth", "llama405b", "out")


def cleanup(gen: str, remove_dir: bool) -> None:
    """Delete only what this script generates (--dir may be a folder of the user's)."""
    for name in GENERATED:
        p = os.path.join(gen, name)
        if os.path.isdir(p):
            shutil.rmtree(p, ignore_errors=True)
        elif os.path.exists(p):
            os.remove(p)
    if remove_dir:
        try:
            os.rmdir(gen)
        except OSError:
            pass


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{cpu}, {os.cpu_count()} CPUs, {mem / 2**30:.0f} GiB RAM, Python "
            f"{platform.python_version()}, {platform.system()} {platform.release()}, "
            f"load average {load}")


def print_table(rows: list[Row]) -> None:
    width = max(len(r.target) for r in rows)
    fig = max(len(r.figure) for r in rows)
    print(f"\n{'target':<{width}}  {'measured':<{fig}}  result")
    print("-" * (width + fig + 12))
    for r in rows:
        res = "info" if r.met is None else ("met" if r.met else "NOT MET")
        print(f"{r.target:<{width}}  {r.figure:<{fig}}  {res}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default=os.path.join(HERE, "_generated"),
                    help="where to generate the checkpoints (deleted afterwards)")
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    ap.add_argument("--only", default="wide,json,sharded,save,stats,app,remote",
                    help="comma list of: wide, json, sharded, save, stats, app, remote")
    ap.add_argument("--quick", action="store_true", help="fewer repetitions of the slow baselines")
    args = ap.parse_args(argv)
    only = set(args.only.split(","))
    gen = os.path.abspath(args.dir)
    existed = os.path.exists(gen)
    os.makedirs(gen, exist_ok=True)
    rows: list[Row] = []
    detail: list[str] = []
    t0 = time.perf_counter()
    start_machine = machine()
    # An installed copy runs from .pyc files (pip compiles them); a checkout run with
    # PYTHONDONTWRITEBYTECODE=1 would otherwise recompile every module on every launch.
    compileall.compile_dir(os.path.join(ROOT, "tui"), quiet=1)
    detail.append("tui/ byte-compiled before measuring (as an installed copy is)")
    try:
        big = bool(only & {"json", "save", "stats"})
        if big and shutil.disk_usage(gen).free < NEEDED_DISK:
            print(f"need {NEEDED_DISK >> 30} GB free under {gen} for the 2.2 GB checkpoints", file=sys.stderr)
            return 2
        parts = (["llama"] if big else []) + (["small"] if "app" in only else []) + \
                (["sharded"] if "sharded" in only else [])
        if "wide" in only and "small" not in parts:
            parts.append("small")
        if parts:
            print(f"generating {', '.join(parts)} under {gen} ...", flush=True)
            detail.append(f"generation: {secs(generate(gen, parts))}")
        steps = (("wide", lambda: bench_wide(gen, rows, detail)),
                 ("json", lambda: bench_json(gen, rows, detail, args.quick)),
                 ("sharded", lambda: bench_sharded(gen, rows, detail)),
                 ("save", lambda: bench_save(gen, rows, detail, args.quick)),
                 ("stats", lambda: bench_stats(gen, rows, detail, args.quick)),
                 ("app", lambda: bench_app(gen, rows, detail)),
                 ("remote", lambda: bench_remote(gen, rows, detail)))
        for name, step in steps:
            if name in only:
                print(f"measuring {name} ...", flush=True)
                step()
    except KeyboardInterrupt:
        print("\ninterrupted: deleting the generated files", file=sys.stderr)
        return 130
    finally:
        if not args.keep:
            cleanup(gen, remove_dir=not existed)
    print(f"\nmachine at start: {start_machine}\nmachine at end:   {machine()}")
    for line in detail:
        print(f"  {line}")
    print_table(rows)
    print(f"\ntotal {secs(time.perf_counter() - t0)}")
    return 0 if all(r.met is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
