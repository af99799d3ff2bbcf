"""The op-counting pass against energy.md's fixtures and brute-force references."""

from __future__ import annotations

import itertools
import json

import pytest
import torch
from torch import nn

from snnc.energy import LayerOps, OpsRecorder, count_ops
from snnc.errors import SnncError
from snnc.models.snasnet import SNASNetGenotype, build_snasnet

# energy.md "Fixtures to test the counter against"
FIXTURES = [
    (lambda: nn.Conv2d(3, 64, 3, padding=1), (1, 3, 32, 32), 1_769_472),
    (lambda: nn.Conv2d(3, 64, 3, stride=2, padding=1), (1, 3, 32, 32), 442_368),
    (lambda: nn.Conv3d(16, 16, 3, padding=1), (1, 16, 8, 16, 16), 14_155_776),
    (lambda: nn.Linear(512, 10), (1, 512), 5_120),
]


def only(report) -> LayerOps:
    assert len(report.layers) == 1
    return report.layers[0]


@pytest.mark.parametrize("make, shape, dense", FIXTURES)
def test_dense_fixtures(make, shape, dense):
    torch.manual_seed(0)
    layer = only(count_ops(make(), torch.randn(shape)))
    assert layer.dense_ops == dense and layer.bias_ops == 0 and layer.calls == 1
    assert layer.fanout_events is None


def test_bias_fixture():
    layer = only(count_ops(nn.Conv2d(3, 64, 3, padding=1), torch.randn(1, 3, 32, 32), count_bias=True))
    assert layer.dense_ops + layer.bias_ops == layer.synaptic_ops == 1_835_008
    nobias = only(count_ops(nn.Conv2d(3, 64, 3, padding=1, bias=False), torch.randn(1, 3, 32, 32), count_bias=True))
    assert nobias.bias_ops == 0


@pytest.mark.parametrize(
    "make, shape, events",
    [(FIXTURES[0][0], (1, 3, 32, 32), 1_696_512), (FIXTURES[2][0], (1, 16, 8, 16, 16), 11_917_312)],
)
def test_fanout_fixtures(make, shape, events):
    module = make()
    assert only(count_ops(module, torch.ones(shape), fanout="input")).fanout_events == events
    # 'ones' ignores the actual values
    assert only(count_ops(module, torch.zeros(shape), fanout="ones")).fanout_events == events
    assert only(count_ops(module, torch.zeros(shape), fanout="input")).fanout_events == 0


def brute_force_events(conv: nn.Conv2d, x: torch.Tensor) -> int:
    """Sum over output (channel, position) of the in-bounds nonzero inputs it reads."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = conv.kernel_size, conv.stride, conv.padding, conv.dilation
    g = conv.groups
    cin_g, cout_g = conv.in_channels // g, conv.out_channels // g
    _, _, h, w = x.shape
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    total = 0
    for b, co, i, j in itertools.product(range(x.shape[0]), range(conv.out_channels), range(oh), range(ow)):
        grp = co // cout_g
        for ci, a, c in itertools.product(range(grp * cin_g, (grp + 1) * cin_g), range(kh), range(kw)):
            r, s = i * sh - ph + a * dh, j * sw - pw + c * dw
            if 0 <= r < h and 0 <= s < w and x[b, ci, r, s] != 0:
                total += 1
    return total


@pytest.mark.parametrize(
    "kw",
    [{}, {"stride": 2}, {"padding": 2, "dilation": 2}, {"groups": 2, "stride": (1, 2)}, {"padding": 0}],
)
def test_fanout_matches_brute_force_on_sparse_spikes(kw):
    torch.manual_seed(1)
    conv = nn.Conv2d(4, 6, 3, **{"padding": 1, **kw})
    x = (torch.rand(2, 4, 7, 6) < 0.3).float()
    layer = only(count_ops(conv, x, fanout="input"))
    assert layer.fanout_events == brute_force_events(conv, x) / 2  # per example
    assert layer.input_is_binary and layer.input_rate == pytest.approx(x.mean().item())


def test_conv_transpose_and_linear_events():
    convt = nn.ConvTranspose2d(3, 5, 3, stride=2, padding=1, output_padding=1)
    x = torch.ones(1, 3, 4, 4)
    layer = only(count_ops(convt, x, fanout="input"))
    assert layer.dense_ops == 3 * 16 * 5 * 9
    assert layer.output_shape == [1, 5, 8, 8]
    # input row i reaches output rows 2i + a - 1 (a = 0..2) inside [0, 8): 2 + 3 + 3 + 3 = 11 per axis
    assert layer.fanout_events == 11 * 11 * 3 * 5 < layer.dense_ops
    lin = nn.Linear(6, 4)
    x = torch.tensor([[0.0, 1.0, 0.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    layer = only(count_ops(lin, x, fanout="input"))
    assert layer.fanout_events == (3 + 1) * 4 / 2 and layer.dense_ops == 24
    assert layer.input_rate == pytest.approx(4 / 12)


def test_counts_are_per_example_and_accumulate_over_calls():
    conv = nn.Conv2d(2, 3, 3, padding=1)
    one = only(count_ops(conv, torch.randn(1, 2, 5, 5)))
    four = only(count_ops(conv, torch.randn(4, 2, 5, 5)))
    assert one.dense_ops == four.dense_ops == 3 * 25 * 18
    assert four.input_shape == [4, 2, 5, 5] and four.parameters == 3 * 2 * 9 + 3
    spikes = [(torch.rand(1, 2, 5, 5) < p).float() for p in (0.1, 0.5, 0.9)]
    with OpsRecorder(conv, fanout="input") as rec:
        for s in spikes:
            conv(s)
    layer = only(rec.report())
    assert layer.calls == 3 and layer.dense_ops == 3 * one.dense_ops
    assert layer.input_rate == pytest.approx(torch.cat(spikes).mean().item())
    assert not conv._forward_hooks  # hooks removed on exit
    real = only(count_ops(conv, torch.randn(1, 2, 5, 5)))
    assert not real.input_is_binary


def test_pooling_only_on_request_and_json():
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(8, 3))
    x = torch.randn(1, 1, 4, 4)
    without = count_ops(net, x)
    assert [layer.name for layer in without.layers] == ["0", "3"]
    with_pool = count_ops(net, x, include_pooling=True, count_bias=True, fanout="input")
    assert [layer.type for layer in with_pool.layers] == ["Conv2d", "AvgPool2d", "Linear"]
    pool = with_pool.by_name()["1"]
    assert pool.dense_ops == 8 * 4 and pool.parameters == 0 and pool.fanout_events is None
    assert with_pool.dense_ops == 2 * 16 * 9 + 32 + 24 and with_pool.bias_ops == 32 + 3
    text = json.dumps(with_pool.to_dict())
    assert "_nonzero" not in text and json.loads(text)["layers"][0]["input_is_binary"] is False


def test_bad_fanout_mode_and_training_flag_restored():
    with pytest.raises(SnncError, match="fan-out mode"):
        OpsRecorder(nn.Linear(2, 2), fanout="all")
    net = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)).train()
    count_ops(net, torch.randn(3, 2))
    assert net.training and net[1].training


def test_spiking_net_step_loop_counts_equal_forward_counts():
    g = SNASNetGenotype(channels=4, fc_hidden=8, image_size=8, in_channels=1, vote=1)
    net = build_snasnet(g).eval()
    x = torch.rand(3, 2, 1, 8, 8).round()

    def stream(model, xs):
        state = model.init_state(xs[0])
        for x_t in xs:
            _, state = model.step(x_t, state)

    a = count_ops(net, x, fanout="input")
    b = count_ops(net, x, run=stream, fanout="input")
    assert a.to_dict() == b.to_dict()
    stem = a.by_name()["stem.conv"]
    assert stem.calls == 3 and stem.dense_ops == 3 * 4 * 64 * 9
    cell_conv = a.by_name()["cell1.fwd.0_1.conv.conv"]
    assert cell_conv.input_is_binary  # every cell conv is spike-driven (LIF before conv)
