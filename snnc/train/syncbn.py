"""BatchNorm with statistics over the global batch of all ranks (what ``nn.SyncBatchNorm`` does, also on gloo/CPU).

``torch.nn.SyncBatchNorm`` runs on GPUs only and is not a ``BatchNorm2d`` /
``BatchNorm3d``, which snnc's folding and model code recognise. :func:`sync_batchnorm`
therefore turns every ``nn.BatchNorm2d`` / ``nn.BatchNorm3d`` of a network into
:class:`GlobalBatchNorm2d` / :class:`GlobalBatchNorm3d`, subclasses with the same
parameters, buffers and state-dict keys (still foldable, still ``isinstance``
the original class). In training mode with several ranks their forward pass

* sums ``(count, sum x, sum x^2)`` per channel over the ranks in one
  differentiable all-reduce (its backward all-reduces the gradients, as
  ``SyncBatchNorm``'s does),
* normalises with the global mean and biased variance, and
* updates the running statistics with the global mean and the unbiased global
  variance, so every rank holds the same running statistics and folding
  (which uses them) gives the same network on every rank.

In eval mode, with one process or with frozen statistics it is the ordinary
BatchNorm. :func:`plain_batchnorm` turns the classes back.

The cheaper alternative (``--bn-sync running``): every rank normalises with its
own part of the batch, as plain DDP does, and :func:`average_running_stats`
replaces every rank's running mean and variance by their mean over the ranks
(after every epoch), so the statistics that folding uses are again the same on
every rank. The averaged variance leaves out the spread of the ranks' batch
means, so it is slightly below the global batch variance.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from snnc.train import distributed

__all__ = [
    "GlobalBatchNorm2d",
    "GlobalBatchNorm3d",
    "sync_batchnorm",
    "plain_batchnorm",
    "global_batch_norm",
    "average_running_stats",
]


class _SumOverRanks(torch.autograd.Function):
    """``sum_r t_r`` on every rank; the backward pass sums the gradients over the ranks the same way."""

    @staticmethod
    def forward(ctx: Any, t: Tensor) -> Tensor:
        out = t.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        out = grad.contiguous().clone()
        dist.all_reduce(out)
        return out


def _all_reduce(t: Tensor) -> Tensor:
    return _SumOverRanks.apply(t)


def global_batch_norm(bn: nn.modules.batchnorm._BatchNorm, x: Tensor) -> Tensor:
    """``bn(x)`` in training mode with the statistics of ``x`` over all ranks (see module docstring)."""
    dims = [0, *list(range(2, x.dim()))]
    count = torch.tensor([x.numel() / x.shape[1]], dtype=torch.float64, device=x.device)
    stats = torch.cat([count, x.sum(dims, dtype=torch.float64), (x * x).sum(dims, dtype=torch.float64)])
    stats = _all_reduce(stats)  # float64 sums: the global moments lose nothing to float32 cancellation
    n = stats[0]
    c = x.shape[1]
    mean64 = stats[1 : 1 + c] / n
    var64 = (stats[1 + c :] / n - mean64 * mean64).clamp_min(0.0)
    mean, var = mean64.to(x.dtype), var64.to(x.dtype)
    if bn.track_running_stats and bn.running_mean is not None and bn.running_var is not None:
        with torch.no_grad():
            tracked = bn.num_batches_tracked
            assert tracked is not None  # track_running_stats
            tracked.add_(1)
            momentum = bn.momentum if bn.momentum is not None else 1.0 / float(tracked)
            unbiased = var.detach() * (n.detach() / (n.detach() - 1).clamp_min(1.0))
            bn.running_mean.mul_(1 - momentum).add_(mean.detach(), alpha=momentum)
            bn.running_var.mul_(1 - momentum).add_(unbiased, alpha=momentum)
    shape = [1, c] + [1] * (x.dim() - 2)
    y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + bn.eps)
    if bn.affine:
        y = y * bn.weight.view(shape) + bn.bias.view(shape)
    return y


class _GlobalMixin(nn.modules.batchnorm._BatchNorm):
    def forward(self, x: Tensor) -> Tensor:
        """Global statistics while training on several ranks, else the parent's forward."""
        if self.training and distributed.current().active:
            return global_batch_norm(self, x)
        return super().forward(x)


class GlobalBatchNorm2d(_GlobalMixin, nn.BatchNorm2d):
    """``nn.BatchNorm2d`` with global-batch statistics while training data-parallel."""


class GlobalBatchNorm3d(_GlobalMixin, nn.BatchNorm3d):
    """``nn.BatchNorm3d`` with global-batch statistics while training data-parallel."""


_SWAP: dict[type, type] = {nn.BatchNorm2d: GlobalBatchNorm2d, nn.BatchNorm3d: GlobalBatchNorm3d}
_BACK: dict[type, type] = {v: k for k, v in _SWAP.items()}


def sync_batchnorm(model: nn.Module) -> int:
    """Make every BatchNorm2d/3d of ``model`` a global one, in place; returns how many were changed."""
    changed = 0
    for m in model.modules():
        cls = _SWAP.get(type(m))
        if cls is not None:
            m.__class__ = cls
            changed += 1
    return changed


def plain_batchnorm(model: nn.Module) -> None:
    """Undo :func:`sync_batchnorm` in place (e.g. on a copy that is saved or folded)."""
    for m in model.modules():
        cls = _BACK.get(type(m))
        if cls is not None:
            m.__class__ = cls


@torch.no_grad()
def average_running_stats(model: nn.Module) -> int:
    """Replace every BatchNorm's running mean and variance by the mean over the ranks (one all-reduce)."""
    ctx = distributed.current()
    bufs = [
        b
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
        for b in (m.running_mean, m.running_var)
        if b is not None
    ]
    if not ctx.active or not bufs:
        return 0
    for b, mean in zip(bufs, distributed.mean_over_ranks(bufs), strict=True):
        b.copy_(mean)
    return len(bufs)
