"""SpikeDHS supernets: every cell mixed, architecture parameters alpha (and beta) trainable.

Both supernets are :class:`~snnc.models.base.SpikingNet` subclasses: one time
step is :meth:`step_with` with every neuron routed through the
:class:`~snnc.models.base.StepContext`, so ``init_state`` / ``step`` /
``forward`` (a loop of ``step``) and explicit state work as for the derived
networks. Architecture parameters are the ``nn.Parameter`` attributes named
``*alphas`` / ``*betas`` (:meth:`arch_parameters`); everything else is a weight
(:meth:`weight_parameters`).

:class:`ClassifierSupernet` (methods.md §3, NeurIPS §3.2.2 and appendix 9)
    DARTS layout with a fixed downsampling path: stem (conv3x3 + BN + ReLU
    during search, the paper's "BN and ReLU stems"), ``layers`` cells of which
    cells ``layers // 3`` and ``2 * layers // 3`` are reduction cells (cells 2
    and 5 of 8), global average pooling and a linear classifier, plus an
    auxiliary classifier on the second reduction cell (the paper's aux loss
    0.4 at cell 5). All cells share one alpha (the snnc genotype and the
    published CLA network use one cell everywhere; the paper mentions separate
    normal and reduction cells, which the published genotype does not have).
    Output per step: ``(B, heads, classes)``, head 0 the main classifier,
    head 1 (if present) the auxiliary one.

:class:`StereoSupernet` (NeurIPS §3.2.2, appendix 8/10, Table 7)
    The derived :class:`~snnc.models.stereo.SpikeDHSStereo` with each trellis
    replaced by the full AutoDeepLab-style trellis (:class:`TrellisSupernet`):
    feature net (2 stems, 2-D trellis of ``feature_layers`` layers, per-level
    spiking upsampling back to level 0, summed, last spiking 1x1 conv), the
    concatenation cost volume, the matching net (2 stems, 3-D trellis of
    ``matching_layers`` layers, per-level upsampling, summed, output conv
    without neuron: the membrane potential is the cost). The stem downsampling
    by the feature stride (3 in the paper) and the trellis' levels (x2 each) give the
    paper's {3, 2, 2, 2}. The stems, the volume and the cost resampling are the
    derived network's own (:func:`~snnc.models.stereo.feature_stems`,
    :func:`~snnc.models.stereo.stereo_cost`), so ``feature_stride`` and
    ``volume_shifts`` mean the same in the search space as in the retrained net.

Trellis cells (:class:`TrellisSupernet`)
    Cell (layer ``i``, level ``l``) exists for every direction it can be
    reached from (see :class:`~snnc.nas.arch.TrellisGeometry`); each direction
    has its own cell (shared alpha) and the level's output is
    ``sum_dir beta_norm[i, src, dir] * cell_dir(s0, out[i-1][src])``
    (AutoDeepLab). ``s0`` is layer ``i-2``'s output at the same level; where
    that level was not reachable two layers back, the nearest (coarsest)
    reachable one, resampled by nearest interpolation; the stems act as
    layers -2 (stem0) and -1 (stem1), both at level 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from torch import Tensor, nn

from snnc.errors import SnncError
from snnc.models.base import SpikingNet, StepContext
from snnc.models.cells import SpikingConv, Upsampler, level_size
from snnc.models.layers import ConvBN
from snnc.models.stereo import cost_volume, feature_stems, stereo_cost
from snnc.nas.arch import TrellisGeometry, init_alphas, init_betas, normalized_betas
from snnc.nas.cells import SearchCell
from snnc.neurons import NeuronSpec

__all__ = [
    "SEARCH_STEM_SPEC",
    "ClassifierSupernet",
    "StereoSupernet",
    "TrellisSupernet",
    "classifier_path",
    "split_parameters",
]

#: Stem activation during search (the paper's "BN and ReLU stems").
SEARCH_STEM_SPEC = NeuronSpec(type="relu")


def classifier_path(layers: int) -> tuple[int, ...]:
    """Levels of a DARTS classifier: cells ``layers // 3`` and ``2 * layers // 3`` reduce.

    ``classifier_path(8) == (0, 0, 1, 1, 1, 2, 2, 2)`` (the paper's path).
    """
    if layers < 1:
        raise SnncError(f"the classifier needs at least 1 cell, got {layers}")
    reductions = {layers // 3, 2 * layers // 3}
    return tuple(sum(1 for r in reductions if r <= i) for i in range(layers))


def split_parameters(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """``(architecture, weights)``: parameters named ``*alphas``/``*betas`` vs. the rest."""
    arch: list[nn.Parameter] = []
    weights: list[nn.Parameter] = []
    for name, p in model.named_parameters():
        (arch if name.endswith("alphas") or name.endswith("betas") else weights).append(p)
    return arch, weights


class _Searchable(SpikingNet):
    """Shared helpers of the supernets."""

    def arch_parameters(self) -> list[nn.Parameter]:
        """alpha/beta parameters (updated on data half B)."""
        return split_parameters(self)[0]

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every other parameter (updated on data half A)."""
        return split_parameters(self)[1]


class ClassifierSupernet(_Searchable):
    """DARTS-style classification supernet (see module docstring).

    Args:
        nodes: nodes per cell (3 or 4).
        layers: number of cells (8 in the paper).
        width: node width at level 0 (the stem has ``nodes * width`` channels).
        in_channels, num_classes: data sizes.
        mixing: ``"mm"`` or ``"ms"``.
        spec: node neuron spec (LIF, Dspike b = 3).
        stem_spec: stem activation (ReLU during search by default).
        aux: build the auxiliary classifier on cell ``2 * layers // 3`` (needs ``layers >= 3``).
        generator: RNG for the alpha initialisation.
    """

    def __init__(
        self,
        nodes: int = 4,
        layers: int = 8,
        width: int = 16,
        in_channels: int = 3,
        num_classes: int = 10,
        mixing: str = "mm",
        spec: NeuronSpec | None = None,
        stem_spec: NeuronSpec = SEARCH_STEM_SPEC,
        aux: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        spec = NeuronSpec() if spec is None else spec
        self.nodes_per_cell = nodes
        self.path = classifier_path(layers)
        self.width = width
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.mixing = mixing
        self.alphas = nn.Parameter(init_alphas(nodes, generator))
        c_stem = nodes * width
        self.stem = SpikingConv(in_channels, c_stem, 3, spec=stem_spec)
        self.cells = nn.ModuleList()
        c_pp, c_p = c_stem, c_stem
        for level in self.path:
            cell = SearchCell(nodes, c_pp, c_p, width * 2**level, 2, mixing, spec)
            self.cells.append(cell)
            c_pp, c_p = c_p, cell.out_channels
        self.aux_index: int | None = 2 * layers // 3 if aux and layers >= 3 else None
        self.fc = nn.Linear(c_p, num_classes)
        self.aux_fc = (
            nn.Linear(cast(SearchCell, self.cells[self.aux_index]).out_channels, num_classes)
            if self.aux_index is not None
            else None
        )

    @property
    def heads(self) -> int:
        """Number of classifier heads in the output (2 with the auxiliary one)."""
        return 1 if self.aux_fc is None else 2

    def check_input(self, x_t: Tensor) -> None:
        """``x_t`` must be ``(B, in_channels, H, W)``."""
        if x_t.dim() != 4 or x_t.shape[1] != self.in_channels:
            raise SnncError(
                f"classifier supernet expects one step shaped (B, {self.in_channels}, H, W), got {tuple(x_t.shape)}"
            )

    def step_with(self, x_t: Tensor, ctx: StepContext) -> Tensor:
        """Logits ``(B, heads, classes)`` of one step."""
        weights = torch.softmax(self.alphas, dim=-1)
        s = self.stem(x_t, ctx)
        size0 = s.shape[2:]
        s0, s1 = s, s
        heads = []
        for i, (cell, level) in enumerate(zip(self.cells, self.path, strict=False)):
            s0, s1 = s1, cell(s0, s1, level_size(size0, level), weights, ctx)
            if i == self.aux_index:
                heads.append(s1)
        logits = [self.fc(s1.mean(dim=(2, 3)))]
        if self.aux_fc is not None:
            logits.append(self.aux_fc(heads[0].mean(dim=(2, 3))))
        return torch.stack(logits, dim=1)


class TrellisSupernet(nn.Module):
    """All cells of an ``layers x levels`` trellis (see module docstring).

    Args:
        geometry: layers and levels.
        nodes, width: cell nodes and node width at level 0 (level ``l``: ``width * 2**l``).
        c_stem0, c_stem1: channels of the two stems (layers -2 and -1, level 0).
        dims: 2 or 3.
        mixing, spec: as for :class:`~snnc.nas.cells.SearchCell`.
    """

    def __init__(
        self,
        geometry: TrellisGeometry,
        nodes: int,
        width: int,
        c_stem0: int,
        c_stem1: int,
        dims: int = 2,
        mixing: str = "mm",
        spec: NeuronSpec | None = None,
    ) -> None:
        super().__init__()
        self.geometry = geometry
        self.nodes = nodes
        self.width = width
        self._stem_channels = (c_stem0, c_stem1)
        self.cells = nn.ModuleDict()
        for layer in range(geometry.layers):
            for dst in geometry.reachable(layer):
                for src, direction in geometry.incoming(layer, dst):
                    c_pp = self.channels(layer - 2, self.s0_level(layer, dst))
                    c_p = self.channels(layer - 1, src)
                    self.cells[self.key(layer, dst, direction)] = SearchCell(
                        nodes, c_pp, c_p, width * 2**dst, dims, mixing, spec
                    )

    @staticmethod
    def key(layer: int, dst: int, direction: int) -> str:
        """ModuleDict key of the cell at (layer, level ``dst``) reached in ``direction``."""
        return f"{layer}_{dst}_{direction}"

    def channels(self, layer: int, level: int) -> int:
        """Output channels of ``layer`` at ``level`` (layers -2/-1: the stems)."""
        if layer < 0:
            return self._stem_channels[layer + 2]
        return self.nodes * self.width * 2**level

    def s0_level(self, layer: int, dst: int) -> int:
        """Level of the ``s0`` input of cell (layer, dst): same level if reachable two layers back."""
        return min(dst, max(self.geometry.reachable(layer - 2)))

    def out_channels(self, level: int) -> int:
        """Channels of the last layer's output at ``level``."""
        return self.channels(self.geometry.layers - 1, level)

    def forward(
        self, stem0: Tensor, stem1: Tensor, weights: Tensor, betas: Tensor, ctx: StepContext
    ) -> dict[int, Tensor]:
        """Outputs of the last layer by level; ``weights`` = softmax(alpha), ``betas`` normalised."""
        size0 = stem1.shape[2:]
        prev2: dict[int, Tensor] = {0: stem0}
        prev: dict[int, Tensor] = {0: stem1}
        g = self.geometry
        for layer in range(g.layers):
            new: dict[int, Tensor] = {}
            size_cache: dict[int, tuple[int, ...]] = {}
            for dst in g.reachable(layer):
                size = size_cache.setdefault(dst, level_size(size0, dst))
                s0 = prev2[self.s0_level(layer, dst)]
                total: Tensor | None = None
                for src, direction in g.incoming(layer, dst):
                    out = self.cells[self.key(layer, dst, direction)](s0, prev[src], size, weights, ctx)
                    out = betas[layer, src, direction] * out
                    total = out if total is None else total + out
                assert total is not None
                new[dst] = total
            prev2, prev = prev, new
        return prev


class _LevelMerge(nn.Module):
    """Per-level spiking upsampling of the trellis' last layer back to level 0, summed."""

    def __init__(self, trellis: TrellisSupernet, dims: int, spec: NeuronSpec) -> None:
        super().__init__()
        levels = list(trellis.geometry.reachable(trellis.geometry.layers - 1))
        self.ups = nn.ModuleDict(
            {str(lv): Upsampler(lv, trellis.out_channels(lv), dims=dims, spec=spec) for lv in levels}
        )
        self.out_channels = trellis.nodes * trellis.width

    def forward(self, outs: dict[int, Tensor], size0: Sequence[int], ctx: StepContext) -> Tensor:
        total: Tensor | None = None
        for level, x in outs.items():
            y = self.ups[str(level)](x, size0, ctx)
            total = y if total is None else total + y
        assert total is not None
        return total


class StereoSupernet(_Searchable):
    """Stereo supernet: feature trellis (2-D), cost volume, matching trellis (3-D).

    One step: ``x_t (B, 2, in_channels, H, W)`` -> cost ``(B, D, H, W)`` (lower = better),
    like :class:`~snnc.models.stereo.SpikeDHSStereo`.

    Args:
        nodes: nodes per cell (3 in the paper).
        feature_layers, matching_layers: trellis depths (2 and 4 in the paper).
        levels: trellis levels (4 in the paper).
        feature_width, matching_width: node widths at level 0 (the paper searches with
            feature stem width 12 = 3 nodes x 4).
        in_channels: SBT frames per stack (5).
        disparities: cost bins D.
        feature_stride: stride s of the second feature stem (the paper: 3).
        volume_shifts: feature-volume shifts V (None: V = D, the paper's layout); the
            cost is resampled along disparity to D bins as in the derived network.
        mixing, spec, stem_spec: as for :class:`ClassifierSupernet`.
        generator: RNG for the alpha/beta initialisation.
    """

    def __init__(
        self,
        nodes: int = 3,
        feature_layers: int = 2,
        matching_layers: int = 4,
        levels: int = 4,
        feature_width: int = 4,
        matching_width: int = 4,
        in_channels: int = 5,
        disparities: int = 33,
        mixing: str = "mm",
        spec: NeuronSpec | None = None,
        stem_spec: NeuronSpec = SEARCH_STEM_SPEC,
        generator: torch.Generator | None = None,
        feature_stride: int = 3,
        volume_shifts: int | None = None,
    ) -> None:
        super().__init__()
        spec = NeuronSpec() if spec is None else spec
        self.nodes_per_cell = nodes
        self.in_channels = in_channels
        self.disparities = disparities
        self.feature_stride = int(feature_stride)
        self.volume_shifts = int(volume_shifts) if volume_shifts is not None else disparities
        self.mixing = mixing
        self.feature_geometry = TrellisGeometry(feature_layers, levels)
        self.matching_geometry = TrellisGeometry(matching_layers, levels)
        self.feature_alphas = nn.Parameter(init_alphas(nodes, generator))
        self.feature_betas = nn.Parameter(init_betas(self.feature_geometry, generator))
        self.matching_alphas = nn.Parameter(init_alphas(nodes, generator))
        self.matching_betas = nn.Parameter(init_betas(self.matching_geometry, generator))
        c = nodes * feature_width
        self.f_stem0, self.f_stem1 = feature_stems(in_channels, c, self.feature_stride, stem_spec)
        self.f_trellis = TrellisSupernet(
            self.feature_geometry, nodes, feature_width, max(c // 2, 1), c, 2, mixing, spec
        )
        self.f_merge = _LevelMerge(self.f_trellis, 2, spec)
        self.f_last = SpikingConv(self.f_merge.out_channels, c, 1, spec=spec)
        cm = nodes * matching_width
        self.m_stem0 = SpikingConv(2 * c, cm, 3, dims=3, spec=stem_spec)
        self.m_stem1 = SpikingConv(cm, cm, 3, dims=3, spec=stem_spec)
        self.m_trellis = TrellisSupernet(self.matching_geometry, nodes, matching_width, cm, cm, 3, mixing, spec)
        self.m_merge = _LevelMerge(self.m_trellis, 3, spec)
        self.m_out = ConvBN(self.m_merge.out_channels, 1, 3, dims=3, bn=False, bias=True)

    def check_input(self, x_t: Tensor) -> None:
        """``x_t`` must be ``(B, 2, in_channels, H, W)``."""
        c = self.in_channels
        if x_t.dim() != 5 or x_t.shape[1] != 2 or x_t.shape[2] != c:
            raise SnncError(f"stereo supernet expects one step shaped (B, 2, {c}, H, W), got {tuple(x_t.shape)}")

    def step_with(self, x_t: Tensor, ctx: StepContext) -> Tensor:
        """Matching cost ``(B, D, H, W)`` of one step."""
        fw = torch.softmax(self.feature_alphas, dim=-1)
        fb = normalized_betas(self.feature_betas, self.feature_geometry)
        mw = torch.softmax(self.matching_alphas, dim=-1)
        mb = normalized_betas(self.matching_betas, self.matching_geometry)

        def features(x: Tensor) -> Tensor:
            s0 = self.f_stem0(x, ctx)
            s1 = self.f_stem1(s0, ctx)
            return self.f_last(self.f_merge(self.f_trellis(s0, s1, fw, fb, ctx), s1.shape[2:], ctx), ctx)

        def matching(left: Tensor, right: Tensor) -> Tensor:
            m0 = self.m_stem0(cost_volume(left, right, self.volume_shifts), ctx)
            m1 = self.m_stem1(m0, ctx)
            return self.m_out(self.m_merge(self.m_trellis(m0, m1, mw, mb, ctx), m1.shape[2:], ctx))

        return stereo_cost(x_t, features, matching, self.disparities)
