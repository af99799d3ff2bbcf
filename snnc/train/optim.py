"""Optimizer and learning-rate schedule of a run (methods.md §3 retrain recipes)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from snnc.errors import SnncError
from snnc.train.config import TrainConfig, resolved

__all__ = ["make_optimizer", "make_scheduler", "step_milestones", "extend_schedule", "freeze_batchnorm"]


def make_optimizer(params: Iterable[nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    """SGD (momentum, weight decay) or Adam (betas 0.9, 0.999)."""
    params = [p for p in params if p.requires_grad]
    lr, decay = resolved(config.lr, "lr"), resolved(config.weight_decay, "weight_decay")
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=config.momentum, weight_decay=decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), weight_decay=decay)
    raise SnncError(f"unknown optimizer {config.optimizer!r}")


def step_milestones(epochs: int) -> list[int]:
    """Epochs at which the ``step`` schedule halves the lr: 25, 50 and 75 % of the run (paper: 50/100/150 of 200)."""
    return sorted({m for m in (round(epochs * 0.25), round(epochs * 0.5), round(epochs * 0.75)) if 0 < m < epochs})


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-epoch schedule: cosine to 0 over the run, halving steps, or constant."""
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=resolved(config.epochs, "epochs"))
    milestones = step_milestones(resolved(config.epochs, "epochs")) if config.schedule == "step" else []
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.5)


def extend_schedule(scheduler: torch.optim.lr_scheduler.LRScheduler, config: TrainConfig) -> None:
    """After ``--resume --epochs N`` with a new N: stretch the schedule's horizon to N (from the current epoch on)."""
    if isinstance(scheduler, torch.optim.lr_scheduler.CosineAnnealingLR):
        scheduler.T_max = resolved(config.epochs, "epochs")
    elif isinstance(scheduler, torch.optim.lr_scheduler.MultiStepLR) and config.schedule == "step":
        from collections import Counter

        scheduler.milestones = Counter(step_milestones(resolved(config.epochs, "epochs")))


def freeze_batchnorm(model: nn.Module) -> None:
    """Put every BatchNorm of ``model`` in eval mode (running statistics used and kept; affine still trains).

    Call after ``model.train()``.
    """
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()
