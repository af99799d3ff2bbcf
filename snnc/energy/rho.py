"""Relative energy cost ``rho`` of each neuron type, for the HNS energy loss (methods.md §6).

HNS adds ``lambda * sum_layers sum_k softmax(a)_k rho_k`` to the loss, where
``rho_k`` is what a layer's output costs its consumers per dense synaptic op
when the layer uses candidate neuron type ``k``, relative to a LIF layer:

* a spiking type (``lif``, ``if``, ``binary``, ``alif``) emits spikes at rate
  ``r``; each dense op of a consumer is an AC ``r x T`` times:
  ``e = r * T * E_AC``;
* ``relu`` emits real values; each dense op is a MAC: ``e = E_MAC * relu_steps``.
  The paper counts it once (``relu_steps = 1``): ``rho(ReLU) = 4.6 / (0.2 * 6 *
  0.9) = 4.26`` with ``r = 0.2`` and ``T = 6``. (``spec/energy.md`` counts a
  real-valued input as ``dense ops x steps`` MACs; pass ``relu_steps = T`` for
  that convention.)

``rho = e / e_ref`` with ``e_ref = reference_rate * T * E_AC`` (LIF at the
reference rate = 1). ``mode="paper"`` uses the reference rate 0.2 for every
spiking type; ``mode="measured"`` uses each type's firing rate measured by the
one counting pass (:class:`~snnc.energy.ops.OpsRecorder` with ``neurons=True``)
on real data (:func:`measured_type_rates`), and the reference is the measured
rate of the first spiking candidate, so that candidate stays at 1 and
``rho(ReLU) = E_MAC / (fr * T * E_AC)`` — the same value as
:func:`snnc.train.hns.relu_energy_factor`. Rates below :data:`MIN_RATE` are
clamped (a silent network would make rho infinite).

``energy_model`` (:mod:`snnc.energy.models`) prices one consumer dense op the
way that model does, so HNS trades ReLU against spikes under the same model
as ``snnc energy``:

* ``paper``: as above (``E_AC`` per spike-driven op, ``E_MAC`` per real one);
* ``memory``: each op also reads its weight (``word_bytes x pj_per_byte``):
  spiking ``r T (E_AC + W)``, ReLU ``relu_steps (E_MAC + W)``;
* ``lemaire``: spiking ``r T (2 E_add + 3 W)`` (the synaptic op, its address
  add, the weight read and the membrane read and write), ReLU ``relu_steps
  (E_MAC + E_add + 2 W)`` (the MAC, its address add, the weight and input reads),
  with ``W`` the word at the 1 MB SRAM cost of :data:`~snnc.energy.models.LEMAIRE_BREAKPOINTS`.

Neuron updates and state traffic are per neuron, not per op; with a fan-out of
tens to hundreds of synapses per neuron they are left out of ``rho``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from torch import nn

from snnc.energy.costs import DEFAULT_COSTS, EnergyCosts
from snnc.energy.models import LEMAIRE_BREAKPOINTS, MemoryConfig, check_energy_model, lemaire_pj_per_byte
from snnc.energy.ops import OpsReport, count_ops
from snnc.errors import SnncError
from snnc.neurons import NEURON_TYPES

__all__ = [
    "RHO_MODES",
    "dense_op_pj",
    "PAPER_RATE",
    "PAPER_STEPS",
    "neuron_type_rho",
    "rho_table",
    "type_rates",
    "measured_type_rates",
    "MIN_RATE",
]

RHO_MODES: tuple[str, ...] = ("paper", "measured")
#: The firing rate and time steps behind the paper's rho(ReLU) = 4.26.
PAPER_RATE: float = 0.2
PAPER_STEPS: int = 6
#: Measured rates are clamped to at least this.
MIN_RATE: float = 1e-3


def neuron_type_rho(
    neuron_type: str,
    *,
    rate: float | None = None,
    steps: int = PAPER_STEPS,
    reference_rate: float = PAPER_RATE,
    relu_steps: int = 1,
    costs: EnergyCosts = DEFAULT_COSTS,
    energy_model: str = "paper",
) -> float:
    """``rho`` of one neuron type (see module docstring); ``rate`` defaults to ``reference_rate``.

    Raises:
        SnncError: unknown type, or non-positive steps / reference rate, or a rate outside [0, 1].
    """
    if neuron_type not in NEURON_TYPES:
        raise SnncError(f"unknown neuron type {neuron_type!r} (expected one of {', '.join(NEURON_TYPES)})")
    if steps < 1 or relu_steps < 1:
        raise SnncError(f"steps and relu_steps must be >= 1, got {steps}, {relu_steps}")
    if not 0 < reference_rate <= 1:
        raise SnncError(f"reference firing rate must be in (0, 1], got {reference_rate!r}")
    spike_op, real_op = dense_op_pj(costs, check_energy_model(energy_model))
    e_ref = reference_rate * steps * spike_op
    if neuron_type == "relu":
        return real_op * relu_steps / e_ref
    r = reference_rate if rate is None else float(rate)
    if not 0 <= r <= 1:
        raise SnncError(f"firing rate must be in [0, 1], got {rate!r}")
    return r * steps * spike_op / e_ref


def dense_op_pj(costs: EnergyCosts, energy_model: str = "paper") -> tuple[float, float]:
    """Energy (pJ) of one consumer synaptic op driven by a spike, and by a real value, under ``energy_model``."""
    if energy_model == "memory":
        cfg = MemoryConfig()
        w = cfg.word_bytes * cfg.pj_per_byte
        return costs.ac_pj + w, costs.mac_pj + w
    if energy_model == "lemaire":
        w = 4 * lemaire_pj_per_byte(LEMAIRE_BREAKPOINTS[-1][0])
        return 2 * costs.ac_pj + 3 * w, costs.mac_pj + costs.ac_pj + 2 * w
    return costs.ac_pj, costs.mac_pj


def type_rates(ops: OpsReport) -> dict[str, float]:
    """Mean output firing rate per neuron type over a pass recorded with ``neurons=True``.

    Rates are weighted by output elements; ``relu`` layers are left out (their
    output is not spikes).
    """
    nonzero: dict[str, int] = {}
    elements: dict[str, int] = {}
    for act in ops.neurons:
        if act.type == "relu":
            continue
        nonzero[act.type] = nonzero.get(act.type, 0) + act.nonzero
        elements[act.type] = elements.get(act.type, 0) + act.elements
    return {t: nonzero[t] / elements[t] for t in nonzero if elements[t]}


def measured_type_rates(
    model: nn.Module, example_input: Any, *, run: Callable[[nn.Module, Any], Any] | None = None
) -> dict[str, float]:
    """Run ``model`` on real data once (eval, no grad) and return :func:`type_rates`."""
    return type_rates(count_ops(model, example_input, run=run, neurons=True))


def rho_table(
    types: Iterable[str],
    *,
    mode: str = "paper",
    rates: Mapping[str, float] | None = None,
    steps: int = PAPER_STEPS,
    reference_rate: float = PAPER_RATE,
    relu_steps: int = 1,
    rho_relu: float | None = None,
    costs: EnergyCosts = DEFAULT_COSTS,
    energy_model: str = "paper",
) -> dict[str, float]:
    """``{type: rho}`` for the candidate types of an HNS search.

    Args:
        types: candidate neuron types (e.g. ``("lif", "relu")``).
        mode: ``paper`` (every spiking type at ``reference_rate``: LIF 1, ReLU 4.26)
            or ``measured`` (spiking types at their measured ``rates``).
        rates: measured rate per type (:func:`type_rates`); required for ``measured``;
            a type without a measured rate falls back to ``reference_rate``.
        rho_relu: override the computed ReLU value (e.g. the training config's ``--rho-relu``).
        energy_model: how one consumer op is priced (see the module docstring).

    Raises:
        SnncError: unknown mode or type, or ``measured`` without ``rates``.
    """
    if mode not in RHO_MODES:
        raise SnncError(f"unknown rho mode {mode!r} (expected one of {', '.join(RHO_MODES)})")
    if mode == "measured" and rates is None:
        raise SnncError("rho mode 'measured' needs measured firing rates (run a counting pass on real data)")
    types = list(types)
    measured: dict[str, float] = {}
    if mode == "measured":
        measured = {t: max(float(r), MIN_RATE) for t, r in (rates or {}).items()}
        spiking = [t for t in types if t != "relu"]
        if spiking and spiking[0] in measured:
            reference_rate = measured[spiking[0]]
    out: dict[str, float] = {}
    for t in types:
        if t == "relu" and rho_relu is not None:
            out[t] = float(rho_relu)
            continue
        rate = measured.get(t) if mode == "measured" else None
        out[t] = neuron_type_rho(
            t,
            rate=min(rate, 1.0) if rate is not None else None,
            steps=steps,
            reference_rate=min(reference_rate, 1.0),
            relu_steps=relu_steps,
            costs=costs,
            energy_model=energy_model,
        )
    return out
