"""SpikeDHS-CLA / -Stereo networks: parameter counts, paper feature-map sizes, stepping, state."""

from __future__ import annotations

import pytest
import torch

from snnc.errors import SnncError
from snnc.models.build import build_model
from snnc.models.cells import SpikingCell
from snnc.models.genotype import load_genotype
from snnc.models.layers import ConvBN, _use_mkldnn
from snnc.neurons import Neuron, NeuronSpec

from _spikedhs_util import calibrate_bn


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def cell_outputs(model, run):
    """Run ``run()`` and return the output shape of every SpikingCell, in order."""
    shapes = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: shapes.append(tuple(out.shape)))
        for m in model.modules()
        if isinstance(m, SpikingCell)
    ]
    try:
        run()
    finally:
        for h in hooks:
            h.remove()
    return shapes


def test_parameter_counts_match_the_papers():
    cla = build_model("spikedhs-cla")
    assert n_params(cla) == 14_287_834  # 14.29 M, CIFAR-10 head (paper table 5: FC 10)
    assert abs(n_params(cla) - 14e6) / 14e6 < 0.03  # paper: "SpikeDHS-CLA (n3) 14M"
    assert n_params(build_model("spikedhs-cla", num_classes=100)) == 14_287_834 + 90 * 576 + 90
    stereo = build_model("spikedhs-stereo")
    assert n_params(stereo) == 861_421
    assert abs(n_params(stereo) - 0.87e6) / 0.87e6 < 0.02  # paper: 0.87 M


def test_cla_feature_maps_follow_table5():
    net = build_model("spikedhs-cla").eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        state = net.init_state(x)
        shapes = cell_outputs(net, lambda: net.step(x, state))
        assert tuple(net.neuron_shapes(x)["stem.neuron"]) == (1, 144, 32, 32)
    assert shapes == [(1, 144, 32, 32)] * 2 + [(1, 288, 16, 16)] * 3 + [(1, 576, 8, 8)] * 3
    assert net.fc.in_features == 576 and net.fc.out_features == 10


def test_stereo_feature_maps_follow_table7():
    g = load_genotype("spikedhs-stereo")
    net = build_model(g).eval()
    x = torch.zeros(1, 2, 5, 60, 90)
    shapes = net.neuron_shapes(x)
    C, D, h, w = 12, 33, 20, 30  # Table 7 with C = 12 (feature width 8 x 3 nodes / 2)
    assert tuple(shapes["feature.stem0.neuron"]) == (2, C, 60, 90)
    assert tuple(shapes["feature.stem1.neuron"]) == (2, 2 * C, h, w)
    assert tuple(shapes["feature.last.neuron"]) == (2, 2 * C, h, w)
    assert tuple(shapes["matching.stem0.neuron"]) == (1, 2 * C, D, h, w)
    assert net.matching.stem0.conv.conv.in_channels == 4 * C  # feature volume 4C x D x h x w
    with torch.no_grad():
        state = net.init_state(x)
        cells = cell_outputs(net, lambda: net.step(x, state))
        cost, _ = net.step(x, state)
    assert cells == [
        (2, 4 * C, 10, 15),
        (2, 2 * C, h, w),  # feature cells 0, 1
        (1, 4 * C, 17, 10, 15),
        (1, 8 * C, 9, 5, 8),  # matching cells 0..3
        (1, 8 * C, 9, 5, 8),
        (1, 4 * C, 17, 10, 15),
    ]
    assert cost.shape == (1, D, 60, 90)


def small_cla(**kw):
    return build_model("spikedhs-cla", filter_multiplier=4, **kw)


def small_stereo(**kw):
    return build_model(
        "spikedhs-stereo", feature_filter_multiplier=2, matching_filter_multiplier=2, disparities=6, **kw
    )


@pytest.mark.parametrize(
    "make, x",
    [
        (small_cla, torch.rand(4, 2, 3, 16, 16)),
        (small_stereo, torch.randint(-1, 2, (3, 1, 2, 5, 18, 24)).float()),
    ],
)
def test_forward_is_a_loop_of_step_and_state_is_explicit(make, x):
    torch.manual_seed(0)
    net = calibrate_bn(make(), x)
    with torch.no_grad():
        y = net(x)
        state = net.init_state(x[0])
        shapes = net.neuron_shapes(x[0])
        sizes = net.state_sizes()
        assert len(state) == sum(sizes) == 2 * len(net.neurons())
        outs = []
        for t in range(x.shape[0]):
            y_t, new_state = net.step(x[t], state)
            assert len(new_state) == len(state)
            for (name, _), (u, s) in zip(
                net.neurons(), zip(new_state[::2], new_state[1::2], strict=False), strict=False
            ):
                assert u.shape == shapes[name] and s.shape == shapes[name]
                assert set(s.unique().tolist()) <= {0.0, 1.0}
            outs.append(y_t)
            state = new_state
        assert torch.equal(torch.stack(outs), y)
        assert all(s.sum() > 0 for s in state[1::2])  # every layer fires
    expected = (x.shape[0], x.shape[1], 10) if x.dim() == 5 else (x.shape[0], x.shape[1], 6, 18, 24)
    assert y.shape == expected


def test_relu_layer_from_genotype_changes_the_state_layout():
    net = small_cla(
        neuron_layers={"trellis.cells.1.nodes.2": NeuronSpec(type="relu"), "stem.neuron": NeuronSpec(type="alif")}
    )
    x = torch.rand(2, 3, 8, 8)
    state = net.init_state(x)
    assert len(state) == 2 * len(net.neurons()) - 2 + 1
    split = net.split_state(state)
    assert split["trellis.cells.1.nodes.2"] == () and len(split["stem.neuron"]) == 3
    y, state2 = net.step(x, state)
    assert y.shape == (2, 10) and len(state2) == len(state)
    with pytest.raises(SnncError, match=r"network state has 3 tensors, expected"):
        net.step(x, state[:3])


def test_ms_mixing_gives_conv_edges_their_own_surrogate():
    mm, ms = small_cla(), small_cla(mixing="ms")
    assert n_params(mm) == n_params(ms)
    edge_neurons = {n: m for n, m in ms.neurons() if ".edge_neurons." in n}
    assert len(edge_neurons) == 6 * 8  # every edge of the cell is a conv
    bs = sorted({m.spec.b for m in edge_neurons.values()})
    assert bs == [3.0, 5.0]
    # edge 2 of the published cell ([3, 2]: s1 -> node1) is snn_b5
    assert edge_neurons["trellis.cells.0.edge_neurons.2"].spec.b == 5.0
    assert all(m.spec.b == 3.0 for n, m in ms.neurons() if ".nodes." in n)
    y = ms(torch.rand(2, 2, 3, 8, 8))
    assert y.shape == (2, 2, 10) and torch.isfinite(y).all()


def test_skip_connect_is_identity_between_nodes_and_projection_from_inputs():
    g = load_genotype("spikedhs-cla")
    cell = g.cell.from_rows([[1, 0], [0, 1], [4, 0], [2, 1]], nodes=2)
    net = build_model(g, cell=cell, filter_multiplier=2, path=[0, 1])
    ops = net.trellis.cells[0].ops
    assert isinstance(ops[0], ConvBN) and ops[0].conv.kernel_size == (1, 1)  # s1 -> node0
    assert isinstance(ops[2], torch.nn.Identity)  # node0 -> node1
    assert net(torch.rand(1, 1, 3, 8, 8)).shape == (1, 1, 10)


def test_wrong_inputs_are_reported():
    with pytest.raises(SnncError, match=r"SpikeDHS-CLA expects one step shaped \(B, 3, H, W\)"):
        small_cla().init_state(torch.rand(2, 1, 8, 8))
    with pytest.raises(SnncError, match=r"SpikeDHS-Stereo expects one step shaped \(B, 2, 5, H, W\)"):
        small_stereo().init_state(torch.rand(2, 5, 8, 8))
    with pytest.raises(SnncError, match=r"expected a sequence shaped \(T, B, ...\)"):
        small_cla()(torch.rand(3))


def test_neurons_are_snnc_neurons_with_genotype_spec():
    net = small_stereo()
    assert len(net.neurons()) == 24
    assert all(isinstance(m, Neuron) and m.spec == net.genotype.neuron for _, m in net.neurons())


def test_batch1_conv3d_fast_path_matches_pytorch_and_stays_out_of_traces():
    torch.manual_seed(0)
    layer = ConvBN(16, 8, 3, dims=3, bn=False, bias=True)
    x = torch.rand(1, 16, 5, 6, 7, requires_grad=True)  # N*C*D*H = 480: PyTorch would use slow_conv3d
    assert _use_mkldnn(layer.conv, x) and not _use_mkldnn(layer.conv, x.double())
    y = layer(x)
    ref = torch.nn.functional.conv3d(x, layer.conv.weight, layer.conv.bias, padding=1)
    assert torch.allclose(y, ref, atol=1e-5)
    g = torch.randn_like(y)
    assert torch.allclose(torch.autograd.grad(y, x, g)[0], torch.autograd.grad(ref, x, g)[0], atol=1e-5)
    graph = str(torch.export.export(layer, (x.detach(),)).graph)
    assert "mkldnn_convolution" not in graph and "conv3d" in graph
    assert isinstance(layer.conv, torch.nn.Conv3d)  # hooks and isinstance still work


def test_classify_is_the_mean_over_direct_coded_steps():
    torch.manual_seed(0)
    images = torch.rand(2, 3, 8, 8)
    net = calibrate_bn(small_cla(), images.expand(3, *images.shape))
    with torch.no_grad():
        logits = net.classify(images)
        assert logits.shape == (2, 10)
        assert torch.allclose(logits, net(images.expand(6, *images.shape)).mean(0))
        assert torch.allclose(net.classify(images, 2), net(images.expand(2, *images.shape)).mean(0))
