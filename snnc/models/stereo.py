"""SpikeDHS-Stereo: event stereo with a spiking feature net and a spiking 3-D matching net.

Architecture (NeurIPS 2022 Table 7 and appendix 8/10.2; LEAStereo layout).
With ``F`` = feature filter multiplier, ``n`` = nodes per cell, ``c = n * F``
(24 for the published net) and input ``H x W``::

    feature net (shared by left and right; run as one batch of 2B)
      stem0   spiking conv3x3          in_channels -> c/2        H x W
      stem1   spiking conv3x3 stride s c/2 -> c                  ceil(H/s) x ceil(W/s)   (level 0, s = 3)
      cells   Trellis(feature_cell, feature_path) on (stem0, stem1)
      up      per level above 0: spiking 1x1 conv + nearest x2   -> level 0
      last    spiking 1x1 conv          -> c                     spikes at 1/s resolution
    feature volume   V[:, :, d, y, x] = concat(F_L(x), F_R(x - d)), d = 0..V-1, zero where x < d
                     (V = volume shifts; the paper: V = D)
    matching net (3-D, depth axis = disparity)
      stem0   spiking conv3x3x3        2c -> c'                  (c' = n * matching F)
      stem1   spiking conv3x3x3        c' -> c'                  (level 0: D x h x w)
      cells   Trellis(matching_cell, matching_path) on (stem0, stem1), halving D, h, w per level
      up      per level above 0: spiking 1x1x1 conv + nearest x2
      out     conv3x3x3 c' -> 1 with bias, no neuron: the membrane potential (current) is the
              matching cost ("we cancel the last spike activation", appendix 8)
    cost      trilinear resize of (V, h, w) to (D, H, W): output (B, D, H, W) per step

Geometry (``feature_stride`` s and ``volume_disparities`` V in the genotype). The
paper's layout (s = 3, V = D = 33) puts D shifts of *feature* pixels (3 input
pixels each) against D output bins of ``disp_step`` scaled units (2/7 input
pixel each on MVSEC): on MVSEC-like data (all disparities below 5.3 px, i.e.
below 2 feature pixels) only the first two shifts carry matching evidence and a
small net trained briefly learns monocular cues instead (measured: its output
does not change when the right view is replaced by the left). With V chosen
so that the V shifts span the disparity range (``snnc train --volume-shifts
auto``: ``V = ceil(max_disparity / (7 s)) + 1``) and s = 1, the trilinear
resampling along the disparity axis maps each shift to the bins of the
disparity it measures, as in LEAStereo (D/3 shifts upsampled x3).

Differences from the paper and the authors' LEAStereo-derived code (documented
choices): two stems per subnet as the paper says (LEAStereo has three in the
feature net); the first feature cell therefore takes (stem0, stem1), with stem0
resampled to 1/3 by nearest neighbour. The published genotypes give 0.861 M
parameters (the paper: 0.87 M; LEAStereo's third feature stem would add 5 k).
The feature volume has D shifts at feature resolution (Table 7: ``4C x D x H/3 x W/3``).

Cost convention: **lower cost = better match**. :func:`estimate_disparity`
takes the argmin and a windowed softmin, :func:`subpixel_cross_entropy` uses
``log softmin``. Bin ``d`` stands for disparity ``D(d) = disp_step * d``
(``disp_step = 2``: D = 33 bins cover 0..64 in the data's scaled disparity
units, max 37 on MVSEC).

Modes: fixed window ``model(x_seq)`` with ``x_seq (T, B, 2, in_channels, H, W)``
(training uses 8 stacks, 2 of them burn-in), and streaming ``model.step(x_t,
state)`` one SBT stack per depth frame with the state carried across frames.
``forward`` is a loop of ``step``, so both give identical outputs for the same
frames from the same state.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from snnc.errors import SnncError
from snnc.models.base import SpikingNet, StepContext
from snnc.models.cells import SpikingConv, Trellis, Upsampler, level_size, resize_nearest
from snnc.models.genotype import CellGenotype, SpikeDHSStereoGenotype, with_overrides
from snnc.models.layers import ConvBN
from snnc.neurons import NeuronSpec

__all__ = [
    "auto_volume_shifts",
    "feature_stems",
    "stereo_cost",
    "FeatureNet",
    "MatchingNet",
    "SpikeDHSStereo",
    "build_spikedhs_stereo",
    "cost_volume",
    "cost_conv",
    "narrow_conv3d",
    "upsampled_conv3d",
    "estimate_disparity",
    "subpixel_cross_entropy",
]


def auto_volume_shifts(disparities: int, disp_step: float, scale: float, stride: int) -> int:
    """Volume shifts V that span the disparity range with shifts of one feature pixel.

    ``V = ceil((disparities - 1) * disp_step / (scale * stride)) + 1`` (at least 2), where
    ``scale`` is the data's scaled-disparity units per input pixel (7 for MVSEC) and
    ``stride`` the feature stride. Used by ``snnc train`` and ``snnc search`` for
    ``--volume-shifts auto``.
    """
    largest = (int(disparities) - 1) * float(disp_step)
    return max(2, math.ceil(largest / (float(scale) * int(stride)) - 1e-9) + 1)


def feature_stems(in_channels: int, c: int, stride: int, spec: NeuronSpec) -> tuple[SpikingConv, SpikingConv]:
    """The feature net's two stems (shared by the derived net and the search supernet).

    ``stem0``: spiking conv3x3 ``in_channels -> c/2``; ``stem1``: spiking conv3x3 with
    stride ``stride`` (the feature stride) ``c/2 -> c``.
    """
    half = max(c // 2, 1)
    return SpikingConv(in_channels, half, 3, spec=spec), SpikingConv(half, c, 3, stride=stride, spec=spec)


def stereo_cost(
    x_t: Tensor,
    features: Callable[[Tensor], Tensor],
    matching: Callable[[Tensor, Tensor], Tensor],
    disparities: int,
) -> Tensor:
    """One stereo step shared by the derived net and the supernet: views -> cost ``(B, D, H, W)``.

    Both views run through ``features`` as one batch of 2B; ``matching`` maps the left and
    right feature maps (the concatenation volume and the 3-D net, :func:`cost_volume` or
    :func:`cost_conv`) to a cost potential ``(B, 1, V, h, w)``, which is resampled
    trilinearly to ``(D, H, W)``.
    """
    b, _, _, h, w = x_t.shape
    feats = features(x_t.transpose(0, 1).reshape(2 * b, *x_t.shape[2:]))
    cost = matching(feats[:b], feats[b:])
    return F.interpolate(cost, size=(disparities, h, w), mode="trilinear", align_corners=False)[:, 0]


class FeatureNet(nn.Module):
    """2-D spiking feature net: two stems, trellis cells, upsampling to 1/s resolution (s = stem1 stride)."""

    def __init__(
        self,
        cell: CellGenotype,
        path: Sequence[int],
        filter_multiplier: int,
        in_channels: int,
        mixing: str,
        spec: NeuronSpec,
        stride: int = 3,
    ) -> None:
        super().__init__()
        c = cell.nodes * filter_multiplier
        self.stem0, self.stem1 = feature_stems(in_channels, c, stride, spec)
        self.trellis = Trellis(cell, path, filter_multiplier, max(c // 2, 1), c, mixing, spec)
        self.up = Upsampler(self.trellis.out_level, self.trellis.out_channels, dims=2, spec=spec)
        self.last = SpikingConv(self.up.out_channels, c, 1, spec=spec)
        self.out_channels = c

    def forward(self, x: Tensor, ctx: StepContext) -> Tensor:
        """``(N, in_channels, H, W)`` -> spikes ``(N, c, ceil(H/s), ceil(W/s))`` (s = stem1's stride)."""
        s0 = self.stem0(x, ctx)
        s1 = self.stem1(s0, ctx)
        out = self.trellis(s0, s1, ctx)
        spikes: Tensor = self.last(self.up(out, s1.shape[2:], ctx), ctx)
        return spikes


class MatchingNet(nn.Module):
    """3-D spiking matching net; returns the last layer's membrane potential ``(B, 1, D, h, w)``."""

    def __init__(
        self,
        cell: CellGenotype,
        path: Sequence[int],
        filter_multiplier: int,
        in_channels: int,
        mixing: str,
        spec: NeuronSpec,
    ) -> None:
        super().__init__()
        c = cell.nodes * filter_multiplier
        self.stem0 = SpikingConv(in_channels, c, 3, dims=3, spec=spec)
        self.stem1 = SpikingConv(c, c, 3, dims=3, spec=spec)
        self.trellis = Trellis(cell, path, filter_multiplier, c, c, mixing, spec)
        self.up = Upsampler(self.trellis.out_level, self.trellis.out_channels, dims=3, spec=spec)
        self.out = ConvBN(self.up.out_channels, 1, 3, dims=3, bn=False, bias=True)

    def forward(self, volume: Tensor, ctx: StepContext) -> Tensor:
        """``(B, 2c, D, h, w)`` feature volume -> cost potential ``(B, 1, D, h, w)`` (the literal form)."""
        return self._after_stem0(self.stem0(volume, ctx), ctx)

    def from_views(self, left: Tensor, right: Tensor, shifts: int, ctx: StepContext, literal: bool = False) -> Tensor:
        """Left/right feature maps ``(B, c, h, w)`` -> cost potential ``(B, 1, V, h, w)``.

        By default the volume and ``stem0``'s convolution are one :func:`cost_conv` and the
        output convolution runs on the last up layer's spikes before their nearest x2
        up-sampling (:func:`upsampled_conv3d`); with ``literal`` (or while a hook watches
        those layers, e.g. op counting, which must see the inputs it counts) the volume is
        built and every layer runs as written. Both give the same currents to float rounding.
        """
        conv = self.stem0.conv
        if literal or _hooked(self.stem0) or _hooked(conv) or _hooked(conv.conv):
            return self.forward(cost_volume(left, right, shifts), ctx)
        current = cost_conv(left, right, conv.conv.weight, conv.conv.bias, shifts)
        if conv.bn is not None:
            current = conv.bn(current)
        return self._after_stem0(ctx(self.stem0.neuron, current), ctx, literal=False)

    def _after_stem0(self, s0: Tensor, ctx: StepContext, literal: bool = True) -> Tensor:
        s1 = self.stem1(s0, ctx)
        out = self.trellis(s0, s1, ctx)
        size0 = s1.shape[2:]
        conv = self.out.conv
        if literal or not self.up.layers or _hooked(self.out) or _hooked(conv) or self.out.bn is not None:
            cost: Tensor = self.out(self.up(out, size0, ctx))
            return cost
        # the output conv reads the last up layer's spikes nearest-upsampled x2: run it at their resolution
        level = self.up.from_level
        for i, layer in enumerate(self.up.layers):
            out = layer(out, ctx)
            level -= 1
            if i + 1 < len(self.up.layers):
                out = resize_nearest(out, level_size(size0, level))
        return upsampled_conv3d(out, conv.weight, conv.bias, tuple(size0))


def _hooked(module: nn.Module) -> bool:
    """Whether forward hooks (the module's or global ones) would observe a call of ``module``."""
    from torch.nn.modules import module as module_mod

    return bool(
        module._forward_hooks
        or module._forward_pre_hooks
        or module_mod._global_forward_hooks
        or module_mod._global_forward_pre_hooks
    )


def cost_volume(left: Tensor, right: Tensor, disparities: int) -> Tensor:
    """Concatenation volume ``V[:, :, d, y, x] = concat(left[..., x], right[..., x - d])``.

    Args:
        left, right: feature maps ``(B, C, h, w)``.
        disparities: number of shifts D (``d = 0 .. D-1``).

    Returns:
        ``(B, 2C, D, h, w)``; both halves are zero where ``x < d`` (LEAStereo
        convention), so binary spikes stay binary.
    """
    if left.shape != right.shape or left.dim() != 4:
        raise SnncError(
            f"cost_volume needs two (B, C, h, w) maps of equal shape, got {tuple(left.shape)} and {tuple(right.shape)}"
        )
    w = left.shape[-1]
    padded = F.pad(right, (disparities - 1, 0))
    shifted = torch.stack([padded[..., disparities - 1 - d : disparities - 1 - d + w] for d in range(disparities)], 2)
    cols = torch.arange(w, device=left.device)
    mask = (cols[None, :] >= torch.arange(disparities, device=left.device)[:, None]).to(left.dtype)  # (D, w)
    lefts = left.unsqueeze(2) * mask[:, None, :]
    return torch.cat([lefts, shifted], dim=1)


#: A hook on each arranged weight right before its convolution or product (an exporter's marking, e.g.
#: GraphModule's int8 Q/DQ, the identity on the weights); None: the weights as they are.
WeightHook = Callable[[Tensor], Tensor] | None


def _columns(x: Tensor, weight: Tensor, offset: int, lo: int, hi: int, quant: WeightHook = None) -> Tensor:
    """``out[..., t - lo] = sum_{ky,m} weight[:, :, ky, m] x[:, :, y + ky - k//2, t + m - offset]``, t in [lo, hi).

    A 2-D correlation with zero padding ``k//2`` over rows and a window of output columns of an
    input that is zero outside its own columns (no bias).
    """
    if quant is not None:
        weight = quant(weight)
    w, kw, ph = x.shape[-1], weight.shape[-1], weight.shape[-2] // 2
    a, b = lo - offset, hi - offset + kw - 1  # input columns read
    ca, cb = max(a, 0), min(b, w)
    if cb <= ca:
        return F.conv2d(x.new_zeros(*x.shape[:-1], b - a), weight, None, 1, (ph, 0))
    pad = max(ca - a, b - cb)  # the convolution's own (symmetric) zero padding, then crop
    out = F.conv2d(x[..., ca:cb], weight, None, 1, (ph, pad))
    first = pad - (ca - a)
    return out[..., first : first + hi - lo]


def cost_conv(
    left: Tensor, right: Tensor, weight: Tensor, bias: Tensor | None, shifts: int, quant: WeightHook = None
) -> Tensor:
    """``conv3d(cost_volume(left, right, shifts), weight, bias, padding=k//2)`` without building the volume.

    The exact factorisation of :func:`cost_volume` followed by a stride-1 ``k x k x k``
    convolution (odd ``k``, zero padding ``k//2``): output row ``d`` sums the 2-D
    convolutions of each view with the kernel's depth taps ``kd`` that read volume rows
    ``d' = d + kd - k//2`` inside ``[0, shifts)``. The left view's taps are the same 2-D
    maps for every row (the volume's zeros where ``x' < d'`` only cut the taps near the
    diagonal ``x ~ d``, summed separately over the taps that stay); the right view's taps
    merge into one 2-D convolution of width ``2k - 1`` read at column ``x - d`` (the
    volume's zeros past the last column cut the last ``k//2`` columns, summed separately).
    Same result as the literal form to float rounding, with ``shifts`` times fewer
    multiply-accumulates.

    Args:
        left, right: feature maps ``(B, C, h, w)``.
        weight: ``(O, 2C, k, k, k)`` (left channels first, as the volume).
        bias: ``(O,)`` or ``None``.
        shifts: volume shifts V.
        quant: applied to each 2-D kernel arrangement right before its convolution (:data:`WeightHook`).

    Returns:
        ``(B, O, V, h, w)``.
    """
    b, c, h, w = left.shape
    o, k = weight.shape[0], weight.shape[-1]
    p = k // 2
    if weight.shape != (o, 2 * c, k, k, k) or k % 2 != 1 or right.shape != left.shape:
        raise SnncError(
            f"cost_conv needs views (B, C, h, w) and an odd cubic kernel (O, 2C, k, k, k), "
            f"got {tuple(left.shape)}, {tuple(right.shape)} and {tuple(weight.shape)}"
        )
    wl, wr = weight[:, :c], weight[:, c:]
    # one 2-D map per depth tap and view; the right one over u = x - d' in [p - 2k + 2, w + p)
    per_kd_l = _columns(left, wl.permute(2, 0, 1, 3, 4).reshape(k * o, c, k, k), p, 0, w, quant)
    per_kd_l = per_kd_l.reshape(b, k, o, h, -1)
    u0 = p - 2 * k + 2
    per_kd_r = _columns(right, wr.permute(2, 0, 1, 3, 4).reshape(k * o, c, k, k), p, u0, w + p, quant)
    per_kd_r = per_kd_r.reshape(b, k, o, h, -1)
    zero = left.new_zeros(())
    bias_v = bias.view(1, o, 1, 1) if bias is not None else None
    classes: dict[tuple[int, ...], list[int]] = {}
    for d in range(shifts):
        classes.setdefault(tuple(kd for kd in range(k) if 0 <= d + kd - p < shifts), []).append(d)
    rows: list[Tensor] = [zero] * shifts
    for taps, ds in classes.items():
        d0, d1, n = ds[0], ds[-1], len(ds)
        full = per_kd_l[:, taps[0]]
        right_map = per_kd_r[:, taps[0], ..., k - 1 - taps[0] : k - 1 - taps[0] + w + k - 1]
        for kd in taps[1:]:
            full = full + per_kd_l[:, kd]
            right_map = right_map + per_kd_r[:, kd, ..., k - 1 - kd : k - 1 - kd + w + k - 1]
        if bias_v is not None:
            full = full + bias_v
        # left taps near the diagonal: band[..., r, j + k - 1] sums the taps kd - kx <= j at x = d + j
        band = edge = None
        if k > 1:
            kept = wl[:, :, list(taps)]  # (O, C, |K|, k, k)
            lag = torch.tensor(taps, device=wl.device)[:, None] - torch.arange(k, device=wl.device)[None, :]
            kernels = [(kept * (lag <= j).to(wl.dtype)[:, None, :]).sum(2) for j in range(-(k - 1), k - 1)]
            maps = _columns(left, torch.cat(kernels), p, d0 - (k - 1), d1 + k - 1, quant)
            maps = maps.reshape(b, 2 * k - 2, o, h, -1)
            band = torch.stack([maps[:, jj, ..., jj : jj + n] for jj in range(2 * k - 2)], -1)
            if bias_v is not None:
                band = band + bias_v.unsqueeze(-1)
            # right taps past the last column: edge[..., r, i - 1] sums the taps kx <= k - 1 - i, merged
            # over kd into one kernel of width 2k - 1 read at v = x - d (as the right map)
            merged = []
            for i in range(1, p + 1):
                cols = []
                for m in range(2 * k - 1):
                    parts = [wr[:, :, kd, :, m + kd - (k - 1)] for kd in taps if 0 <= m + kd - (k - 1) <= k - 1 - i]
                    cols.append(torch.stack(parts).sum(0) if parts else wr.new_zeros(o, c, k))
                merged.append(torch.stack(cols, -1))
            lo = w - p - d1
            ends = _columns(right, torch.cat(merged), k - 1, lo, w - d0, quant).reshape(b, p, o, h, -1)
            edge = torch.stack([ends[:, i - 1, ..., i - 1 : i - 1 + n].flip(-1) for i in range(1, p + 1)], -1)
        for r, d in enumerate(ds):
            rows[d] = _cost_row(d, r, w, k, full, right_map, band, edge, bias_v, (b, o, h))
    return torch.stack(rows, 2)


def _taps(x: Tensor, weight: Tensor, quant: WeightHook = None) -> Tensor:
    """Every kernel tap's 1x1x1 projection: ``(B, C, *s) -> (B, k**3, O, *s)`` (one matrix product)."""
    o, c, k = weight.shape[0], weight.shape[1], weight.shape[-1]
    per_tap = weight.permute(2, 3, 4, 0, 1).reshape(k**3 * o, c)
    if quant is not None:
        per_tap = quant(per_tap)
    return torch.matmul(per_tap, x.reshape(x.shape[0], c, -1)).view(x.shape[0], k**3, o, *x.shape[2:])


def _tap_sum(x: Tensor, tap_dim: int, axis: int, reads: Sequence[tuple[int, bool]]) -> Tensor:
    """``sum_k read_k(x.select(tap_dim, k))``: one kernel axis of a tap projection summed into shifted maps.

    Along the spatial ``axis`` (negative) of length ``m``, read ``(o, cut)`` of tap ``k`` is the map
    ``x_k[j + o]`` (zero outside ``[0, m)``), and with ``cut`` zero at ``j = m - 1`` as well. Every other
    dimension (the other axes' taps) is carried along, so a 3-D kernel's ``k**3`` shifted sums run as three
    of these, one axis after the other: ``3k`` slices and ``3(k - 1)`` sums in place of ``k**3`` of each.
    """
    m, r = x.shape[axis], max(abs(o) for o, _ in reads)
    padded = F.pad(x, [0, 0] * (-axis - 1) + [r, r]) if r else x
    acc: Tensor | None = None
    for k, (o, cut) in enumerate(reads):
        tap = padded.select(tap_dim, k)  # tap_dim >= 0 and axis < 0: the axis keeps its index
        piece = (
            F.pad(tap.narrow(axis, r + o, m - 1), [0, 0] * (-axis - 1) + [0, 1]) if cut else tap.narrow(axis, r + o, m)
        )
        acc = piece if acc is None else acc + piece
    assert acc is not None
    return acc


def narrow_conv3d(x: Tensor, weight: Tensor, bias: Tensor | None, quant: WeightHook = None) -> Tensor:
    """``conv3d(x, weight, bias, padding=k//2)`` for few output channels (the cost layer's 24 -> 1).

    One matrix product gives every tap's projection (``k**3 * O`` rows: a well-shaped GEMM
    where the direct convolution of 1 output channel is not), then the shifted maps are
    summed one kernel axis at a time (:func:`_tap_sum`). Same result to float rounding.
    ``quant``: :data:`WeightHook` on the tap matrix.
    """
    k = weight.shape[-1]
    p = k // 2
    y = _taps(x, weight, quant).view(x.shape[0], k, k, k, weight.shape[0], *x.shape[2:])
    reads = tuple((kk - p, False) for kk in range(k))
    for axis in (2, 1, 0):  # W, H, D: the kernel axis of spatial axis a is dimension 1 + a
        y = _tap_sum(y, 1 + axis, axis - 3, reads)
    return y if bias is None else y + bias.view(1, -1, 1, 1, 1)


def upsampled_conv3d(
    s: Tensor, weight: Tensor, bias: Tensor | None, size: Sequence[int], quant: WeightHook = None
) -> Tensor:
    """``conv3d(resize_nearest(s, size), weight, bias, padding=1)`` for a 3x3x3 kernel, without up-sampling.

    ``size[i]`` is ``2 m_i`` or ``2 m_i - 1`` for ``s`` of spatial size ``m`` (level 0 from
    level 1 of a trellis): nearest resampling then repeats every element twice (the last
    once for an odd size). Each output parity class is a small convolution of ``s`` itself:
    along an axis, even outputs read taps ``(s[j-1], s[j], s[j])`` and odd ones
    ``(s[j], s[j], s[j+1])``, where the second copy of the last element is zero for an odd
    size (it only reaches the even output ``2m - 2``; the odd output ``2m - 1`` is cut). The
    taps are projected at ``s``'s resolution (:func:`_taps`, 1/8 of the positions), summed one
    kernel axis and parity at a time (:func:`_tap_sum`: 42 slices for 8 x 27 shifted maps) and
    interleaved. Same result to float rounding; exact on integer-valued sums below ``2**24``.
    ``quant``: :data:`WeightHook` on the tap matrix.
    """
    size = tuple(int(n) for n in size)
    m = tuple(s.shape[2:])
    if (
        weight.shape[-3:] != (3, 3, 3)
        or len(size) != 3
        or any(n not in (2 * i - 1, 2 * i) for n, i in zip(size, m, strict=True))
    ):
        raise SnncError(
            f"upsampled_conv3d needs a 3x3x3 kernel and size 2m or 2m-1 of {m}, got {tuple(weight.shape)}, {size}"
        )
    b, o = s.shape[0], weight.shape[0]
    parts: dict[tuple[int, ...], Tensor] = {(): _taps(s, weight, quant).view(b, 3, 3, 3, o, *m)}
    for axis in (2, 1, 0):  # W, H, D: per output parity q along the axis, (offset, cut) of taps 0, 1, 2
        odd = size[axis] % 2 == 1
        reads = {0: ((-1, False), (0, False), (0, odd)), 1: ((0, False), (0, False), (1, False))}
        parts = {(q, *key): _tap_sum(v, 1 + axis, axis - 3, reads[q]) for key, v in parts.items() for q in (0, 1)}
    phases = [parts[key] for key in itertools.product((0, 1), repeat=3)]  # (pd, py, px), px fastest
    out = torch.stack(phases, 2).view(b, o, 2, 2, 2, *m).permute(0, 1, 5, 2, 6, 3, 7, 4)
    out = out.reshape(b, o, 2 * m[0], 2 * m[1], 2 * m[2])[:, :, : size[0], : size[1], : size[2]]
    return out if bias is None else out + bias.view(1, o, 1, 1, 1)


def _cost_row(
    d: int,
    r: int,
    w: int,
    k: int,
    full: Tensor,
    right_map: Tensor,
    band: Tensor | None,
    edge: Tensor | None,
    bias_v: Tensor | None,
    bohw: tuple[int, int, int],
) -> Tensor:
    """Row ``d`` (index ``r`` in its tap class) of :func:`cost_conv` from the class's maps."""
    p = k // 2
    start = min(max(0, d - (k - 1)), w)
    diag_end, edge_start = min(w, d + k - 1), max(start, w - p)
    cuts = sorted({start, max(start, diag_end), edge_start, w})
    pieces: list[Tensor] = []
    if start > 0:
        b, o, h = bohw
        prefix = bias_v if bias_v is not None else full.new_zeros(1, o, 1, 1)
        pieces.append(prefix.expand(b, o, h, start))
    for a, c in itertools.pairwise(cuts):
        if c <= a:
            continue
        if a < diag_end:
            assert band is not None  # k > 1 whenever a row has diagonal columns
            lp = band[..., r, a - d + k - 1 : c - d + k - 1]
        else:
            lp = full[..., a:c]
        if a < w - p:
            rp = right_map[..., a - d + k - 1 : c - d + k - 1]
        else:
            assert edge is not None  # k > 1 whenever a row has cut last columns
            rp = edge[..., r, a - (w - p) : c - (w - p)]
        pieces.append(lp + rp)
    return torch.cat(pieces, -1) if len(pieces) > 1 else pieces[0]


class SpikeDHSStereo(SpikingNet):
    """SpikeDHS-Stereo built from a :class:`SpikeDHSStereoGenotype` (see module docstring).

    One step: ``x_t (B, 2, in_channels, H, W)`` (index 0 = left camera) ->
    cost ``(B, D, H, W)``, lower = better match.

    ``literal_matching`` (default False): build the feature volume and run
    ``matching.stem0``'s 3-D convolution on it as written, instead of the exact
    factorisation :func:`cost_conv` (for proofs of equality; the export graph follows it).
    """

    literal_matching: bool = False

    def __init__(self, genotype: SpikeDHSStereoGenotype) -> None:
        super().__init__()
        g = genotype
        self.genotype = g
        self.disparities = g.disparities
        self.volume_shifts = g.volume_shifts
        self.disp_step = g.disp_step
        self.feature = FeatureNet(
            g.feature_cell,
            g.feature_path,
            g.feature_filter_multiplier,
            g.in_channels,
            g.mixing,
            g.neuron,
            stride=g.feature_stride,
        )
        self.matching = MatchingNet(
            g.matching_cell,
            g.matching_path,
            g.matching_filter_multiplier,
            2 * self.feature.out_channels,
            g.mixing,
            g.neuron,
        )
        self.set_neuron_specs(g.neuron_layers)

    def check_input(self, x_t: Tensor) -> None:
        """``x_t`` must be ``(B, 2, in_channels, H, W)``."""
        c = self.genotype.in_channels
        if x_t.dim() != 5 or x_t.shape[1] != 2 or x_t.shape[2] != c:
            raise SnncError(
                f"SpikeDHS-Stereo expects one step shaped (B, 2, {c}, H, W) "
                f"(left/right SBT stacks), got {tuple(x_t.shape)}"
            )

    def step_with(self, x_t: Tensor, ctx: StepContext) -> Tensor:
        """Matching cost ``(B, D, H, W)`` of one step."""
        shifts = self.volume_shifts

        def matching(left: Tensor, right: Tensor) -> Tensor:
            return self.matching.from_views(left, right, shifts, ctx, literal=self.literal_matching)

        return stereo_cost(x_t, lambda x: self.feature(x, ctx), matching, self.disparities)

    def estimate(self, cost: Tensor, delta: int = 2) -> Tensor:
        """:func:`estimate_disparity` with this network's ``disp_step``."""
        return estimate_disparity(cost, delta=delta, disp_step=self.disp_step)


def build_spikedhs_stereo(genotype: SpikeDHSStereoGenotype, **overrides: Any) -> SpikeDHSStereo:
    """Build the SpikeDHS-Stereo network of ``genotype`` (``overrides`` replace genotype fields first)."""
    return SpikeDHSStereo(with_overrides(genotype, overrides))


# --------------------------------------------------------------------------- estimator and loss
def _check_cost(cost: Tensor) -> None:
    if cost.dim() < 3:
        raise SnncError(f"cost must be shaped (..., D, H, W), got {tuple(cost.shape)}")


def estimate_disparity(cost: Tensor, delta: int = 2, disp_step: float = 2.0, *, windowed: bool = True) -> Tensor:
    """Sub-pixel MAP estimator (NeurIPS eq. 5, Tulyakov et al. PDS) on a cost that is *minimised*.

    ``d_hat = argmin_d C_d``; over the window ``W = {d : |d - d_hat| < delta}``
    (3 bins for ``delta = 2``) ``D_hat = sum_{d in W} D(d) softmin_W(C)_d`` with
    ``D(d) = disp_step * d`` and ``softmin_W`` normalised over the window only.

    Args:
        cost: ``(..., D, H, W)``.
        delta: estimator support (>= 1).
        disp_step: disparity per bin.
        windowed: on a CPU float32/float64 cost that needs no gradient, compute on the window's bins only
            (:func:`_estimate_windowed`, the same value bit for bit, about 2x faster); False: always the
            full-size form written above (the literal arithmetic, for proofs).

    Returns:
        ``(..., H, W)`` disparity in ``disp_step`` units (the data's scaled disparity).
    """
    _check_cost(cost)
    if delta < 1:
        raise SnncError(f"estimator support delta must be >= 1, got {delta}")
    if (
        windowed
        and cost.device.type == "cpu"
        and cost.dtype in (torch.float32, torch.float64)
        and not cost.requires_grad
    ):
        fast = _estimate_windowed(cost, delta, disp_step)
        if fast is not None:
            return fast
    d = torch.arange(cost.shape[-3], device=cost.device, dtype=cost.dtype).view(-1, 1, 1)
    d_hat = cost.argmin(dim=-3, keepdim=True).to(cost.dtype)
    window = (d - d_hat).abs() < delta
    weights = torch.softmax((-cost).masked_fill(~window, float("-inf")), dim=-3)
    return (weights * d).sum(dim=-3) * disp_step


def _first_argmin(cost: Tensor) -> Tensor | None:
    """``cost.argmin(dim=-3)`` (the first index of the minimum) of a CPU cost, or None when a column's minimum is
    not finite (NaN, which ``amin`` propagates, or -inf).

    From ``amin`` (exact: it returns one of the values) and the first bin equal to it, the largest of
    ``(cost == min) * (n - d)`` over ``d`` (uint8 for ``n <= 255``), in numpy, whose broadcast comparison is
    about 3x faster than PyTorch's: about 3x faster than ``cost.min(dim=-3)``'s indices over the strided
    disparity axis on one CPU thread (and 10x faster than ``argmin``).
    """
    n = cost.shape[-3]
    best = cost.amin(dim=-3, keepdim=True)
    if not bool(np.isfinite(best.numpy()).all()):  # numpy's test: 15x faster than torch.isfinite on the CPU
        return None
    equal = cost.numpy() == best.numpy()
    if n <= 255:  # uint8 x uint8 stays uint8
        first = (equal.view(np.uint8) * np.arange(n, 0, -1, dtype=np.uint8).reshape(-1, 1, 1)).max(axis=-3)
    else:
        first = (equal * np.arange(n, 0, -1, dtype=np.int64).reshape(-1, 1, 1)).max(axis=-3)
    return torch.from_numpy(n - first.astype(np.int64))


def _estimate_windowed(cost: Tensor, delta: int, disp_step: float) -> Tensor | None:
    """:func:`estimate_disparity`'s arithmetic on the ``2 delta - 1`` bins around the minimum only (CPU cost).

    The same value bit for bit: the softmax over the window (the bins outside it are ``-inf`` in the full
    form, whose ``exp`` is exactly 0, so its max, sums and quotients are those of the window), and the final
    sum over ``D`` is the very same reduction over a tensor equal to the full form's ``weights * d`` (zeros
    outside the window, ``0 * d`` there). It skips the slow full-size argmin, the mask, softmax and product, about
    two thirds of the estimator's time at 33 x 260 x 346 on one CPU thread. The window's bins are read and
    written by flat position in numpy (``take``; ``np.add.at``, which adds in order like ``scatter_add_``),
    2-3x faster than PyTorch's ``gather`` / ``scatter_add_`` along the strided axis; the softmax and the sum
    stay PyTorch's, on the same layouts. None (the caller takes the full form) when a column's minimum is not
    finite.
    """
    n, h, w = cost.shape[-3:]
    idx = _first_argmin(cost)
    if idx is None:
        return None
    window = idx.numpy()[..., None, :, :] + np.arange(1 - delta, delta).reshape(-1, 1, 1)  # (..., 2 delta - 1, H, W)
    inside = (window >= 0) & (window < n)  # some bins fall outside [0, n) at the ends
    # flat position of each (clamped) window bin in the contiguous cost: ((b * n + bin) * H + y) * W + x
    flat = np.clip(window, 0, n - 1) * (h * w) + np.arange(h * w).reshape(h, w)
    lead = tuple(idx.shape[:-2])
    if lead:
        flat += (np.arange(math.prod(lead)) * (n * h * w)).reshape(*lead, 1, 1, 1)
    values = np.ascontiguousarray(cost.numpy()).reshape(-1)
    picked = torch.from_numpy(values.take(flat))
    weights = torch.softmax((-picked).masked_fill(torch.from_numpy(~inside), float("-inf")), dim=-3)
    product = _zeros_taken(tuple(cost.shape), values.dtype)
    try:
        # adds weights * d (exactly 0 at a clamped bin outside the range) to zeros: each bin holds its value exactly
        np.add.at(product.reshape(-1), flat.reshape(-1), (weights.numpy() * window.astype(values.dtype)).reshape(-1))
        return torch.from_numpy(product).sum(dim=-3) * disp_step  # a new tensor: nothing refers to the buffer
    finally:
        product.reshape(-1)[flat.reshape(-1)] = 0  # the only entries written: all zeros again
        _ZEROS.buffer = product


#: Per thread, :func:`_estimate_windowed`'s full-size zeros of the last cost shape, kept between calls: a fresh
#: 12 MB array per frame (33 x 260 x 346 float32) costs its page faults again on every frame, more than the
#: estimator's arithmetic on a busy machine.
_ZEROS = threading.local()


def _zeros_taken(shape: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray[Any, Any]:
    """An all-zero array of ``shape`` / ``dtype``: the thread's kept one (taken out until the caller puts it back,
    zeroed), else a new one."""
    buffer = getattr(_ZEROS, "buffer", None)
    _ZEROS.buffer = None
    if buffer is None or buffer.shape != shape or buffer.dtype != dtype:
        buffer = np.zeros(shape, dtype=dtype)
    return buffer


def subpixel_cross_entropy(
    cost: Tensor, gt_disp: Tensor, valid: Tensor, b: float = 2.0, disp_step: float = 2.0
) -> Tensor:
    """Sub-pixel cross-entropy (NeurIPS eq. 6) with a discretised Laplace target.

    ``L = mean over valid pixels of  -sum_d p_d log softmin_d(C)``, where
    ``p_d = exp(-|D(d) - gt| / b) / Z`` (normalised over the D bins) and
    ``D(d) = disp_step * d``.

    Args:
        cost: ``(..., D, H, W)``, lower = better.
        gt_disp: ``(..., H, W)`` ground-truth disparity (same units as ``D(d)``).
        valid: ``(..., H, W)`` bool mask of pixels with ground truth.
        b: Laplace diversity (2).
        disp_step: disparity per bin.

    Returns:
        Scalar loss (0 with a gradient path if no pixel is valid).
    """
    _check_cost(cost)
    expected = cost.shape[:-3] + cost.shape[-2:]
    if gt_disp.shape != expected or valid.shape != expected:
        raise SnncError(
            f"gt_disp and valid must be shaped {tuple(expected)} for cost {tuple(cost.shape)}, "
            f"got {tuple(gt_disp.shape)} and {tuple(valid.shape)}"
        )
    if b <= 0:
        raise SnncError(f"Laplace diversity b must be positive, got {b}")
    d = torch.arange(cost.shape[-3], device=cost.device, dtype=cost.dtype).view(-1, 1, 1) * disp_step
    gt = torch.nan_to_num(gt_disp.to(cost.dtype)).unsqueeze(-3)
    target = torch.softmax(-(d - gt).abs() / b, dim=-3)
    log_p = torch.log_softmax(-cost, dim=-3)
    ce = -(target * log_p).sum(dim=-3)
    valid = valid.to(torch.bool)
    if not bool(valid.any()):
        return (cost * 0).sum()
    return ce[valid].mean()
