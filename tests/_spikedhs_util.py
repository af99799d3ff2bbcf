"""Shared helpers for the SpikeDHS tests."""

from __future__ import annotations

import torch

from snnc.models.layers import ConvBN


def calibrate_bn(net: torch.nn.Module, x_seq: torch.Tensor, passes: int = 2) -> torch.nn.Module:
    """Set BatchNorm running statistics from ``x_seq`` (train-mode passes, no grad), then ``eval()``.

    A freshly initialised network in eval mode uses mean 0 / var 1 and is
    nearly silent after a few layers; calibrated statistics keep every layer
    firing, so equality tests compare real spike trains.
    """
    for m in net.modules():
        if isinstance(m, ConvBN) and m.bn is not None:
            m.bn.reset_running_stats()
            m.bn.momentum = None  # cumulative average over the passes
    net.train()
    with torch.no_grad():
        for _ in range(passes):
            net(x_seq)
    return net.eval()
