"""First-order bi-level optimisation of a supernet (DARTS first order; NeurIPS §3.3).

Per batch pair after the warm-up::

    arch step   : (alpha, beta) <- Adam on grad_{alpha,beta} L(w, alpha, beta) over a batch of B
    weight step : w             <- SGD  on grad_w L(w, alpha, beta) over a batch of A

During the ``warmup`` epochs only weight steps on ``A`` run (the paper warms
the convolution weights up for 15 of 50 epochs, 3 of 12 for stereo). Each step
computes gradients for its own parameter group only: the other group has
``requires_grad`` switched off for that forward/backward, so alphas never
receive a gradient in a weight step and weights never in an arch step.

Optimisers (paper / DARTS defaults): weights SGD momentum 0.9, lr 0.025
(classification; 0.002 for stereo), weight decay 3e-4, cosine annealing to
``lr_min`` over the epochs, gradient norm clipped at 5; architecture Adam
betas (0.5, 0.999), weight decay 1e-3 (DARTS). DARTS' arch lr is 3e-4 over
50 epochs of 390 steps; the scaled-down searches default to 3e-3 (a flag).

Data-parallel (several ranks, :mod:`snnc.train.distributed`): every rank takes
its contiguous part of each global batch (``batch_size`` is the global batch),
weights its mean loss by ``world * n_rank / n_batch`` and the gradients of the
stepped group are averaged over the ranks before clipping and the step (what
DDP does; done by hand because the two groups take turns), the supernet's
BatchNorms use global-batch statistics (:mod:`snnc.train.syncbn`) and rank 0
evaluates. Weights, alphas and betas are then the same on every rank after
every step, and equal to one process's up to float summation order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from snnc.errors import SnncError
from snnc.nas.tasks import SearchTask
from snnc.train import distributed

__all__ = ["BilevelConfig", "BilevelSearch", "only_grad"]


@dataclass(frozen=True)
class BilevelConfig:
    """Optimisation hyper-parameters (see module docstring)."""

    epochs: int = 50
    warmup: int = 15
    batch_size: int = 50
    lr: float = 0.025
    lr_min: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 3e-4
    arch_lr: float = 3e-3
    arch_betas: tuple[float, float] = (0.5, 0.999)
    arch_weight_decay: float = 1e-3
    grad_clip: float = 5.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise SnncError(f"--epochs must be >= 1, got {self.epochs}")
        if not 0 <= self.warmup <= self.epochs:
            raise SnncError(
                f"--warmup must be in 0..epochs ({self.epochs}), got {self.warmup}: lower --warmup or raise --epochs"
            )
        if self.batch_size < 1:
            raise SnncError(f"--batch-size must be >= 1, got {self.batch_size}")
        for name in ("lr", "arch_lr"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise SnncError(f"--{name.replace('_', '-')} must be a positive number, got {value}")


@contextmanager
def only_grad(train: Sequence[nn.Parameter], frozen: Sequence[nn.Parameter]) -> Iterator[None]:
    """Within the block ``frozen`` parameters do not require gradients and have no ``.grad``
    (flags restored afterwards); ``train`` is left as it is (documents the intent)."""
    saved = [p.requires_grad for p in frozen]
    for p in frozen:
        p.requires_grad_(False)
        p.grad = None
    try:
        yield
    finally:
        for p, flag in zip(frozen, saved, strict=False):
            p.requires_grad_(flag)


class BilevelSearch:
    """Runs the alternating optimisation of a supernet on a :class:`SearchTask`.

    Args:
        model: a supernet with ``arch_parameters()`` and ``weight_parameters()``.
        task: data, loss and metric.
        config: hyper-parameters.
    """

    def __init__(self, model: nn.Module, task: SearchTask, config: BilevelConfig) -> None:
        self.model = model
        self.task = task
        self.config = config
        self.arch_params: list[nn.Parameter] = list(model.arch_parameters())  # type: ignore[operator]
        self.weight_params: list[nn.Parameter] = list(model.weight_parameters())  # type: ignore[operator]
        if not self.arch_params:
            raise SnncError("the supernet has no architecture parameters")
        c = config
        self.w_opt = torch.optim.SGD(self.weight_params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)
        self.a_opt = torch.optim.Adam(
            self.arch_params, lr=c.arch_lr, betas=c.arch_betas, weight_decay=c.arch_weight_decay
        )
        self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.w_opt, T_max=c.epochs, eta_min=c.lr_min)
        self.epoch = 0  # completed epochs
        self.shard = distributed.current().shard()

    def _batch_dims(self, batch: tuple[torch.Tensor, ...]) -> list[int]:
        """The sample dimension of each tensor of a batch: digits ``(images, labels)`` along 0; stereo
        ``(x, disparity, valid)`` with time first along 1, its last-frame ``depth`` along 0."""
        from snnc.nas.tasks import StereoTask

        return [1, 1, 1, 0] if isinstance(self.task, StereoTask) else [0] * len(batch)

    def batch_length(self, batch: tuple[torch.Tensor, ...]) -> int:
        """Samples in a (global) batch."""
        return int(batch[0].shape[self._batch_dims(batch)[0]])

    def _loss(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """The task's loss on this rank's part of ``batch``, weighted (see module docstring)."""
        if self.shard.world == 1:
            return self.task.loss(self.model, batch)
        n = self.batch_length(batch)
        start, stop = self.shard.bounds(n)
        part = tuple(t.narrow(d, start, stop - start) for t, d in zip(batch, self._batch_dims(batch), strict=True))
        return self.task.loss(self.model, part) * self.shard.weight(n)

    def _global(self, loss: torch.Tensor) -> float:
        """The loss of the whole global batch (mean of the ranks' weighted losses)."""
        value = float(loss.detach())
        if self.shard.world == 1:
            return value
        return distributed.all_reduce_sum([value])[0] / self.shard.world

    # ------------------------------------------------------------------ steps
    def weight_step(self, batch: tuple[torch.Tensor, ...]) -> float:
        """One SGD step of the weights on ``batch`` (alphas/betas get no gradient)."""
        self.model.train()
        with only_grad(self.weight_params, self.arch_params):
            loss = self._loss(batch)
            self.w_opt.zero_grad(set_to_none=True)
            loss.backward()
            distributed.average_gradients(self.weight_params)
            if self.config.grad_clip > 0:
                nn.utils.clip_grad_norm_(self.weight_params, self.config.grad_clip)
            self.w_opt.step()
        return self._global(loss)

    def arch_step(self, batch: tuple[torch.Tensor, ...]) -> float:
        """One Adam step of alphas/betas on ``batch`` (weights get no gradient)."""
        self.model.train()
        with only_grad(self.arch_params, self.weight_params):
            loss = self._loss(batch)
            self.a_opt.zero_grad(set_to_none=True)
            loss.backward()
            distributed.average_gradients(self.arch_params)
            self.a_opt.step()
        return self._global(loss)

    def in_warmup(self, epoch: int | None = None) -> bool:
        """Whether (0-based) ``epoch`` (default: the next one) is a warm-up epoch."""
        return (self.epoch if epoch is None else epoch) < self.config.warmup

    def steps_per_epoch(self) -> int:
        """Batches of ``A`` per epoch (each search step also uses one batch of ``B``)."""
        return self.task.n_batches("A", self.config.batch_size)

    def run_epoch(self, on_step: Callable[[float], None] | None = None) -> dict[str, Any]:
        """Train one epoch, step the lr schedule, evaluate; returns the epoch's numbers."""
        c, epoch = self.config, self.epoch
        warm = self.in_warmup()
        lr = self.w_opt.param_groups[0]["lr"]
        w_losses: list[float] = []
        a_losses: list[float] = []
        b_iter = None if warm else self.task.batches("B", c.batch_size, c.seed, epoch)
        for batch_a in self.task.batches("A", c.batch_size, c.seed, epoch):
            if not self.shard.usable(self.batch_length(batch_a)):
                continue  # fewer samples than ranks (a last partial batch)
            if b_iter is not None:
                batch_b = next(b_iter, None)
                if batch_b is None:  # B is one batch shorter: start it over
                    b_iter = self.task.batches("B", c.batch_size, c.seed, epoch + 10_000)
                    batch_b = next(b_iter)
                if self.shard.usable(self.batch_length(batch_b)):
                    a_losses.append(self.arch_step(batch_b))
            w_losses.append(self.weight_step(batch_a))
            if on_step is not None:
                on_step(w_losses[-1])
        self.sched.step()
        self.epoch += 1
        main = distributed.current().main
        metrics = distributed.broadcast_object(self.task.evaluate(self.model, c.batch_size) if main else None)
        return {
            "epoch": self.epoch,
            "phase": "warmup" if warm else "search",
            "lr": lr,
            "train_loss": sum(w_losses) / len(w_losses),
            "arch_loss": (sum(a_losses) / len(a_losses)) if a_losses else None,
            "val": metrics,
        }

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Model, optimisers, schedule and epoch counter."""
        return {
            "model": self.model.state_dict(),
            "w_opt": self.w_opt.state_dict(),
            "a_opt": self.a_opt.state_dict(),
            "sched": self.sched.state_dict(),
            "epoch": self.epoch,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.model.load_state_dict(state["model"])
        self.w_opt.load_state_dict(state["w_opt"])
        self.a_opt.load_state_dict(state["a_opt"])
        self.sched.load_state_dict(state["sched"])
        self.epoch = int(state["epoch"])
