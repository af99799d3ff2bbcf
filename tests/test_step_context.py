"""Carried (non-neuron) state is first-class in StepContext / SpikingNet (issue 15 item 3)."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from snnc.errors import SnncError
from snnc.models.base import SpikingNet, StepContext
from snnc.neurons import Neuron, NeuronSpec


class Accumulate(SpikingNet):
    """y = spikes of (x + what the net carried from the last step); carries the running sum of x."""

    def __init__(self, forget_put: bool = False) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 3, bias=False)
        self.neuron = Neuron(NeuronSpec(type="lif", decay=0.5, vth=0.5))
        self.register_carry("total")
        self.forget_put = forget_put

    def step_with(self, x_t: Tensor, ctx: StepContext) -> Tensor:
        total = ctx.carry("total", x_t)
        if not self.forget_put:
            ctx.put("total", total + x_t)
        return ctx(self.neuron, self.lin(x_t + total))


def test_carry_is_named_state_after_the_neurons_and_is_stepped():
    net = Accumulate()
    x = torch.rand(4, 2, 3)
    state = net.init_state(x[0])
    assert list(net.split_state(state)) == ["neuron", "total"] and net.state_len() == 3
    for t in range(4):
        _, state = net.step(x[t], state)
        assert torch.allclose(net.split_state(state)["total"][0], x[: t + 1].sum(0))


def test_carry_misuse_is_caught():
    with pytest.raises(RuntimeError, match="never ran neuron layers / wrote carried state: total"):
        Accumulate(forget_put=True).init_state(torch.rand(2, 3))
    net = Accumulate()
    with pytest.raises(ValueError, match="declared twice"):
        net.register_carry("total")
    with pytest.raises(RuntimeError, match="use step"):
        net.step_with(torch.rand(2, 3), StepContext({}))
    state = net.init_state(torch.rand(2, 3))
    with pytest.raises(SnncError, match=r"expected 3 .*1 carried tensors"):
        net.step(torch.rand(2, 3), state[:2])
    with pytest.raises(SnncError, match=r"carried state 'total' has shape \(5, 3\), expected \(2, 3\)"):
        net.step(torch.rand(2, 3), (*state[:2], torch.zeros(5, 3)))
    ctx = StepContext({}, {"total": torch.zeros(2, 3)})
    ctx.carry("total", torch.zeros(2, 3))
    ctx.put("total", torch.zeros(2, 3))
    with pytest.raises(RuntimeError, match="written twice"):
        ctx.put("total", torch.zeros(2, 3))
    with pytest.raises(RuntimeError, match="written before it was read"):
        StepContext({}, {}).put("other", torch.zeros(1))
