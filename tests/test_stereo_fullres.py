"""The stereo preset runs forward and backward on a full 260x346 SBT pair from the generator (CPU)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from snnc.data.disparity import depth_to_disparity
from snnc.data.mvsec import MVSECRecording
from snnc.data.sbt import sbt_pair
from snnc.data.synth import synthesize
from snnc.models.build import build_model
from snnc.models.stereo import estimate_disparity, subpixel_cross_entropy


def test_stereo_preset_forward_backward_on_full_resolution_synthetic_pair(tmp_path: Path) -> None:
    data, _ = synthesize(tmp_path / "full_data.hdf5", frames=2, seed=3, progress=False)
    with MVSECRecording(data) as rec:
        assert (rec.height, rec.width) == (260, 346)
        left, right = sbt_pair(rec, 1)
        disp, valid = depth_to_disparity(rec.depth(1))
    assert np.count_nonzero(left) > 1000 and np.count_nonzero(right) > 1000
    torch.manual_seed(0)
    net = build_model("spikedhs-stereo").train()
    x_t = torch.from_numpy(np.stack([left, right])[None].astype(np.float32))  # (1, 2, 5, 260, 346)
    state = net.init_state(x_t)
    cost, state = net.step(x_t, state)  # streaming: one step per SBT stack
    assert cost.shape == (1, 33, 260, 346)
    loss = subpixel_cross_entropy(cost, torch.from_numpy(disp)[None], torch.from_numpy(valid)[None])
    loss.backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert net.feature.stem0.conv.conv.weight.grad.abs().sum() > 0
    pred = estimate_disparity(cost.detach())
    assert pred.shape == (1, 260, 346) and torch.isfinite(pred).all()
