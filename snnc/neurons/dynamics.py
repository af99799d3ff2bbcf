"""Pure, explicit-state neuron dynamics: ``(current, state) -> (output, state)``.

State layouts (all tensors shaped like one step's input current), named in
:data:`STATE_FIELDS`, the one place every writer takes them from:

* ``lif``/``if``: ``(u, y)`` membrane potential and last spikes.
* ``alif``: ``(u, y, a)`` plus the threshold-adaptation trace ``a``.
* ``binary``, ``relu``: ``()`` (memory-less).

Equations (SpikeDHS eq. 1, spatial-temporal search eqs. 3-8, hard reset)::

    u' = decay * u * (1 - y) + I                     y' = H(u' - vth)
    ALIF: a' = decay_a * a + y ; A = vth + beta_a * a' ; y' = H(u' - A)

with the decay factor ``decay`` of :func:`leak_factor` (1 for ``if``, 0 for ``binary``: ``u' = I``), and
``H`` the surrogate-gradient spike function :func:`~snnc.neurons.surrogate.spike_fn`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from snnc.errors import SnncError
from snnc.neurons.spec import NeuronSpec
from snnc.neurons.surrogate import spike_fn

__all__ = [
    "State",
    "STATE_FIELDS",
    "init_state",
    "leak_factor",
    "neuron_step",
    "neuron_sequence",
    "state_fields",
    "state_size",
]

State = tuple[Tensor, ...]

#: The names of each neuron type's state tensors, in state order.
STATE_FIELDS: dict[str, tuple[str, ...]] = {
    "lif": ("u", "y"),
    "if": ("u", "y"),
    "binary": (),
    "alif": ("u", "y", "a"),
    "relu": (),
}
_STATE_SIZE = {kind: len(names) for kind, names in STATE_FIELDS.items()}


def state_size(spec: NeuronSpec) -> int:
    """Number of tensors in the state of ``spec.type``."""
    return _STATE_SIZE[spec.type]


def state_fields(spec: NeuronSpec) -> tuple[str, ...]:
    """Names of the state tensors of ``spec.type`` (``("u", "y")`` for LIF)."""
    return STATE_FIELDS[spec.type]


def leak_factor(spec: NeuronSpec) -> float:
    """The membrane's per-step decay factor: 1 for ``if``, 0 for ``binary`` (and ``relu``), ``spec.decay`` otherwise."""
    if spec.type == "if":
        return 1.0
    if spec.type in ("binary", "relu"):
        return 0.0
    return float(spec.decay)


def init_state(spec: NeuronSpec, like: Tensor) -> State:
    """Resting state: zeros with the shape, dtype and device of one step's current."""
    return tuple(torch.zeros_like(like) for _ in range(_STATE_SIZE[spec.type]))


def neuron_step(spec: NeuronSpec, current: Tensor, state: State) -> tuple[Tensor, State]:
    """Advance one time step.

    Args:
        spec: neuron hyper-parameters.
        current: synaptic input ``I`` for this step.
        state: previous state (see module docstring), e.g. from :func:`init_state`.

    Returns:
        ``(output, new_state)``; output is the spike tensor (``u.dtype``, values
        0/1) or, for ``relu``, ``relu(current)``.

    Raises:
        SnncError: ``state`` has the wrong number of tensors for ``spec.type``.
    """
    kind = spec.type
    if len(state) != _STATE_SIZE[kind]:
        raise SnncError(f"neuron state for type {kind!r} must hold {_STATE_SIZE[kind]} tensors, got {len(state)}")
    if kind == "relu":
        return torch.relu(current), ()
    if kind == "binary":
        return spike_fn(current, spec.vth, spec.surrogate, spec.b), ()
    u_prev, y_prev = state[0], state[1]
    if kind != "alif" and _in_place_ok(current, u_prev, y_prev):
        return _lif_step_in_place(spec, current, u_prev, y_prev)
    u = leak_factor(spec) * u_prev * (1.0 - y_prev) + current
    if kind == "alif":
        a = spec.decay_a * state[2] + state[1]
        y = spike_fn(u, spec.vth + spec.beta_a * a, spec.surrogate, spec.b)
        return y, (u, y, a)
    y = spike_fn(u, spec.vth, spec.surrogate, spec.b)
    return y, (u, y)


def _in_place_ok(current: Tensor, u_prev: Tensor, y_prev: Tensor) -> bool:
    """Whether the LIF/IF update may run on its own fresh temporaries in place: no autograd graph is being
    recorded, no trace or ONNX export is watching (they see the plain expression), and the three tensors share
    one shape and dtype (no broadcasting, so every temporary has the output's shape)."""
    if torch.is_grad_enabled() and (current.requires_grad or u_prev.requires_grad or y_prev.requires_grad):
        return False
    if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():  # type: ignore[no-untyped-call]
        return False
    return (
        current.shape == u_prev.shape == y_prev.shape
        and current.dtype == u_prev.dtype == y_prev.dtype
        and current.dtype.is_floating_point
    )


def _lif_step_in_place(spec: NeuronSpec, current: Tensor, u_prev: Tensor, y_prev: Tensor) -> tuple[Tensor, State]:
    """:func:`neuron_step` of ``lif``/``if`` in inference, bit-identical: the same float operations in the same
    order, ``((leak * u) * (1 - y)) + I`` then ``u > vth``, on two fresh buffers instead of five (the spikes
    are written into the ``1 - y`` buffer once ``u`` is done); the state passed in is never written."""
    keep = torch.rsub(y_prev, 1.0)
    u = torch.mul(u_prev, leak_factor(spec)).mul_(keep).add_(current)
    y = torch.gt(u, spec.vth, out=keep)
    return y, (u, y)


def neuron_sequence(spec: NeuronSpec, currents: Tensor, state: State | None = None) -> tuple[Tensor, State]:
    """Run :func:`neuron_step` over the leading time axis.

    Args:
        spec: neuron hyper-parameters.
        currents: inputs shaped ``(T, ...)``.
        state: initial state; ``None`` means :func:`init_state` (resting).

    Returns:
        ``(outputs (T, ...), final_state)``.

    Raises:
        SnncError: ``currents`` has no time axis, or a wrong-sized ``state``.
    """
    if currents.dim() < 1 or currents.shape[0] < 1:
        raise SnncError(f"neuron_sequence needs currents shaped (T, ...) with T >= 1, got {tuple(currents.shape)}")
    if state is None:
        state = init_state(spec, currents[0])
    if spec.type == "relu":
        if len(state) != 0:
            raise SnncError(f"neuron state for type 'relu' must hold 0 tensors, got {len(state)}")
        return torch.relu(currents), ()
    outputs = []
    for t in range(currents.shape[0]):
        y, state = neuron_step(spec, currents[t], state)
        outputs.append(y)
    return torch.stack(outputs), state
