"""Spike function with analytic surrogate gradients.

The forward pass is the Heaviside step ``y = (u > vth)`` (strictly greater,
the same convention as ONNX ``Greater``, NIR and Lava). The backward pass
replaces the Dirac derivative by a surrogate ``g'(x)`` evaluated on the
normalised potential ``x = u / (2 vth)``, which puts the threshold at
``x = 0.5`` and the resting potential at ``x = 0`` (SpikeDHS, NeurIPS 2022,
§3.1 and appendix eqs. 14-17; snnc methods.md §2):

* ``dspike``     ``b/2 * (1 - tanh^2(b (x - 1/2))) / tanh(b/2)`` on ``0 <= x <= 1``,
  0 elsewhere. It is the derivative of ``Dspike(x) = a tanh(b (x - 1/2)) + d``
  with ``Dspike(0) = 0`` and ``Dspike(1) = 1``, so it integrates to 1 on [0, 1].
* ``triangle``   ``b * max(0, 1 - |x - 1/2|)`` (peak ``b`` at the threshold,
  zero for ``x <= -1/2`` and ``x >= 3/2``).
* ``superspike`` ``1 / (b |x - 1/2| + 1)^2``.
* ``arctan``     ``(b/3) / (1 + (pi (x - 1/2))^2)``.

The paper writes SuperSpike and ArcTan as functions of ``x`` itself (peak at
``x = 0``, i.e. at ``u = 0``); snnc centres them at the threshold, where the
spike non-linearity actually is, as their original authors do.

By the chain rule ``dy/du = g'(x) / (2 vth)``. When ``vth`` is a tensor that
requires grad (the ALIF adaptive threshold), the threshold receives the
derivative of the same smooth approximation ``G(u / (2 vth))``:
``dy/dvth = -g'(x) * x / vth``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from snnc.errors import SnncError

__all__ = ["SURROGATES", "surrogate_derivative", "spike_fn", "check_surrogate"]

#: Names of the supported surrogate gradients (``NeuronSpec.surrogate``).
SURROGATES: tuple[str, ...] = ("dspike", "triangle", "superspike", "arctan")

Threshold = float | Tensor


# Each g'(x) below starts with one out-of-place op (so the caller's ``x`` is never
# modified) and then works in place: the backward pass runs on every training
# step, and fewer temporaries make it markedly cheaper (memory-bound kernels).


def _dspike(x: Tensor, b: float) -> Tensor:
    z = (x - 0.5).mul_(b)  # b (x - 1/2); 0 <= x <= 1  <=>  |z| <= b/2
    g = torch.tanh(z)
    g.mul_(g).neg_().add_(1.0).mul_(0.5 * b / math.tanh(0.5 * b))
    return g.masked_fill_(z.abs_() > 0.5 * b, 0.0)


def _triangle(x: Tensor, b: float) -> Tensor:
    return (x - 0.5).abs_().neg_().add_(1.0).clamp_(min=0.0).mul_(b)


def _superspike(x: Tensor, b: float) -> Tensor:
    d = (x - 0.5).abs_().mul_(b).add_(1.0)
    return d.mul_(d).reciprocal_()


def _arctan(x: Tensor, b: float) -> Tensor:
    z = (x - 0.5).mul_(math.pi)
    return z.mul_(z).add_(1.0).reciprocal_().mul_(b / 3.0)


_DERIVATIVES: dict[str, Callable[[Tensor, float], Tensor]] = {
    "dspike": _dspike,
    "triangle": _triangle,
    "superspike": _superspike,
    "arctan": _arctan,
}


def check_surrogate(name: str, b: float) -> None:
    """Raise :class:`SnncError` unless ``name`` is a known surrogate and ``b > 0``."""
    if name not in _DERIVATIVES:
        raise SnncError(f"unknown surrogate {name!r} (expected one of {', '.join(SURROGATES)})")
    if not isinstance(b, (int, float)) or isinstance(b, bool) or not math.isfinite(b) or b <= 0:
        raise SnncError(f"surrogate temperature b must be a positive number, got {b!r}")


def surrogate_derivative(name: str, x: Tensor, b: float) -> Tensor:
    """Analytic surrogate derivative ``g'(x)`` on the normalised potential.

    Args:
        name: one of :data:`SURROGATES`.
        x: normalised membrane potential ``u / (2 vth)`` (threshold at 0.5).
        b: temperature (> 0); larger is sharper.

    Returns:
        ``g'(x)``, same shape and dtype as ``x``, without autograd history
        (it is a gradient formula, not itself differentiated).

    Raises:
        SnncError: unknown surrogate name or non-positive ``b``.
    """
    check_surrogate(name, b)
    with torch.no_grad():
        return _DERIVATIVES[name](x, float(b))


class _SpikeFunction(torch.autograd.Function):
    """Heaviside forward, surrogate backward (see module docstring)."""

    @staticmethod
    def forward(ctx: Any, u: Tensor, vth: Threshold, surrogate: str, b: float) -> Tensor:
        vth_is_tensor = isinstance(vth, Tensor)
        if vth_is_tensor:
            ctx.save_for_backward(u, vth)
        else:
            ctx.save_for_backward(u)
            ctx.vth = float(vth)
        ctx.vth_is_tensor = vth_is_tensor
        ctx.surrogate = surrogate
        ctx.b = b
        return (u > vth).to(u.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        derivative = _DERIVATIVES[ctx.surrogate]
        if not ctx.vth_is_tensor:
            (u,) = ctx.saved_tensors
            inv = 0.5 / ctx.vth
            g = derivative(u * inv, ctx.b)
            return g.mul_(grad_out).mul_(inv), None, None, None
        u, vth = ctx.saved_tensors
        two_vth = 2.0 * vth
        x = u / two_vth
        gg = derivative(x, ctx.b).mul_(grad_out)  # grad * g'(x)
        grad_u = grad_v = None
        if ctx.needs_input_grad[0]:
            grad_u = gg / two_vth
            if grad_u.shape != u.shape:
                grad_u = grad_u.sum_to_size(u.shape)
        if ctx.needs_input_grad[1]:
            grad_v = (gg.mul_(x).div_(vth).neg_()).sum_to_size(vth.shape)
        return grad_u, grad_v, None, None


def spike_fn(u: Tensor, vth: Threshold, surrogate: str = "dspike", b: float = 3.0) -> Tensor:
    """Emit spikes ``(u > vth)`` as ``u.dtype`` with a surrogate gradient.

    Args:
        u: membrane potential.
        vth: threshold, a positive float or a tensor broadcastable to ``u``
            (ALIF's adaptive threshold).
        surrogate: one of :data:`SURROGATES`.
        b: surrogate temperature (> 0).

    Returns:
        Binary tensor of ``u``'s shape (broadcast with ``vth``) and dtype.
        Backward: ``grad * g'(u / (2 vth)) / (2 vth)``.

    Raises:
        SnncError: unknown surrogate name, non-positive ``b`` or float ``vth``.
    """
    check_surrogate(surrogate, b)
    if not isinstance(vth, Tensor) and not vth > 0:
        raise SnncError(f"spike threshold vth must be positive, got {vth!r}")
    needs_grad = torch.is_grad_enabled() and (u.requires_grad or (isinstance(vth, Tensor) and vth.requires_grad))
    # Fast path: inference, tracing and ONNX export see a comparison + cast only.
    tracing = torch.jit.is_tracing()  # type: ignore[no-untyped-call]  # torch leaves it untyped
    if not needs_grad or torch.onnx.is_in_onnx_export() or tracing:
        return (u > vth).to(u.dtype)
    spikes: Tensor = _SpikeFunction.apply(u, vth, surrogate, float(b))  # Function.apply is untyped
    return spikes
