"""``SpikingNet``: the explicit-state base class of every snnc network.

A network implements one method, :meth:`SpikingNet.step_with`, that computes
one time step and routes every neuron call through a :class:`StepContext`.
The context hands each :class:`~snnc.neurons.Neuron` its part of the state and
collects the new one, so the public API is pure (Norse style)::

    state = net.init_state(x_t)            # flat tuple of zero tensors
    y_t, state = net.step(x_t, state)      # one step, explicit state in and out
    y_seq = net(x_seq)                     # (T, B, ...) -> (T, B, ...), a loop of step()

State layout: the concatenation, in :meth:`SpikingNet.neurons` order (module
registration order), of every neuron layer's state (``(u, y, a)`` for ALIF,
``(u, y)`` for LIF/IF, ``()`` for binary and ReLU; see :mod:`snnc.neurons`), then
the network's *carried* (non-neuron) state in :meth:`SpikingNet.carry_names`
order: one tensor per name that a network declares with
:meth:`SpikingNet.register_carry` (SNASNet's backward-edge values, a dropout
code), read in a step as ``ctx.carry(name, like)`` and written as
``ctx.put(name, value)``. :meth:`SpikingNet.split_state` maps a flat state back
to neuron and carry names.

State shapes are found without computing anything: :meth:`SpikingNet.init_state`
runs :meth:`step_with` once on ``meta`` tensors (shapes only) and records the
shape of every neuron's input current and of every carried value; the result is
cached per input shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from snnc.errors import SnncError, list_items
from snnc.neurons import Neuron, NeuronSpec, State, state_size

__all__ = ["SpikingNet", "StepContext"]

FlatState = tuple[Tensor, ...]


class StepContext:
    """Runs neurons and carried state for one step of a :class:`SpikingNet`, with explicit state.

    Args:
        states: ``id(neuron) -> state`` for this step (``None``: record shapes only).
        carries: ``carry name -> tensor`` for this step (ignored when ``states`` is ``None``).
    """

    def __init__(self, states: dict[int, State] | None = None, carries: Mapping[str, Tensor] | None = None) -> None:
        self._states = states
        self._carries = dict(carries or {})
        self.new_states: dict[int, State] = {}
        self.shapes: dict[int, torch.Size] = {}
        self.new_carries: dict[str, Tensor] = {}
        self.carry_shapes: dict[str, torch.Size] = {}

    def __call__(self, neuron: Neuron, current: Tensor) -> Tensor:
        """Apply ``neuron`` to ``current`` with its state; return its output (spikes)."""
        key = id(neuron)
        if key in self.new_states or key in self.shapes:
            raise RuntimeError(f"neuron {neuron!r} was called twice in one step")
        if self._states is None:  # shape probe on meta tensors
            self.shapes[key] = current.shape
            return torch.zeros_like(current)
        y: Tensor
        y, new_state = neuron(current, self._states[key])
        self.new_states[key] = new_state
        return y

    def carry(self, name: str, like: Tensor) -> Tensor:
        """This step's value of the carried state ``name`` (shaped like ``like``; zeros at rest).

        In a shape probe it records ``like``'s shape and returns zeros.
        """
        if name in self.carry_shapes:
            raise RuntimeError(f"carried state {name!r} was read twice in one step")
        self.carry_shapes[name] = like.shape
        if self._states is None:
            return torch.zeros_like(like)
        if name not in self._carries:
            raise RuntimeError(f"carried state {name!r} is not in this step's context: use step()/forward()")
        value = self._carries[name]
        if value.shape != like.shape:
            raise SnncError(
                f"carried state {name!r} has shape {tuple(value.shape)}, expected {tuple(like.shape)} "
                "(build the state with init_state)"
            )
        return value

    def put(self, name: str, value: Tensor) -> None:
        """Set the carried state ``name`` for the next step (exactly once per step, after :meth:`carry`)."""
        if name not in self.carry_shapes:
            raise RuntimeError(f"carried state {name!r} was written before it was read")
        if name in self.new_carries:
            raise RuntimeError(f"carried state {name!r} was written twice in one step")
        self.new_carries[name] = value


class _Probe(nn.Module):
    """Calls ``net.step_with`` through ``forward`` so ``functional_call`` can swap in meta tensors."""

    def __init__(self, net: SpikingNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x_t: Tensor, ctx: StepContext) -> Tensor:
        return self.net.step_with(x_t, ctx)


class SpikingNet(nn.Module):
    """Base class: explicit-state stepping over :meth:`step_with` (see module docstring).

    Attributes:
        genotype: the data the network was built from (``None`` for hand-made nets).
    """

    genotype: Any = None

    def __init__(self) -> None:
        super().__init__()
        self._shape_cache: dict[tuple[Any, ...], dict[str, torch.Size]] = {}
        self._carry_names: list[str] = []

    # ------------------------------------------------------------------ to implement
    def step_with(self, x_t: Tensor, ctx: StepContext) -> Tensor:
        """One time step; every neuron is applied as ``ctx(neuron, current)`` exactly once."""
        raise NotImplementedError

    def check_input(self, x_t: Tensor) -> None:
        """Raise :class:`SnncError` if ``x_t`` is not a valid one-step input (default: accept)."""

    # ------------------------------------------------------------------ neurons and state
    def neurons(self) -> list[tuple[str, Neuron]]:
        """Named neuron layers in state order (module registration order)."""
        return [(name, m) for name, m in self.named_modules() if isinstance(m, Neuron)]

    def register_carry(self, name: str) -> None:
        """Declare a carried (non-neuron) state tensor ``name``; the state holds them in declaration order.

        ``step_with`` must read it (``ctx.carry(name, like)``) and write it (``ctx.put``) once per step.
        """
        if name in self._carry_names or name in dict(self.neurons()):
            raise ValueError(f"state name {name!r} is declared twice")
        self._carry_names.append(name)

    def carry_names(self) -> list[str]:
        """Names of the carried state tensors, in state order (after every neuron layer's state)."""
        return list(self._carry_names)

    def state_len(self) -> int:
        """Number of tensors in the flat state (depends on the current neuron specs)."""
        return sum(self.state_sizes()) + len(self._carry_names)

    def neuron_shapes(self, x_t: Tensor) -> dict[str, torch.Size]:
        """Shape of each neuron layer's input current for one-step input ``x_t`` (no compute)."""
        self.check_input(x_t)
        key = tuple(x_t.shape)
        if key not in self._shape_cache:
            probe = _Probe(self)
            tensors = {
                f"net.{n}": torch.empty_like(t, device="meta")
                for n, t in list(self.named_parameters()) + list(self.named_buffers())
            }
            ctx = StepContext(None)
            modes = [(m, m.training) for m in self.modules()]
            self.eval()  # shapes do not depend on the mode; eval keeps BN from reading meta counters
            try:
                with torch.no_grad():
                    functional_call(probe, tensors, (torch.empty_like(x_t, device="meta"), ctx))
            finally:
                for m, mode in modes:
                    m.training = mode
            by_id = {id(m): name for name, m in self.neurons()}
            missing = [name for key_, name in by_id.items() if key_ not in ctx.shapes]
            missing += [name for name in self._carry_names if name not in ctx.new_carries]
            undeclared = sorted(set(ctx.carry_shapes) - set(self._carry_names))
            if missing or undeclared:
                raise RuntimeError(
                    f"step_with never ran neuron layers / wrote carried state: {', '.join(missing) or '-'}; "
                    f"undeclared carried state: {', '.join(undeclared) or '-'}"
                )
            shapes = {by_id[k]: s for k, s in ctx.shapes.items()}
            shapes.update(ctx.carry_shapes)
            self._shape_cache[key] = shapes
        return self._shape_cache[key]

    def set_neuron_specs(self, specs: Mapping[str, NeuronSpec]) -> None:
        """Replace the spec of the named neuron layers (HNS/TPS/DGS, genotype ``neuron_layers``).

        Raises:
            SnncError: a name is not one of :meth:`neurons` (some valid names are listed).
        """
        layers = dict(self.neurons())
        unknown = [name for name in specs if name not in layers]
        if unknown:
            names = list(layers)
            shown = ", ".join(names[:6]) + (f", ... ({len(names)} in all)" if len(names) > 6 else "")
            raise SnncError(
                f"neuron_layers: unknown neuron layer(s) {list_items(unknown, fmt=repr)} "
                f"(this network's layers: {shown})"
            )
        for name, spec in specs.items():
            if not isinstance(spec, NeuronSpec):
                raise SnncError(f"neuron_layers[{name!r}] must be a NeuronSpec, got {type(spec).__name__}")
            layers[name].spec = spec

    def state_sizes(self) -> list[int]:
        """Number of state tensors of each neuron layer, in state order."""
        return [state_size(neuron.spec) for _, neuron in self.neurons()]

    def init_state(self, x_t: Tensor) -> FlatState:
        """Resting state (all zeros) for one-step input ``x_t``, as a flat tuple in neuron order."""
        shapes = self.neuron_shapes(x_t)
        zero = x_t.new_zeros(())
        state: list[Tensor] = []
        for name, neuron in self.neurons():
            state.extend(neuron.init_state(zero.expand(shapes[name])))
        state.extend(x_t.new_zeros(shapes[name]) for name in self._carry_names)
        return tuple(state)

    def split_state(self, state: FlatState) -> dict[str, State]:
        """Map a flat state to ``{neuron layer or carry name: its state tuple}`` (a carry: one tensor).

        Raises:
            SnncError: ``state`` does not hold the expected number of tensors.
        """
        neurons = self.neurons()
        sizes = [state_size(n.spec) for _, n in neurons]
        carries = self._carry_names
        if len(state) != sum(sizes) + len(carries):
            carried = f" and {len(carries)} carried tensors" if carries else ""
            raise SnncError(
                f"network state has {len(state)} tensors, expected {sum(sizes) + len(carries)} "
                f"({len(neurons)} neuron layers{carried}; build it with init_state)"
            )
        out, i = {}, 0
        for (name, _), size in zip(neurons, sizes, strict=True):
            out[name] = tuple(state[i : i + size])
            i += size
        for name, t in zip(carries, state[i:], strict=True):
            out[name] = (t,)
        return out

    # ------------------------------------------------------------------ stepping
    def step(self, x_t: Tensor, state: FlatState) -> tuple[Tensor, FlatState]:
        """One time step: ``(x_t, state) -> (output, new_state)``; pure apart from BN statistics."""
        self.check_input(x_t)
        neurons = self.neurons()
        by_name = self.split_state(tuple(state))
        carries = {name: by_name[name][0] for name in self._carry_names}
        ctx = StepContext({id(m): by_name[name] for name, m in neurons}, carries)
        y = self.step_with(x_t, ctx)
        new_state: list[Tensor] = []
        for name, m in neurons:
            if id(m) not in ctx.new_states:
                raise RuntimeError(f"neuron layer {name} was not called by step_with")
            new_state.extend(ctx.new_states[id(m)])
        for name in self._carry_names:
            if name not in ctx.new_carries:
                raise RuntimeError(f"carried state {name} was not written by step_with")
            new_state.append(ctx.new_carries[name])
        return y, tuple(new_state)

    def run(self, x_seq: Tensor, state: FlatState | None = None) -> tuple[Tensor, FlatState]:
        """Steps over the leading time axis: ``(T, B, ...) -> ((T, B, ...), final state)``."""
        if x_seq.dim() < 2 or x_seq.shape[0] < 1:
            raise SnncError(f"expected a sequence shaped (T, B, ...) with T >= 1, got {tuple(x_seq.shape)}")
        if state is None:
            state = self.init_state(x_seq[0])
        outputs = []
        for t in range(x_seq.shape[0]):
            y, state = self.step(x_seq[t], state)
            outputs.append(y)
        return torch.stack(outputs), state

    def forward(self, x_seq: Tensor, state: FlatState | None = None) -> Tensor:
        """Fixed-window mode: ``(T, B, ...) -> (T, B, ...)``, exactly a loop of :meth:`step`."""
        return self.run(x_seq, state)[0]
