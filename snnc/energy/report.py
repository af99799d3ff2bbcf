"""ACs, MACs and energy per frame from one op-counting pass (``spec/energy.md``, methods.md §8).

Input: an :class:`~snnc.energy.ops.OpsReport` of a pass over ``frames`` real
frames (a stream of depth frames, or images each run for ``T`` steps). Per
synaptic layer, per frame:

* the layer's input is **spikes** when every input element it saw was -1, 0
  or 1 (binary spikes; signed events such as the SBT input of the stereo
  net, where each event is one add or subtract). Then
  ``ACs = input firing rate x steps x dense ops`` (the papers' formula;
  counted exactly per call as :attr:`LayerOps.active_ops`) and ``MACs = 0``;
* otherwise the input is **real-valued** (an image fed to the first layer, a
  ReLU layer's output, a membrane potential read out by a later layer):
  ``MACs = dense ops x steps`` and ``ACs = 0``;
* ``count="events"`` replaces the AC count of spike layers by the stricter
  fan-out synaptic events (spikes x the synapses each reaches, padding
  excluded), which is what neuromorphic hardware performs. It needs a pass
  recorded with ``fanout="input"``.

``energy = ACs x E_AC + MACs x E_MAC`` (:mod:`snnc.energy.costs`; 0.9 / 4.6 pJ).

The same network counted as an **ANN** does every dense op as a MAC once per
frame (an ANN has no time steps): ``ann MACs = dense ops / steps_per_frame``.
For the stereo net streamed one step per frame the two coincide.

A layer whose input happens to be all zeros and ones but is real-valued in
principle (a ReLU layer that only output 0/1 on the data) is indistinguishable
from spikes by its values; name it in ``mac_layers`` to force MACs.

``energy_model`` (:mod:`snnc.energy.models`): ``paper`` is the above; ``memory``
and ``lemaire`` add neuron updates and memory traffic. Every report splits
energy per layer into synaptic compute (``compute_j``), memory (``memory_j``)
and, on the neuron rows (:class:`~snnc.energy.models.NeuronEnergy`), neuron
updates; ``paper`` keeps the neuron updates out of its total.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from snnc.energy.costs import DEFAULT_COSTS, EnergyCosts
from snnc.energy.models import (
    LemaireConfig,
    MemoryConfig,
    NeuronEnergy,
    ann_energy,
    check_energy_model,
    neuron_energy,
    synaptic_energy,
)
from snnc.energy.ops import OpsReport
from snnc.errors import SnncError

__all__ = ["COUNT_MODES", "SILENT_RATE", "LayerEnergy", "EnergyReport", "energy_report"]

#: ``rate``: the papers' AC formula; ``events``: fan-out synaptic events.
COUNT_MODES: tuple[str, ...] = ("rate", "events")
#: Below this dense-op-weighted mean input rate of the spike layers the network is called silent.
SILENT_RATE: float = 1e-3


@dataclass
class LayerEnergy:
    """One synaptic layer's counts per frame.

    Attributes:
        name, type: as in :class:`~snnc.energy.ops.LayerOps`.
        input_kind: ``spikes`` or ``real``.
        dense_ops: dense synaptic ops per frame (all steps of the frame).
        input_rate: fraction of nonzero inputs (the firing rate for spike input).
        ac, mac: accumulates and multiply-accumulates per frame.
        energy_j: ``compute_j + memory_j`` in joules (``paper``: ``ac * E_AC + mac * E_MAC``).
        fanout_events: fan-out synaptic events per frame, when recorded.
        compute_j: synaptic compute energy.
        memory_j: energy of the layer's memory traffic (0 for ``paper``).
        memory_bytes: that traffic per frame, by kind.
    """

    name: str
    type: str
    input_kind: str
    dense_ops: float
    input_rate: float
    ac: float
    mac: float
    energy_j: float
    fanout_events: float | None = None
    compute_j: float = 0.0
    memory_j: float = 0.0
    memory_bytes: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict."""
        return asdict(self)


@dataclass
class EnergyReport:
    """Per-layer and total ACs, MACs and energy per frame, plus the ANN comparison.

    Attributes:
        layers: per-layer counts (synaptic layers in module order).
        frames: frames the pass covered (counts are divided by it).
        steps_per_frame: time steps per frame (1 when streaming stereo, T for images).
        costs: the per-op energies used.
        count: ``rate`` or ``events``.
        neuron_rates: output firing rate per neuron layer, when recorded.
        energy_model: ``paper``, ``memory`` or ``lemaire``.
        neurons: neuron-update rows (one per recorded neuron layer).
        ann: the ANN comparison under ``energy_model`` (``None``: the papers' MACs only).
    """

    layers: list[LayerEnergy]
    frames: int
    steps_per_frame: float
    costs: EnergyCosts
    count: str = "rate"
    neuron_rates: dict[str, float] = field(default_factory=dict)
    energy_model: str = "paper"
    neurons: list[NeuronEnergy] = field(default_factory=list)
    ann: dict[str, float] | None = None

    @property
    def ac(self) -> float:
        """ACs per frame."""
        return float(sum(layer.ac for layer in self.layers))

    @property
    def mac(self) -> float:
        """MACs per frame."""
        return float(sum(layer.mac for layer in self.layers))

    @property
    def energy_j(self) -> float:
        """Energy per frame in joules under the model (``paper``: synaptic compute only)."""
        return float(sum(layer.energy_j for layer in self.layers) + sum(n.energy_j for n in self.neurons if n.counted))

    @property
    def compute_j(self) -> float:
        """Synaptic compute energy per frame."""
        return float(sum(layer.compute_j for layer in self.layers))

    @property
    def neuron_j(self) -> float:
        """Neuron-update compute energy per frame (outside the total for ``paper``)."""
        return float(sum(n.compute_j for n in self.neurons))

    @property
    def memory_j(self) -> float:
        """Memory-traffic energy per frame (synaptic and neuron layers)."""
        return float(sum(layer.memory_j for layer in self.layers) + sum(n.memory_j for n in self.neurons))

    @property
    def neuron_updates(self) -> float:
        """Neuron updates per frame (neurons x steps)."""
        return float(sum(n.updates for n in self.neurons))

    @property
    def dense_ops(self) -> float:
        """Dense synaptic ops per frame (all steps)."""
        return float(sum(layer.dense_ops for layer in self.layers))

    @property
    def ann_mac(self) -> float:
        """MACs per frame of the same network as an ANN (one pass, every dense op a MAC)."""
        return self.dense_ops / self.steps_per_frame

    @property
    def ann_energy_j(self) -> float:
        """Energy per frame of the ANN comparison (under the same energy model)."""
        if self.ann is not None:
            return float(self.ann["energy_j"])
        return self.ann_mac * self.costs.mac_j

    @property
    def spike_input_rate(self) -> float:
        """Dense-op-weighted mean input rate of the spike-input layers (0 when there are none)."""
        spikes = [layer for layer in self.layers if layer.input_kind == "spikes"]
        ops = sum(layer.dense_ops for layer in spikes)
        return float(sum(layer.input_rate * layer.dense_ops for layer in spikes) / ops) if ops else 0.0

    @property
    def silent(self) -> bool:
        """The spike layers (other than a first layer on events) hardly receive spikes.

        Typical of an untrained network in eval mode: BatchNorm with its initial
        statistics leaves the membrane far below threshold.
        """
        inner = [layer for layer in self.layers[1:] if layer.input_kind == "spikes"]
        ops = sum(layer.dense_ops for layer in inner)
        if not ops:
            return False
        return sum(layer.input_rate * layer.dense_ops for layer in inner) / ops < SILENT_RATE

    def by_part(self, part_of: Callable[[LayerEnergy], str]) -> dict[str, dict[str, float]]:
        """Totals per part: ``part_of(layer)`` names each layer's part (hybrid partitions)."""
        parts: dict[str, dict[str, float]] = {}
        for layer in self.layers:
            p = parts.setdefault(
                part_of(layer), {"layers": 0, "dense_ops": 0.0, "ac": 0.0, "mac": 0.0, "energy_j": 0.0}
            )
            p["layers"] += 1
            p["dense_ops"] += layer.dense_ops
            p["ac"] += layer.ac
            p["mac"] += layer.mac
            p["energy_j"] += layer.energy_j
        return parts

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict: ``layers``, ``total``, ``ann_total`` (all per frame) and settings."""
        return {
            "per": "frame",
            "frames": self.frames,
            "steps_per_frame": self.steps_per_frame,
            "count": self.count,
            "energy_model": self.energy_model,
            "costs": self.costs.to_dict(),
            "layers": [layer.to_dict() for layer in self.layers],
            "neurons": [n.to_dict() for n in self.neurons],
            "total": {
                "dense_ops": self.dense_ops,
                "ac": self.ac,
                "mac": self.mac,
                "energy_j": self.energy_j,
                "synaptic_j": self.compute_j,
                "neuron_j": self.neuron_j,
                "neuron_updates": self.neuron_updates,
                "neuron_in_total": self.energy_model != "paper",
                "memory_j": self.memory_j,
                "spike_input_rate": self.spike_input_rate,
            },
            "ann_total": {"mac": self.ann_mac, "energy_j": self.ann_energy_j, **(self.ann or {})},
            "snn_vs_ann_energy": (self.energy_j / self.ann_energy_j) if self.ann_energy_j else None,
            "silent": self.silent,
            "neuron_rates": dict(self.neuron_rates),
        }

    def to_csv(self) -> str:
        """One CSV row per layer, then ``TOTAL`` and ``ANN`` rows (per frame)."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["name", "type", "input_kind", "dense_ops", "input_rate", "ac", "mac", "energy_j"])
        for layer in self.layers:
            w.writerow(
                [
                    layer.name,
                    layer.type,
                    layer.input_kind,
                    f"{layer.dense_ops:.6g}",
                    f"{layer.input_rate:.6g}",
                    f"{layer.ac:.6g}",
                    f"{layer.mac:.6g}",
                    f"{layer.energy_j:.6g}",
                ]
            )
        w.writerow(
            [
                "TOTAL",
                "",
                "",
                f"{self.dense_ops:.6g}",
                f"{self.spike_input_rate:.6g}",
                f"{self.ac:.6g}",
                f"{self.mac:.6g}",
                f"{self.energy_j:.6g}",
            ]
        )
        w.writerow(
            ["ANN", "", "real", f"{self.ann_mac:.6g}", "", "0", f"{self.ann_mac:.6g}", f"{self.ann_energy_j:.6g}"]
        )
        return buf.getvalue()

    def format_table(self, max_layers: int | None = None) -> str:
        """Human-readable per-layer table (M ops, %, uJ split into synaptic / neuron / memory), totals, ANN row.

        Synaptic layers first, then one row per neuron layer (``input`` column ``neuron``:
        ``dense M`` holds its updates, ``AC M`` / ``MAC M`` the updates' ops).
        """
        rows = self.layers if max_layers is None else self.layers[:max_layers]
        nrows = self.neurons if max_layers is None else self.neurons[:max_layers]
        width = max([len("layer")] + [len(layer.name) for layer in rows] + [len(n.name) for n in nrows])
        head = (
            f"{'layer':<{width}}  {'input':6s} {'dense M':>10s} {'rate %':>7s} {'AC M':>10s} {'MAC M':>10s} "
            f"{'synapt uJ':>10s} {'neuron uJ':>10s} {'memory uJ':>10s} {'energy uJ':>10s}"
        )
        lines = [head, "-" * len(head)]
        for layer in rows:
            lines.append(
                f"{layer.name:<{width}}  {layer.input_kind:6s} {layer.dense_ops / 1e6:10.3f} "
                f"{100 * layer.input_rate:7.2f} {layer.ac / 1e6:10.3f} {layer.mac / 1e6:10.3f} "
                f"{layer.compute_j * 1e6:10.3f} {'':10s} {layer.memory_j * 1e6:10.3f} {layer.energy_j * 1e6:10.3f}"
            )
        for n in nrows:
            rate = n.spikes / n.updates if n.updates else 0.0
            shown = n.energy_j if n.counted else 0.0
            lines.append(
                f"{n.name:<{width}}  {'neuron':6s} {n.updates / 1e6:10.3f} {100 * rate:7.2f} {n.ac / 1e6:10.3f} "
                f"{n.mac / 1e6:10.3f} {'':10s} {n.compute_j * 1e6:10.3f} {n.memory_j * 1e6:10.3f} {shown * 1e6:10.3f}"
            )
        hidden = len(self.layers) - len(rows) + len(self.neurons) - len(nrows)
        if hidden:
            lines.append(f"... {hidden} more layers (use --format json or csv for all)")
        lines.append("-" * len(head))
        neuron_total = f"{self.neuron_j * 1e6:10.3f}" if self.neurons else f"{'':10s}"
        lines.append(
            f"{'total':<{width}}  {'':6s} {self.dense_ops / 1e6:10.3f} {100 * self.spike_input_rate:7.2f} "
            f"{self.ac / 1e6:10.3f} {self.mac / 1e6:10.3f} {self.compute_j * 1e6:10.3f} {neuron_total} "
            f"{self.memory_j * 1e6:10.3f} {self.energy_j * 1e6:10.3f}"
        )
        ann = self.ann or {"compute_j": self.ann_energy_j, "neuron_j": 0.0, "memory_j": 0.0}
        lines.append(
            f"{'as an ANN':<{width}}  {'real':6s} {self.ann_mac / 1e6:10.3f} {'':7s} {0.0:10.3f} "
            f"{self.ann_mac / 1e6:10.3f} {ann['compute_j'] * 1e6:10.3f} {ann['neuron_j'] * 1e6:10.3f} "
            f"{ann['memory_j'] * 1e6:10.3f} {self.ann_energy_j * 1e6:10.3f}"
        )
        if self.neurons and self.energy_model == "paper":
            lines.append("(paper model: neuron updates are shown but not in the total, as in the papers)")
        return "\n".join(lines)


def _check_positive(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise SnncError(f"{what} must be a positive number, got {value!r}")
    return float(value)


def energy_report(
    ops: OpsReport,
    *,
    frames: int = 1,
    steps_per_frame: float = 1.0,
    costs: EnergyCosts = DEFAULT_COSTS,
    count: str = "rate",
    mac_layers: Iterable[str] = (),
    energy_model: str = "paper",
    memory: MemoryConfig | None = None,
    lemaire: LemaireConfig | None = None,
) -> EnergyReport:
    """Turn one counting pass into ACs, MACs and energy per frame (see module docstring).

    Args:
        ops: the pass (``OpsRecorder.report()`` / ``count_ops``), counts per example.
        frames: how many frames the pass covered (a stream of F depth frames: F;
            a batch of images counted per example: 1).
        steps_per_frame: time steps per frame (for the ANN comparison).
        costs: per-op energies.
        count: ``rate`` (papers) or ``events`` (fan-out synaptic events; the pass
            must have been recorded with ``fanout="input"``).
        mac_layers: layer names whose input is real-valued whatever its values.
        energy_model: ``paper``, ``memory`` or ``lemaire`` (:mod:`snnc.energy.models`).
        memory, lemaire: the constants of those models (defaults documented there).

    Raises:
        SnncError: bad ``frames`` / ``steps_per_frame`` / ``count``, or ``events``
            without recorded fan-out events.
    """
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise SnncError(f"frames must be a positive integer, got {frames!r}")
    steps = _check_positive(steps_per_frame, "steps_per_frame")
    if count not in COUNT_MODES:
        raise SnncError(f"unknown count mode {count!r} (expected one of {', '.join(COUNT_MODES)})")
    if count == "events" and ops.fanout != "input":
        raise SnncError("count='events' needs a pass recorded with fanout='input'")
    model = check_energy_model(energy_model)
    if model == "memory" and ops.fanout != "input":
        raise SnncError("energy_model='memory' needs a pass recorded with fanout='input' (weight reads per event)")
    has_neurons = bool(ops.neurons)
    forced = set(mac_layers)
    layers: list[LayerEnergy] = []
    for lo in ops.layers:
        spikes = lo.input_is_ternary and lo.name not in forced
        dense = lo.dense_ops / frames
        events = None if lo.fanout_events is None else lo.fanout_events / frames
        if spikes:
            ac = (events or 0.0) if count == "events" else lo.active_ops / frames
            mac = 0.0
        else:
            ac, mac = 0.0, float(dense)
        e = synaptic_energy(
            lo,
            spikes=spikes,
            ac=float(ac),
            mac=mac,
            model=model,
            costs=costs,
            frames=frames,
            memory=memory,
            lemaire=lemaire,
            has_neurons=has_neurons,
        )
        layers.append(
            LayerEnergy(
                name=lo.name,
                type=lo.type,
                input_kind="spikes" if spikes else "real",
                dense_ops=float(dense),
                input_rate=lo.input_rate,
                ac=float(e.ac),
                mac=float(e.mac),
                energy_j=e.compute_j + e.memory_j,
                fanout_events=events,
                compute_j=e.compute_j,
                memory_j=e.memory_j,
                memory_bytes=e.memory_bytes,
            )
        )
    rates = {a.name: a.rate for a in ops.neurons}
    neurons = [
        neuron_energy(a, model=model, costs=costs, frames=frames, memory=memory, lemaire=lemaire) for a in ops.neurons
    ]
    ann = None
    if model != "paper":
        ann = ann_energy(
            ops.layers,
            ops.neurons,
            model=model,
            costs=costs,
            frames=frames,
            steps_per_frame=steps,
            memory=memory,
            lemaire=lemaire,
        )
    return EnergyReport(layers, frames, steps, costs, count, rates, model, neurons, ann)
