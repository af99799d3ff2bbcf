"""Architecture parameters of SpikeDHS: cell weights alpha, layer-trellis weights beta.

Alpha (cell level, DARTS)
    One row per DARTS edge (see :func:`snnc.models.genotype.edge_index`), one
    column per candidate op in :data:`snnc.models.genotype.PRIMITIVES` order
    (``skip_connect, snn_b3, snn_b5``). Initialised to ``1e-3 * N(0, 1)`` like
    DARTS and the authors' code; ``softmax(alpha, -1)`` weights the candidates.

Beta (layer level, AutoDeepLab / LEAStereo trellis)
    ``beta[layer, src, dir]``: from the cell at level ``src`` of layer
    ``layer - 1`` (the stem, level 0, for layer 0), ``dir`` 0 = up (to level
    ``src - 1``, finer), 1 = same level, 2 = down (to ``src + 1``, coarser).
    Level ``l`` has 1/2**l of the resolution of level 0. Layer ``i`` can only
    reach levels ``0 .. min(i + 1, levels - 1)``. The normalised weights are a
    softmax over the *valid* directions of each (layer, src) and, as in
    LEAStereo and the SpikeDHS decoder, scaled by ``n_valid / 3`` so that a
    level with two exits (the first and the last level) does not get inflated
    probabilities: the same normalisation is used in the forward pass and by
    the Viterbi decoder (:mod:`snnc.nas.decode`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from snnc.errors import SnncError
from snnc.models.genotype import PRIMITIVES, edge_count

__all__ = [
    "UP",
    "SAME",
    "DOWN",
    "TrellisGeometry",
    "init_alphas",
    "init_betas",
    "normalized_betas",
    "alpha_entropy",
    "beta_entropy",
]

#: Direction indices of the last axis of beta.
UP, SAME, DOWN = 0, 1, 2
_SHIFT = {UP: -1, SAME: 0, DOWN: +1}


@dataclass(frozen=True)
class TrellisGeometry:
    """Which cells exist in an ``layers x levels`` trellis.

    Attributes:
        layers: number of searched layers (cells on the final path).
        levels: number of resolution levels (4 in the paper; fewer to shrink the search).
    """

    layers: int
    levels: int = 4

    def __post_init__(self) -> None:
        if self.layers < 1:
            raise SnncError(f"a trellis needs at least 1 layer, got {self.layers}")
        if not 1 <= self.levels <= 4:
            raise SnncError(f"trellis levels must be 1..4 (snnc genotypes have 4 levels), got {self.levels}")

    def reachable(self, layer: int) -> range:
        """Levels the cells of ``layer`` can be at (layer -1 is the stem at level 0)."""
        if layer < 0:
            return range(1)
        return range(min(layer + 1, self.levels - 1) + 1)

    def valid(self, layer: int, src: int, direction: int) -> bool:
        """Whether layer ``layer`` has an edge from ``src`` (a level of layer - 1) in ``direction``."""
        if src not in self.reachable(layer - 1):
            return False
        dst = src + _SHIFT[direction]
        return 0 <= dst < self.levels

    def incoming(self, layer: int, dst: int) -> Iterator[tuple[int, int]]:
        """``(src, direction)`` pairs feeding level ``dst`` of ``layer`` (up, same, down order)."""
        for direction in (UP, SAME, DOWN):
            src = dst - _SHIFT[direction]
            if 0 <= src < self.levels and self.valid(layer, src, direction):
                yield src, direction

    def mask(self) -> Tensor:
        """Bool ``(layers, levels, 3)``: which beta entries are used."""
        m = torch.zeros(self.layers, self.levels, 3, dtype=torch.bool)
        for layer in range(self.layers):
            for src in range(self.levels):
                for direction in (UP, SAME, DOWN):
                    m[layer, src, direction] = self.valid(layer, src, direction)
        return m


def init_alphas(nodes: int, generator: torch.Generator | None = None) -> Tensor:
    """``1e-3 * N(0, 1)`` of shape ``(edge_count(nodes), len(PRIMITIVES))``."""
    return 1e-3 * torch.randn(edge_count(nodes), len(PRIMITIVES), generator=generator)


def init_betas(geometry: TrellisGeometry, generator: torch.Generator | None = None) -> Tensor:
    """``1e-3 * N(0, 1)`` of shape ``(layers, levels, 3)`` (unused entries are ignored)."""
    return 1e-3 * torch.randn(geometry.layers, geometry.levels, 3, generator=generator)


def normalized_betas(betas: Tensor, geometry: TrellisGeometry) -> Tensor:
    """Per (layer, src) softmax over the valid directions, times ``n_valid / 3``; 0 where invalid."""
    if tuple(betas.shape) != (geometry.layers, geometry.levels, 3):
        raise SnncError(f"betas must be shaped {(geometry.layers, geometry.levels, 3)}, got {tuple(betas.shape)}")
    mask = geometry.mask().to(betas.device)
    n_valid = mask.sum(-1, keepdim=True)
    logits = betas.masked_fill(~mask, float("-inf"))
    safe = torch.where(n_valid > 0, logits, torch.zeros_like(logits))
    probs = torch.softmax(safe, dim=-1) * mask
    return probs * (n_valid.to(betas.dtype) / 3.0)


def alpha_entropy(alphas: Tensor) -> float:
    """Mean over edges of the entropy (nats) of ``softmax(alpha)``; ``log 3`` = undecided."""
    p = torch.softmax(alphas.detach().float(), dim=-1)
    return float(-(p * torch.log(p.clamp_min(1e-12))).sum(-1).mean())


def beta_entropy(betas: Tensor, geometry: TrellisGeometry) -> float:
    """Mean over used (layer, src) rows of the entropy of the plain softmax over valid directions,
    divided by ``log(n_valid)`` (1 = undecided, 0 = one-hot)."""
    mask = geometry.mask()
    values = []
    b = betas.detach().float().cpu()
    for layer in range(geometry.layers):
        for src in range(geometry.levels):
            m = mask[layer, src]
            n = int(m.sum())
            if n < 2:
                continue
            p = torch.softmax(b[layer, src][m], dim=-1)
            values.append(float(-(p * torch.log(p.clamp_min(1e-12))).sum()) / math.log(n))
    return sum(values) / len(values) if values else 0.0
