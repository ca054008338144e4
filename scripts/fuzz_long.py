"""Long fuzz run of the structural reader: `python scripts/fuzz_long.py N [--seconds S]`.

Mutates the valid seed files of tests/test_fuzz.py (torch.save zip and legacy, safetensors,
plain pickles) N times (or for S seconds), opening each with modeltree's reader in a child
process. A parent watches the child, so a crash (segfault) or a hang inside C code is caught
too. Every input that ends in anything but a model or ModelFileError is saved under
--out (default ./fuzz_failures) with its traceback; a summary is printed at the end.
Inputs are reproducible: input i of a run with --seed K is mutate(seed file, Random(K + i)).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import shutil
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

HANG_SECONDS = 30


def _worker(conn, first: int, seed: int, fmts: list[str], workdir: Path, deep: bool) -> None:
    import test_fuzz
    from test_fuzz import check_bytes, mutate, seeds

    test_fuzz._workdir = lambda: workdir  # one scratch folder for the whole run

    files = seeds()
    i = first
    while True:
        fmt = fmts[i % len(fmts)]
        data = mutate(fmt, files[fmt], random.Random(seed + i))
        conn.send(("start", i))
        try:
            result = check_bytes(fmt, data, deep)
            conn.send(("done", i, result, ""))
        except BaseException as e:  # noqa: BLE001 - that's what we are looking for
            tb = traceback.format_exc()
            where = traceback.extract_tb(e.__traceback__)[-1]
            conn.send(("done", i, f"{type(e).__name__} at {Path(where.filename).name}:{where.lineno}",
                       tb))
        i += 1


def _save(out: Path, fmt: str, i: int, seed: int, kind: str, tb: str) -> None:
    from test_fuzz import mutate, seeds

    out.mkdir(parents=True, exist_ok=True)
    data = mutate(fmt, seeds()[fmt], random.Random(seed + i))
    stem = out / f"{fmt}_{i}"
    stem.with_suffix(".bin").write_bytes(data)
    stem.with_suffix(".txt").write_text(f"{kind}\n\n{tb}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("n", type=int, help="inputs to try (0: until --seconds)")
    p.add_argument("--seconds", type=float, default=0, help="stop after this long")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("fuzz_failures"))
    p.add_argument("--save", action="store_true",
                   help="also freeze and save every file that opens (exercises the writers)")
    args = p.parse_args()
    from test_fuzz import seeds

    fmts = sorted(seeds())
    workdir = Path(tempfile.mkdtemp(prefix="modeltree-fuzz-long-"))
    ctx = mp.get_context("fork")
    tried, results, failures = 0, Counter(), Counter()
    examples: dict[str, int] = {}
    start = time.monotonic()
    i = 0

    def budget_left() -> bool:
        return (not args.n or tried < args.n) and (
            not args.seconds or time.monotonic() - start < args.seconds)

    while budget_left():
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker, args=(child, i, args.seed, fmts, workdir, args.save), daemon=True)
        proc.start()
        current = None
        while budget_left():
            if not parent.poll(HANG_SECONDS):
                kind = "hang" if proc.is_alive() else f"crash (exit {proc.exitcode})"
                break
            try:
                msg = parent.recv()
            except EOFError:
                proc.join()
                kind = f"crash (exit {proc.exitcode})"
                break
            if msg[0] == "start":
                current = msg[1]
                continue
            _, idx, result, tb = msg
            tried += 1
            i = idx + 1
            current = None
            if result in ("ok", "error"):
                results[result] += 1
            else:
                failures[result] += 1
                examples.setdefault(result, idx)
                _save(args.out, fmts[idx % len(fmts)], idx, args.seed, result, tb)
        else:
            kind = None
        proc.kill()
        proc.join()
        if kind is not None and current is not None:  # the input the child died on
            tried += 1
            failures[kind] += 1
            examples.setdefault(kind, current)
            _save(args.out, fmts[current % len(fmts)], current, args.seed, kind, "")
            i = current + 1
    shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.monotonic() - start
    print(f"tried {tried} inputs in {elapsed:.0f} s ({tried / max(elapsed, 1e-9):.0f}/s): "
          f"{results['ok']} opened, {results['error']} refused with ModelFileError, "
          f"{sum(failures.values())} failed")
    for kind, count in failures.most_common():
        idx = examples[kind]
        print(f"  {count:6d} x {kind}  (first: input {idx}, {fmts[idx % len(fmts)]}; "
              f"saved in {args.out})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
