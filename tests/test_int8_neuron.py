"""The integer neuron (snnc.neurons.integer) against Lava's own bit-accurate LIF code, step by step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from snnc.errors import SnncError
from snnc.neurons.integer import A_MAX, V_MAX, IntNeuron, exact_decay, int_init_state, int_neuron_step


@pytest.mark.parametrize("keep", [0, 1, 63, 64, 819, 832, 2048, 3277, 4095, 4096])
def test_exact_decay_is_lavas_int64_shift_in_float32(keep):
    rng = np.random.default_rng(keep)
    v = rng.integers(-V_MAX, V_MAX + 1, size=200_000)
    v[:12] = [V_MAX, -V_MAX, 0, 1, -1, 4095, -4095, 4096, -4096, 4097, -4097, 2**22]
    p = v.astype(np.int64) * keep
    want = np.sign(p) * np.right_shift(np.abs(p), 12)
    got = exact_decay(torch.tensor(v, dtype=torch.float32), keep)
    assert got.dtype == torch.float32
    assert np.array_equal(got.numpy().astype(np.int64), want)


def _lava_model(vth: int, dv: int, n: int):
    lava_models = pytest.importorskip("lava.proc.lif.models")
    model = lava_models.PyLifModelBitAcc.__new__(lava_models.PyLifModelBitAcc)
    lava_models.PyLifModelBitAcc.__init__(model, {})
    model.u = np.zeros(n, dtype=np.int32)
    model.v = np.zeros(n, dtype=np.int32)
    model.du, model.dv, model.vth = 4095, dv, vth
    model.bias_mant = np.zeros(n, dtype=np.int16)
    model.bias_exp = np.full(n, 6, dtype=np.int16)
    return model


@pytest.mark.parametrize("dv", [0, 3264, 2048, 4032])
def test_steps_equal_lavas_pylifmodelbitacc(dv):
    """Lava's subthr_dynamics / spiking_activation / reset_voltage, driven directly, give our v and spikes."""
    n, vth = 4096, 300
    model = _lava_model(vth, dv, n)
    model.scale_bias()
    model.scale_threshold()
    spec = IntNeuron("lif" if dv else "if", vth, dv)
    rng = np.random.default_rng(dv)
    state = int_init_state(spec, torch.zeros(n))
    fired = 0
    for _ in range(30):
        a = rng.integers(-400, 700, size=n)
        a[:2] = [A_MAX, -A_MAX]
        model.subthr_dynamics(activation_in=a.astype(np.int32))
        s = model.spiking_activation()
        model.reset_voltage(spike_vector=s)
        y, state = int_neuron_step(spec, torch.tensor(a, dtype=torch.float32), state)
        assert np.array_equal(y.numpy().astype(bool), s)
        assert np.array_equal((state[0] * (1 - state[1])).numpy().astype(np.int64), model.v.astype(np.int64))
        fired += int(s.sum())
    assert 0 < fired < 30 * n


def test_membrane_saturates_like_lava():
    spec = IntNeuron("if", 2**17 - 1, 0)
    state = int_init_state(spec, torch.zeros(1))
    for _ in range(80):
        _, state = int_neuron_step(spec, torch.tensor([-A_MAX], dtype=torch.float32), state)
    assert float(state[0]) == -V_MAX


def test_binary_is_memoryless_and_fields_are_checked():
    spec = IntNeuron("binary", 10, 4096)
    y, state = int_neuron_step(spec, torch.tensor([10.0, 11.0]), ())
    assert y.tolist() == [0.0, 1.0] and state == ()
    with pytest.raises(SnncError, match="dv of a lif neuron"):
        IntNeuron("lif", 10, 4096)
    with pytest.raises(SnncError, match="17-bit"):
        IntNeuron("lif", 2**17, 0)
    with pytest.raises(SnncError, match="type must be"):
        IntNeuron("alif", 1, 0)
