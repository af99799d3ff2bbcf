"""An int8 network as a torch module with the float network's window API, for evaluation.

:class:`Int8Network` runs the integer graph (:func:`snnc.quant.int8_graph`) of a
folded network over a window ``(T, B, ...)`` the way the float ``SpikingNet``'s
``forward`` does (state from rest, one step per time step), quantising the input
and applying the host head, so a task's ``evaluate`` measures the int8 network
with the same code and data as the float one. One integer graph per input shape.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from snnc.export.lower import family_of, graph_inputs
from snnc.quant.calibrate import int8_graph
from snnc.quant.fields import QuantFields, quantize_input
from snnc.quant.head import apply_head

__all__ = ["Int8Network"]


class Int8Network(nn.Module):
    """``forward(x_seq (T, B, ...)) -> (T, B, ...)`` of the integer network (module docstring).

    Args:
        model: the folded float network (its weights are those the fields were made from).
        fields: the integer fields.
    """

    def __init__(self, model: nn.Module, fields: QuantFields) -> None:
        super().__init__()
        self.model = model
        self.fields = fields
        self.family = family_of(model)
        self.genotype = getattr(model, "genotype", None)
        self._graphs: dict[tuple[int, ...], Any] = {}

    def graph_module(self, step_shape: tuple[int, ...]) -> Any:
        """The integer :class:`~snnc.export.runtime.GraphModule` for one step's input shape (cached)."""
        from snnc.export.runtime import GraphModule

        if step_shape not in self._graphs:
            self._graphs[step_shape] = GraphModule(int8_graph(self.model, step_shape, self.fields)).eval()
        return self._graphs[step_shape]

    @torch.no_grad()
    def forward(self, x_seq: Tensor) -> Tensor:
        """Steps over the leading time axis from rest."""
        gm = self.graph_module(tuple(int(s) for s in x_seq.shape[1:]))
        meta = gm.graph.meta["int8"]
        state = None
        outs = []
        for t in range(int(x_seq.shape[0])):
            x = graph_inputs(self.family, quantize_input(x_seq[t].float(), self.fields))
            if state is None:
                state = gm.init_state(x)
            y, state = gm.step(x, state)
            outs.append(apply_head(meta, y))
        return torch.stack(outs)
