"""TPS: temporal parameter search (spatial-temporal search paper, §4.3, Algorithm 3).

Every LIF layer searches its membrane decay factor over ``{decay + dtau, decay,
decay - dtau}`` (clipped to [0, 1]; the paper calls this factor tau); an ALIF layer
searches ``decay`` and ``decay_a`` jointly
over the 3 x 3 grid of both. The candidates are mixed at the layer output
(``y_bar = sum softmax(a)_k y_k``, each candidate the one snnc neuron with its
own state, see :class:`~snnc.train.mixed.MixedNeuron`); at every decision
step (:class:`~snnc.train.mixsearch.MixingSearch`) ``decay`` moves to the
candidate with the largest mean ``a`` and the candidates are re-centred on it,
so over many steps ``decay`` can travel far from its start. The decided ``decay``
(``decay_a``) of every layer is written into the genotype's ``neuron_layers``.
``dtau`` is not given in the paper; snnc uses 0.1 by default (``--tps-dtau``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from snnc.models.base import SpikingNet
from snnc.neurons import NeuronSpec
from snnc.train.mixsearch import MixingSearch, searched_layers

__all__ = ["TPSearch", "tps_candidates", "TPS_TYPES"]

#: Neuron types with a searchable leak (IF and binary have theirs fixed at 1 and 0).
TPS_TYPES = ("lif", "alif")


def _clip(v: float) -> float:
    return round(min(1.0, max(0.0, v)), 6)


def tps_candidates(spec: NeuronSpec, dtau: float) -> list[NeuronSpec]:
    """``decay + dtau, decay, decay - dtau`` (ALIF: x the same for ``decay_a``); the centre is ``spec`` itself."""
    taus = [_clip(spec.decay + dtau), spec.decay, _clip(spec.decay - dtau)]
    if spec.type != "alif":
        return [dataclasses.replace(spec, decay=t) for t in taus]
    tas = [_clip(spec.decay_a + dtau), spec.decay_a, _clip(spec.decay_a - dtau)]
    return [dataclasses.replace(spec, decay=t, decay_a=a) for t in taus for a in tas]


class TPSearch(MixingSearch):
    """TPS over the leaks of the chosen layers (see module docstring)."""

    name = "tps"

    def __init__(
        self,
        model: SpikingNet,
        *,
        layers: list[str],
        dtau: float,
        every: int,
        warmup: int,
        eps: float,
        arch_lr: float,
        device: torch.device,
        candidates: dict[str, list[NeuronSpec]] | None = None,
    ) -> None:
        """``candidates`` (a resumed search's) replaces the ones built from ``model``'s layers."""
        self.dtau = float(dtau)
        if candidates is None:
            eligible = [n for n, m in model.neurons() if m.spec.type in TPS_TYPES]
            specs = dict(model.neurons())
            candidates = {
                n: tps_candidates(specs[n].spec, self.dtau) for n in searched_layers(model, layers, eligible, "TPS")
            }
        super().__init__(candidates, every=every, warmup=warmup, eps=eps, arch_lr=arch_lr, device=device)

    def _centre(self, layer: str) -> int:
        return len(self.candidates[layer]) // 2

    def decide(self, model: SpikingNet, layer: str, index: int) -> None:
        """Move ``decay`` (``decay_a``) to candidate ``index`` and re-centre the candidates on it."""
        super().decide(model, layer, index)
        chosen = self.candidates[layer][index]
        self.set_candidates(model, layer, tps_candidates(chosen, self.dtau))

    def decided_spec(self, layer: str) -> NeuronSpec:
        """The centre candidate (the current ``decay``)."""
        return self.candidates[layer][self._centre(layer)]

    def describe_candidate(self, spec: NeuronSpec) -> Any:
        """``decay`` (and ``decay_a`` for ALIF)."""
        return {"decay": spec.decay, "decay_a": spec.decay_a} if spec.type == "alif" else {"decay": spec.decay}
