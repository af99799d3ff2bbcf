"""Mixed edges of the SpikeDHS search space (methods.md §3, NeurIPS eq. 4 and appendix 7.1).

A :class:`MixedEdge` carries every candidate op of :data:`~snnc.models.genotype.PRIMITIVES`
on one DARTS edge and combines them with the weights ``w = softmax(alpha_edge)``:

* ``snn_b3`` / ``snn_b5``: conv3x3 (conv3x3x3 for ``dims=3``) + BatchNorm from
  the edge's input to the node width; the input-alignment "preprocessing" of
  DARTS is merged into these ops (NeurIPS §3.2.1). Both candidates' convs run
  as one fused convolution with ``2 * c_out`` output channels, which is exactly
  two separate ConvBN layers (BN is per channel).
* ``skip_connect``: the input itself when the widths agree (node -> node), a
  1x1 ConvBN projection from a cell input (s0/s1), as in
  :class:`snnc.models.cells.SpikingCell`, so the decoded network contains the
  same op.

Mixing position (``mixing``):

* ``"mm"`` (mix at membrane, the default): the edge returns
  ``I_bar = sum_k w_k I_k`` where ``I_k`` is the candidate's current (BN(conv(x))
  for the conv ops, the input/projection for skip). The node's single neuron
  integrates the sum over its edges (eq. 10): **one neuron per node**.
* ``"ms"`` (mix at spike): every conv candidate has its **own neuron** whose
  Dspike temperature is the op's ``b`` (3 or 5); the edge returns
  ``y_bar = sum_k w_k y_k`` (eq. 8) and the node neuron (b = 3) fires on the sum.
"""

from __future__ import annotations

import dataclasses
from typing import cast

from torch import Tensor, nn

from snnc.errors import SnncError
from snnc.models.base import StepContext
from snnc.models.genotype import MIXINGS, OP_SURROGATE_B, PRIMITIVES
from snnc.models.layers import ConvBN
from snnc.neurons import Neuron, NeuronSpec

__all__ = ["MixedEdge", "CONV_OPS", "SKIP_INDEX"]

#: Candidate ops that are a ConvBN feeding the node (in PRIMITIVES order).
CONV_OPS: tuple[str, ...] = tuple(p for p in PRIMITIVES if p != "skip_connect")
#: Column of ``skip_connect`` in alpha.
SKIP_INDEX: int = PRIMITIVES.index("skip_connect")
_CONV_INDEX: tuple[int, ...] = tuple(PRIMITIVES.index(p) for p in CONV_OPS)


class MixedEdge(nn.Module):
    """All candidate ops of one edge, softmax-mixed (see module docstring).

    Args:
        c_in: channels of the edge's source state.
        c_out: node width.
        dims: 2 (conv3x3) or 3 (conv3x3x3).
        mixing: ``"mm"`` or ``"ms"``.
        spec: node neuron spec; MS candidate neurons use it with ``b`` replaced by the op's.
    """

    def __init__(
        self, c_in: int, c_out: int, dims: int = 2, mixing: str = "mm", spec: NeuronSpec | None = None
    ) -> None:
        super().__init__()
        if mixing not in MIXINGS:
            raise SnncError(f"mixing must be one of {', '.join(MIXINGS)}, got {mixing!r}")
        spec = NeuronSpec() if spec is None else spec
        self.mixing = mixing
        self.c_out = c_out
        self.conv = ConvBN(c_in, len(CONV_OPS) * c_out, 3, dims=dims)
        self.skip: nn.Module = nn.Identity() if c_in == c_out else ConvBN(c_in, c_out, 1, dims=dims)
        self.candidates = (
            nn.ModuleList(Neuron(dataclasses.replace(spec, b=OP_SURROGATE_B[op])) for op in CONV_OPS)
            if mixing == "ms"
            else nn.ModuleList()
        )

    def forward(self, x: Tensor, weights: Tensor, ctx: StepContext) -> Tensor:
        """Mixed output for one step; ``weights`` = softmax(alpha) of this edge, shape ``(len(PRIMITIVES),)``."""
        currents = self.conv(x).split(self.c_out, dim=1)
        out = weights[SKIP_INDEX] * self.skip(x)
        for k, current in enumerate(currents):
            y = ctx(cast(Neuron, self.candidates[k]), current) if self.mixing == "ms" else current
            out = out + weights[_CONV_INDEX[k]] * y
        return out
