"""Shared helpers for the export tests: small networks with trained BatchNorm, spike recording."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from snnc.models.build import build_model
from snnc.models.fold import fold_bn
from snnc.models.genotype import load_genotype, with_overrides
from snnc.models.layers import ConvBN

#: Small versions of every classification preset: (overrides, one-step input shape).
SMALL_CLASSIFIERS: dict[str, tuple[dict[str, Any], tuple[int, ...]]] = {
    "spikedhs-cla": ({"filter_multiplier": 2}, (1, 3, 16, 16)),
    "snasnet-cifar10": ({"channels": 4, "image_size": 8, "fc_hidden": 16}, (2, 3, 8, 8)),
    "snasnet-cifar100": ({"channels": 4, "image_size": 8, "fc_hidden": 16}, (1, 3, 8, 8)),
    "sequential-dvs": ({"image_size": 16}, (2, 2, 16, 16)),
}
#: Small stereo net: feature path [0, 0] keeps the whole feature net NIR-expressible.
SMALL_STEREO = {"feature_filter_multiplier": 2, "matching_filter_multiplier": 2, "disparities": 4}


def small_genotype(preset: str, **overrides: Any) -> Any:
    """The preset's genotype with ``overrides`` applied (SNASNet / sequential: dataclass replace)."""
    from dataclasses import replace

    genotype = load_genotype(preset)
    if genotype.family in ("snasnet", "sequential"):
        return replace(genotype, **overrides)
    return with_overrides(genotype, overrides)


def write_genotype(genotype: Any, path: Path) -> Path:
    """Save a genotype as JSON (a CLI SOURCE)."""
    path.write_text(json.dumps(genotype.to_dict()), encoding="utf-8")
    return path


def train_bn(net: torch.nn.Module, x_seq: torch.Tensor, seed: int = 1) -> torch.nn.Module:
    """Random BN affine parameters + running statistics from a few train-mode passes; returns ``net.eval()``.

    Folding is then far from the identity, and calibrated statistics keep every layer firing.
    """
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, ConvBN) and m.bn is not None:
            with torch.no_grad():
                m.bn.weight.copy_(0.6 + 0.8 * torch.rand(m.bn.weight.shape, generator=g))
                m.bn.bias.copy_(0.1 * torch.randn(m.bn.bias.shape, generator=g))
            m.bn.reset_running_stats()
            m.bn.momentum = None
    net.train()
    with torch.no_grad():
        for _ in range(2):
            net(x_seq)
    return net.eval()


def folded_small(preset: str, shape: tuple[int, ...], steps: int, seed: int = 0, **overrides: Any):
    """``(folded net, x_seq)``: a small trained-BN network of ``preset`` and its input sequence."""
    torch.manual_seed(seed)
    net = build_model(small_genotype(preset, **overrides))
    if net.genotype.family == "spikedhs-stereo":
        x = torch.randint(-1, 2, (steps, *shape)).float()
    elif net.genotype.family == "sequential":
        x = (torch.rand(steps, *shape) < 0.3).float()
    else:
        x = torch.rand(steps, *shape)
    train_bn(net, x[: min(steps, 4)])
    return fold_bn(net).eval(), x


def record_spikes(net: torch.nn.Module, x_seq: torch.Tensor) -> tuple[torch.Tensor, dict[str, list[torch.Tensor]]]:
    """Outputs and, per neuron layer, its spikes at every step."""
    spikes: dict[str, list[torch.Tensor]] = {name: [] for name, _ in net.neurons()}
    hooks = [
        m.register_forward_hook(lambda _m, _i, out, name=name: spikes[name].append(out[0].clone()))
        for name, m in net.neurons()
    ]
    try:
        with torch.no_grad():
            y = net(x_seq)
    finally:
        for h in hooks:
            h.remove()
    return y, spikes
