"""The periodic mixing search shared by TPS and HNS (spatial-temporal search paper, Algorithm 3).

For every searched neuron layer ``l`` the layer becomes a
:class:`~snnc.train.mixed.MixedNeuron` over candidates ``{spec_k}`` with
weights ``softmax(a_l)``, ``a_l`` initialised to ``eps``. Each training
iteration updates the network weights ``w`` and the ``a`` together from the
same loss (first order; ``a`` with Adam, lr ``arch_lr``, betas (0.5, 0.999),
weight decay 1e-3 as DARTS' architecture optimizer). During the first
``warmup`` epochs ``a`` stays fixed (uniform mixing). After that, every
``every`` iterations each layer takes the candidate with the largest mean
``a`` over those iterations (``argmax <a>``), and ``a`` (and its optimizer
state) is reset to ``eps``. What "taking" a candidate means is the
subclass's business: TPS re-centres its ``decay`` candidates on it, HNS records
the neuron type. When the search ends (:meth:`MixingSearch.finalize`) a last
decision is made from the iterations since the previous one (if any), and
every mixed layer is replaced by a plain neuron with the decided spec.

Decisions are logged (one JSON line per decision step, all layers) in
``run_dir/<name>.jsonl`` from the search state, which lives in the checkpoint.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import Tensor, nn

from snnc.errors import SnncError
from snnc.models.base import SpikingNet
from snnc.neurons import Neuron, NeuronSpec
from snnc.train.layers import replace_module, resolve_layer
from snnc.train.mixed import MixedNeuron

__all__ = ["MixingSearch"]


class MixingSearch:
    """Base class of :class:`~snnc.train.tps.TPSearch` and :class:`~snnc.train.hns.HNSearch`.

    Args:
        candidates: ``{layer name: candidate specs}`` of the searched layers.
        every: iterations per decision step (``s``, 100 in the paper).
        warmup: epochs with fixed ``a`` before the search starts (5).
        eps: initial value of ``a``.
        arch_lr: Adam learning rate of ``a``.
        device: where ``a`` lives.
    """

    name = "mixing"

    def __init__(
        self,
        candidates: dict[str, list[NeuronSpec]],
        *,
        every: int,
        warmup: int,
        eps: float,
        arch_lr: float,
        device: torch.device,
    ) -> None:
        if not candidates:
            raise SnncError(f"{self.name.upper()}: no neuron layer to search")
        self.layers = list(candidates)
        self.candidates = {k: list(v) for k, v in candidates.items()}
        self.every, self.warmup, self.eps = int(every), int(warmup), float(eps)
        self.device = device
        self.alphas = {k: nn.Parameter(torch.full((len(v),), self.eps, device=device)) for k, v in candidates.items()}
        self.optimizer = torch.optim.Adam(list(self.alphas.values()), lr=arch_lr, betas=(0.5, 0.999), weight_decay=1e-3)
        self.sums = {k: torch.zeros(len(v), device=device) for k, v in candidates.items()}
        self.count = 0
        self.iteration = 0
        self.decisions: dict[str, int] = {}
        self.records: list[dict[str, Any]] = []
        self.started = False
        self.finished = False

    # ------------------------------------------------------------------ subclass hooks
    def decide(self, model: SpikingNet, layer: str, index: int) -> None:
        """Apply the decision ``index`` (into the layer's current candidates)."""
        self.decisions[layer] = index

    def decided_spec(self, layer: str) -> NeuronSpec:
        """The spec the layer gets if the search ended now."""
        raise NotImplementedError

    def extra_loss(self) -> Tensor | None:
        """A loss term on ``a`` (HNS energy), or None."""
        return None

    def on_start(self, model: SpikingNet, task: Any) -> None:
        """Called once, when the search starts (after the warm-up)."""

    def extra_state(self) -> dict[str, Any]:
        """Subclass state for the checkpoint."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`extra_state`."""

    def describe_candidate(self, spec: NeuronSpec) -> Any:
        """How a candidate appears in the log."""
        return spec.to_dict()

    # ------------------------------------------------------------------ wiring
    def weights(self, layer: str) -> Tensor:
        """``softmax(a)`` of ``layer``."""
        return torch.softmax(self.alphas[layer], dim=0)

    def attach(self, model: SpikingNet) -> None:
        """Replace every searched layer by a :class:`MixedNeuron` over its candidates."""
        for layer in self.layers:
            mixed = MixedNeuron(self.candidates[layer], functools.partial(self.weights, layer))
            replace_module(model, layer, mixed)

    def mixed_layer(self, model: SpikingNet, layer: str) -> MixedNeuron:
        """The attached mixed layer."""
        module = model.get_submodule(layer)
        if not isinstance(module, MixedNeuron):
            raise RuntimeError(f"{layer} is not a mixed neuron layer")
        return module

    def set_candidates(self, model: SpikingNet, layer: str, specs: list[NeuronSpec]) -> None:
        """Change a layer's candidates in place (same types, so the state layout is unchanged)."""
        self.candidates[layer] = list(specs)
        self.mixed_layer(model, layer).set_candidates(specs)

    def sync(self, model: SpikingNet) -> None:
        """Re-read the candidates from the attached layers (after DGS changed their surrogate ``b``)."""
        if self.finished:
            return
        for layer in self.layers:
            self.candidates[layer] = list(self.mixed_layer(model, layer).candidates)

    def active(self, epoch: int) -> bool:
        """Whether ``a`` is trained in ``epoch`` (0-based)."""
        return not self.finished and epoch >= self.warmup

    def zero_grad(self) -> None:
        """Clear the gradients of ``a``."""
        self.optimizer.zero_grad(set_to_none=True)

    def begin_epoch(self, model: SpikingNet, task: Any, epoch: int) -> None:
        """Start the search at the first active epoch."""
        if self.active(epoch) and not self.started:
            self.started = True
            self.on_start(model, task)

    # ------------------------------------------------------------------ per iteration
    def after_backward(self, model: SpikingNet, epoch: int) -> None:
        """Step ``a`` (after the warm-up), accumulate it, and decide every ``every`` iterations."""
        if not self.active(epoch):
            self.zero_grad()
            return
        self.optimizer.step()
        with torch.no_grad():
            for layer in self.layers:
                self.sums[layer] += self.alphas[layer]
        self.count += 1
        self.iteration += 1
        if self.count >= self.every:
            self._decision_step(model, epoch)

    def _decision_step(self, model: SpikingNet, epoch: int) -> None:
        record: dict[str, Any] = {
            "epoch": epoch,
            "iteration": self.iteration,
            "averaged_iterations": self.count,
            "layers": {},
        }
        for layer in self.layers:
            mean = (self.sums[layer] / self.count).cpu()
            index = int(torch.argmax(mean))
            entry = {
                "candidates": [self.describe_candidate(c) for c in self.candidates[layer]],
                "alpha_mean": [round(float(v), 6) for v in mean],
                "chosen": index,
            }
            self.decide(model, layer, index)
            entry["result"] = self.describe_candidate(self.decided_spec(layer))
            record["layers"][layer] = entry
        self.records.append(record)
        with torch.no_grad():
            for layer in self.layers:
                self.alphas[layer].fill_(self.eps)
                self.sums[layer].zero_()
        self.optimizer.state.clear()
        self.count = 0

    def finalize(self, model: SpikingNet, epoch: int) -> None:
        """End the search: decide on the pending iterations, then put plain neurons with the decided specs."""
        if self.finished:
            return
        if self.count > 0:
            self._decision_step(model, epoch)
        for layer in self.layers:
            replace_module(model, layer, Neuron(self.decided_spec(layer)))
        self.finished = True

    def summary(self) -> dict[str, Any]:
        """Decided candidate per layer."""
        return {layer: self.describe_candidate(self.decided_spec(layer)) for layer in self.layers}

    # ------------------------------------------------------------------ checkpoint
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the search exactly."""
        return {
            "name": self.name,
            "layers": list(self.layers),
            "candidates": {k: [c.to_dict() for c in v] for k, v in self.candidates.items()},
            "alphas": {k: v.detach().clone() for k, v in self.alphas.items()},
            "sums": {k: v.clone() for k, v in self.sums.items()},
            "optimizer": self.optimizer.state_dict(),
            "count": self.count,
            "iteration": self.iteration,
            "decisions": dict(self.decisions),
            "records": list(self.records),
            "started": self.started,
            "finished": self.finished,
            "extra": self.extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (before :meth:`attach`)."""
        if state.get("name") != self.name or list(state["layers"]) != self.layers:
            raise SnncError(f"checkpoint holds a different {self.name.upper()} search state (layers or method differ)")
        self.candidates = {k: [NeuronSpec.from_dict(c) for c in v] for k, v in state["candidates"].items()}
        with torch.no_grad():
            for k in self.layers:
                self.alphas[k].copy_(state["alphas"][k])
                self.sums[k].copy_(state["sums"][k])
        self.optimizer.load_state_dict(state["optimizer"])
        self.count, self.iteration = int(state["count"]), int(state["iteration"])
        self.decisions = dict(state["decisions"])
        self.records = list(state["records"])
        self.started, self.finished = bool(state["started"]), bool(state["finished"])
        self.load_extra_state(state.get("extra", {}))


def searched_layers(model: SpikingNet, requested: list[str], eligible: list[str], method: str) -> list[str]:
    """Resolve ``requested`` names/aliases (all ``eligible`` layers if empty), checking eligibility."""
    if not requested:
        return list(eligible)
    out = []
    for name in requested:
        layer = resolve_layer(model, name)
        if layer not in eligible:
            raise SnncError(
                f"{method}: neuron layer {layer!r} cannot be searched (type {model.get_submodule(layer).spec.type!r})"
            )
        if layer not in out:
            out.append(layer)
    return out
