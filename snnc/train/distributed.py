"""torch.distributed for snnc: process group, ranks, batch shards, gradient averaging, agreement on errors.

snnc runs data-parallel under PyTorch's own launcher: ``torchrun`` (or
``snnc train --nproc N``, :mod:`snnc.train.launch`) starts one process per
rank and sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT``. :func:`init` reads them and joins the process group: gloo on
the CPU, NCCL with ``--device cuda`` (one GPU per rank, ``cuda:LOCAL_RANK``).
Without those variables (or with ``WORLD_SIZE=1``) everything here is a no-op
and a run is one ordinary process.

Data parallelism (:class:`Shard`): every rank draws the same global batch (the
same seeded order as one process) and takes its contiguous part, so
``--batch-size`` is the **global** batch, ``B / world`` images per rank. Each
rank's mean loss is multiplied by ``world * n_rank / n_batch``; averaging the
gradients over the ranks (DDP) then gives the gradient of the mean loss over
the whole global batch, exactly the one-process gradient (with BatchNorm
statistics over the global batch, :mod:`snnc.train.syncbn`), also for a last
batch that does not split evenly. The learning rate is therefore the
one-process learning rate of that global batch; nothing is rescaled.

Errors: :func:`agree` runs a step on every rank and gathers the outcome, so a
user error on any rank becomes the same one-line :class:`SnncError` on every
rank (printed by rank 0 only) instead of a rank waiting forever in the next
collective. Every collective has the process group's timeout (``--dist-timeout``).
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor

from snnc.errors import SnncError

__all__ = [
    "DistContext",
    "Shard",
    "current",
    "init",
    "shutdown",
    "launched",
    "is_main",
    "agree",
    "barrier",
    "broadcast_object",
    "all_gather_objects",
    "average_gradients",
    "mean_over_ranks",
    "all_reduce_sum",
    "check_batch_split",
    "CollectiveError",
    "DEFAULT_TIMEOUT_S",
]

#: Default seconds a collective may wait for the other ranks (a hung or dead rank fails the run after it).
DEFAULT_TIMEOUT_S = 600.0

T = TypeVar("T")


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: ``rank`` of ``world`` processes, ``local_rank`` on its machine, ``device``."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    backend: str = ""

    @property
    def active(self) -> bool:
        """More than one process takes part."""
        return self.world > 1

    @property
    def main(self) -> bool:
        """Rank 0: the one that writes files and prints."""
        return self.rank == 0

    def shard(self) -> Shard:
        """This rank's :class:`Shard`."""
        return Shard(self.rank, self.world)


_CONTEXT = DistContext()


def current() -> DistContext:
    """The context set by :func:`init` (one process, CPU, until then)."""
    return _CONTEXT


def is_main() -> bool:
    """Whether this process is rank 0 (always true outside a distributed run)."""
    return _CONTEXT.main


def launched() -> bool:
    """Whether a launcher (torchrun, ``--nproc``) started this process as one of several ranks."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


def _env_int(name: str) -> int:
    text = os.environ.get(name, "")
    try:
        return int(text)
    except ValueError:
        raise SnncError(f"environment variable {name}={text!r} set by the launcher is not an integer") from None


def init(device: str = "cpu", timeout_s: float = DEFAULT_TIMEOUT_S) -> DistContext:
    """Join the process group the launcher set up (gloo for ``cpu``, NCCL for ``cuda``); return the context.

    Outside a launched run (no ``WORLD_SIZE`` > 1) nothing is initialised and the
    context is one process on ``device``'s default (``cuda`` stays for the caller
    to resolve). With ``cuda`` each rank uses GPU ``LOCAL_RANK``.

    Raises:
        SnncError: bad launcher variables, CUDA requested without enough GPUs, a bad timeout.
    """
    global _CONTEXT
    if not launched():
        _CONTEXT = DistContext()
        return _CONTEXT
    if not timeout_s > 0:
        raise SnncError(f"--dist-timeout must be a positive number of seconds, got {timeout_s!r}")
    rank, world, local = _env_int("RANK"), _env_int("WORLD_SIZE"), _env_int("LOCAL_RANK")
    name = str(device).strip().lower()
    if name == "cpu":
        backend, dev = "gloo", torch.device("cpu")
    elif name == "cuda" or name.startswith("cuda:"):
        if name != "cuda":
            raise SnncError(
                f"--device {device} with several processes: use --device cuda (each rank takes GPU LOCAL_RANK)"
            )
        if not torch.cuda.is_available() or torch.cuda.device_count() <= local:
            raise SnncError(
                f"--device cuda: rank {rank} needs GPU {local} but torch sees "
                f"{torch.cuda.device_count() if torch.cuda.is_available() else 0} GPU(s)"
            )
        backend, dev = "nccl", torch.device("cuda", local)
        torch.cuda.set_device(dev)
    else:
        raise SnncError(f"unknown --device {device!r} (expected cpu or cuda)")
    if not dist.is_initialized():
        kwargs: dict[str, Any] = {}
        if backend == "nccl":
            kwargs["device_id"] = dev
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=float(timeout_s)), **kwargs)
    _CONTEXT = DistContext(rank, world, local, dev, backend)
    return _CONTEXT


def shutdown() -> None:
    """Leave the process group (if one was joined) and return to the one-process context."""
    global _CONTEXT
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    _CONTEXT = DistContext()


# --------------------------------------------------------------------------- batches
@dataclass(frozen=True)
class Shard:
    """Rank ``rank``'s contiguous part of every global batch (see module docstring)."""

    rank: int = 0
    world: int = 1

    def bounds(self, n: int) -> tuple[int, int]:
        """``(start, stop)`` of this rank's part of a batch of ``n``: sizes differ by at most one."""
        base, extra = divmod(int(n), self.world)
        start = self.rank * base + min(self.rank, extra)
        return start, start + base + (1 if self.rank < extra else 0)

    def weight(self, n: int) -> float:
        """Loss factor ``world * n_rank / n`` of this rank's part (1.0 for one process)."""
        start, stop = self.bounds(n)
        return 1.0 if self.world == 1 else self.world * (stop - start) / n

    def take(self, items: Tensor) -> Tensor:
        """This rank's part of a global batch (``items`` along dim 0)."""
        if self.world == 1:
            return items
        start, stop = self.bounds(int(items.shape[0]))
        return items[start:stop]

    def usable(self, n: int) -> bool:
        """Whether a global batch of ``n`` gives every rank at least one sample."""
        return n >= self.world

    def check_batch(self, batch_size: int) -> None:
        """Raise :class:`SnncError` unless the global ``batch_size`` splits evenly over the ranks."""
        if self.world > 1 and batch_size % self.world:
            raise SnncError(
                f"--batch-size {batch_size} is the global batch and must split evenly over the "
                f"{self.world} processes (use a multiple of {self.world})"
            )


# --------------------------------------------------------------------------- collectives
class CollectiveError(SnncError):
    """An error raised on every rank by :func:`agree` (rank 0 reports it; the others stay silent)."""

    def __init__(self, message: str, rank: int) -> None:
        super().__init__(message)
        self.failed_rank = rank


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj`` (picklable, small), in rank order (``[obj]`` in one process)."""
    if not _CONTEXT.active:
        return [obj]
    out: list[Any] = [None] * _CONTEXT.world
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank (pickled between this run's own processes only)."""
    if not _CONTEXT.active:
        return obj
    box = [obj if _CONTEXT.rank == src else None]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def agree(step: Callable[[], T], what: str = "") -> T:
    """Run ``step`` on every rank; if it raised :class:`SnncError` on any rank, raise it on all of them.

    The error of the lowest failing rank wins; a non-zero rank's message is
    prefixed with ``rank N:``. Unexpected exceptions are passed on as they are
    on their own rank and reported to the others as one line, so no rank is
    left waiting for them.
    """
    if not _CONTEXT.active:
        return step()
    result: Any = None
    failure: str | None = None
    own: BaseException | None = None
    try:
        result = step()
    except SnncError as err:
        failure, own = str(err), err
    except Exception as err:  # reported to the other ranks, re-raised on this one
        failure, own = f"{type(err).__name__}: {err}".splitlines()[0], err
    failures = all_gather_objects(failure)
    bad = [(r, f) for r, f in enumerate(failures) if f is not None]
    if not bad:
        return result
    rank, message = bad[0]
    if own is not None and not isinstance(own, SnncError) and rank == _CONTEXT.rank:
        raise own
    prefix = "" if rank == 0 else f"rank {rank}: "
    raise CollectiveError(f"{prefix}{message}" + (f" ({what})" if what and rank else ""), rank)


def barrier() -> None:
    """Wait for every rank (within the process group's timeout)."""
    if _CONTEXT.active:
        if _CONTEXT.backend == "nccl":
            dist.barrier(device_ids=[_CONTEXT.local_rank])
        else:
            dist.barrier()


def all_reduce_sum(values: Sequence[float]) -> list[float]:
    """The sums over the ranks of ``values`` (float64, one collective)."""
    if not _CONTEXT.active or not values:
        return [float(v) for v in values]
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=_collective_device())
    dist.all_reduce(t)
    return [float(v) for v in t.cpu()]


def _collective_device() -> torch.device:
    return _CONTEXT.device if _CONTEXT.backend == "nccl" else torch.device("cpu")


def average_gradients(params: Iterable[torch.nn.Parameter]) -> None:
    """Replace each parameter's gradient by its mean over the ranks (one flat all-reduce).

    Parameters without a gradient on this rank count as zeros (every rank runs
    the same graph, so in practice they have none anywhere and stay ``None``).
    """
    if not _CONTEXT.active:
        return
    params = list(params)
    has = torch.tensor([float(p.grad is not None) for p in params], device=_collective_device())
    dist.all_reduce(has)
    live = [p for p, h in zip(params, has.tolist(), strict=True) if h > 0]
    if not live:
        return
    grads: list[Tensor] = []
    for p in live:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        grads.append(p.grad)
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= _CONTEXT.world
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset : offset + n].view_as(g))
        offset += n


def mean_over_ranks(tensors: list[Tensor]) -> list[Tensor]:
    """The mean over the ranks of each tensor (new tensors, one flat all-reduce; the input in one process)."""
    if not _CONTEXT.active or not tensors:
        return tensors
    flat = torch.cat([t.detach().reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    flat /= _CONTEXT.world
    out, offset = [], 0
    for t in tensors:
        out.append(flat[offset : offset + t.numel()].view_as(t).clone())
        offset += t.numel()
    return out


def check_batch_split(batch_size: int) -> None:
    """:meth:`Shard.check_batch` of this rank (no-op in one process)."""
    _CONTEXT.shard().check_batch(int(batch_size))
