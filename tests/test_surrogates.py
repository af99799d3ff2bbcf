"""Surrogate gradients of spike_fn against independently written formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from snnc.errors import SnncError
from snnc.neurons import SURROGATES, spike_fn, surrogate_derivative

B_VALUES = (0.5, 1.0, 2.6, 3.0, 5.0, 7.3)
VTHS = (0.5, 1.0)


def reference(name: str, x: np.ndarray, b: float) -> np.ndarray:
    """NeurIPS 2022 eqs. 14-17, SuperSpike/ArcTan centred at the threshold x = 1/2."""
    if name == "dspike":
        d = b / 2.0 * (1.0 - np.tanh(b * (x - 0.5)) ** 2) / np.tanh(b / 2.0)
        return np.where((x >= 0.0) & (x <= 1.0), d, 0.0)
    if name == "triangle":
        return b * np.maximum(0.0, 1.0 - np.abs(x - 0.5))
    if name == "superspike":
        return 1.0 / (b * np.abs(x - 0.5) + 1.0) ** 2
    if name == "arctan":
        return (b / 3.0) / (1.0 + (np.pi * (x - 0.5)) ** 2)
    raise AssertionError(name)


def _points(vth: float) -> torch.Tensor:
    # 200 points with x = u / (2 vth) spanning [-1, 2], i.e. well beyond [0, 1]
    x = torch.linspace(-1.0, 2.0, 200, dtype=torch.float64)
    return x * 2.0 * vth


@pytest.mark.parametrize("name", SURROGATES)
def test_spike_fn_backward_matches_formula(name: str) -> None:
    gen = torch.Generator().manual_seed(0)
    for vth in VTHS:
        for b in B_VALUES:
            u = _points(vth).requires_grad_(True)
            up = torch.rand(u.shape, generator=gen, dtype=torch.float64) + 0.5
            y = spike_fn(u, vth, name, b)
            y.backward(up)
            x = (u.detach() / (2.0 * vth)).numpy()
            expected = up.numpy() * reference(name, x, b) / (2.0 * vth)
            assert torch.allclose(u.grad, torch.from_numpy(expected), rtol=1e-10, atol=1e-12), (name, vth, b)


@pytest.mark.parametrize("name", SURROGATES)
def test_surrogate_derivative_matches_formula(name: str) -> None:
    x = torch.linspace(-1.0, 2.0, 301, dtype=torch.float64)
    x_before = x.clone()
    for b in B_VALUES:
        got = surrogate_derivative(name, x, b)
        assert torch.equal(x, x_before)  # the input is never modified in place
        assert got.dtype == torch.float64 and got.shape == x.shape
        assert torch.allclose(got, torch.from_numpy(reference(name, x.numpy(), b)), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", SURROGATES)
def test_float32_backward(name: str) -> None:
    u = _points(0.5).float().requires_grad_(True)
    spike_fn(u, 0.5, name, 3.0).sum().backward()
    expected = reference(name, u.detach().double().numpy(), 3.0)  # 2 vth = 1: x = u
    assert u.grad.dtype == torch.float32
    assert torch.allclose(u.grad.double(), torch.from_numpy(expected), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("b", B_VALUES)
def test_dspike_integrates_to_one_on_unit_interval(b: float) -> None:
    x = torch.linspace(0.0, 1.0, 20001, dtype=torch.float64)
    area = torch.trapezoid(surrogate_derivative("dspike", x, b), x).item()
    assert area == pytest.approx(1.0, abs=1e-7)
    # and nothing outside [0, 1]
    f64 = torch.float64
    outside = torch.cat([torch.linspace(-3, -1e-9, 50, dtype=f64), torch.linspace(1 + 1e-9, 3, 50, dtype=f64)])
    assert torch.all(surrogate_derivative("dspike", outside, b) == 0)


@pytest.mark.parametrize("b", B_VALUES)
def test_dspike_is_derivative_of_its_primitive(b: float) -> None:
    """Dspike(x) = a tanh(b(x - 1/2)) + d with Dspike(0) = 0, Dspike(1) = 1."""
    a = 1.0 / (2.0 * math.tanh(b / 2.0))
    d = 0.5
    assert a * math.tanh(-b / 2.0) + d == pytest.approx(0.0, abs=1e-12)
    assert a * math.tanh(b / 2.0) + d == pytest.approx(1.0, abs=1e-12)
    for vth in VTHS:
        # interior points only (the primitive has kinks at x = 0 and x = 1)
        x = torch.linspace(0.01, 0.99, 97, dtype=torch.float64)
        u1 = (x * 2 * vth).requires_grad_(True)
        v1 = torch.full_like(x, vth).requires_grad_(True)
        (a * torch.tanh(b * (u1 / (2 * v1) - 0.5)) + d).sum().backward()
        u2 = (x * 2 * vth).requires_grad_(True)
        v2 = torch.full_like(x, vth).requires_grad_(True)
        spike_fn(u2, v2, "dspike", b).sum().backward()
        assert torch.allclose(u2.grad, u1.grad, rtol=1e-10)
        # a tensor threshold gets the derivative of the same smooth primitive
        assert torch.allclose(v2.grad, v1.grad, rtol=1e-10)


@pytest.mark.parametrize("b", B_VALUES)
def test_triangle_peak_and_support(b: float) -> None:
    for vth in VTHS:
        u = torch.tensor([vth], dtype=torch.float64, requires_grad=True)
        spike_fn(u, vth, "triangle", b).sum().backward()
        assert u.grad.item() == pytest.approx(b / (2.0 * vth))
    x = torch.linspace(-1.0, 2.0, 3001, dtype=torch.float64)
    g = surrogate_derivative("triangle", x, b)
    assert g.max().item() == pytest.approx(b)
    assert x[g.argmax()].item() == pytest.approx(0.5, abs=1e-3)
    assert torch.all(g[(x <= -0.5) | (x >= 1.5)] == 0)
    assert torch.all(g[(x > -0.5 + 1e-9) & (x < 1.5 - 1e-9)] > 0)


@pytest.mark.parametrize("name", ["superspike", "arctan"])
def test_superspike_arctan_centred_at_threshold(name: str) -> None:
    x = torch.linspace(-1.0, 2.0, 3001, dtype=torch.float64)
    for b in B_VALUES:
        g = surrogate_derivative(name, x, b)
        assert torch.all(g > 0)
        assert x[g.argmax()].item() == pytest.approx(0.5, abs=1e-3)
        # symmetric about the threshold
        assert torch.allclose(g, torch.flip(g, [0]), rtol=1e-9)
        peak = 1.0 if name == "superspike" else b / 3.0
        assert g.max().item() == pytest.approx(peak)


def test_forward_is_strict_heaviside_and_keeps_dtype() -> None:
    for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        u = torch.tensor([-1.0, 0.0, 0.49, 0.5, 0.51, 2.0], dtype=dtype)
        for requires_grad in (False, True):
            y = spike_fn(u.clone().requires_grad_(requires_grad), 0.5)
            assert y.dtype == dtype
            assert y.tolist() == [0.0, 0.0, 0.0, 0.0, 1.0, 1.0]
    # tensor threshold, broadcast
    u = torch.tensor([[0.6, 0.6], [1.2, 0.9]])
    assert spike_fn(u, torch.tensor([0.5, 1.0])).tolist() == [[1.0, 0.0], [1.0, 0.0]]


def test_broadcast_tensor_threshold_gradients() -> None:
    gen = torch.Generator().manual_seed(1)
    u = (torch.rand(5, 4, generator=gen, dtype=torch.float64) * 2).requires_grad_(True)
    vth = torch.tensor([0.4, 0.5, 0.7, 1.0], dtype=torch.float64, requires_grad=True)
    up = torch.rand(5, 4, generator=gen, dtype=torch.float64)
    spike_fn(u, vth, "arctan", 3.0).backward(up)
    x = (u / (2 * vth)).detach().numpy()
    g = up.numpy() * reference("arctan", x, 3.0)
    v = vth.detach().numpy()
    assert torch.allclose(u.grad, torch.from_numpy(g / (2 * v)))
    assert vth.grad.shape == (4,)
    assert torch.allclose(vth.grad, torch.from_numpy((-g * x / v).sum(axis=0)))


def test_no_grad_and_inference_paths() -> None:
    u = torch.linspace(0, 1, 11, requires_grad=True)
    with torch.no_grad():
        y = spike_fn(u, 0.5)
    assert not y.requires_grad
    assert not spike_fn(u.detach(), 0.5).requires_grad
    y = spike_fn(u, 0.5)
    assert y.requires_grad and y.grad_fn is not None


def test_unknown_surrogate_and_bad_b_raise() -> None:
    u = torch.zeros(3, requires_grad=True)
    with pytest.raises(SnncError, match="unknown surrogate 'sigmoid'"):
        spike_fn(u, 0.5, "sigmoid")
    with pytest.raises(SnncError, match="unknown surrogate 'sigmoid'"):
        surrogate_derivative("sigmoid", u, 3.0)
    with pytest.raises(SnncError, match="b must be a positive"):
        spike_fn(u, 0.5, "dspike", 0.0)
    with pytest.raises(SnncError, match="b must be a positive"):
        surrogate_derivative("triangle", u, -1.0)
    with pytest.raises(SnncError, match="vth must be positive"):
        spike_fn(u, 0.0)
