"""Searchable SpikeDHS cell: every DARTS edge is a :class:`~snnc.nas.mixed.MixedEdge`.

Same conventions as the derived :class:`snnc.models.cells.SpikingCell`: inputs
``s0`` (two layers back) and ``s1`` (previous layer) are resampled to the
cell's resolution by nearest interpolation, node ``j`` receives an edge from
``s0``, ``s1`` and every earlier node (edge numbering of
:func:`snnc.models.genotype.edge_index`), a node is one spiking neuron over the
sum of its incoming edges (NeurIPS eq. 3), and the output is the concatenation
of all nodes (``nodes * c_node`` channels).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from torch import Tensor, nn

from snnc.models.base import StepContext
from snnc.models.cells import resize_nearest
from snnc.models.genotype import edge_count, edge_index
from snnc.nas.mixed import MixedEdge
from snnc.neurons import Neuron, NeuronSpec

__all__ = ["SearchCell"]


class SearchCell(nn.Module):
    """A cell with all edges present and mixed.

    Args:
        nodes: spiking nodes (3 or 4 in the paper).
        c_prev_prev, c_prev: channels of ``s0`` and ``s1``.
        c_node: width of every node.
        dims: 2 or 3.
        mixing: ``"mm"`` or ``"ms"`` (see :mod:`snnc.nas.mixed`).
        spec: node neuron spec.
    """

    def __init__(
        self,
        nodes: int,
        c_prev_prev: int,
        c_prev: int,
        c_node: int,
        dims: int = 2,
        mixing: str = "mm",
        spec: NeuronSpec | None = None,
    ) -> None:
        super().__init__()
        spec = NeuronSpec() if spec is None else spec
        self.n_nodes = nodes
        self.out_channels = nodes * c_node
        widths = {0: c_prev_prev, 1: c_prev}
        edges: list[MixedEdge] = []
        for dst in range(nodes):
            for src in range(2 + dst):
                assert len(edges) == edge_index(src, dst)
                edges.append(MixedEdge(widths.get(src, c_node), c_node, dims, mixing, spec))
        self.edges = nn.ModuleList(edges)
        self.nodes = nn.ModuleList(Neuron(spec) for _ in range(nodes))
        assert len(self.edges) == edge_count(nodes)

    def forward(self, s0: Tensor, s1: Tensor, size: Sequence[int], weights: Tensor, ctx: StepContext) -> Tensor:
        """One step; ``weights`` = softmax(alpha), shape ``(edge_count(nodes), n_ops)``."""
        states = [resize_nearest(s0, size), resize_nearest(s1, size)]
        for dst, node in enumerate(self.nodes):
            current: Tensor | None = None
            for src in range(2 + dst):
                k = edge_index(src, dst)
                out = self.edges[k](states[src], weights[k], ctx)
                current = out if current is None else current + out
            assert current is not None
            states.append(ctx(cast(Neuron, node), current))
        return torch.cat(states[2:], dim=1)
