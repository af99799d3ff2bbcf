"""Fold every BatchNorm into its convolution: a fully spiking, BN-free copy for deployment.

After retraining, SpikeDHS merges BN into conv weights and biases (methods.md
§3, NeurIPS §3.2.2). Every conv+BN in snnc is a :class:`~snnc.models.layers.ConvBN`,
so folding is: copy the model, call :meth:`ConvBN.fold` everywhere (eval
statistics: ``w' = w * gamma / sqrt(var + eps)``, ``b' = (b - mean) * gamma /
sqrt(var + eps) + beta``). In eval mode the copy computes the same currents
(to rounding), hence the same spikes.
"""

from __future__ import annotations

import copy
from typing import TypeVar

from torch import nn

from snnc.errors import SnncError
from snnc.models.layers import ConvBN

__all__ = ["fold_bn", "batchnorm_layers"]

M = TypeVar("M", bound=nn.Module)


def batchnorm_layers(model: nn.Module) -> list[str]:
    """Names of all BatchNorm modules in ``model`` (empty once folded)."""
    return [name for name, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def fold_bn(model: M) -> M:
    """Deep copy of ``model`` with every ConvBN's BatchNorm merged into its convolution.

    The original is untouched; the copy keeps its training flag and genotype.

    Raises:
        SnncError: a BatchNorm is not inside a ConvBN (it could not be folded)
            or has no running statistics.
    """
    owned = {id(m.bn) for m in model.modules() if isinstance(m, ConvBN) and m.bn is not None}
    stray = [
        name
        for name, m in model.named_modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and id(m) not in owned
    ]
    if stray:
        raise SnncError(f"cannot fold BatchNorm outside a ConvBN: {', '.join(stray)}")
    for name, m in model.named_modules():
        if isinstance(m, ConvBN) and m.bn is not None and (m.bn.running_mean is None or m.bn.running_var is None):
            raise SnncError(f"cannot fold {name}: its BatchNorm tracks no running statistics")
    folded = copy.deepcopy(model)
    for m in folded.modules():
        if isinstance(m, ConvBN):
            m.fold()
    left = batchnorm_layers(folded)
    if left:  # cannot happen after the checks above; guards against ConvBN changes
        raise SnncError(f"BatchNorm left after folding: {', '.join(left)}")
    return folded
