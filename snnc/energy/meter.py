"""Per-frame energy of a stream, from the one counting pass.

:class:`EnergyMeter` keeps an :class:`~snnc.energy.ops.OpsRecorder` attached to
a torch network while frames are processed; after each frame,
:meth:`EnergyMeter.frame` returns that frame's :class:`~snnc.energy.report.EnergyReport`
(the difference of two snapshots of the same pass) and :meth:`EnergyMeter.total`
the report over every frame so far. Nothing is counted twice: per-frame and
total numbers come from the same hooks.

:class:`ActivityMeter` gives the same reports without hooks, for backends that
do not run the torch network (onnxruntime, the hybrid partition): the caller
measures each step's layer inputs (:class:`LayerInput`) and neuron outputs
(:class:`NeuronOutput`) from the values its step already produced (the spikes in
the state; :class:`snnc.export.activity.ActivityPlan`) and the meter accumulates
them exactly as :class:`~snnc.energy.ops.OpsRecorder` accumulates its hooks' counts.
A backend may hand over a step's counting as a call (:meth:`ActivityMeter.defer`) that runs when
the counts are next read (:meth:`~ActivityMeter.frame`): the counting is then timed as energy
counting, not as the backend's inference. A pipelined backend that answers several frames in one
call (Lava's flush) queues each frame's measured counts (:meth:`ActivityMeter.queue`), and every
:meth:`~ActivityMeter.frame` closes one of them, so each frame's report holds its own counts.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from snnc.energy.costs import DEFAULT_COSTS, EnergyCosts
from snnc.energy.models import check_energy_model
from snnc.energy.ops import LayerOps, NeuronActivity, OpsRecorder, OpsReport, _dense_ops, _geometry
from snnc.energy.report import EnergyReport, energy_report

__all__ = ["EnergyMeter", "ActivityMeter", "LayerInput", "NeuronOutput", "LayerSpec", "StepCount"]


class _FrameReports:
    """Per-frame and total energy reports over a growing count (:meth:`_snapshot`); shared by both meters."""

    energy_model: str
    costs: EnergyCosts
    count: str
    steps_per_frame: float
    mac_layers: tuple[str, ...]
    frames: int
    _last: OpsReport | None

    def _snapshot(self) -> OpsReport:
        """Everything counted so far."""
        raise NotImplementedError

    def _report(self, ops: OpsReport, frames: int) -> EnergyReport:
        return energy_report(
            ops,
            frames=frames,
            steps_per_frame=self.steps_per_frame,
            costs=self.costs,
            count=self.count,
            mac_layers=self.mac_layers,
            energy_model=self.energy_model,
        )

    def frame(self) -> EnergyReport:
        """Close the current frame: the report of everything counted since the previous call."""
        now = self._snapshot()
        delta = now.minus(self._last)
        self._last = now
        self.frames += 1
        return self._report(delta, 1)

    def ops(self) -> OpsReport:
        """The raw counts so far (every frame)."""
        return self._snapshot()

    def total(self) -> EnergyReport:
        """Report per frame averaged over every closed frame (at least one frame is assumed)."""
        return self._report(self._snapshot(), max(self.frames, 1))


class EnergyMeter(_FrameReports):
    """Counts ops of ``model`` while active (context manager) and reports energy per frame.

    Args:
        model: the torch network that processes the frames.
        costs: per-op energies.
        count: ``rate`` or ``events`` (records fan-out events too).
        steps_per_frame: time steps per frame (1 for stereo streaming).
        neurons: also record each neuron layer's firing rate.
        mac_layers: layer names forced to count as real-valued input.
        energy_model: ``paper``, ``memory`` or ``lemaire`` (:mod:`snnc.energy.models`);
            ``memory`` records fan-out events (its weight reads), and every model other than
            ``paper`` records the neuron layers (their updates and state traffic).
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        costs: EnergyCosts = DEFAULT_COSTS,
        count: str = "rate",
        steps_per_frame: float = 1.0,
        neurons: bool = False,
        mac_layers: Iterable[str] = (),
        energy_model: str = "paper",
    ) -> None:
        self.energy_model = check_energy_model(energy_model)
        self.model = model
        self.costs = costs
        self.count = count
        self.steps_per_frame = steps_per_frame
        self.mac_layers = tuple(mac_layers)
        self.frames = 0
        events = count == "events" or energy_model == "memory"
        self._recorder = OpsRecorder(
            model, fanout="input" if events else None, neurons=neurons or energy_model != "paper"
        )
        self._last: OpsReport | None = None
        self._active = False

    def __enter__(self) -> EnergyMeter:
        self._recorder.__enter__()
        self._active = True
        return self

    def __exit__(self, *exc: Any) -> None:
        self._recorder.__exit__(*exc)
        self._active = False

    def _snapshot(self) -> OpsReport:
        return self._recorder.snapshot()


@dataclass(frozen=True)
class LayerInput:
    """One call's input of a counted layer, whole batch: what the hooks count of the tensor itself.

    Attributes:
        nonzero, elements: nonzero and total input elements.
        negative: elements < 0; non_ternary: elements outside {-1, 0, 1}.
        events: fan-out events (padding excluded), ``None`` when not counted.
    """

    nonzero: int
    elements: int
    negative: int = 0
    non_ternary: int = 0
    events: float | None = None


@dataclass(frozen=True)
class NeuronOutput:
    """One call's output of a neuron layer, whole batch: nonzero and total elements, and their sum."""

    nonzero: int
    elements: int
    total: float


#: A deferred step's counting (:meth:`ActivityMeter.defer`): returns :meth:`ActivityMeter.record`'s arguments.
StepCount = Callable[[], tuple[Mapping[str, LayerInput], Mapping[str, NeuronOutput] | None]]


@dataclass(frozen=True)
class LayerSpec:
    """A counted layer as the hooks would first see it: module, torch input and output shapes (batch included)."""

    name: str
    module: nn.Module
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]


class ActivityMeter(_FrameReports):
    """:class:`EnergyMeter`'s reports from measured layer inputs instead of hooks (module docstring).

    Bind the layers once (:meth:`bind`), then :meth:`record` every step; :meth:`frame`,
    :meth:`total`, :meth:`ops` and the context manager behave as :class:`EnergyMeter`'s.

    Args:
        costs, count, steps_per_frame, mac_layers, energy_model: as :class:`EnergyMeter`.
        neurons: also record each neuron layer's outputs under the ``paper`` model (its firing rates,
            as :class:`EnergyMeter`'s ``neurons``); every other model records them anyway.
    """

    def __init__(
        self,
        *,
        costs: EnergyCosts = DEFAULT_COSTS,
        count: str = "rate",
        steps_per_frame: float = 1.0,
        mac_layers: Iterable[str] = (),
        energy_model: str = "paper",
        neurons: bool = False,
    ) -> None:
        self.energy_model = check_energy_model(energy_model)
        self.costs = costs
        self.count = count
        self.steps_per_frame = steps_per_frame
        self.mac_layers = tuple(mac_layers)
        self.frames = 0
        #: record fan-out events (``events`` counting, the memory model), as EnergyMeter's recorder does
        self.events = count == "events" or energy_model == "memory"
        #: record neuron outputs (every model but ``paper``; ``paper`` too with ``neurons``)
        self.neurons = neurons or energy_model != "paper"
        self._specs: list[LayerSpec] = []
        self._macs: dict[str, int] = {}
        self._layers: dict[str, LayerOps] = {}
        self._neurons: dict[str, NeuronActivity] = {}
        self._neuron_types: dict[str, str] = {}
        self._batch = 1
        self._last: OpsReport | None = None
        self._pending: StepCount | None = None
        self._queued: deque[tuple[Mapping[str, LayerInput], Mapping[str, NeuronOutput] | None]] = deque()

    def __enter__(self) -> ActivityMeter:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    @property
    def bound(self) -> bool:
        """Whether :meth:`bind` was called."""
        return bool(self._specs)

    def bind(self, layers: Sequence[LayerSpec], neurons: Mapping[str, str], batch: int) -> None:
        """The counted layers (in the network's module order), neuron layers ``{name: type}`` and examples per step.

        ``batch`` is the network input's batch (``x_t.shape[0]``), the examples the hooks divide by.
        """
        self.flush()
        self._drain()
        self._specs = list(layers)
        self._neuron_types = dict(neurons)
        self._batch = int(batch)
        self._macs = {}
        for spec in self._specs:
            x = torch.empty(spec.input_shape, device="meta")
            y = torch.empty(spec.output_shape, device="meta")
            self._macs[spec.name] = _dense_ops(spec.module, x, y)[0]

    def record(self, inputs: Mapping[str, LayerInput], outputs: Mapping[str, NeuronOutput] | None = None) -> None:
        """Add one step: every bound layer's input (and, when :attr:`neurons`, every neuron layer's output)."""
        n = self._batch
        for spec in self._specs:
            x = inputs[spec.name]
            layer = self._layers.get(spec.name)
            if layer is None:
                module = spec.module
                layer = self._layers[spec.name] = LayerOps(
                    name=spec.name,
                    type=type(module).__name__,
                    input_shape=list(spec.input_shape),
                    output_shape=list(spec.output_shape),
                    parameters=sum(p.numel() for p in module.parameters(recurse=False)),
                    geometry=_geometry(module),
                )
            macs = self._macs[spec.name]
            out_numel = 1
            for s in spec.output_shape:
                out_numel *= int(s)
            layer.calls += 1
            layer.dense_ops += macs // n
            if self.events:
                if x.events is None:
                    raise ValueError(f"{spec.name}: fan-out events were not measured")
                layer.fanout_events = (layer.fanout_events or 0.0) + x.events / n
            layer.input_count += x.elements / n
            layer.active_inputs += x.nonzero / n
            layer.output_count += out_numel / n
            layer._nonzero += x.nonzero
            layer._elements += x.elements
            layer.input_rate = layer._nonzero / layer._elements if layer._elements else 0.0
            if x.elements:
                layer.active_ops += (macs // n) * (x.nonzero / x.elements)
                if layer.input_is_ternary:
                    layer.input_is_ternary = x.non_ternary == 0
                    if not layer.input_is_ternary:
                        layer.input_is_binary = False
                if layer.input_is_binary:
                    layer.input_is_binary = x.negative == 0
        if self.neurons:
            for name, kind in self._neuron_types.items():
                y = (outputs or {})[name]
                act = self._neurons.get(name)
                if act is None:
                    act = self._neurons[name] = NeuronActivity(name, kind)
                act.calls += 1
                act.elements += y.elements
                act.nonzero += y.nonzero
                act.total += y.total
                act.updates += y.elements / n
                act.spikes += y.nonzero / n

    def defer(self, count: StepCount) -> None:
        """Record a step later: ``count()`` returns its :meth:`record` arguments and runs when the counts are next
        needed (:meth:`flush`, :meth:`frame`, :meth:`ops`, :meth:`total`). A step still pending is recorded first,
        so a backend that defers every step after its previous step's values are gone must :meth:`flush` first."""
        self.flush()
        self._pending = count

    def flush(self) -> None:
        """Record the deferred step, if any."""
        pending, self._pending = self._pending, None
        if pending is not None:
            self.record(*pending())

    def queue(self, inputs: Mapping[str, LayerInput], outputs: Mapping[str, NeuronOutput] | None = None) -> None:
        """One frame's counts, measured now (:meth:`record`'s arguments), recorded when a later :meth:`frame` closes
        that frame: each :meth:`frame` records the oldest queued frame (after the deferred step, if any), :meth:`ops`
        and :meth:`total` every queued frame. For a pipelined backend that answers several frames in one call (Lava's
        flush), so that each frame's report holds its own counts."""
        self._queued.append((inputs, outputs))

    def _drain(self) -> None:
        """Record every queued frame."""
        while self._queued:
            self.record(*self._queued.popleft())

    def frame(self) -> EnergyReport:
        """Close the current frame (:meth:`_FrameReports.frame`): the deferred step and the oldest queued frame."""
        self.flush()
        if self._queued:
            self.record(*self._queued.popleft())
        return super().frame()

    def ops(self) -> OpsReport:
        """The raw counts so far (every frame, the queued ones too)."""
        self._drain()
        return super().ops()

    def total(self) -> EnergyReport:
        """Report per frame over every closed frame (the queued ones recorded first)."""
        self._drain()
        return super().total()

    def _snapshot(self) -> OpsReport:
        self.flush()
        layers = [self._layers[s.name].copy() for s in self._specs if s.name in self._layers]
        neurons = [self._neurons[n].minus(None) for n in self._neuron_types if n in self._neurons]  # copies
        return OpsReport(layers, False, "input" if self.events else None, False, neurons)
