"""The torch baseline of the statistics row: `python benchmarks/torch_stats.py FILE`.

torch.load(mmap=True), then per tensor in float32 what `modeltree FILE --stats` reports:
min, max, mean, std, absmax, zeros, NaN and Inf counts, a 32-bucket histogram (over
the finite values when there are NaN/Inf, as modeltree does).
"""

from __future__ import annotations

import sys

import torch


def stats(t: torch.Tensor) -> tuple:
    x = t.float()
    nan = int(x.isnan().sum())
    inf = int(x.isinf().sum())
    if nan or inf:
        x = x[x.isfinite()]
    if x.numel() == 0:
        return nan, inf
    lo, hi = x.min(), x.max()
    hist = torch.histc(x, 32, float(lo), float(hi))
    return (float(lo), float(hi), float(x.mean()), float(x.std()), float(x.abs().max()),
            int((x == 0).sum()), nan, inf, hist)


def main(path: str) -> None:
    sd = torch.load(path, mmap=True, weights_only=True)
    for t in sd.values():
        if isinstance(t, torch.Tensor) and t.is_floating_point():
            stats(t)


if __name__ == "__main__":
    main(sys.argv[1])
