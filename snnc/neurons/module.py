"""``torch.nn.Module`` wrapper around the pure neuron dynamics."""

from __future__ import annotations

import torch
from torch import Tensor

from snnc.neurons.dynamics import State, init_state, neuron_step
from snnc.neurons.spec import NeuronSpec

__all__ = ["Neuron"]


class Neuron(torch.nn.Module):
    """A parameter-free neuron layer; ``forward`` is :func:`neuron_step`.

    ``spec`` is a plain attribute: search methods replace it between steps
    (DGS sets a new ``b``, TPS a new ``decay``, HNS a new ``type``). State is
    explicit: the caller passes it in and gets the new state back.
    """

    spec: NeuronSpec

    def __init__(self, spec: NeuronSpec | None = None) -> None:
        super().__init__()
        self.spec = NeuronSpec() if spec is None else spec

    def forward(self, current: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """One step: ``(current, state) -> (output, new_state)``; ``state=None`` = resting."""
        if state is None:
            state = init_state(self.spec, current)
        return neuron_step(self.spec, current, state)

    def init_state(self, like: Tensor) -> State:
        """Resting state shaped like one step's current."""
        return init_state(self.spec, like)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.spec.to_dict().items())
