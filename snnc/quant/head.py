"""The float head after an integer graph, run on the host the same way for every backend.

An integer graph's output is integer (classification scores, or the stereo
matching cost before resampling). :func:`apply_head` scales it by
``output_scale`` and, for stereo, applies the trilinear resize to the full
disparity range and takes channel 0: the two ops that the float graph ends
with, moved here so that torch, onnxruntime and Lava feed identical integers
into one piece of code and their disparity maps are identical bit for bit.

When the resize keeps the disparity axis (the published net's cost layer
already has all 33 bins, ``(1, 1, 33, 87, 116) -> (33, 260, 346)``), the
trilinear resize is computed as a bilinear resize of each bin: along an axis of
unchanged size, ``align_corners=False`` puts every output on a source sample
(weights exactly 1 and 0), so trilinear is ``1 * bilinear + 0 * neighbour``,
the same float32 values on a finite input when both run PyTorch's generic
resampling kernel (output ``H + W`` above 128 on the CPU: :data:`_SEPARABLE_MAX_HW`),
in a quarter of the time at full resolution (``tests/test_quant_head.py`` checks
the equality against ``F.interpolate``'s trilinear). ``literal=True`` always runs
the trilinear form.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["apply_head"]


#: PyTorch's CPU bilinear resize takes its separable vectorised kernel (other roundings) when the output's
#: ``H + W`` is at most this, or on a channels-last input of more than 3 channels; otherwise the generic
#: N-d kernel that the trilinear resize of a 1-channel input always takes (``UpSampleKernel.cpp``,
#: ``_use_vectorized_kernel_cond_2d``). The shortcut is taken on the generic kernel only.
_SEPARABLE_MAX_HW = 128


def _resize(out: Tensor, size: tuple[int, ...], mode: str, literal: bool) -> Tensor:
    """``F.interpolate(out, size, mode, align_corners=False)``; a bilinear resize per bin when that is the same."""
    if literal or mode != "trilinear" or out.dim() != 5 or out.shape[1] != 1 or out.device.type != "cpu":
        return F.interpolate(out, size=size, mode=mode, align_corners=False)
    planes = out[:, 0]  # (B, D, h, w): the bins as channels
    generic = size[1] + size[2] > _SEPARABLE_MAX_HW and (
        planes.shape[1] <= 3 or not planes.is_contiguous(memory_format=torch.channels_last)
    )
    # up-sampling only (the head's use): a down-sampling case rounded differently in a 1-thread CI worker
    grows = size[1] >= planes.shape[2] and size[2] >= planes.shape[3]
    # finite input (numpy's test: 15x faster than torch.isfinite on the CPU)
    if size[0] == out.shape[2] and generic and grows and bool(np.isfinite(out.detach().numpy()).all()):
        return F.interpolate(planes, size=size[1:], mode="bilinear", align_corners=False).unsqueeze(1)
    return F.interpolate(out, size=size, mode=mode, align_corners=False)


def apply_head(int8_meta: Mapping[str, Any], y: Tensor, *, literal: bool = False) -> Tensor:
    """Float output of an integer graph's output ``y`` (``graph.meta["int8"]``).

    ``literal``: resize with the trilinear ``F.interpolate`` even where a bilinear resize per disparity bin
    gives the same values (module docstring; for proofs).
    """
    out = y.float() * float(int8_meta["output_scale"])
    head = int8_meta.get("head")
    if head:
        out = _resize(out, tuple(int(s) for s in head["size"]), str(head["mode"]), literal)
        out = out[:, int(head.get("index", 0))]
    return out
