"""SpikeDHS-CLA: the searched spiking classification network (NeurIPS 2022, Fig. 2a, Tables 4-5).

Layers (state order = this order)::

    stem        spiking conv3x3, in_channels -> nodes * F       (direct coding: the image every step)
    cells.i     SpikingCell at level path[i], node width F * 2**level
    head        global average pool of the last cell's spikes -> Linear -> logits

With the published 3-node cell, ``path = [0,0,1,1,1,2,2,2]`` and ``F = 48`` the
feature maps are exactly Table 5 (stem 144x32x32, cells 144/288/576 channels
at 32/16/8) and the network has 14.29 M parameters (CIFAR-10 head; the
paper's "n3, 14M"). The auxiliary classifier used during training (weight 0.4
at cell 5) is not part of the deployed network and is not built here.

Output per step: logits ``(B, num_classes)``; the prediction is the mean over T.
The classifier sees the pooled spike counts (a linear map of spikes), so the
head is multiplication-free up to the final scaling; it carries no BatchNorm,
which keeps :func:`snnc.models.fold.fold_bn` complete.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from snnc.errors import SnncError
from snnc.models.base import SpikingNet, StepContext
from snnc.models.cells import SpikingConv, Trellis
from snnc.models.genotype import SpikeDHSClassifierGenotype, with_overrides

__all__ = ["SpikeDHSClassifier", "build_spikedhs_classifier"]


class SpikeDHSClassifier(SpikingNet):
    """SpikeDHS-CLA built from a :class:`SpikeDHSClassifierGenotype` (see module docstring)."""

    def __init__(self, genotype: SpikeDHSClassifierGenotype) -> None:
        super().__init__()
        self.genotype = genotype
        g = genotype
        c_stem = g.cell.nodes * g.filter_multiplier
        self.stem = SpikingConv(g.in_channels, c_stem, 3, spec=g.neuron)
        self.trellis = Trellis(g.cell, g.path, g.filter_multiplier, c_stem, c_stem, g.mixing, g.neuron)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(self.trellis.out_channels, g.num_classes)
        self.set_neuron_specs(g.neuron_layers)

    def check_input(self, x_t: Tensor) -> None:
        """``x_t`` must be ``(B, in_channels, H, W)``."""
        c = self.genotype.in_channels
        if x_t.dim() != 4 or x_t.shape[1] != c:
            raise SnncError(f"SpikeDHS-CLA expects one step shaped (B, {c}, H, W), got {tuple(x_t.shape)}")

    def step_with(self, x_t: Tensor, ctx: StepContext) -> Tensor:
        """Logits ``(B, num_classes)`` of one step."""
        s = self.stem(x_t, ctx)
        out = self.trellis(s, s, ctx)
        logits: Tensor = self.fc(self.pool(out).flatten(1))
        return logits

    def classify(self, images: Tensor, time_steps: int | None = None) -> Tensor:
        """Direct coding: feed ``images (B, C, H, W)`` for T steps, return the mean logits ``(B, classes)``.

        ``time_steps`` defaults to the genotype's (6).
        """
        t = self.genotype.time_steps if time_steps is None else int(time_steps)
        if t < 1:
            raise SnncError(f"time_steps must be >= 1, got {t}")
        logits: Tensor = self(images.unsqueeze(0).expand(t, *images.shape))
        return logits.mean(0)


def build_spikedhs_classifier(genotype: SpikeDHSClassifierGenotype, **overrides: Any) -> SpikeDHSClassifier:
    """Build the SpikeDHS-CLA network of ``genotype`` (``overrides`` replace genotype fields first)."""
    return SpikeDHSClassifier(with_overrides(genotype, overrides))
