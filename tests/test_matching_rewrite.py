"""The exact matching rewrite (issue 18): cost volume + ``matching.stem0``'s 3-D conv as :func:`cost_conv`.

The literal form (build the concatenation volume, run ``conv3d``) stays available as
``SpikeDHSStereo.literal_matching``; every test here compares the two, in torch, in the
export graph and through onnxruntime.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from snnc.energy.ops import OpsRecorder
from snnc.errors import SnncError
from snnc.export.lower import graph_inputs, lower
from snnc.export.runtime import GraphModule
from snnc.models.build import build_model
from snnc.models.stereo import cost_conv, cost_volume, narrow_conv3d, upsampled_conv3d

from _export_util import SMALL_STEREO, record_spikes, small_genotype


def _literal(left, right, weight, bias, shifts):
    return F.conv3d(cost_volume(left, right, shifts), weight, bias, padding=weight.shape[-1] // 2)


@pytest.mark.parametrize("k", [1, 3, 5])
@pytest.mark.parametrize("shifts", [1, 2, 3, 7])
@pytest.mark.parametrize("width", [1, 2, 4, 9])
def test_cost_conv_is_the_volume_then_conv3d(k, shifts, width):
    """Every boundary case (rows whose depth taps leave [0, V), the diagonal cut, the last columns)."""
    g = torch.Generator().manual_seed(100 * k + 10 * shifts + width)
    left = (torch.rand(2, 3, 5, width, generator=g) < 0.4).float()
    right = (torch.rand(2, 3, 5, width, generator=g) < 0.4).float()
    weight = torch.randn(4, 6, k, k, k, generator=g)
    bias = torch.randn(4, generator=g) if width % 2 == 0 else None
    ref = _literal(left, right, weight, bias, shifts)
    out = cost_conv(left, right, weight, bias, shifts)
    assert out.shape == ref.shape == (2, 4, shifts, 5, width)
    assert (out - ref).abs().max().item() < 1e-4
    # dyadic weights on binary inputs: every partial sum is exact in float32, in any order
    weight = torch.randint(-64, 65, weight.shape, generator=g).float() / 64
    bias = None if bias is None else torch.randint(-64, 65, bias.shape, generator=g).float() / 64
    assert torch.equal(cost_conv(left, right, weight, bias, shifts), _literal(left, right, weight, bias, shifts))


def test_cost_conv_full_resolution_shapes_and_gradients():
    """The published net's stage (24 channels, 33 shifts) at a reduced height; gradients agree too."""
    g = torch.Generator().manual_seed(7)
    left = (torch.rand(1, 24, 6, 116, generator=g) < 0.3).float()
    right = (torch.rand(1, 24, 6, 116, generator=g) < 0.3).float()
    w1 = (0.1 * torch.randn(24, 48, 3, 3, 3, generator=g)).requires_grad_()
    w2 = w1.detach().clone().requires_grad_()
    b = torch.randn(24, generator=g)
    out, ref = cost_conv(left, right, w1, b, 33), _literal(left, right, w2, b, 33)
    assert (out - ref).abs().max().item() < 1e-5
    probe = torch.randn(out.shape, generator=g)
    (out * probe).sum().backward()
    (ref * probe).sum().backward()
    assert (w1.grad - w2.grad).abs().max().item() < 1e-3 * w2.grad.abs().max().item()


@pytest.mark.parametrize("low", [(1, 1, 1), (2, 3, 4), (3, 2, 5)])
@pytest.mark.parametrize("odd", [(0, 0, 0), (1, 0, 1), (1, 1, 1), (0, 1, 0)])
def test_output_conv_forms_equal_conv3d(low, odd):
    """The 24 -> 1 cost layer: on the nearest x2 up-sampled spikes (odd sizes drop the last copy) and as a tap GEMM."""
    g = torch.Generator().manual_seed(sum(low) + 10 * sum(odd))
    size = tuple(2 * m - o for m, o in zip(low, odd, strict=True))
    s = (torch.rand(2, 3, *low, generator=g) < 0.5).float()
    weight, bias = torch.randn(2, 3, 3, 3, 3, generator=g), torch.randn(2, generator=g)
    up = F.interpolate(s, size=size, mode="nearest")
    ref = F.conv3d(up, weight, bias, padding=1)
    assert (upsampled_conv3d(s, weight, bias, size) - ref).abs().max().item() < 1e-5
    assert (narrow_conv3d(up, weight, bias) - ref).abs().max().item() < 1e-5
    weight = torch.randint(-64, 65, weight.shape, generator=g).float() / 64  # exact sums: equal
    assert torch.equal(upsampled_conv3d(s, weight, None, size), F.conv3d(up, weight, None, padding=1))
    with pytest.raises(SnncError, match="upsampled_conv3d needs"):
        upsampled_conv3d(s, weight, None, tuple(2 * m + 1 for m in low))


def _firing_stereo(seed: int = 0, gain: float = 3.0):
    torch.manual_seed(seed)
    net = build_model(small_genotype("spikedhs-stereo", feature_path=(0, 0), **SMALL_STEREO)).eval()
    with torch.no_grad():  # untrained nets are silent: scale the weights so that every layer fires
        for p in net.parameters():
            if p.dim() > 1:
                p.mul_(gain)
    x = torch.randint(-1, 2, (6, 1, 2, 5, 24, 36)).float()
    return net, x


def test_spikes_identical_literal_vs_rewritten_on_a_firing_net():
    net, x = _firing_stereo()
    assert not net.literal_matching
    with torch.no_grad():
        y_fast, fast = record_spikes(net, x)
        net.literal_matching = True
        y_lit, lit = record_spikes(net, x)
    assert fast.keys() == lit.keys()
    fired = 0
    for name in lit:
        for a, b in zip(fast[name], lit[name], strict=True):
            assert torch.equal(a, b), name
            fired += int(b.sum())
    assert float(torch.cat([torch.stack(lit["matching.stem0.neuron"])]).mean()) > 0.01  # the stage fires
    assert fired > 1000
    assert (y_fast - y_lit).abs().max().item() < 1e-4


def test_stage_currents_agree_and_op_counting_sees_the_volume():
    """stem0's input current (the stage) within float rounding; op counts identical to the literal form's."""
    net, x = _firing_stereo(seed=1)
    currents: dict[bool, list[torch.Tensor]] = {False: [], True: []}
    for literal in (False, True):
        net.literal_matching = literal
        hook = net.matching.stem0.neuron.register_forward_hook(
            lambda m, inp, out, lit=literal: currents[lit].append(inp[0].detach().clone())
        )
        with torch.no_grad():
            net(x)
        hook.remove()
    diff = max((a - b).abs().max().item() for a, b in zip(currents[False], currents[True], strict=True))
    assert 0 < diff < 1e-5  # a different summation order, not the same computation
    reports = []
    for literal in (False, True):
        net.literal_matching = literal
        with OpsRecorder(net, fanout="input") as rec, torch.no_grad():
            net(x)
        reports.append(rec.report().to_dict())
    assert reports[0] == reports[1]
    stem0 = next(layer for layer in reports[0]["layers"] if layer["name"] == "matching.stem0.conv.conv")
    assert stem0["input_shape"][1] == 2 * net.feature.out_channels  # it counted the volume


def _folded(net):
    from snnc.models.fold import fold_bn

    return fold_bn(net).eval()


def test_graph_has_one_cost_conv_node_and_both_forms_give_the_same_spikes():
    net, x = _firing_stereo(seed=2)
    net = _folded(net)
    shape = tuple(x.shape[1:])
    fused = lower(net, shape)
    assert fused["cost_volume"].op == "cost_conv" and "matching.stem0.conv" not in fused.nodes
    assert not any(n.op == "cost_volume" for n in fused.nodes.values())
    net.literal_matching = True
    literal = lower(net, shape)
    assert literal["cost_volume"].op == "cost_volume" and literal["matching.stem0.conv"].op == "conv"
    net.literal_matching = False
    with torch.no_grad():
        y_net, spikes = record_spikes(net, x)
    for graph in (fused, literal):
        gm = GraphModule(graph)
        state = None
        for t in range(x.shape[0]):
            values, state = gm.step_nodes(graph_inputs("spikedhs-stereo", x[t]), state)
            for name, per_step in spikes.items():
                assert torch.equal(values[name], per_step[t]), (name, t)
            assert (values["y"] - y_net[t]).abs().max().item() < 1e-4


def test_nir_refuses_the_fused_node_in_one_line(tmp_path):
    from snnc.export.nir_writer import write_nir

    net, x = _firing_stereo()
    with pytest.raises(
        SnncError, match=r"node 'cost_volume' to NIR: the stereo cost volume \(fused with its 3-D convolution\)"
    ):
        write_nir(lower(_folded(net), tuple(x.shape[1:])), tmp_path / "s.nir")


def test_onnx_round_trip_zero_spike_mismatches(tmp_path):
    """The exported one-step graph (the rewritten form) in stock onnxruntime: every layer's spikes equal torch's."""
    import json

    import onnxruntime as ort

    from snnc.export.onnx_writer import export_stream

    net, x = _firing_stereo(seed=3)
    net = _folded(net)
    path = tmp_path / "s.onnx"
    export_stream(net, tuple(x.shape[1:]), path)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    names, shapes = json.loads(meta["snnc.state_names"]), json.loads(meta["snnc.state_shapes"])
    state_in = [i.name for i in sess.get_inputs()][1:]
    state = [np.zeros(s, dtype=np.float32) for s in shapes]
    with torch.no_grad():
        y_net, spikes = record_spikes(net, x)
    compared = 0
    for t in range(x.shape[0]):
        out = sess.run(None, {"x": x[t].numpy(), **dict(zip(state_in, state, strict=True))})
        state = out[1:]
        assert np.abs(out[0] - y_net[t].numpy()).max() < 1e-4
        for name, value in zip(names, state, strict=True):
            layer = name.rsplit(".", 1)[0]
            if name.endswith(".y") and layer in spikes:
                np.testing.assert_array_equal(value, spikes[layer][t].numpy(), err_msg=f"{name} step {t}")
                compared += 1
    assert compared >= 10 * x.shape[0]
