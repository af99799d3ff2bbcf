"""A neuron layer that mixes candidate neurons: ``y_bar = sum_k softmax(a)_k y_k`` (TPS, HNS).

Every candidate is the one snnc neuron, :func:`snnc.neurons.neuron_step`, with
its own :class:`~snnc.neurons.NeuronSpec` (another ``decay`` for TPS, another
type for HNS) and its own explicit state; all candidates receive the same
input current. The mixing weights come from a callable (the search owns the
architecture parameters ``a``; the layer holds no parameters, so the
network's ``state_dict`` is unchanged by the search).

State layout (explicit, a flat tuple like every neuron layer's): the
candidates that carry state (all but ``relu``) are numbered ``s = 0 .. S-1``
in candidate order; field ``j`` of the layer state is the stack over ``s`` of
field ``j`` of candidate ``s``'s state, shape ``(S, *current.shape)``. The
number of fields is that of the widest stateful candidate (``(u, y)`` for
LIF, ``(u, y, a)`` for ALIF); a candidate with fewer fields keeps the extra
slots at zero. So candidate ``s``'s own state is ``(u[s], y[s])`` (LIF) or
``(u[s], y[s], a[s])`` (ALIF), passed to ``neuron_step`` and back unchanged in
form. :attr:`spec` is the widest stateful candidate's spec, which is what
:class:`~snnc.models.base.SpikingNet` uses to count the layer's state tensors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from snnc.errors import SnncError
from snnc.neurons import Neuron, NeuronSpec, State, neuron_step, state_size

__all__ = ["MixedNeuron"]

WeightsFn = Callable[[], Tensor]


class MixedNeuron(Neuron):
    """Softmax-weighted mixture of candidate neurons with explicit per-candidate state.

    Args:
        candidates: the candidate specs (at least one stateful, i.e. not ``relu``).
        weights: returns the mixing weights, a ``(K,)`` tensor summing to 1
            (``softmax(a)``), called once per step.

    Attributes:
        fixed: when not ``None``, the index of the single candidate whose output
            is used (one-hot mixing), e.g. to measure a candidate's firing rate.
    """

    def __init__(self, candidates: Sequence[NeuronSpec], weights: WeightsFn) -> None:
        candidates = tuple(candidates)
        stateful = [c for c in candidates if state_size(c) > 0]
        if not stateful:
            raise SnncError("a mixed neuron layer needs at least one spiking (stateful) candidate")
        widest = max(stateful, key=state_size)
        super().__init__(widest)
        self.candidates = candidates
        self._stateful = [k for k, c in enumerate(candidates) if state_size(c) > 0]
        self._fields = state_size(widest)
        self._weights = weights
        self.fixed: int | None = None

    def set_candidates(self, candidates: Sequence[NeuronSpec]) -> None:
        """Replace the candidates by specs of the same types, in the same order (state layout unchanged)."""
        candidates = tuple(candidates)
        if [c.type for c in candidates] != [c.type for c in self.candidates]:
            raise SnncError("new candidates must have the same neuron types in the same order")
        self.candidates = candidates
        self.spec = max((c for c in candidates if state_size(c) > 0), key=state_size)

    def mixing_weights(self) -> Tensor:
        """The current ``(K,)`` mixing weights (one-hot when :attr:`fixed` is set)."""
        w = self._weights()
        if self.fixed is not None:
            w = torch.zeros_like(w).index_fill_(0, torch.tensor([self.fixed], device=w.device), 1.0)
        return w

    def init_state(self, like: Tensor) -> State:
        """Zeros ``(S, *like.shape)`` for each state field (see module docstring)."""
        shape = (len(self._stateful), *like.shape)
        return tuple(like.new_zeros(shape) for _ in range(self._fields))

    def forward(self, current: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """One step of every candidate on ``current``; returns ``(sum_k w_k y_k, new state)``."""
        if state is None:
            state = self.init_state(current)
        if len(state) != self._fields:
            raise SnncError(f"mixed neuron state must hold {self._fields} tensors, got {len(state)}")
        weights = self.mixing_weights().to(current.dtype)
        new_fields: list[list[Tensor]] = [[] for _ in range(self._fields)]
        out: Tensor | None = None
        s = 0
        for k, spec in enumerate(self.candidates):
            n = state_size(spec)
            if n == 0:
                y, _ = neuron_step(spec, current, ())
            else:
                y, new = neuron_step(spec, current, tuple(state[j][s] for j in range(n)))
                for j in range(self._fields):
                    new_fields[j].append(new[j] if j < n else state[j][s])
                s += 1
            term = weights[k] * y
            out = term if out is None else out + term
        assert out is not None
        return out, tuple(torch.stack(f) for f in new_fields)

    def extra_repr(self) -> str:
        return (
            "candidates=["
            + "; ".join(", ".join(f"{k}={v!r}" for k, v in c.to_dict().items()) for c in self.candidates)
            + "]"
        )
