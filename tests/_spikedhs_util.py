"""Shared helpers for the SpikeDHS tests."""

from __future__ import annotations

import pytest
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


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """Run a test module with one intra-op thread: the tiny test nets are dominated by
    thread synchronisation on a shared 2-core machine (10-100x slower with 2 threads)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
