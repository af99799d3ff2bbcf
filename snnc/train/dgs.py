"""DGS: differentiable surrogate-gradient search during retraining (SpikeDHS, NeurIPS 2022, §3.4, Algorithm 1).

Every ``every`` epochs (``e_D`` = 5), for each chosen neuron layer and
``iters`` iterations (``I_g`` = 100) on training batches:

1. for each of the N candidate temperatures ``b_i = b + k * db``
   (``k = -(N-1)/2 .. (N-1)/2``; N = 5, db = 0.2; non-positive ones dropped)
   the layer's surrogate is set to ``g(b_i)`` and the loss is back-propagated;
   one SGD step with the current learning rate gives the candidate weights
   ``w_gi = w - lr * dL/dw | g(b_i)`` of the convolution(s) feeding the layer
   (the paper computes them one by one; Dspike is not linear in ``b``, so the
   one-pass shortcut does not apply);
2. ``alpha`` (N values) is initialised to ``eps`` = 0.001 and the mixed
   current ``I_hat = sum_i softmax(alpha)_i (w_gi * x)`` (eq. 7) is formed
   by running the network with the weight ``sum_i softmax(alpha)_i w_gi``
   (convolution is linear, so this is the same current, before BatchNorm);
   ``alpha`` takes one gradient step (lr ``alpha_lr``) on the loss of that
   mixed network;
3. after the ``iters`` iterations the layer's surrogate becomes ``g(b_i)``
   with ``i = argmax <alpha_i>`` (mean over the iterations) and is written
   into the genotype's spec of that layer.

The search is a probe: the network's weights are not changed by it, and the
BatchNorm running statistics touched by its forward passes are restored.
Layers: ``s1`` (the first stem layer, the paper's default) and/or ``c5`` (the
first node of cell 5) or any neuron layer name fed by a convolution.
Each layer's round is logged as one JSON line in ``run_dir/dgs.jsonl``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any, cast

import torch
from torch.func import functional_call

from snnc.models.base import SpikingNet
from snnc.neurons import Neuron
from snnc.train.layers import resolve_layer, synaptic_weights
from snnc.train.mixed import MixedNeuron

__all__ = ["DGSearch", "dgs_candidates", "set_surrogate_b"]


def dgs_candidates(b: float, n: int, db: float) -> list[float]:
    """``b + k*db`` for ``k = -(n-1)/2 .. (n-1)/2``, positive values only."""
    half = (n - 1) // 2
    return [round(b + k * db, 6) for k in range(-half, half + 1) if b + k * db > 0]


def set_surrogate_b(neuron: Neuron, b: float) -> None:
    """Give neuron layer ``neuron`` (plain or mixed) the surrogate temperature ``b``."""
    if isinstance(neuron, MixedNeuron):
        neuron.set_candidates([dataclasses.replace(c, b=b) for c in neuron.candidates])
    else:
        neuron.spec = dataclasses.replace(neuron.spec, b=b)


class DGSearch:
    """DGS over the chosen layers (see module docstring).

    Args:
        model: the network (layer names/aliases are resolved on it).
        layers: names or aliases (``s1``, ``c5``).
        every, iters, candidates, db, eps, alpha_lr: ``e_D``, ``I_g``, N, db, eps, lr of alpha.
    """

    def __init__(
        self,
        model: SpikingNet,
        *,
        layers: list[str],
        every: int,
        iters: int,
        candidates: int,
        db: float,
        eps: float,
        alpha_lr: float,
    ) -> None:
        resolved: list[str] = []
        for name in layers:
            layer = resolve_layer(model, name)
            synaptic_weights(model, layer)  # fail early if DGS cannot work on it
            if layer not in resolved:
                resolved.append(layer)
        self.layers = resolved
        self.every, self.iters, self.n = int(every), int(iters), int(candidates)
        self.db, self.eps, self.alpha_lr = float(db), float(eps), float(alpha_lr)
        self.records: list[dict[str, Any]] = []
        #: Gradients -> their mean over the data-parallel ranks (identity in one process; set by the trainer).
        self.mean_over_ranks: Callable[[list[torch.Tensor]], list[torch.Tensor]] = list

    def due(self, epochs_done: int) -> bool:
        """Whether a search round follows epoch number ``epochs_done`` (1-based)."""
        return epochs_done > 0 and epochs_done % self.every == 0

    def run(
        self, model: SpikingNet, task: Any, *, epoch: int, lr: float, batches: Callable[[int], Iterator[Any]]
    ) -> list[dict[str, Any]]:
        """One search round after ``epoch`` (0-based) on every layer; returns the new log records.

        ``batches(cycle)`` yields training batches (a fresh, reproducible pass per cycle).
        """
        new = []
        for layer in self.layers:
            record = self._search_layer(model, task, layer, lr, batches)
            record["epoch"] = epoch
            self.records.append(record)
            new.append(record)
        return new

    def _search_layer(
        self, model: SpikingNet, task: Any, layer: str, lr: float, batches: Callable[[int], Iterator[Any]]
    ) -> dict[str, Any]:
        neuron = cast(Neuron, model.get_submodule(layer))
        weights = synaptic_weights(model, layer)
        names, params = list(weights), list(weights.values())
        b0 = neuron.spec.b
        cands = dgs_candidates(b0, self.n, self.db)
        buffers = {k: v.detach().clone() for k, v in model.named_buffers()}
        was = model.training
        model.train()
        alpha_sum = torch.zeros(len(cands), dtype=torch.float64)
        cycle, it = 0, iter(batches(0))
        try:
            for _ in range(self.iters):
                try:
                    batch = next(it)
                except StopIteration:
                    cycle += 1
                    it = iter(batches(cycle))
                    batch = next(it)
                stepped = []
                for b in cands:
                    set_surrogate_b(neuron, b)
                    loss, _ = task.loss(model, batch)
                    grads = self.mean_over_ranks(list(torch.autograd.grad(loss, params)))
                    stepped.append([p.detach() - lr * g for p, g in zip(params, grads, strict=False)])
                set_surrogate_b(neuron, b0)
                alpha = torch.full((len(cands),), self.eps, device=params[0].device, requires_grad=True)
                mix = torch.softmax(alpha, dim=0)
                mixed = {n: sum(mix[i] * stepped[i][j] for i in range(len(cands))) for j, n in enumerate(names)}
                loss, _ = task.loss(model, batch, forward=lambda x, m=mixed: functional_call(model, m, (x,)))
                (grad,) = self.mean_over_ranks(list(torch.autograd.grad(loss, alpha)))
                alpha_sum += self.eps - self.alpha_lr * grad.detach().double().cpu()  # alpha after its step
        finally:
            set_surrogate_b(neuron, b0)
            with torch.no_grad():
                for k, v in model.named_buffers():
                    v.copy_(buffers[k])
            model.train(was)
        mean = alpha_sum / self.iters
        best = int(torch.argmax(mean))
        set_surrogate_b(neuron, cands[best])
        return {
            "layer": layer,
            "previous_b": b0,
            "candidates": cands,
            "alpha_mean": [float(v) for v in mean],
            "chosen_b": cands[best],
            "iterations": self.iters,
            "weights": names,
        }

    def summary(self) -> dict[str, float]:
        """The latest chosen ``b`` per layer."""
        return {r["layer"]: r["chosen_b"] for r in self.records}

    def state_dict(self) -> dict[str, Any]:
        """The log (the chosen ``b`` itself lives in the model/genotype)."""
        return {"layers": list(self.layers), "records": list(self.records)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.records = list(state.get("records", []))
