"""DCP checkpoints written by torch itself, for tests: one process, and a 2-rank gloo run.

Not a test file. The 2-rank run is spawned with torch.multiprocessing on 127.0.0.1 with
bounded timeouts; each rank saves DTensors sharded several ways with dcp.save.
"""

from __future__ import annotations

import os
import socket
import time
from datetime import timedelta
from pathlib import Path

import torch


def full_tensors() -> dict[str, torch.Tensor]:
    """The global tensors (the same in every rank: seeded)."""
    g = torch.Generator().manual_seed(0)
    return {
        "enc.weight": torch.randn(5, 3, generator=g),  # Shard(0), uneven: 3 + 2 rows
        "enc.bias": torch.randn(7, generator=g),
        "dec.weight": torch.randn(4, 6, generator=g).to(torch.bfloat16),  # Shard(1)
        "dec.scale": torch.tensor(2.5),  # replicated 0-d
        "emb.weight": torch.randn(64, 1000, generator=g),  # Shard(1): 256 KB, assembled in slabs
        "steps": torch.arange(10, dtype=torch.int64),
    }


def placements():
    from torch.distributed.tensor import Replicate, Shard

    return {"enc.weight": [Shard(0)], "enc.bias": [Shard(0)], "dec.weight": [Shard(1)],
            "dec.scale": [Replicate()], "emb.weight": [Shard(1)], "steps": [Replicate()]}


def _rank(rank: int, world: int, port: int, folder: str) -> None:
    import torch.distributed as dist
    import torch.distributed.checkpoint as dcp
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import distribute_tensor

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world, timeout=timedelta(seconds=60))
    try:
        mesh = init_device_mesh("cpu", (world,))
        sd = {k: distribute_tensor(v, mesh, placements()[k]) for k, v in full_tensors().items()}
        dcp.save({"model": sd, "epoch": 3}, checkpoint_id=folder)
        dist.barrier()
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def save_two_ranks(folder: Path, timeout: float = 120.0) -> Path:
    import torch.multiprocessing as mp

    ctx = mp.start_processes(_rank, args=(2, free_port(), str(folder)), nprocs=2, join=False,
                             start_method="spawn")
    deadline = time.monotonic() + timeout
    try:
        while not ctx.join(timeout=5):
            if time.monotonic() > deadline:
                raise TimeoutError("the 2-rank DCP save did not finish")
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()
                p.join(5)
    return folder


def save_one_process(folder: Path) -> Path:
    import warnings

    import torch.distributed.checkpoint as dcp

    g = torch.Generator().manual_seed(1)
    sd = {"fc.weight": torch.randn(8, 4, generator=g), "fc.bias": torch.zeros(8),
          "norm.weight": torch.ones(4, dtype=torch.float16),
          "big": torch.randn(256, 512, generator=g)}  # 512 KB: opening must not read it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "torch.distributed is disabled … single process"
        dcp.save({**sd, "step": 7}, checkpoint_id=str(folder))
    return folder


def save_nested(folder: Path) -> Path:
    """A training-style save: {'model': …, 'optim': …} (opens like a checkpoint)."""
    import warnings

    import torch.distributed.checkpoint as dcp

    g = torch.Generator().manual_seed(2)
    w = torch.randn(6, 3, generator=g)
    sd = {"model": {"fc.weight": w, "fc.bias": torch.zeros(6)},
          "optim": {"state": {"fc.weight": {"exp_avg": torch.randn(6, 3, generator=g),
                                            "step": torch.tensor(3.0)}},
                    "param_groups": [{"lr": 0.1, "params": ["fc.weight"]}]}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dcp.save(sd, checkpoint_id=str(folder))
    return folder


def flatten(obj, prefix: str = "") -> dict[str, object]:
    """dcp_to_torch_save's nested dict as DCP's flat names (a.b for {'a': {'b': …}})."""
    if isinstance(obj, dict):
        out: dict[str, object] = {}
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: obj}


def bits(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous().reshape(-1).view(torch.uint8)
