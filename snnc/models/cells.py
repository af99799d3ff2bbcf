"""Spiking building blocks of SpikeDHS networks: conv layers, cells, the layer trellis.

Node (methods.md §3, NeurIPS eq. 3 and appendix 7.1)
    ``x_j = f(sum_i o_ij(x_i))``: every kept edge op produces a current, the
    currents are summed and one spiking neuron per node fires.

    * ``mixing="mm"`` (mix at membrane, the default and the paper's best
      variant): conv edges (``snn_b3``, ``snn_b5``) contribute ``BN(conv(x))``
      directly to the node's membrane; the node neuron uses the genotype's
      neuron spec (Dspike b = 3, the paper's node g(b=3)). The op's own
      temperature plays no role, so ``snn_b3`` and ``snn_b5`` build the same
      layers (as the authors' retrain code does with ``mixed_at_mem``).
    * ``mixing="ms"`` (mix at spike, the paper's main-table retrain): each conv
      edge has its own neuron whose surrogate temperature is the op's b (3 or
      5); the node neuron integrates the sum of those spikes.

    ``skip_connect`` passes spikes through unchanged (they are the current)
    when the channel counts agree (node -> node edges); from a cell input
    (s0/s1, whose width differs) it is a 1x1 ConvBN projection, the DARTS
    "preprocessing merged into the op" (the authors use a 3x3 conv there; no
    published genotype contains a skip edge, so parameter counts are unaffected).

Cell
    Inputs ``s0`` (two layers back) and ``s1`` (previous layer) are resampled
    to the cell's resolution with nearest interpolation (keeps spikes binary;
    the authors' reduction: no strided convs), all ops have stride 1, and the
    output is the channel concatenation of all nodes.

Trellis
    Level ``l`` has spatial size ``ceil(size_0 / 2**l)`` per axis (the depth
    axis too for 3-D cells) and node width ``filter_multiplier * 2**l``. Cell
    ``i`` runs at level ``path[i]`` on ``(s0, s1)``; the first cell gets the
    stems' outputs and each cell passes its own ``s1`` on as the next ``s0``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from snnc.models.base import StepContext
from snnc.models.genotype import OP_SURROGATE_B, CellGenotype
from snnc.models.layers import ConvBN
from snnc.neurons import Neuron, NeuronSpec

__all__ = ["SpikingConv", "SpikingCell", "Trellis", "level_size", "resize_nearest", "Upsampler"]


def level_size(size0: Sequence[int], level: int) -> tuple[int, ...]:
    """Spatial size at trellis ``level``: halve (rounding up) ``level`` times."""
    size = tuple(int(s) for s in size0)
    for _ in range(level):
        size = tuple((s + 1) // 2 for s in size)
    return size


def resize_nearest(x: Tensor, size: Sequence[int]) -> Tensor:
    """Nearest-neighbour resampling of the trailing spatial axes to ``size`` (no-op if equal)."""
    size = tuple(size)
    if tuple(x.shape[2:]) == size:
        return x
    return F.interpolate(x, size=size, mode="nearest")


class SpikingConv(nn.Module):
    """``neuron(BN(conv(x)))``: a ConvBN feeding one spiking neuron layer."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        dims: int = 2,
        spec: NeuronSpec | None = None,
    ) -> None:
        super().__init__()
        self.conv = ConvBN(in_channels, out_channels, kernel_size, stride=stride, dims=dims)
        self.neuron = Neuron(spec)

    def forward(self, x: Tensor, ctx: StepContext) -> Tensor:
        """Spikes of the layer for this step."""
        return ctx(self.neuron, self.conv(x))


class SpikingCell(nn.Module):
    """A derived SpikeDHS cell (see module docstring).

    Args:
        genotype: the cell's edges and node count.
        c_prev_prev, c_prev: channels of ``s0`` and ``s1``.
        c_node: channels of each node (the cell outputs ``nodes * c_node``).
        mixing: ``"mm"`` or ``"ms"``.
        spec: neuron spec of the nodes (and, with its b replaced, of MS edge neurons).
    """

    def __init__(
        self,
        genotype: CellGenotype,
        c_prev_prev: int,
        c_prev: int,
        c_node: int,
        mixing: str = "mm",
        spec: NeuronSpec | None = None,
    ) -> None:
        super().__init__()
        spec = NeuronSpec() if spec is None else spec
        self.genotype = genotype
        self.mixing = mixing
        self.out_channels = genotype.nodes * c_node
        dims = genotype.dims
        in_channels = {0: c_prev_prev, 1: c_prev}
        self.ops = nn.ModuleList()
        self.edge_neurons = nn.ModuleDict()
        for k, edge in enumerate(genotype.edges):
            c_in = in_channels.get(edge.src, c_node)
            if edge.op == "skip_connect":
                op: nn.Module = nn.Identity() if c_in == c_node else ConvBN(c_in, c_node, 1, dims=dims)
            else:
                op = ConvBN(c_in, c_node, 3, dims=dims)
                if mixing == "ms":
                    self.edge_neurons[str(k)] = Neuron(dataclasses.replace(spec, b=OP_SURROGATE_B[edge.op]))
            self.ops.append(op)
        self.nodes = nn.ModuleList(Neuron(spec) for _ in range(genotype.nodes))
        self._inputs = [[k for k, e in enumerate(genotype.edges) if e.dst == j] for j in range(genotype.nodes)]

    def forward(self, s0: Tensor, s1: Tensor, size: Sequence[int], ctx: StepContext) -> Tensor:
        """Resample ``s0``/``s1`` to ``size``, run the nodes, return the concatenated node spikes."""
        states = [resize_nearest(s0, size), resize_nearest(s1, size)]
        edges = self.genotype.edges
        for j, node in enumerate(self.nodes):
            current: Tensor | None = None
            for k in self._inputs[j]:
                out = self.ops[k](states[edges[k].src])
                if str(k) in self.edge_neurons:
                    out = ctx(cast(Neuron, self.edge_neurons[str(k)]), out)
                current = out if current is None else current + out
            assert current is not None  # every node has an input (validated genotype)
            states.append(ctx(cast(Neuron, node), current))
        return torch.cat(states[2:], dim=1)


class Trellis(nn.Module):
    """Cells on a path through the layer trellis (see module docstring).

    Args:
        cell: the cell genotype shared by all layers.
        path: level of every layer.
        filter_multiplier: node width at level 0.
        c_stem0, c_stem1: channels of the two stem outputs feeding the first cell.
        mixing, spec: passed to the cells.
    """

    def __init__(
        self,
        cell: CellGenotype,
        path: Sequence[int],
        filter_multiplier: int,
        c_stem0: int,
        c_stem1: int,
        mixing: str = "mm",
        spec: NeuronSpec | None = None,
    ) -> None:
        super().__init__()
        self.path = tuple(path)
        self.filter_multiplier = filter_multiplier
        self.cells = nn.ModuleList()
        c_pp, c_p = c_stem0, c_stem1
        for level in self.path:
            c = SpikingCell(cell, c_pp, c_p, filter_multiplier * 2**level, mixing, spec)
            self.cells.append(c)
            c_pp, c_p = c_p, c.out_channels
        self.out_channels = c_p
        self.out_level = self.path[-1]

    def forward(self, s0: Tensor, s1: Tensor, ctx: StepContext) -> Tensor:
        """Output of the last cell; level 0 has the spatial size of ``s1``."""
        size0 = s1.shape[2:]
        for cell, level in zip(self.cells, self.path, strict=False):
            s0, s1 = s1, cell(s0, s1, level_size(size0, level), ctx)
        return s1


class Upsampler(nn.Module):
    """From level ``from_level`` back to level 0: per level a spiking 1x1 conv, then nearest x2.

    The 1x1 ConvBN and the neuron act per position, so running them before the
    nearest upsampling is exactly "upsample, then conv + spike" (the paper's
    order, appendix 8) at a quarter (1/8 in 3-D) of the cost.
    Channels go ``c_top -> c_top/2 -> ... `` (halved per level).
    """

    def __init__(self, from_level: int, c_top: int, dims: int = 2, spec: NeuronSpec | None = None) -> None:
        super().__init__()
        self.from_level = from_level
        self.layers = nn.ModuleList()
        c = c_top
        for _ in range(from_level):
            self.layers.append(SpikingConv(c, c // 2, 1, dims=dims, spec=spec))
            c //= 2
        self.out_channels = c

    def forward(self, x: Tensor, size0: Sequence[int], ctx: StepContext) -> Tensor:
        """Spikes at level 0 (spatial size ``size0``)."""
        level = self.from_level
        for layer in self.layers:
            x = layer(x, ctx)
            level -= 1
            x = resize_nearest(x, level_size(size0, level))
        return x
