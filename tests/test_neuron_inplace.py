"""neuron_step's in-place inference path (LIF/IF without autograd) is bit-identical to the plain expression."""

from __future__ import annotations

import pytest
import torch

from snnc.neurons import NeuronSpec, neuron_step
from snnc.neurons.dynamics import leak_factor


def _expression(spec, current, u_prev, y_prev):
    """The documented update, written out: what autograd, tracing and ONNX export see."""
    u = leak_factor(spec) * u_prev * (1.0 - y_prev) + current
    y = (u > spec.vth).to(u.dtype)
    return y, (u, y)


@pytest.mark.parametrize("kind", ["lif", "if"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_in_place_step_is_bit_identical_and_leaves_the_state_alone(kind, dtype):
    spec = NeuronSpec(type=kind, decay=0.3, vth=0.5)
    g = torch.Generator().manual_seed(0)
    u = (torch.randn(2, 3, 7, 9, generator=g) * 0.7).to(dtype)
    y = (u > spec.vth).to(dtype)
    for _ in range(6):  # several steps: near-threshold membranes and resets on every step
        current = (torch.randn(u.shape, generator=g) * 0.7).to(dtype)
        before = (u.clone(), y.clone(), current.clone())
        with torch.no_grad():
            got_y, (got_u, got_y2) = neuron_step(spec, current, (u, y))
        want_y, (want_u, _) = _expression(spec, current, u, y)
        assert torch.equal(got_u, want_u) and torch.equal(got_y, want_y) and got_y2 is got_y
        assert got_y.dtype == dtype and got_u.dtype == dtype
        assert all(torch.equal(a, b) for a, b in zip(before, (u, y, current), strict=True))  # inputs untouched
        assert got_u.data_ptr() not in (u.data_ptr(), y.data_ptr(), current.data_ptr())
        u, y = got_u, got_y
    assert 0 < float(y.mean()) < 1


def test_training_keeps_the_autograd_path():
    """With gradients recorded the plain expression runs (the surrogate gradient flows to the current)."""
    spec = NeuronSpec(type="lif", decay=0.5, vth=0.5)
    current = torch.randn(4, 5, requires_grad=True)
    u, y = torch.zeros(4, 5), torch.zeros(4, 5)
    out, (u1, _) = neuron_step(spec, current, (u, y))
    assert out.grad_fn is not None and u1.grad_fn is not None
    out.sum().backward()
    assert current.grad is not None and float(current.grad.abs().sum()) > 0


def test_broadcast_states_take_the_general_path():
    """A state that broadcasts against the current (not an in-place shape) still follows the expression."""
    spec = NeuronSpec(type="lif", decay=0.5, vth=0.5)
    current = torch.randn(3, 4)
    u, y = torch.full((1, 4), 0.4), torch.tensor([[0.0, 1.0, 0.0, 1.0]])
    with torch.no_grad():
        got, (got_u, _) = neuron_step(spec, current, (u, y))
    want, (want_u, _) = _expression(spec, current, u, y)
    assert got.shape == (3, 4) and torch.equal(got, want) and torch.equal(got_u, want_u)
