"""Run a job as N gloo ranks on the CPU (forked processes) and collect what each rank returns.

The ranks are forked from the test process (torch, snnc and the jobs' modules are already imported there:
~6 s of imports per rank saved against a spawned interpreter). Each rank starts as a fresh process would: one
intra-op thread before any torch op (as DataLoader workers do after a fork), and its global RNGs (torch, numpy,
Python) reseeded from the OS, so ranks agree only through what the jobs seed, never through a state inherited
from the parent.
"""

from __future__ import annotations

import os
import random
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world: int, port: int, folder: str, job: Callable[..., Any], args: tuple) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
        LOCAL_WORLD_SIZE=str(world),
    )
    torch.set_num_threads(1)
    torch.seed()  # a non-deterministic seed per rank, like numpy's and Python's in a fresh process
    np.random.seed(None)  # noqa: NPY002 (the global RNG a job might draw from)
    random.seed()
    from snnc.train import distributed

    distributed.init("cpu", timeout_s=120)
    try:
        result = job(Path(folder), *args)
    finally:
        distributed.shutdown()
    torch.save(result, Path(folder) / f"result.rank{rank}.pt")


def run_ranks(job: Callable[..., Any], folder: Path, *args: Any, world: int = 2) -> list[Any]:
    """``job(folder, *args)`` on ``world`` ranks (a module-level function); every rank's return value."""
    folder.mkdir(parents=True, exist_ok=True)
    mp.start_processes(
        _worker, args=(world, _free_port(), str(folder), job, args), nprocs=world, join=True, start_method="fork"
    )
    return [torch.load(folder / f"result.rank{r}.pt", weights_only=False) for r in range(world)]
