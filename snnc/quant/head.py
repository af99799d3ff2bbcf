"""The float head after an integer graph, run on the host the same way for every backend.

An integer graph's output is integer (classification scores, or the stereo
matching cost before resampling). :func:`apply_head` scales it by
``output_scale`` and, for stereo, applies the trilinear resize to the full
disparity range and takes channel 0: the two ops that the float graph ends
with, moved here so that torch, onnxruntime and Lava feed identical integers
into one piece of code and their disparity maps are identical bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch.nn.functional as F
from torch import Tensor

__all__ = ["apply_head"]


def apply_head(int8_meta: Mapping[str, Any], y: Tensor) -> Tensor:
    """Float output of an integer graph's output ``y`` (``graph.meta["int8"]``)."""
    out = y.float() * float(int8_meta["output_scale"])
    head = int8_meta.get("head")
    if head:
        out = F.interpolate(out, size=tuple(head["size"]), mode=str(head["mode"]), align_corners=False)
        out = out[:, int(head.get("index", 0))]
    return out
