"""The four small networks the NIR interop checks export (one per family), with inputs.

:func:`interop_cases` builds, from fixed seeds:

* ``digits``: a SpikeDHS classifier for sklearn's 1x8x8 digits (direct coding: the
  image at every step), BatchNorm calibrated on digits images;
* ``sequential``: the ``sequential-dvs`` preset at 16x16 (binary event frames);
* ``snasnet``: a SNASNet cell pair with backward (t-1) edges, 3x8x8 inputs;
* ``stereo-front``: the NIR-expressible front of a SpikeDHS stereo net (feature net,
  both cameras in the batch), as :func:`snnc.export.partition.split_graph` cuts it.

Each network is folded (``fold_bn``) after its BatchNorm layers got random affine
parameters and running statistics from a few train-mode passes over its own inputs,
so every layer fires. ``tests/test_nir_interop.py`` and ``benchmarks/interop_matrix.py``
export them with snnc's NIR writer and run them through other libraries' importers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from snnc.export.graph import Graph
from snnc.export.lower import graph_inputs, lower

__all__ = ["InteropCase", "CASES", "interop_cases", "interop_case"]

#: Case names, in table order.
CASES: tuple[str, ...] = ("digits", "sequential", "snasnet", "stereo-front")


@dataclass
class InteropCase:
    """One exported network and its input.

    Attributes:
        name: one of :data:`CASES`.
        family: the snnc family.
        graph: the export graph written to NIR (the partition front for ``stereo-front``).
        inputs: the graph input ``x`` at every step, ``(B, ...)`` each.
        classify: whether the output is a class score vector (prediction agreement applies).
        model: the folded network (``None`` for the stereo front, which is part of one).
    """

    name: str
    family: str
    graph: Graph
    inputs: list[Tensor]
    classify: bool
    model: Any


def _calibrate(net: torch.nn.Module, x_seq: Tensor, seed: int) -> torch.nn.Module:
    """Random BN affine + running statistics from two train-mode passes; returns the folded eval net."""
    from snnc.models.fold import fold_bn
    from snnc.models.layers import ConvBN

    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        bn = m.bn if isinstance(m, ConvBN) else None
        if isinstance(bn, (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
            with torch.no_grad():
                bn.weight.copy_(0.6 + 0.8 * torch.rand(bn.weight.shape, generator=g))
                bn.bias.copy_(0.1 * torch.randn(bn.bias.shape, generator=g))
            bn.reset_running_stats()
            bn.momentum = None
    net.train()
    with torch.no_grad():
        for _ in range(2):
            net(x_seq)
    return fold_bn(net.eval()).eval()


def _genotype(preset: str, **overrides: Any) -> Any:
    from snnc.models.genotype import load_genotype, with_overrides

    return with_overrides(load_genotype(preset), overrides)


def interop_case(name: str, batch: int = 2, steps: int = 8, seed: int = 0) -> InteropCase:
    """Build case ``name`` (:data:`CASES`) with ``batch`` samples over ``steps`` steps.

    Deterministic in ``seed``; the caller's global torch RNG is left as it was.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _build_case(name, batch, steps, seed)


def _build_case(name: str, batch: int, steps: int, seed: int) -> InteropCase:
    from snnc.models.build import build_model

    if name == "digits":
        from snnc.data.images import digits_arrays

        images, _ = digits_arrays()
        net = build_model(_genotype("spikedhs-cla", filter_multiplier=2, in_channels=1))
        rng = np.random.default_rng(seed)
        x = torch.as_tensor(images[rng.choice(len(images), batch, replace=False)])
        calib = torch.as_tensor(images[:16])
        folded = _calibrate(net, calib.expand(steps, *calib.shape), seed + 1)
        x_seq = x.expand(steps, *x.shape).contiguous()
        shape = (batch, 1, 8, 8)
        return InteropCase(name, net.genotype.family, lower(folded, shape), list(x_seq), True, folded)
    if name == "sequential":
        net = build_model(_genotype("sequential-dvs", image_size=16))
        x_seq = (torch.rand(steps, batch, 2, 16, 16) < 0.3).float()
        folded = _calibrate(net, x_seq, seed + 1)
        return InteropCase(name, net.genotype.family, lower(folded, (batch, 2, 16, 16)), list(x_seq), True, folded)
    if name == "snasnet":
        net = build_model(_genotype("snasnet-cifar10", channels=4, image_size=8, fc_hidden=16))
        x_seq = torch.rand(steps, batch, 3, 8, 8)
        folded = _calibrate(net, x_seq, seed + 1)
        return InteropCase(name, net.genotype.family, lower(folded, (batch, 3, 8, 8)), list(x_seq), True, folded)
    if name == "stereo-front":
        from snnc.export.partition import split_graph

        net = build_model(
            _genotype(
                "spikedhs-stereo",
                feature_filter_multiplier=2,
                matching_filter_multiplier=2,
                disparities=4,
                feature_path=(0, 0),
            )
        )
        x_seq = torch.randint(-1, 2, (steps, batch, 2, 5, 24, 36)).float()
        folded = _calibrate(net, x_seq, seed + 1)
        front = split_graph(lower(folded, (batch, 2, 5, 24, 36)))[0]
        family = net.genotype.family  # a stereo-input family: both cameras go into the graph's batch
        inputs = [graph_inputs(family, x_t) for x_t in x_seq]
        return InteropCase(name, family, front, [i["x"] for i in inputs], False, None)
    raise ValueError(f"unknown interop case {name!r} (known: {', '.join(CASES)})")


def interop_cases(batch: int = 2, steps: int = 8, seed: int = 0) -> list[InteropCase]:
    """All of :data:`CASES`."""
    return [interop_case(n, batch, steps, seed) for n in CASES]
