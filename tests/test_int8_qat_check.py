"""QAT fake quantisation (snnc.quant.fakequant) and the cross-backend check (snnc.runtime.check)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from snnc.data.images import load_digits_set
from snnc.errors import SnncError
from snnc.models.loading import open_model
from snnc.quant import Int8Network, quantize_network
from snnc.quant.fakequant import fake_quantized
from snnc.runtime.base import Backend
from snnc.runtime.check import Agreement, CheckedBackend


@pytest.mark.slow
def test_fake_quantized_forward_is_the_int8_network_and_is_undone():
    torch.manual_seed(0)
    om = open_model("digits-cla")
    model, t = om.model, om.genotype.time_steps
    data = load_digits_set()
    fields = quantize_network(model, (1, 1, 8, 8), [data.x_train[:256]])
    x = data.x_test[:120]
    seq = x.unsqueeze(0).expand(t, *x.shape)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        want = Int8Network(model, fields)(seq).mean(0)
        with fake_quantized(model, fields):
            got = model(seq).mean(0)
        after = model(seq).mean(0)
    assert float((got.argmax(1) == want.argmax(1)).float().mean()) == 1.0
    assert float((got - want).abs().max()) < 0.1 * float(want.abs().max())  # identity edges keep weight 1
    assert not torch.equal(after, got)  # the float network is back
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    model.train()
    with fake_quantized(model, fields):
        loss = model(seq).mean(0).logsumexp(1).mean()
        loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and any(float(g.abs().sum()) > 0 for g in grads)  # straight-through gradients reach the weights
    fields.notes.clear()
    with pytest.raises(SnncError, match="grids/scales"), fake_quantized(model, fields):
        pass


class _Fixed(Backend):
    """A backend answering ``latency`` frames late with the frame's own value as a cost."""

    def __init__(self, name: str, latency: int, offset: float = 0.0) -> None:
        self.name, self.latency, self.offset = name, latency, offset
        self._queue: list[torch.Tensor] = []

    def reset(self, x0):
        self._queue = []

    def _cost(self, x):
        cost = torch.zeros(1, 4, 2, 3)
        cost[0, int(x.flatten()[0]) % 4] = -10.0 + self.offset
        return cost

    def step(self, x):
        self._queue.append(self._cost(x))
        return self._queue.pop(0) if len(self._queue) > self.latency else None

    def flush(self):
        rest, self._queue = self._queue, []
        return rest

    def placement(self):
        return []


def test_checked_backend_pairs_a_pipelined_backend_with_its_reference_frames():
    checked = CheckedBackend(_Fixed("lava", 2), _Fixed("torch", 0))
    agree = Agreement("torch", 1.0)
    frames = [torch.full((1, 1), float(i)) for i in range(5)]
    checked.reset(frames[0])
    costs = [c for c in (checked.step(x) for x in frames) if c is not None] + checked.flush()
    assert len(costs) == 5
    from snnc.models.stereo import estimate_disparity

    for cost in costs:
        disp = (estimate_disparity(cost, disp_step=1.0)[0].numpy() / 7.0).astype(np.float32)
        agree.add(disp, checked.take_reference(), None)
    r = agree.result()
    assert r["frames"] == 5 and r["pixels_differing"] == 0 and r["pixels"] == 30
    with pytest.raises(SnncError, match="at once"):
        CheckedBackend(_Fixed("torch", 0), _Fixed("lava", 1))
