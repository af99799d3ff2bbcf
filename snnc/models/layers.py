"""Shared building blocks: convolution + optional BatchNorm, foldable.

Every convolution that is followed by a BatchNorm in an snnc network is a
:class:`ConvBN`. That is the single pattern :func:`snnc.models.fold.fold_bn`
merges, so after folding no BatchNorm is left anywhere.
"""
from __future__ import annotations

from typing import Optional, Tuple, Union

import torch
from torch import nn

IntOrTuple = Union[int, Tuple[int, ...]]


class ConvBN(nn.Module):
    """``BN(conv(x))`` for 2-D or 3-D convolutions; ``bn`` is ``None`` once folded.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups:
            as for ``nn.Conv2d`` / ``nn.Conv3d``.
        dims: 2 or 3.
        bn: add a BatchNorm after the convolution.
        bias: give the convolution a bias (usually False when ``bn`` is True).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOrTuple,
        stride: IntOrTuple = 1,
        padding: Optional[IntOrTuple] = None,
        dilation: IntOrTuple = 1,
        groups: int = 1,
        dims: int = 2,
        bn: bool = True,
        bias: bool = False,
    ) -> None:
        super().__init__()
        if dims not in (2, 3):
            raise ValueError(f"ConvBN supports dims 2 or 3, got {dims}")
        if padding is None:
            k = kernel_size if isinstance(kernel_size, int) else kernel_size[0]
            padding = k // 2
        conv_cls = nn.Conv2d if dims == 2 else nn.Conv3d
        bn_cls = nn.BatchNorm2d if dims == 2 else nn.BatchNorm3d
        self.dims = dims
        self.conv = conv_cls(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias=bias)
        self.bn: Optional[nn.Module] = bn_cls(out_channels) if bn else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the convolution, then the BatchNorm if it is still there."""
        x = self.conv(x)
        return x if self.bn is None else self.bn(x)

    @torch.no_grad()
    def fold(self) -> None:
        """Merge the BatchNorm (eval statistics) into the convolution, in place.

        ``w' = w * gamma / sqrt(var + eps)``, ``b' = (b - mean) * gamma / sqrt(var + eps) + beta``.
        """
        if self.bn is None:
            return
        bn = self.bn
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps) if bn.affine else 1.0 / torch.sqrt(bn.running_var + bn.eps)
        shift = bn.bias if bn.affine else torch.zeros_like(bn.running_mean)
        conv = self.conv
        w = conv.weight
        conv.weight.copy_(w * scale.reshape(-1, *([1] * (w.dim() - 1))))
        old_bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        new_bias = (old_bias - bn.running_mean) * scale + shift
        if conv.bias is None:
            conv.bias = nn.Parameter(new_bias.clone())
        else:
            conv.bias.copy_(new_bias)
        self.bn = None
