"""Run a job as N gloo ranks on the CPU (torch.multiprocessing spawn) and collect what each rank returns."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
        _worker, args=(world, _free_port(), str(folder), job, args), nprocs=world, join=True, start_method="spawn"
    )
    return [torch.load(folder / f"result.rank{r}.pt", weights_only=False) for r in range(world)]
