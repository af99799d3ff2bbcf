"""SpikeDHS-Stereo: cost volume, streaming == fixed window, training signal, estimator and loss."""

from __future__ import annotations

import math

import pytest
import torch

from snnc.errors import SnncError
from snnc.models.build import build_model
from snnc.models.stereo import cost_volume, estimate_disparity, subpixel_cross_entropy

from _spikedhs_util import calibrate_bn


def small_stereo(**kw):
    return build_model(
        "spikedhs-stereo", feature_filter_multiplier=2, matching_filter_multiplier=2, disparities=6, **kw
    )


def sbt(t: int, b: int, h: int = 18, w: int = 24, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(-1, 2, (t, b, 2, 5, h, w), generator=g).float()


# ---------------------------------------------------------------- cost volume
def test_cost_volume_shifts_the_right_features():
    left = torch.arange(2 * 3 * 5, dtype=torch.float32).view(1, 2, 3, 5) + 1
    right = -left
    v = cost_volume(left, right, 3)
    assert v.shape == (1, 4, 3, 3, 5)
    for d in range(3):
        assert torch.equal(v[:, :2, d, :, d:], left[..., d:])
        assert torch.equal(v[:, 2:, d, :, d:], right[..., : 5 - d])
        assert torch.count_nonzero(v[:, :, d, :, :d]) == 0
    with pytest.raises(SnncError, match="equal shape"):
        cost_volume(left, right[..., :4], 3)


# ---------------------------------------------------------------- modes
def test_streaming_equals_fixed_window():
    torch.manual_seed(0)
    x = sbt(5, 2)
    net = calibrate_bn(small_stereo(), x)
    with torch.no_grad():
        fixed = net(x)
        state = net.init_state(x[0])
        stream = []
        for t in range(5):  # one SBT stack per depth frame, state carried
            cost, state = net.step(x[t], state)
            stream.append(cost)
        assert torch.equal(torch.stack(stream), fixed)
        first, mid = net.run(x[:2])  # windows chained through the explicit state
        rest, end = net.run(x[2:], mid)
        assert torch.equal(torch.cat([first, rest]), fixed)
        assert all(torch.equal(a, b) for a, b in zip(end, state, strict=False))
        again, _ = net.run(x[2:], net.init_state(x[0]))
        assert not torch.equal(again, fixed[2:])  # the state matters: the network has memory
    assert fixed.shape == (5, 2, 6, 18, 24)


def test_forward_backward_reaches_every_parameter():
    torch.manual_seed(0)
    net = small_stereo().train()
    x = sbt(3, 2)
    cost = net(x)
    gt = torch.full((3, 2, 18, 24), 4.0)
    valid = torch.rand(3, 2, 18, 24) > 0.3
    loss = subpixel_cross_entropy(cost, gt, valid)
    loss.backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert net.feature.stem0.conv.conv.weight.grad.abs().sum() > 0  # through every spiking layer
    assert net.matching.stem0.conv.conv.weight.grad.abs().sum() > 0


def test_loss_decreases_on_a_toy_target():
    torch.manual_seed(0)
    net = small_stereo().train()
    x = sbt(2, 1, h=12, w=18, seed=3)
    gt = torch.full((2, 1, 12, 18), 6.0)
    valid = torch.ones_like(gt, dtype=torch.bool)
    floor = -(laplace(6, mu=6.0) * laplace(6, mu=6.0).log()).sum().item()  # target entropy
    opt = torch.optim.Adam(net.parameters(), lr=3e-2)
    losses = []
    for _ in range(8):
        opt.zero_grad()
        loss = subpixel_cross_entropy(net(x), gt, valid)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert min(losses) >= floor - 1e-6
    assert losses[-1] < losses[0] - 0.5 * (losses[0] - floor), losses  # half the gap closed in 8 steps


# ---------------------------------------------------------------- estimator
def cost_from(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64).view(-1, 1, 1)


def test_estimator_symmetric_minimum_gives_the_bin_disparity():
    c = cost_from([5.0, 3.0, 1.0, 0.0, 1.0, 3.0, 0.5])  # argmin 3, a lower-cost far bin (6) is ignored
    assert estimate_disparity(c).item() == pytest.approx(6.0)  # D(3) = 2 * 3
    assert estimate_disparity(c, disp_step=1.0).item() == pytest.approx(3.0)


def test_estimator_window_softmin_known_value():
    # window {1, 2, 3} with softmin weights 1/2 : 1 : 1/4 (costs ln2, 0, ln4); bin 5 is outside it
    c = cost_from([9.0, math.log(2), 0.0, math.log(4), 9.0, 0.01])
    expected = 2 * (1 * 0.5 + 2 * 1.0 + 3 * 0.25) / 1.75
    assert estimate_disparity(c).item() == pytest.approx(expected, rel=1e-12)
    e9, e001 = math.exp(-9.0), math.exp(-0.01)  # window {0..5} for delta = 4
    wider = (1 * 0.5 + 2 * 1.0 + 3 * 0.25 + 4 * e9 + 5 * e001) / (e9 + 1.75 + e9 + e001)
    assert estimate_disparity(c, delta=4).item() == pytest.approx(2 * wider, rel=1e-12)
    assert estimate_disparity(c, delta=1).item() == 4.0  # argmin only


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_windowed_estimator_is_the_full_form_bit_for_bit(dtype):
    # the streaming default (window bins only) against the literal full-size form: ties (first argmin wins),
    # minima at both range ends, several widths and scales, a batch, and the NaN / -inf fall-back
    g = torch.Generator().manual_seed(3)
    costs = [
        (torch.randint(-6, 6, (2, 33, 17, 23), generator=g) * 0.37).to(dtype),  # many ties
        torch.randn(1, 33, 19, 21, generator=g, dtype=dtype) * 1e-3,
        torch.randn(3, 9, 5, 7, generator=g, dtype=dtype) * 40,
        torch.randn(1, 2, 6, 6, generator=g, dtype=dtype),
        torch.randn(1, 1, 4, 4, generator=g, dtype=dtype),
        torch.randn(1, 17, 23, 33, generator=g, dtype=dtype).permute(0, 3, 1, 2),  # a strided cost
    ]
    edge = torch.randn(1, 33, 8, 8, generator=g, dtype=dtype)
    edge[0, 0, :4] -= 50  # minimum at bin 0
    edge[0, 32, 4:] -= 50  # and at the last bin
    costs.append(edge)
    # the stream's shape (33 x 260 x 346: PyTorch's sum takes its vectorised and its scalar-tail paths), with ties
    costs.append((torch.randint(-40, 40, (1, 33, 260, 346), generator=g) * 0.0123).to(dtype))
    costs.append(torch.randint(0, 3, (2, 300, 3, 5), generator=g).to(dtype))  # more bins than a uint8 counts
    costs.append(torch.randn(33, 5, 6, generator=g, dtype=dtype))  # no batch axis
    for cost in costs:
        for delta in (1, 2, 3):
            full = estimate_disparity(cost, delta, 2.0, windowed=False)
            fast = estimate_disparity(cost, delta, 2.0)
            assert torch.equal(fast, full), (tuple(cost.shape), delta, float((fast - full).abs().max()))
    # back to back on one shape (the estimator keeps its zero buffer between calls): no value of a call leaks
    for k in range(4):
        cost = torch.randn(1, 33, 9, 11, generator=g, dtype=dtype) * (10.0**k)
        cost[0, 0 if k % 2 else 32] -= 1e4 * (10.0**k)  # minima at the range ends: clamped window bins
        for delta in (3, 1, 2):
            assert torch.equal(estimate_disparity(cost, delta), estimate_disparity(cost, delta, windowed=False))
    odd = torch.randn(1, 33, 6, 6, generator=g, dtype=dtype)
    odd[0, 5, 1, 1] = float("nan")
    odd[0, 7, 2, 2] = float("-inf")
    odd[0, 9, 3, 3] = float("inf")
    full = estimate_disparity(odd, windowed=False)
    assert torch.equal(estimate_disparity(odd).isnan(), full.isnan())
    assert torch.equal(estimate_disparity(odd).nan_to_num(), full.nan_to_num())


def test_estimator_at_the_range_edge_and_batched():
    c = cost_from([0.0, math.log(3), 7.0, 7.0])  # window {0, 1}: weights 1, 1/3
    assert estimate_disparity(c).item() == pytest.approx(2 * (1 / 3) / (4 / 3))
    costs = torch.randn(3, 2, 7, 4, 5)
    out = estimate_disparity(costs)
    assert out.shape == (3, 2, 4, 5)
    assert torch.allclose(out[1, 0], estimate_disparity(costs[1, 0]))
    lo = 2 * (costs.argmin(-3) - 1).clamp(min=0)
    hi = 2 * (costs.argmin(-3) + 1).clamp(max=6)
    assert ((out >= lo) & (out <= hi)).all()
    with pytest.raises(SnncError, match="delta must be >= 1"):
        estimate_disparity(costs, delta=0)


# ---------------------------------------------------------------- loss
def laplace(n: int, mu: float, b: float = 2.0, step: float = 2.0) -> torch.Tensor:
    d = torch.arange(n, dtype=torch.float64) * step
    p = torch.exp(-(d - mu).abs() / b)
    return (p / p.sum()).view(n, 1, 1)


def test_loss_is_minimal_at_the_laplace_target():
    target = laplace(8, mu=5.0)
    entropy = -(target * target.log()).sum()
    best = (-target.log()).clone().requires_grad_(True)  # softmin(best) == target
    gt, valid = torch.full((1, 1), 5.0, dtype=torch.float64), torch.ones(1, 1, dtype=torch.bool)
    loss = subpixel_cross_entropy(best, gt, valid)
    assert loss.item() == pytest.approx(entropy.item(), rel=1e-12)
    loss.backward()
    assert best.grad.abs().max() < 1e-12
    shifted = -laplace(8, mu=9.0).log()
    assert subpixel_cross_entropy(shifted, gt, valid) > loss + 0.1


def test_loss_ignores_invalid_pixels():
    cost = torch.randn(2, 5, 3, 4, requires_grad=True)
    gt = torch.rand(2, 3, 4) * 8
    valid = torch.rand(2, 3, 4) > 0.5
    gt_nan = gt.masked_fill(~valid, float("nan"))
    a = subpixel_cross_entropy(cost, gt, valid)
    b = subpixel_cross_entropy(cost, gt_nan, valid)
    assert torch.isfinite(b) and a.item() == pytest.approx(b.item())
    b.backward()
    grad_invalid = cost.grad.permute(0, 2, 3, 1)[~valid]
    assert grad_invalid.abs().max() == 0
    none = subpixel_cross_entropy(cost, gt, torch.zeros_like(valid))
    assert none.item() == 0.0
    with pytest.raises(SnncError, match="gt_disp and valid must be shaped"):
        subpixel_cross_entropy(cost, gt[0], valid)


# ---------------------------------------------------------------- volume geometry
def test_stride_and_volume_shifts_set_the_matching_geometry():
    net = small_stereo(feature_stride=1, volume_disparities=3)
    seen = {}

    def record(module, args):
        seen["volume"] = args[0].shape

    net.matching.stem0.register_forward_pre_hook(record)
    x = sbt(2, 1)
    with torch.no_grad():
        cost = net(x)
    assert seen["volume"][2:] == (3, 18, 24)  # 3 shifts at input resolution
    assert cost.shape == (2, 1, 6, 18, 24)  # resampled to D = 6 bins at H x W
    paper = small_stereo()
    seen.clear()
    paper.matching.stem0.register_forward_pre_hook(record)
    with torch.no_grad():
        paper(x)
    assert seen["volume"][2:] == (6, 6, 8)  # the paper: D shifts at 1/3 resolution
    # same parameters: the geometry changes shapes, not weights
    assert sum(p.numel() for p in net.parameters()) == sum(p.numel() for p in paper.parameters())


def test_geometry_fields_round_trip_and_validate():
    from snnc.models.genotype import genotype_from_dict
    from snnc.models.genotype import load_genotype as get_preset

    g = get_preset("spikedhs-stereo")
    assert (g.feature_stride, g.volume_disparities, g.volume_shifts) == (3, 0, g.disparities)
    d = g.to_dict()
    old = {k: v for k, v in d.items() if k not in ("feature_stride", "volume_disparities")}
    assert genotype_from_dict(old) == g  # files written before the fields existed
    d.update(feature_stride=1, volume_disparities=7)
    g2 = genotype_from_dict(d)
    assert (g2.feature_stride, g2.volume_shifts) == (1, 7) and genotype_from_dict(g2.to_dict()) == g2
    for bad in (
        {"volume_disparities": 1},
        {"volume_disparities": -2},
        {"feature_stride": 0},
        {"volume_disparities": "auto"},
    ):
        with pytest.raises(SnncError):
            genotype_from_dict({**d, **bad})


def test_auto_volume_shifts_span_the_disparity_range():
    from snnc.models.genotype import load_genotype as get_preset
    from snnc.train.config import TrainConfig, resolve_defaults
    from snnc.train.setup import geometry_overrides

    g = get_preset("spikedhs-stereo")
    cfg = TrainConfig(arch="spikedhs-stereo", data=["x_data.hdf5"], out="r", task="stereo")
    auto1 = TrainConfig(**{**cfg.to_dict(), "feature_stride": 1, "volume_shifts": "auto"})
    assert geometry_overrides(g, auto1, 20, 7.0) == {"feature_stride": 1, "volume_disparities": 7}  # 38/7 -> 6 px + 1
    auto3 = TrainConfig(**{**cfg.to_dict(), "volume_shifts": "auto"})
    assert geometry_overrides(g, auto3, 20, 7.0) == {"volume_disparities": 3}  # 38/21 -> 2 + 1
    assert geometry_overrides(g, cfg, 20, 7.0) == {}
    with pytest.raises(SnncError, match="volume-shifts"):
        resolve_defaults(TrainConfig(**{**cfg.to_dict(), "volume_shifts": "many"})).validate()
