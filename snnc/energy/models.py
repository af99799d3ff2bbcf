"""Energy models over the one counting pass: ``paper``, ``memory`` and ``lemaire``.

Every model reads the same :class:`~snnc.energy.ops.OpsReport` (synaptic layers
and neuron layers, counts per example) and splits energy per layer into
**synaptic compute**, **neuron updates** and **memory**:

``paper`` (default)
    The SpikeDHS papers' model: ``AC x E_AC + MAC x E_MAC`` per synaptic layer,
    nothing else in the total, so the published numbers stay reproducible.
    Neuron updates are counted and costed on their own line, outside the total.

``memory``
    ``paper`` plus neuron updates plus memory traffic, every byte at
    :attr:`MemoryConfig.pj_per_byte`:

    * weights: one weight read per synaptic op actually performed (a fan-out
      event of a spike layer, a dense op of a real-input layer) and one bias
      read per output element when the layer has a bias, ``word_bytes`` each;
    * membrane state: one read and one write per neuron and step of each state
      word (:data:`STATE_WORDS`: ``u`` for LIF/IF, ``u`` and ``a`` for ALIF);
    * activations: each synaptic layer reads its input once per call: one
      ``spike_bytes`` address event per nonzero spike input, one ``word_bytes``
      value per element of a real-valued input.

    The weight, bias and state terms are SpikingJelly's ``estimate_simple_energy``
    (``NeuromorphicMemoryAccessCounter``); the activation term and the neuron
    updates are the two differences (``tests/test_energy_spikingjelly.py``).

``lemaire``
    Lemaire et al., "An analytical estimation of spiking neural networks energy
    efficiency", ICONIP 2022 (arXiv:2210.13107), as SpikingJelly 2.0's
    ``estimate_lemaire_energy`` reads it: synaptic ops (``active inputs x C_out /
    groups x prod(ceil(k / s))``), MACs of real-input layers, bias adds, one MAC
    per LIF update and one add per spike, address computations, and SRAM reads
    and writes of inputs, parameters and membrane potentials, each at a cost per
    byte interpolated from the memory's capacity (:data:`LEMAIRE_BREAKPOINTS`).
    Lemaire's paper uses 32-bit integer arithmetic: ``E_add = 0.1``, ``E_mul =
    3.1 pJ`` (the ``45nm-int32`` table, which ``snnc energy`` picks for it).

A layer's input is spikes when every value it saw was -1, 0 or 1 (the rule of
:mod:`snnc.energy.report`); SpikingJelly requires 0/1, so on the stereo net's
signed SBT input it counts the first layer as dense MACs (a stated difference).

The ANN comparison uses the same model: every synaptic op a MAC once per
frame, ReLU updates (one compare per neuron and pass) and, for ``memory`` /
``lemaire``, the same traffic rules applied to real-valued activations, so the
SNN/ANN ratio compares like with like.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from typing import Any

from snnc.energy.costs import EnergyCosts
from snnc.energy.ops import LayerOps, NeuronActivity
from snnc.errors import SnncError

__all__ = [
    "ENERGY_MODELS",
    "LEMAIRE_BREAKPOINTS",
    "NEURON_OPS",
    "STATE_WORDS",
    "LemaireConfig",
    "MemoryConfig",
    "NeuronEnergy",
    "NeuronOps",
    "SynapticEnergy",
    "check_energy_model",
    "lemaire_pj_per_byte",
    "neuron_energy",
    "synaptic_energy",
    "ann_energy",
]

#: ``paper`` (compute only, the papers' numbers), ``memory``, ``lemaire``.
ENERGY_MODELS: tuple[str, ...] = ("paper", "memory", "lemaire")

_HOROWITZ_SRAM = (
    "Horowitz, ISSCC 2014, 45 nm SRAM read energy by array size (8 KB 10 pJ, 32 KB 20 pJ, 1 MB 100 pJ per "
    "32-bit access, as tabulated by Lemaire et al. 2022, arXiv:2210.13107, and SpikingJelly 2.0's "
    "LemaireEnergyCostConfig)"
)


@dataclass(frozen=True)
class NeuronOps:
    """Operations of one neuron update (one neuron, one step).

    Attributes:
        mac: multiply-accumulates per update (leak ``decay x u + I``; ALIF also adapts its threshold).
        ac: additions / comparisons per update (integration without leak, the threshold compare).
        ac_per_spike: additions per spike (the reset).
    """

    mac: int
    ac: int
    ac_per_spike: int


#: Operations per neuron update by type (``u' = decay u (1 - y) + I``, ``y' = H(u' - vth)``, hard reset):
#: LIF: leak+integrate 1 MAC, compare 1 AC, reset 1 AC per spike; IF: integrate and compare 2 AC;
#: ALIF: LIF plus ``a' = decay_a a + y`` and ``A = vth + beta_a a'`` (2 MAC); binary: compare;
#: ReLU: ``max(0, x)``, one compare.
NEURON_OPS: dict[str, NeuronOps] = {
    "lif": NeuronOps(1, 1, 1),
    "if": NeuronOps(0, 2, 1),
    "alif": NeuronOps(3, 1, 1),
    "binary": NeuronOps(0, 1, 0),
    "relu": NeuronOps(0, 1, 0),
}

#: Membrane state words kept per neuron between steps (the last spike is the layer's output, not state).
STATE_WORDS: dict[str, int] = {"lif": 1, "if": 1, "alif": 2, "binary": 0, "relu": 0}

#: Lemaire / Horowitz SRAM cost per byte by memory capacity: (capacity bytes, pJ per byte), interpolated linearly.
LEMAIRE_BREAKPOINTS: tuple[tuple[float, float], ...] = (
    (0.0, 0.0),
    (8.0 * 1024, 10.0 / 4),
    (32.0 * 1024, 20.0 / 4),
    (1024.0 * 1024, 100.0 / 4),
)


@dataclass(frozen=True)
class MemoryConfig:
    """Byte widths and energy per byte of the ``memory`` model.

    Attributes:
        word_bytes: bytes of a weight, bias, membrane-state word or real activation (fp32: 4).
        spike_bytes: bytes of one spike address event (Loihi's spike messages are 32-bit).
        pj_per_byte: energy of one byte read or written: 25 pJ, a 1 MB on-chip SRAM
            (Horowitz 2014, 100 pJ per 32-bit access; a layer's weights do not fit a 32 KB bank).
        source: where ``pj_per_byte`` comes from.
    """

    word_bytes: int = 4
    spike_bytes: int = 4
    pj_per_byte: float = 25.0
    source: str = _HOROWITZ_SRAM


@dataclass(frozen=True)
class LemaireConfig:
    """Constants of the ``lemaire`` model (SpikingJelly 2.0's defaults, from the paper).

    Attributes:
        word_bytes: bytes per access (32-bit words).
        fifo_elements: messages an SNN input / output FIFO holds (its capacity sets the spike-read cost).
        breakpoints: :data:`LEMAIRE_BREAKPOINTS`.
    """

    word_bytes: int = 4
    fifo_elements: int = 1000
    breakpoints: tuple[tuple[float, float], ...] = LEMAIRE_BREAKPOINTS


def check_energy_model(name: str) -> str:
    """``name`` when it is one of :data:`ENERGY_MODELS`.

    Raises:
        SnncError: unknown model.
    """
    if name not in ENERGY_MODELS:
        raise SnncError(f"unknown energy model {name!r} (expected one of {', '.join(ENERGY_MODELS)})")
    return name


def lemaire_pj_per_byte(
    capacity_bytes: float, breakpoints: tuple[tuple[float, float], ...] = LEMAIRE_BREAKPOINTS
) -> float:
    """Energy per byte of an access to a memory of ``capacity_bytes`` (piecewise linear, clamped)."""
    xs = [p[0] for p in breakpoints]
    c = max(xs[0], min(capacity_bytes, xs[-1]))
    for (x0, y0), (x1, y1) in pairwise(breakpoints):
        if c <= x1:
            return y0 + (y1 - y0) / (x1 - x0) * (c - x0)
    return breakpoints[-1][1]


@dataclass
class SynapticEnergy:
    """One synaptic layer's energy per frame under one model.

    Attributes:
        ac, mac: accumulates and multiply-accumulates (Lemaire: bias adds included in ``ac``).
        compute_j: synaptic compute energy (Lemaire: ops and address computations).
        memory_bytes: bytes moved per frame, by kind (``weights``, ``bias``, ``activations``,
            ``potential``...); empty for ``paper``.
        memory_j: energy of that traffic.
    """

    ac: float
    mac: float
    compute_j: float
    memory_bytes: dict[str, float] = field(default_factory=dict)
    memory_j: float = 0.0


@dataclass
class NeuronEnergy:
    """One neuron layer's updates and their energy per frame.

    Attributes:
        name, type: the neuron layer and its type.
        updates: neuron updates per frame (neurons x steps).
        spikes: output spikes per frame.
        mac, ac: operations of those updates (:data:`NEURON_OPS`; Lemaire: its own counts).
        compute_j: energy of the updates.
        memory_bytes: membrane-state traffic (and, for ``lemaire``, spike writes) by kind.
        memory_j: energy of that traffic.
        counted: the updates are part of the model's total (``False`` for ``paper``).
    """

    name: str
    type: str
    updates: float
    spikes: float
    mac: float
    ac: float
    compute_j: float
    memory_bytes: dict[str, float] = field(default_factory=dict)
    memory_j: float = 0.0
    counted: bool = True

    @property
    def energy_j(self) -> float:
        """``compute_j + memory_j``."""
        return self.compute_j + self.memory_j

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (with ``energy_j``)."""
        return {**asdict(self), "energy_j": self.energy_j}


def _update_energy(kind: str, updates: float, spikes: float, costs: EnergyCosts) -> tuple[float, float, float]:
    """(MACs, ACs, joules) of ``updates`` neuron updates with ``spikes`` spikes, paper/memory rules."""
    ops = NEURON_OPS.get(kind, NEURON_OPS["lif"])
    mac = ops.mac * updates
    ac = ops.ac * updates + ops.ac_per_spike * spikes
    if costs.neuron_update_pj is not None:
        active = costs.neuron_spike_pj if costs.neuron_spike_pj is not None else costs.neuron_update_pj
        joules = ((updates - spikes) * costs.neuron_update_pj + spikes * active) * 1e-12
    else:
        joules = mac * costs.mac_j + ac * costs.ac_j
    return mac, ac, joules


def neuron_energy(
    act: NeuronActivity,
    *,
    model: str,
    costs: EnergyCosts,
    frames: int = 1,
    memory: MemoryConfig | None = None,
    lemaire: LemaireConfig | None = None,
) -> NeuronEnergy:
    """Energy per frame of one neuron layer's updates (see the module docstring)."""
    updates, spikes = act.updates / frames, act.spikes / frames
    per_call = act.updates / act.calls if act.calls else 0.0
    if model == "lemaire":
        cfg = lemaire or LemaireConfig()
        mac = updates if act.type in ("lif", "alif") else 0.0
        mac += 2 * updates if act.type == "alif" else 0.0
        ac = spikes if act.type != "relu" else 0.0
        compute = ac * costs.ac_j + mac * costs.mac_j
        w = cfg.word_bytes
        potential = updates * w * STATE_WORDS.get(act.type, 1) if act.type != "relu" else 0.0
        cap = per_call * w
        traffic = {"potential_read": potential, "potential_write": potential, "spikes_out": spikes * w}
        joules = 2 * potential * lemaire_pj_per_byte(cap, cfg.breakpoints) + spikes * w * lemaire_pj_per_byte(
            cfg.fifo_elements * w, cfg.breakpoints
        )
        return NeuronEnergy(act.name, act.type, updates, spikes, mac, ac, compute, traffic, joules * 1e-12)
    mac, ac, compute = _update_energy(act.type, updates, spikes, costs)
    if model == "paper":
        return NeuronEnergy(act.name, act.type, updates, spikes, mac, ac, compute, counted=False)
    cfg_m = memory or MemoryConfig()
    state = updates * STATE_WORDS.get(act.type, 0) * cfg_m.word_bytes
    traffic = {"state_read": state, "state_write": state}
    return NeuronEnergy(
        act.name, act.type, updates, spikes, mac, ac, compute, traffic, 2 * state * cfg_m.pj_per_byte * 1e-12
    )


def _lemaire_layer(
    lo: LayerOps, spikes: bool, frames: int, costs: EnergyCosts, cfg: LemaireConfig, has_neurons: bool
) -> SynapticEnergy:
    """Lemaire's counts of one synaptic layer per frame (SpikingJelly's reading of the paper)."""
    g = lo.geometry
    w = cfg.word_bytes
    f = float(frames)
    calls = max(lo.calls, 1)
    inputs, outputs, active = lo.input_count / f, lo.output_count / f, lo.active_inputs / f
    dense = lo.dense_ops / f
    linear = lo.type == "Linear"
    in_cap, out_cap = lo.input_count / calls * w, lo.output_count / calls * w
    params_cap = lo.parameters * w
    ac = mac = acc_addr = mac_addr = 0.0
    traffic: dict[str, float] = {}
    pj = 0.0
    if spikes:
        synops = active * g.reach
        fanout = active * g.fan_out
        ac += synops
        acc_addr += fanout
        mac_addr += 0.0 if linear else 2 * active
        weights = fanout * w
        traffic["read_in"] = active * w
        pj += active * w * lemaire_pj_per_byte(cfg.fifo_elements * w, cfg.breakpoints)
        traffic["potential_read"] = traffic["potential_write"] = fanout * w
        pj += 2 * fanout * w * lemaire_pj_per_byte(out_cap, cfg.breakpoints)
    else:
        mac += dense
        acc_addr += inputs + outputs + (0.0 if linear else calls / f * g.out_channels * g.kernel_volume)
        weights = dense * w
        read_in = inputs * w if linear else dense * w
        traffic["read_in"] = read_in
        pj += read_in * lemaire_pj_per_byte(in_cap, cfg.breakpoints)
        if not has_neurons:
            traffic["write_out"] = outputs * w
            pj += outputs * w * lemaire_pj_per_byte(out_cap, cfg.breakpoints)
    bias = outputs * w if g.has_bias else 0.0
    if g.has_bias:
        ac += outputs
    traffic["params"] = weights + bias
    pj += (weights + bias) * lemaire_pj_per_byte(params_cap, cfg.breakpoints)
    compute = (ac + acc_addr) * costs.ac_j + (mac + mac_addr) * costs.mac_j
    return SynapticEnergy(ac, mac, compute, traffic, pj * 1e-12)


def synaptic_energy(
    lo: LayerOps,
    *,
    spikes: bool,
    ac: float,
    mac: float,
    model: str,
    costs: EnergyCosts,
    frames: int = 1,
    memory: MemoryConfig | None = None,
    lemaire: LemaireConfig | None = None,
    has_neurons: bool = True,
) -> SynapticEnergy:
    """Energy per frame of one synaptic layer.

    Args:
        lo: the layer's counts (per example, over the pass).
        spikes: its input is spikes (else real-valued).
        ac, mac: the paper model's ACs and MACs per frame (``rate`` or ``events`` count).
        model: one of :data:`ENERGY_MODELS`.
        frames: frames the pass covered.
        has_neurons: the network has neuron layers (Lemaire writes real outputs only when it has none).
    """
    compute = ac * costs.ac_j + mac * costs.mac_j
    if model == "paper":
        return SynapticEnergy(ac, mac, compute)
    if model == "lemaire":
        return _lemaire_layer(lo, spikes, frames, costs, lemaire or LemaireConfig(), has_neurons)
    cfg = memory or MemoryConfig()
    f = float(frames)
    events = (lo.fanout_events or 0.0) / f
    uses = events if spikes else lo.dense_ops / f
    traffic = {
        "weights": uses * cfg.word_bytes,
        "bias": lo.output_count / f * cfg.word_bytes if lo.geometry.has_bias else 0.0,
        "activations": (lo.active_inputs / f * cfg.spike_bytes) if spikes else lo.input_count / f * cfg.word_bytes,
    }
    return SynapticEnergy(ac, mac, compute, traffic, sum(traffic.values()) * cfg.pj_per_byte * 1e-12)


def ann_energy(
    layers: Iterable[LayerOps],
    neurons: Iterable[NeuronActivity],
    *,
    model: str,
    costs: EnergyCosts,
    frames: int,
    steps_per_frame: float,
    memory: MemoryConfig | None = None,
    lemaire: LemaireConfig | None = None,
) -> dict[str, float]:
    """The same network as an ANN under ``model``, per frame.

    Returns ``mac``, ``compute_j``, ``neuron_j``, ``memory_j`` and ``energy_j``.

    An ANN runs once per frame: every count of the pass is divided by ``steps_per_frame``;
    every synaptic input is real-valued; each neuron is a ReLU (one compare per pass).
    ``paper`` counts the MACs only (the papers' comparison).
    """
    scale = frames * steps_per_frame
    mac = compute = neuron_j = memory_j = 0.0
    neuron_list = list(neurons)
    for lo in layers:
        dense = lo.dense_ops / scale
        mac += dense
        if model == "lemaire":
            one_pass = _scaled(lo, steps_per_frame)
            e = _lemaire_layer(one_pass, False, frames, costs, lemaire or LemaireConfig(), False)
            compute += e.compute_j
            memory_j += e.memory_j
            continue
        compute += dense * costs.mac_j
        if model == "memory":
            cfg = memory or MemoryConfig()
            bias = lo.output_count / scale if lo.geometry.has_bias else 0.0
            memory_j += (dense + bias + lo.input_count / scale) * cfg.word_bytes * cfg.pj_per_byte * 1e-12
    if model == "memory":
        for act in neuron_list:
            neuron_j += act.updates / scale * NEURON_OPS["relu"].ac * costs.ac_j
    return {
        "mac": mac,
        "compute_j": compute,
        "neuron_j": neuron_j,
        "memory_j": memory_j,
        "energy_j": compute + neuron_j + memory_j,
    }


def _scaled(lo: LayerOps, steps: float) -> LayerOps:
    """A copy of ``lo`` whose additive counts are divided by ``steps`` (one ANN pass per frame)."""
    out = lo.copy()
    out.dense_ops = round(lo.dense_ops / steps)
    out.input_count = lo.input_count / steps
    out.output_count = lo.output_count / steps
    out.active_inputs = lo.active_inputs / steps
    out.calls = max(round(lo.calls / steps), 1)
    return out
