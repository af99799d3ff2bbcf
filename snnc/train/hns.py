"""HNS: hybrid network search (spatial-temporal search paper, §4.4).

Every searched spiking layer mixes its spiking neuron with a ReLU (and, with
``alif=True``, an ALIF variant of it) exactly like TPS mixes leaks; at each
decision step the layer's type becomes the candidate with the largest mean
``a``. The loss adds the energy term (eq. 27-28)::

    L = L_acc + lambda * sum_layers sum_k softmax(a_l)_k rho_k

with ``rho`` = 1 for spiking candidates and ``rho_relu`` for ReLU. By default
``rho_relu = 4.26`` (the paper: a ReLU layer's consumer does ``4.6 pJ`` MACs
once per prediction, a LIF layer's does ``fr * T * 0.9 pJ`` ACs with fr = 0.2,
T = 6). With ``rho='measured'`` the firing rate ``fr`` is measured when the
search starts, with :func:`snnc.energy.ops.count_ops` (the one op-counting
pass) on a training batch with every searched layer spiking: the
ops-weighted mean input rate of the synaptic layers whose input is spikes.
``T`` is the number of steps per prediction (direct-coded classification: T;
streaming stereo: 1, since an ANN also runs once per frame), so
``rho_relu = 4.6 / (fr * T * 0.9)``.

The result is a hybrid genotype: ``neuron_layers[name].type = 'relu'`` for the
layers that chose ReLU; :func:`snnc.models.build.build_model` accepts it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import Tensor

from snnc.energy.costs import COST_TABLE, DEFAULT_COSTS
from snnc.energy.ops import count_ops
from snnc.energy.rho import PAPER_RATE, dense_op_pj
from snnc.models.base import SpikingNet
from snnc.neurons import NeuronSpec
from snnc.train.mixsearch import MixingSearch, searched_layers

__all__ = ["HNSearch", "AC_PJ", "MAC_PJ", "PAPER_RHO_RELU", "relu_energy_factor", "spike_rate"]

#: 45 nm energy per accumulate / multiply-accumulate: the energy module's default table (Horowitz 2014).
AC_PJ = DEFAULT_COSTS.ac_pj
MAC_PJ = DEFAULT_COSTS.mac_pj
#: The paper's rho for ReLU: 4.6 / (0.2 * 6 * 0.9).
PAPER_RHO_RELU = 4.26
#: Firing rates below this are clamped (a silent network would make rho infinite).
MIN_RATE = 1e-3


def relu_energy_factor(firing_rate: float, steps: int, energy_model: str = "paper") -> float:
    """``rho_relu = MAC / (fr * T * AC)``: energy of a ReLU layer relative to a LIF layer (LIF = 1).

    ``energy_model`` ``memory`` / ``lemaire`` price each op with its memory traffic
    (:func:`snnc.energy.rho.dense_op_pj`); ``paper`` is the formula above.
    """
    costs = COST_TABLE["45nm-int32"] if energy_model == "lemaire" else DEFAULT_COSTS  # Lemaire: 32-bit integers
    spike_op, real_op = dense_op_pj(costs, energy_model)
    return real_op / (max(firing_rate, MIN_RATE) * steps * spike_op)


def spike_rate(model: torch.nn.Module, x_seq: Tensor) -> float | None:
    """Ops-weighted mean input firing rate of the spike-driven synaptic layers (None if there are none)."""
    report = count_ops(model, x_seq)
    spiking = [layer for layer in report.layers if layer.input_is_binary and layer.dense_ops > 0]
    total = sum(layer.dense_ops for layer in spiking)
    if total == 0:
        return None
    return sum(layer.input_rate * layer.dense_ops for layer in spiking) / total


class HNSearch(MixingSearch):
    """HNS over the chosen spiking layers (see module docstring).

    Args:
        energy_lambda: weight of the energy term.
        rho: ``'paper'`` (``rho_relu`` as given) or ``'measured'``.
        rho_relu: the ReLU factor for ``'paper'``.
        alif: add an ALIF candidate to each non-ALIF layer.
        steps_per_prediction: T of the energy model (see module docstring).
        energy_model: ``paper``, ``memory`` or ``lemaire``: how rho prices an op
            (:func:`relu_energy_factor`; with ``rho='paper'`` at the paper's rate 0.2 and T = 6).
        candidates: a resumed search's candidates (instead of building them from ``model``).
    """

    name = "hns"

    def __init__(
        self,
        model: SpikingNet,
        *,
        layers: list[str],
        energy_lambda: float,
        rho: str,
        rho_relu: float,
        alif: bool,
        steps_per_prediction: int,
        every: int,
        warmup: int,
        eps: float,
        arch_lr: float,
        device: torch.device,
        candidates: dict[str, list[NeuronSpec]] | None = None,
        energy_model: str = "paper",
    ) -> None:
        if candidates is None:
            eligible = [n for n, m in model.neurons() if m.spec.type != "relu"]
            specs = {n: m.spec for n, m in model.neurons()}
            candidates = {}
            for n in searched_layers(model, layers, eligible, "HNS"):
                spec = specs[n]
                cands = [spec, dataclasses.replace(spec, type="relu")]
                if alif and spec.type != "alif":
                    cands.insert(1, dataclasses.replace(spec, type="alif"))
                candidates[n] = cands
        self.energy_lambda = float(energy_lambda)
        self.rho_mode = rho
        self.energy_model = energy_model
        self.steps = int(steps_per_prediction)
        # rho='paper' under another energy model: the paper's firing rate, priced by that model
        self.rho_relu = float(rho_relu) if energy_model == "paper" else relu_energy_factor(PAPER_RATE, 6, energy_model)
        self.measured_rate: float | None = None
        super().__init__(candidates, every=every, warmup=warmup, eps=eps, arch_lr=arch_lr, device=device)

    def _rho(self, layer: str) -> Tensor:
        values = [self.rho_relu if c.type == "relu" else 1.0 for c in self.candidates[layer]]
        return torch.tensor(values, device=self.device)

    def on_start(self, model: SpikingNet, task: Any) -> None:
        """With ``rho='measured'``: measure the firing rate with every searched layer spiking."""
        if self.rho_mode != "measured":
            return
        layers = [self.mixed_layer(model, name) for name in self.layers]
        for layer in layers:
            layer.fixed = 0
        try:
            rate = spike_rate(model, task.example_input(train=True))
        finally:
            for layer in layers:
                layer.fixed = None
        self.measured_rate = rate
        if rate is not None:
            self.rho_relu = relu_energy_factor(rate, self.steps, self.energy_model)

    def extra_loss(self) -> Tensor | None:
        """``lambda * sum_l softmax(a_l) . rho_l`` (None when lambda is 0 or no layer is searched)."""
        if self.energy_lambda == 0.0:
            return None
        terms = [torch.dot(self.weights(layer), self._rho(layer)) for layer in self.layers]
        if not terms:
            return None
        return self.energy_lambda * torch.stack(terms).sum()

    def decided_spec(self, layer: str) -> NeuronSpec:
        """The last decided candidate (the spiking neuron before any decision)."""
        return self.candidates[layer][self.decisions.get(layer, 0)]

    def describe_candidate(self, spec: NeuronSpec) -> Any:
        """The neuron type."""
        return spec.type

    def energy_share(self) -> dict[str, float]:
        """The expected rho of the decided network relative to all-spiking (1.0)."""
        decided = [self.rho_relu if self.decided_spec(n).type == "relu" else 1.0 for n in self.layers]
        return {"rho_relu": self.rho_relu, "mean_rho": sum(decided) / len(decided)}

    def extra_state(self) -> dict[str, Any]:
        """The (possibly measured) ReLU factor."""
        return {"rho_relu": self.rho_relu, "measured_rate": self.measured_rate}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`extra_state`."""
        self.rho_relu = float(state.get("rho_relu", self.rho_relu))
        self.measured_rate = state.get("measured_rate")
