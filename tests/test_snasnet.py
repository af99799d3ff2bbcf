"""SNASNet genotypes and networks: cell parsing, t-1 semantics, streaming, presets."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from snnc.errors import SnncError
from snnc.models.base import StepContext
from snnc.models.snasnet import (
    SNASNET_NEURON,
    SNASNET_PRESETS,
    SNASNetCell,
    SNASNetGenotype,
    build_snasnet,
    parse_cell,
    snasnet_neuron,
)
from snnc.neurons import Neuron, NeuronSpec, neuron_sequence

CIFAR10 = "0303 0030 2002 0200"
CIFAR100 = "0302 0030 3003 0000"


def small(cell: str = CIFAR10, **kw) -> SNASNetGenotype:
    base = {"cell": cell, "channels": 8, "fc_hidden": 32, "image_size": 16, "num_classes": 10, "vote": 2}
    base.update(kw)
    return SNASNetGenotype(**base)


def lively(net: nn.Module, seed: int = 0) -> nn.Module:
    """Weights large enough that every layer spikes (the authors' init silences the read-out)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2.0 / m.weight[0].numel()) ** 0.5 * 2)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
    return net.eval()


def images(t: int, b: int, c: int, s: int, seed: int = 1) -> torch.Tensor:
    x = torch.rand(b, c, s, s, generator=torch.Generator().manual_seed(seed)) * 2.0
    return x.unsqueeze(0).expand(t, b, c, s, s).contiguous()


# ---------------------------------------------------------------- genotype parsing


def test_published_cells_parse_into_forward_and_backward_edges():
    g = SNASNET_PRESETS["snasnet-cifar10"]
    assert g.cell == CIFAR10
    assert g.matrix == ((0, 3, 0, 3), (0, 0, 3, 0), (2, 0, 0, 2), (0, 2, 0, 0))
    # upper triangle = forward (i -> j), lower = backward (i at t-1 -> j)
    assert g.forward_edges == [(0, 1, 3), (1, 2, 3), (0, 3, 3), (2, 3, 2)]
    assert g.backward_edges == [(2, 0, 2), (3, 1, 2)]
    g100 = SNASNET_PRESETS["snasnet-cifar100"]
    assert g100.forward_edges == [(0, 1, 3), (1, 2, 3), (0, 3, 2), (2, 3, 3)]
    assert g100.backward_edges == [(2, 0, 3)]
    assert (g100.num_classes, g100.vote, g100.channels) == (100, 5, 128)


@pytest.mark.parametrize(
    "form",
    [
        CIFAR10,
        " 0303,0030;2002  0200 ",
        "0303003020020200",
        ["0303", "0030", "2002", "0200"],
        [[0, 3, 0, 3], [0, 0, 3, 0], [2, 0, 0, 2], [0, 2, 0, 0]],
    ],
)
def test_cell_forms_normalise_to_the_canonical_string(form):
    assert SNASNetGenotype(cell=form).cell == CIFAR10


@pytest.mark.parametrize(
    "cell, words",
    [
        ("0303 0030 2002", "got 3 row"),
        ("0303 0030 2002 02000", "row 3 has 5 entries"),
        ("0303 0030 2002 0500", "unknown op code 5 at row 3, column 1"),
        ("0303 0030 20x2 0200", "row 2, column 2 is 'x'"),
        ("1303 0030 2002 0200", "self-connection at node 0"),
        ("0333 0030 2002 0200", "nodes 0 and 2 have both a forward (op 3) and a backward (op 2)"),
        ("", "got 0 row"),
    ],
)
def test_bad_cells_raise_one_line_errors(cell, words):
    with pytest.raises(SnncError) as err:
        parse_cell(cell, path="g.json")
    msg = str(err.value)
    assert words in msg and msg.startswith("g.json: ") and "\n" not in msg


def test_genotype_json_round_trip_and_validation():
    g = small(CIFAR100, time_steps=8, neuron=snasnet_neuron(b=6.0))
    d = json.loads(json.dumps(g.to_dict()))
    assert d["family"] == "snasnet" and d["neuron"]["b"] == 6.0
    assert SNASNetGenotype.from_dict(d) == g
    bad = [
        ({**d, "colour": 1}, "unknown key(s) 'colour'"),
        ({**d, "family": "spikedhs"}, "family must be 'snasnet'"),
        ({**d, "channels": 0}, "channels must be a positive integer"),
        ({**d, "channels": 8.5}, "channels must be a positive integer"),
        ({**d, "neuron_layers": {"fc_neuron": 3}}, "neuron_layers['fc_neuron'] must be a neuron spec"),
        ({**d, "image_size": 18}, "image_size 18 must be divisible by"),
        ({**d, "dropout": 1.0}, "dropout must be in [0, 1)"),
        ({**d, "neuron": {"type": "lif", "decay": 2}}, "decay must be in [0, 1]"),
        ({**d, "cell": "0303 0030 2002 0201"}, "self-connection at node 3"),
    ]
    for bad_dict, words in bad:
        with pytest.raises(SnncError) as err:
            SNASNetGenotype.from_dict(bad_dict, path="net.json")
        assert words in str(err.value) and str(err.value).startswith("net.json: ")
    with pytest.raises(SnncError, match="mapping"):
        SNASNetGenotype.from_dict([1, 2])
    assert SNASNetGenotype.from_dict({**d, "channels": 8.0}).channels == 8  # JSON may write 8.0


def test_per_layer_neuron_specs():
    relu = {"type": "relu"}
    g = small(CIFAR10, neuron_layers={"fc_neuron": relu, "cell1.bwd.2_0.neuron": {"decay": 0.5, "vth": 1.0}})
    assert SNASNetGenotype.from_dict(json.loads(json.dumps(g.to_dict()))) == g
    net = lively(build_snasnet(g))
    specs = dict(net.neurons())
    assert specs["fc_neuron"].spec.type == "relu" and specs["cell1.bwd.2_0.neuron"].spec.decay == 0.5
    assert specs["final_neuron"].spec == SNASNET_NEURON
    x = images(3, 2, 3, 16)
    assert len(net.init_state(x[0])) == net.state_len() == len(build_snasnet(small(CIFAR10)).init_state(x[0])) - 2
    y = net(x)
    assert y.shape == (3, 2, 10)
    with pytest.raises(SnncError, match=r"unknown neuron layer.*'nope'"):
        build_snasnet(small(CIFAR10, neuron_layers={"nope": relu}))


def test_overrides_and_unknown_override():
    net = build_snasnet(SNASNET_PRESETS["snasnet-cifar10"], channels=4, fc_hidden=8, image_size=8, in_channels=1)
    assert net.genotype.cell == CIFAR10 and net.genotype.channels == 4 and net.stem.conv.in_channels == 1
    with pytest.raises(SnncError, match="unknown override"):
        build_snasnet(SNASNET_PRESETS["snasnet-cifar10"], width=3)


# ---------------------------------------------------------------- neuron mapping


def test_snasnet_lif_matches_spikingjelly_formulation():
    """snnc LIF(decay=0.25, vth=4/3) == SpikingJelly H = H + (x - H)/tau_m, fire H >= 1, reset to 0."""
    assert NeuronSpec(type="lif", decay=0.25, vth=4.0 / 3.0, surrogate="arctan", b=3.0) == SNASNET_NEURON
    x = torch.randn(40, 500, generator=torch.Generator().manual_seed(3)) * 1.5 + 0.6
    tau_m, v = 4.0 / 3.0, torch.zeros(500)
    ref = []
    for t in range(x.shape[0]):
        h = v + (x[t] - v) / tau_m
        s = (h >= 1.0).float()
        v = h * (1.0 - s)
        ref.append(s)
    ours, _ = neuron_sequence(SNASNET_NEURON, x)
    assert torch.equal(ours, torch.stack(ref))
    assert 0.05 < ours.mean().item() < 0.95
    with pytest.raises(SnncError, match="tau_m"):
        snasnet_neuron(tau_m=0.5)


# ---------------------------------------------------------------- backward (t-1) semantics


def test_backward_edge_uses_previous_step_output():
    # identity edges 0->1->3 and a backward identity 3 -> 0: h3[t] = x[t] + h3[t-1]
    cell = SNASNetCell(parse_cell("0100 0001 0000 1000"), 2, SNASNET_NEURON)
    fwd_only = SNASNetCell(parse_cell("0100 0001 0000 0000"), 2, SNASNET_NEURON)
    assert cell.feedback_nodes == [0] and fwd_only.feedback_nodes == []
    x = torch.randn(5, 1, 2, 3, 3)
    fb, fb_f, outs, outs_f = (torch.zeros_like(x[0]),), (), [], []  # the resting carry: zeros
    for t in range(5):  # identity ops have no neurons: an empty context suffices
        y, fb = cell.step_with(x[t], StepContext({}), fb)
        yf, fb_f = fwd_only.step_with(x[t], StepContext({}), fb_f)
        outs.append(y)
        outs_f.append(yf)
        assert torch.equal(fb[0], y) and fb_f == ()  # what node 0 receives at t + 1
    assert torch.equal(outs[0], x[0])  # t = 0 ignores the backward edge
    assert torch.allclose(torch.stack(outs), x.cumsum(0), atol=1e-6)
    assert torch.equal(torch.stack(outs_f), x)


class SJCellReference:
    """The authors' ``Neuronal_Cell_backward.forward`` restated, with SpikingJelly LIFs.

    Shares the ConvBN weights of an snnc cell; LIF: ``v += (x - v) / tau_m``,
    spike ``v >= 1``, reset to 0 (``LIFNode(tau=4/3, v_reset=0)``).
    """

    def __init__(self, cell: SNASNetCell) -> None:
        self.cell, self.m = cell, cell.matrix
        self.v: dict = {}
        self.last = [0.0, 0.0, 0.0]  # last_xin, last_x1, last_x2

    def op(self, kind: str, i: int, j: int, x):
        code = self.m[i][j]
        if code == 0:
            return 0.0 * x
        if code == 1:
            return x
        if code == 4:
            return nn.functional.avg_pool2d(x, 3, 1, 1)
        key = (kind, i, j)
        v = self.v.get(key, torch.zeros_like(x))
        v = v + (x - v) / (4.0 / 3.0)
        spike = (v >= 1.0).float()
        self.v[key] = v * (1.0 - spike)
        return getattr(self.cell, kind)[f"{i}_{j}"].conv(spike)

    def __call__(self, x_in):
        lx0, lx1, lx2 = self.last
        f = lambda i, j, x: self.op("fwd", i, j, x)  # noqa: E731
        b = lambda i, j, x: self.op("bwd", i, j, x)  # noqa: E731
        x1 = f(0, 1, x_in + lx0)
        x2 = f(0, 2, x_in + lx0) + f(1, 2, x1 + lx1)
        x3 = f(0, 3, x_in + lx0) + f(1, 3, x1 + lx1) + f(2, 3, x2 + lx2)
        self.last = [
            b(1, 0, x1 + lx1) + b(2, 0, x2 + lx2) + b(3, 0, x3),
            b(2, 1, x2 + lx2) + b(3, 1, x3),
            b(3, 2, x3),
        ]
        return x3


@pytest.mark.parametrize("cell_str", [CIFAR10, CIFAR100, "0301 0040 1002 0300"])
def test_cell_matches_the_authors_backward_cell(cell_str):
    torch.manual_seed(2)
    cell = lively(SNASNetCell(parse_cell(cell_str), 4, SNASNET_NEURON))
    ref = SJCellReference(cell)
    xs = torch.rand(6, 2, 4, 5, 5) * 3.0
    neurons = [m for m in cell.modules() if isinstance(m, Neuron)]
    states = {id(n): n.init_state(xs[0]) for n in neurons}
    fb = tuple(torch.zeros_like(xs[0]) for _ in cell.feedback_nodes)  # the resting carry
    with torch.no_grad():
        for t in range(xs.shape[0]):
            ctx = StepContext(states)
            y, fb = cell.step_with(xs[t], ctx, fb)
            states = ctx.new_states
            expected = ref(xs[t])
            assert torch.allclose(y, expected, atol=1e-4), t
    assert any(s[1].sum() > 0 for s in states.values())  # the LIFs did fire


def test_backward_edges_change_only_later_steps_of_the_full_net():
    torch.manual_seed(0)
    with_bw = lively(build_snasnet(small(CIFAR10)))
    fw_only = build_snasnet(small("0303 0030 0002 0000")).eval()  # same forward edges, no backward
    missing, unexpected = fw_only.load_state_dict(with_bw.state_dict(), strict=False)
    assert not missing and all(".bwd." in k for k in unexpected) and unexpected
    x = images(4, 2, 3, 16)
    with torch.no_grad():
        a, b = with_bw(x), fw_only(x)
    assert a.abs().sum() > 0
    assert torch.equal(a[0], b[0])
    assert not torch.allclose(a[1:], b[1:])


# ---------------------------------------------------------------- forward / streaming


@pytest.mark.parametrize(
    "kw, shape",
    [
        ({}, (3, 2, 3, 32, 32)),  # CIFAR-shaped
        ({"in_channels": 1, "image_size": 8, "channels": 4, "fc_hidden": 16}, (3, 2, 1, 8, 8)),  # sklearn digits
        ({"in_channels": 1, "image_size": 16, "stem_stride": 2, "final_pool": 1, "dropout": 0.0}, (2, 1, 1, 16, 16)),
    ],
)
def test_forward_shapes(kw, shape):
    g = small(CIFAR100, **{"image_size": 32, **kw})
    net = lively(build_snasnet(g))
    y = net(images(*shape))
    assert y.shape == (shape[0], shape[1], 10) and torch.isfinite(y).all()
    assert len(net.neurons()) == 13


def test_step_loop_equals_forward_eval_and_train():
    net = lively(build_snasnet(small(CIFAR10)))
    x = images(5, 3, 3, 16)
    with torch.no_grad():
        y = net(x)
        state = net.init_state(x[0])
        steps = []
        for t in range(5):
            out, state = net.step(x[t], state)
            steps.append(out)
    assert torch.equal(y, torch.stack(steps))
    # resuming from a carried state continues the same sequence
    with torch.no_grad():
        s = net.init_state(x[0])
        for t in range(2):
            _, s = net.step(x[t], s)
        assert torch.equal(net(x[2:], s), y[2:])
    net.train()
    torch.manual_seed(7)
    y_train = net(x)
    torch.manual_seed(7)
    state = net.init_state(x[0])
    loop = []
    for t in range(5):
        out, state = net.step(x[t], state)
        loop.append(out)
    assert torch.equal(y_train, torch.stack(loop))


def test_dropout_mask_is_drawn_once_per_sequence():
    net = lively(build_snasnet(small(CIFAR10))).train()
    x = images(3, 4, 3, 16)
    state = net.init_state(x[0])
    codes = []
    for t in range(3):
        _, state = net.step(x[t], state)
        codes.append(net.split_state(state)["dropout.code"][0])
    assert codes[0].shape == (4, net.features)
    assert set(codes[0].unique().tolist()) == {1.0, 2.0}
    assert torch.equal(codes[0], codes[1]) and torch.equal(codes[1], codes[2])
    net.eval()
    _, s = net.step(x[0], net.init_state(x[0]))
    assert torch.equal(net.split_state(s)["dropout.code"][0], torch.zeros(4, net.features))


def test_state_and_input_errors():
    net = build_snasnet(small(CIFAR10))
    x = torch.rand(2, 3, 16, 16)
    state = net.init_state(x)
    with pytest.raises(SnncError, match="expected"):
        net.step(x, state[:-1])
    with pytest.raises(RuntimeError, match="use step"):
        net.step_with(x, StepContext({}))
    names = list(net.split_state(state))
    carry = ["cell1.feedback.0", "cell1.feedback.1", "cell2.feedback.0", "cell2.feedback.1", "dropout.code"]
    assert names[-5:] == carry == net.carry_names()
    assert names[:-5] == [n for n, _ in net.neurons()]
    with pytest.raises(SnncError, match=r"\(B, 3, 16, 16\)"):
        net.init_state(torch.rand(2, 3, 32, 32))
    with pytest.raises(SnncError, match="T, B, C, H, W"):
        net(x)


def test_surrogate_gradients_reach_the_stem():
    net = lively(build_snasnet(small(CIFAR10, dropout=0.0))).train()
    net(images(3, 2, 3, 16)).mean(0).sum().backward()
    grad = net.stem.conv.weight.grad
    assert grad is not None and grad.abs().sum() > 0


# ---------------------------------------------------------------- presets and parameter counts


def expected_params(g: SNASNetGenotype) -> int:
    """Count from the architecture description (BN = 2 per channel)."""
    c1, c2 = g.channels, 2 * g.channels

    def cell(c: int) -> int:
        ops = [op for _, _, op in g.forward_edges + g.backward_edges]
        return sum(c * c * (1 if op == 2 else 9) + 2 * c for op in ops if op in (2, 3))

    side = g.image_size // g.stem_stride // 2 // g.final_pool
    return (
        g.in_channels * c1 * 9
        + 2 * c1
        + cell(c1)
        + 2 * c1
        + c1 * c2 * 9
        + 2 * c2
        + cell(c2)
        + 2 * c2
        + c2 * side * side * g.fc_hidden
        + g.fc_hidden * g.num_classes * g.vote
        + g.num_classes * g.vote
    )


@pytest.mark.parametrize(
    "name, overrides, count",
    [
        ("snasnet-cifar10", {}, 44_686_180),  # paper: C = 256, AvgPool(2)
        ("snasnet-cifar100", {}, 20_624_500),  # paper: C = 128
        ("snasnet-cifar10", {"channels": 128, "final_pool": 4}, 7_058_916),  # authors' CIFAR-10 checkpoint
    ],
)
def test_preset_parameter_counts(name, overrides, count):
    g = SNASNET_PRESETS[name]
    net = build_snasnet(g, **overrides)
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    assert trainable == count == expected_params(net.genotype)
    frozen = 3 * net.genotype.channels  # identity weights of the two channel_bn layers (C + 2C)
    assert sum(p.numel() for p in net.parameters()) == count + frozen


def test_fold_bn_merges_every_batchnorm_and_keeps_outputs():
    from snnc.models.fold import batchnorm_layers, fold_bn

    net = lively(build_snasnet(small(CIFAR10)))
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.2)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.2)
    folded = fold_bn(net)
    assert batchnorm_layers(folded) == [] and len(batchnorm_layers(net)) > 0
    x = images(4, 2, 3, 16)
    with torch.no_grad():
        assert torch.allclose(folded(x), net(x), atol=1e-4)


def test_old_timesteps_spelling_still_reads():
    """snnc 0.1 wrote SNASNet genotypes with ``timesteps``; they load as ``time_steps``."""
    import pytest

    from snnc.errors import SnncError
    from snnc.models.snasnet import SNASNetGenotype

    old = {"family": "snasnet", "cell": "0303 0030 2002 0200", "timesteps": 7}
    g = SNASNetGenotype.from_dict(old)
    assert g.time_steps == 7 and "timesteps" not in g.to_dict() and g.to_dict()["time_steps"] == 7
    with pytest.raises(SnncError, match="time_steps or its old spelling timesteps, not both"):
        SNASNetGenotype.from_dict({**old, "time_steps": 7})
