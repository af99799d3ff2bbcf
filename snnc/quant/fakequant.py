"""Straight-through fake quantisation of a float network (``snnc train --qat``).

:func:`fake_quantized` makes a folded float network compute, in its forward
pass, what its int8 network computes (``docs/INT8.md``), while gradients flow as
if nothing were rounded (straight-through estimator, STE):

* **input**: ``input_scale * clamp(round(x / input_scale), +-input_max)`` (a pre-hook on the network);
* **weights**: every synaptic layer's weight is replaced in the forward pass by
  ``g * clamp(round(W / g), -127, 127)`` with its integer grid ``g`` (the
  float weight per integer step that post-training quantisation gave it);
* **membrane**: every neuron runs the integer dynamics in float units
  (``s`` = its scale): synaptic input ``s * round(I / s)``, decay
  ``(s/64) * trunc(u (1 - y) * keep / 4096 * 64 / s)`` with the 6-bit decay,
  threshold ``(vth_int * 64 + 0.5) * s / 64``; the spike keeps the layer's
  surrogate gradient.

Identity edges (skips without a weight module) keep their float weight 1 where the int8
network uses ``round(1 / s) * s``, so the forward is the int8 network's to that rounding
(digits: identical predictions, scores within 5 %). Grids and scales come from a PTQ of the starting weights
(:func:`snnc.quant.int8.quantize_graph`, ``fields.notes``) and stay fixed while
training; the trained weights are quantised again at the end.
"""

from __future__ import annotations

import re
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from snnc.errors import SnncError
from snnc.neurons import init_state, spike_fn
from snnc.neurons.integer import ACT_SHIFT, DECAY_UNITY, W_MAX
from snnc.quant.fields import QuantFields

__all__ = ["fake_quantized", "synaptic_modules"]


def _round_ste(x: Tensor) -> Tensor:
    return x + (torch.round(x) - x).detach()


def _trunc_ste(x: Tensor) -> Tensor:
    return x + (torch.trunc(x) - x).detach()


class _WeightQuant(nn.Module):
    def __init__(self, grid: float) -> None:
        super().__init__()
        self.grid = float(grid)

    def forward(self, w: Tensor) -> Tensor:
        return self.grid * torch.clamp(_round_ste(w / self.grid), -W_MAX, W_MAX)


def _neuron_forward(self: Any, current: Tensor, state: Any = None) -> tuple[Tensor, Any]:
    spec, neuron, s = self.spec, self._qat_int, self._qat_scale
    if state is None:
        state = init_state(spec, current)
    a = _round_ste(current / s)
    threshold = (neuron.threshold + 0.5) * s / (1 << ACT_SHIFT)
    if neuron.type == "binary":
        return spike_fn(a * s, threshold, spec.surrogate, spec.b), ()
    u_prev, y_prev = state
    step = s / (1 << ACT_SHIFT)
    kept = step * _trunc_ste(u_prev * (1.0 - y_prev) * (neuron.keep / DECAY_UNITY) / step)
    u = kept + a * s
    y = spike_fn(u, threshold, spec.surrogate, spec.b)
    return y, (u, y)


def synaptic_modules(model: nn.Module, fields: QuantFields) -> dict[str, nn.Module]:
    """Graph synaptic node name -> the Conv/Linear module whose weight it holds (split parts share one module).

    Nodes without a module of their own (identity edges) are left out; a fused node (the stereo
    ``cost_volume`` conv) is found by its weight.
    """
    by_name = dict(model.named_modules())
    out: dict[str, nn.Module] = {}
    for node in fields.weights:
        path = re.sub(r"\.part\d+$", "", node)
        module = by_name.get(path)
        if module is not None and not isinstance(module, (nn.Conv2d, nn.Conv3d, nn.Linear)):
            module = getattr(module, "conv", None)
        if isinstance(module, (nn.Conv2d, nn.Conv3d, nn.Linear)):
            out[node] = module
    wanted = [n for n in fields.weights if n not in out and not re.search(r"\.ops\.\d+(\.part\d+)?$", n)]
    for node in wanted:  # fused nodes: the module with this weight's shape (unique)
        shape = tuple(fields.weights[node].shape)
        hits = [m for m in by_name.values() if isinstance(m, (nn.Conv2d, nn.Conv3d)) and tuple(m.weight.shape) == shape]
        if len(hits) == 1:
            out[node] = hits[0]
    return out


@contextmanager
def fake_quantized(model: nn.Module, fields: QuantFields) -> Iterator[nn.Module]:
    """Within the block, ``model`` computes its int8 network in float with STE gradients (module docstring).

    Raises:
        SnncError: fields without the PTQ grids and scales (an int8 entry from elsewhere), or a
            neuron layer of the fields the network does not have.
    """
    grids, scales = fields.notes.get("grids"), fields.notes.get("scales")
    if not grids or not scales:
        raise SnncError("int8 fields without PTQ grids/scales: QAT starts from a float checkpoint")
    neurons = dict(model.neurons())  # type: ignore[operator]
    missing = [n for n in fields.neurons if n not in neurons]
    if missing:
        raise SnncError(f"QAT: the network has no neuron layer {missing[0]!r} of its int8 fields")
    modules: dict[int, tuple[nn.Module, float]] = {}
    for node, module in synaptic_modules(model, fields).items():
        grid = float(grids[node])
        modules[id(module)] = (module, min(grid, modules.get(id(module), (module, grid))[1]))

    def quantize_input(_module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
        x = args[0]
        q = fields.input_scale * torch.clamp(_round_ste(x / fields.input_scale), -fields.input_max, fields.input_max)
        return (q, *args[1:])

    hook = model.register_forward_pre_hook(quantize_input)
    try:
        for module, grid in modules.values():
            parametrize.register_parametrization(module, "weight", _WeightQuant(grid))
        for name, neuron in neurons.items():
            if name in fields.neurons:
                neuron._qat_int = fields.neurons[name]
                neuron._qat_scale = float(scales[name])
                neuron.forward = types.MethodType(_neuron_forward, neuron)
        yield model
    finally:
        hook.remove()
        for module, _ in modules.values():
            if parametrize.is_parametrized(module, "weight"):
                parametrize.remove_parametrizations(module, "weight", leave_parametrized=False)
        for neuron in neurons.values():
            for attr in ("forward", "_qat_int", "_qat_scale"):
                neuron.__dict__.pop(attr, None)
