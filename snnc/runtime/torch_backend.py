"""Torch backend: ``model.step`` on CPU or CUDA with the explicit state carried across frames.

Eager by default. Options:

* ``dtype`` ``fp16`` / ``bf16``: the synaptic layers run under :func:`torch.autocast` at that type
  (neuron state stays float32; spikes may then differ from float32: ``benchmarks/gpu_stream.sh``
  counts the mismatches);
* ``cuda_graph``: the step is captured once as a CUDA graph and replayed per frame
  (:class:`snnc.runtime.cuda_graph.CudaGraphStep`; CUDA devices only). The energy hooks cannot run
  inside a replayed graph, so a graphed backend has no ``live_model``: stream it with energy off.

Energy is counted from what each step already returns (:meth:`TorchBackend.activity_meter`): every
neuron layer's spikes are its ``y`` state tensor, so the per-layer counts come from the new state and
the frame through the network's export Graph (:class:`snnc.export.activity.ActivityPlan`, the plan the
onnx backend uses), on the device, read back once per frame: no forward hooks, so the step runs its
fast matching form (hooks force the literal one, :meth:`snnc.models.stereo.MatchingNet.from_views`).
A network whose state lacks a counted input (:func:`snnc.export.activity.state_countable`) is counted
by hooks on :attr:`live_model` as before.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from snnc.energy.costs import EnergyCosts
from snnc.energy.meter import ActivityMeter
from snnc.errors import SnncError
from snnc.models.base import SpikingNet
from snnc.runtime.base import Backend
from snnc.runtime.cuda_graph import AUTOCAST_DTYPES, CudaGraphStep, autocast_context

__all__ = ["DTYPES", "TorchBackend", "torch_state_names"]

#: ``--dtype`` choices of the torch backend.
DTYPES: tuple[str, ...] = tuple(AUTOCAST_DTYPES)


def torch_state_names(model: SpikingNet) -> list[str]:
    """A name per tensor of ``model``'s flat state, in its order: ``<neuron layer>.<field>`` (fields from
    :data:`snnc.neurons.STATE_FIELDS`: ``u`` membrane, ``y`` spikes), then the carried values' names."""
    from snnc.neurons import STATE_FIELDS

    names = [f"{name}.{field}" for name, neuron in model.neurons() for field in STATE_FIELDS[neuron.spec.type]]
    return names + model.carry_names()


class TorchBackend(Backend):
    """Runs the folded network with PyTorch; ``live_model`` is the network itself (energy hooks attach to it).

    Args:
        model: the folded, eval-mode network (moved to ``device``).
        device: ``cpu`` or a CUDA device.
        dtype: ``fp32`` (default), ``fp16`` or ``bf16`` (autocast of the synaptic layers).
        cuda_graph: capture the step as a CUDA graph (needs a CUDA device).

    Raises:
        SnncError: unknown ``dtype``, or ``cuda_graph`` on a device that is not CUDA.
    """

    name = "torch"

    def __init__(
        self, model: SpikingNet, device: torch.device, *, dtype: str = "fp32", cuda_graph: bool = False
    ) -> None:
        self.device = torch.device(device)
        if dtype not in AUTOCAST_DTYPES:
            raise SnncError(f"unknown --dtype {dtype!r} (expected one of {', '.join(DTYPES)})")
        if cuda_graph and self.device.type != "cuda":
            raise SnncError(f"--cuda-graph needs --device cuda (CUDA graphs record GPU work), not {self.device}")
        self.dtype = dtype
        self._autocast = AUTOCAST_DTYPES[dtype]
        self.cuda_graph = bool(cuda_graph)
        self.model = model.to(self.device).eval()
        self.live_model = None if self.cuda_graph else self.model
        #: a name per state tensor (:func:`torch_state_names`); spikes are the ``*.y`` entries of :attr:`state`
        self.state_names = torch_state_names(self.model)
        self._state: tuple[Tensor, ...] = ()
        self._graph: CudaGraphStep | None = None
        self._graph_shape: tuple[int, ...] | None = None
        self._meter: ActivityMeter | None = None
        self._plan: Any = None  # snnc.export.activity.ActivityPlan of the meter's frame shape
        self._plan_shape: tuple[int, ...] | None = None
        self._family = ""
        self._spikes: list[tuple[str, int]] = []  # (neuron layer, index of its y in the flat state)

    def activity_meter(self, *, costs: EnergyCosts, count: str, energy_model: str) -> ActivityMeter | None:
        """A meter fed from every step's new state (the spikes) and the frame: no hooks (None: the network's
        state lacks a counted input, :func:`snnc.export.activity.state_countable`; hooks on ``live_model``)."""
        from snnc.export.activity import state_countable

        self._meter = None
        if state_countable(self.model) is None:
            self._meter = ActivityMeter(costs=costs, count=count, steps_per_frame=1.0, energy_model=energy_model)
        return self._meter

    def _bind_meter(self, x0: Tensor, meter: ActivityMeter) -> None:
        """The counting plan for frames shaped like ``x0`` (the export Graph, once per shape), bound to ``meter``."""
        from snnc.export.activity import ActivityPlan
        from snnc.export.lower import graph_inputs, lower
        from snnc.neurons import STATE_FIELDS

        shape = tuple(int(s) for s in x0.shape)
        if self._plan is None or shape != self._plan_shape:
            graph = lower(self.model, shape)
            self._family = str(graph.meta["family"])
            self._plan = ActivityPlan(graph, self.model, int(graph_inputs(self._family, x0)["x"].shape[0]))
            self._plan_shape = shape
            self._spikes, i = [], 0
            for name, neuron in self.model.neurons():
                fields = STATE_FIELDS[neuron.spec.type]
                self._spikes.append((name, i + fields.index("y")))
                i += len(fields)
            missing = self._plan.taps([(name, "y") for name, _ in self._spikes], neurons=meter.neurons)
            if missing:  # state_countable admits only networks whose counted inputs are spikes or the input
                raise RuntimeError(f"energy counting needs graph node {missing[0]!r}, which the torch state lacks")
        meter.bind(self._plan.specs(), self._plan.neurons, batch=shape[0])
        self._plan.prepare(meter.events, meter.neurons, self.device)

    def reset(self, x0: Tensor) -> None:
        """Zero state for frames shaped like ``x0`` (with ``cuda_graph``: captured on the first reset per shape)."""
        x0 = x0.to(self.device)
        if self._meter is not None:
            self._bind_meter(x0, self._meter)
        with torch.no_grad():
            self._state = self.model.init_state(x0)
        if self.cuda_graph:
            shape = tuple(int(s) for s in x0.shape)
            if self._graph is None or shape != self._graph_shape:
                self._graph = CudaGraphStep(self.model, x0, self._state, self._autocast)
                self._graph_shape = shape
            else:
                self._graph.reset(self._state)

    def step(self, x: Tensor) -> Tensor:
        """One network step on the device; returns the cost (float32) on the device (its counting deferred to the
        meter, :meth:`~snnc.energy.meter.ActivityMeter.defer`)."""
        meter = self._meter if self._plan is not None else None
        if meter is not None:
            meter.flush()  # the previous step's counting, before a CUDA graph replay overwrites that state
        x = x.to(self.device, non_blocking=True)
        if self._graph is not None:
            cost = self._graph(x).clone()
        else:
            with torch.no_grad(), autocast_context(self.device, self._autocast):
                cost, self._state = self.model.step(x, self._state)
            cost = cost.float()
        if meter is not None:
            from snnc.export.lower import graph_inputs

            state = self.state
            values: dict[str, Tensor] = dict(graph_inputs(self._family, x))
            values.update((name, state[i]) for name, i in self._spikes)
            plan, events, neurons = self._plan, meter.events, meter.neurons
            meter.defer(lambda: plan.count(values, events, neurons))
        return cost

    @property
    def state(self) -> tuple[Tensor, ...]:
        """The network state after the last step (flat, in the network's state order)."""
        return self._graph.static.state if self._graph is not None else self._state

    def placement(self) -> list[dict[str, Any]]:
        """Everything on one torch device."""
        layers = sum(
            1 for m in self.model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.Linear))
        )
        mode = "CUDA graph" if self.cuda_graph else "eager"
        dtype = "" if self.dtype == "fp32" else f", {self.dtype} autocast"
        return [{"part": "network", "runs_on": f"torch {mode} ({self.device}{dtype})", "synaptic_layers": layers}]
