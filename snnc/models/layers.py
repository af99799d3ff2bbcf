"""Shared building blocks: convolution + optional BatchNorm, foldable.

Every convolution that is followed by a BatchNorm in an snnc network is a
:class:`ConvBN`. That is the single pattern :func:`snnc.models.fold.fold_bn`
merges, so after folding no BatchNorm is left anywhere.
"""

from __future__ import annotations

import torch
from torch import nn

IntOrTuple = int | tuple[int, ...]


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
        padding: IntOrTuple | None = None,
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
        conv_cls = nn.Conv2d if dims == 2 else Conv3d
        bn_cls = nn.BatchNorm2d if dims == 2 else nn.BatchNorm3d
        self.dims = dims
        # torch types 2-D and 3-D sizes as fixed-length tuples; ConvBN takes either (checked by the layer itself)
        self.conv = conv_cls(
            in_channels,
            out_channels,
            kernel_size,  # type: ignore[arg-type]
            stride,  # type: ignore[arg-type]
            padding,  # type: ignore[arg-type]
            dilation,  # type: ignore[arg-type]
            groups,
            bias=bias,
        )
        self.bn: nn.BatchNorm2d | nn.BatchNorm3d | None = bn_cls(out_channels) if bn else None

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
        mean, var = bn.running_mean, bn.running_var
        if mean is None or var is None:
            raise ValueError("ConvBN.fold needs BatchNorm running statistics (track_running_stats=True)")
        scale = bn.weight / torch.sqrt(var + bn.eps) if bn.affine else 1.0 / torch.sqrt(var + bn.eps)
        shift = bn.bias if bn.affine else torch.zeros_like(mean)
        conv = self.conv
        w = conv.weight
        conv.weight.copy_(w * scale.reshape(-1, *([1] * (w.dim() - 1))))
        old_bias = conv.bias if conv.bias is not None else torch.zeros_like(mean)
        new_bias = (old_bias - mean) * scale + shift
        if conv.bias is None:
            conv.bias = nn.Parameter(new_bias.clone())
        else:
            conv.bias.copy_(new_bias)
        self.bn = None


class Conv3d(nn.Conv3d):
    """``nn.Conv3d`` that avoids PyTorch's slow native CPU kernel at batch size 1.

    ``F.conv3d`` on CPU float32 picks the native ``slow_conv3d`` kernel when
    ``N == 1`` and ``N * C * D * H <= 20480`` (a rule tuned for 2-D inputs); for
    the stereo matching net's 3x3x3 convolutions at batch 1 (streaming) that
    kernel is 5-7x slower than oneDNN. This subclass then calls
    ``mkldnn_convolution`` directly: the same convolution and the same
    gradients, and still an ``nn.Conv3d`` module (hooks, ``isinstance`` and
    state dicts unchanged). Only in eager mode: while tracing, scripting,
    compiling or exporting it is exactly ``nn.Conv3d``.
    """

    def _conv_forward(self, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if _use_mkldnn(self, input):
            out: torch.Tensor = torch.ops.aten.mkldnn_convolution(  # torch.ops is untyped
                input, weight, bias, list(self.padding), list(self.stride), list(self.dilation), self.groups
            )
            return out
        plain: torch.Tensor = super()._conv_forward(input, weight, bias)  # untyped in torch
        return plain


def _use_mkldnn(conv: nn.Conv3d, x: torch.Tensor) -> bool:
    """Whether :class:`Conv3d` should bypass PyTorch's kernel choice (see its docstring)."""
    tracing = torch.jit.is_tracing()  # type: ignore[no-untyped-call]  # torch leaves it untyped
    if tracing or torch.jit.is_scripting() or torch.onnx.is_in_onnx_export():
        return False
    compiler = getattr(torch, "compiler", None)
    if compiler is not None and (compiler.is_compiling() or getattr(compiler, "is_exporting", lambda: False)()):
        return False
    if not (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and x.dim() == 5
        and x.shape[0] == 1
        and conv.padding_mode == "zeros"
        and isinstance(conv.padding, tuple)
    ):
        return False
    if x.shape[1] * x.shape[2] * x.shape[3] > 20480:  # PyTorch already uses oneDNN
        return False
    return torch.backends.mkldnn.is_available() and bool(torch.backends.mkldnn.enabled)  # type: ignore[no-untyped-call]
