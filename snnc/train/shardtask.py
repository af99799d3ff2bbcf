"""A training task seen by one rank: its part of every global batch and the loss weight that keeps DDP exact.

:class:`ShardedTask` wraps a :class:`~snnc.train.task.Task`. Its
``train_batches`` draws the same global batches as the task (same order, same
augmentation) and keeps this rank's contiguous part (:class:`~snnc.train.distributed.Shard`):
images along dim 0 for classification, windows along dim 1 of
:class:`~snnc.train.data_stereo.StereoBatch` tensors ``(T, B, ...)`` for stereo.
Its ``loss`` multiplies the task's mean loss by ``world * n_rank / n_batch``,
so DDP's gradient average is the gradient of the global batch's mean loss
(exact for classification; for stereo, whose loss is a mean over valid pixels,
up to the ranks' different valid-pixel counts). A global batch with fewer
samples than ranks is skipped (one process would train on it). Everything
else is the wrapped task's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from snnc.train.distributed import Shard
from snnc.train.task import Forward

__all__ = ["ShardBatch", "ShardedTask", "batch_length"]


@dataclass(frozen=True)
class ShardBatch:
    """This rank's part of a global batch and its loss weight."""

    batch: Any
    weight: float


def batch_length(batch: Any) -> int:
    """Samples in a task's training batch: ``(images, labels)`` or a stereo batch with ``x (T, B, ...)``."""
    if isinstance(batch, (tuple, list)):
        return int(batch[0].shape[0])
    return int(batch.x.shape[1])


def _take(batch: Any, shard: Shard) -> Any:
    n = batch_length(batch)
    if isinstance(batch, (tuple, list)):
        return type(batch)(shard.take(t) if isinstance(t, Tensor) and t.shape[:1] == (n,) else t for t in batch)
    start, stop = shard.bounds(n)
    return dataclasses.replace(
        batch,
        **{
            f.name: getattr(batch, f.name)[:, start:stop]
            for f in dataclasses.fields(batch)
            if isinstance(getattr(batch, f.name), Tensor)
        },
    )


class ShardedTask:
    """``task`` restricted to ``shard`` for training (see module docstring)."""

    def __init__(self, task: Any, shard: Shard) -> None:
        self.task = task
        self.shard = shard

    def __getattr__(self, name: str) -> Any:
        return getattr(self.task, name)

    def train_batches(self, generator: torch.Generator) -> Iterator[ShardBatch]:
        """This rank's parts of the task's global batches, in the task's order."""
        for batch in self.task.train_batches(generator):
            n = batch_length(batch)
            if self.shard.usable(n):
                yield ShardBatch(_take(batch, self.shard), self.shard.weight(n))

    def loss(
        self, model: torch.nn.Module, batch: Any, forward: Forward | None = None
    ) -> tuple[Tensor, dict[str, float]]:
        """The task's loss of this rank's part, weighted; statistics of the part unweighted."""
        if not isinstance(batch, ShardBatch):
            return self.task.loss(model, batch, forward)
        loss, stats = self.task.loss(model, batch.batch, forward)
        return loss * batch.weight, stats
