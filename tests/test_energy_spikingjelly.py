"""snnc's one counting pass and energy models against SpikingJelly 2.0's op counters and estimators.

SpikingJelly (``spikingjelly.activation_based.op_counter``) counts at the aten level
(``DispatchCounterMode``) or by module hooks, code nobody here wrote. Per layer, snnc's
fan-out synaptic events (``--count events``) must equal ``SynOpCounter`` and its MACs
``MACCounter``; where the definitions differ (BatchNorm left unfolded, pooling adds, bias
adds, the stereo net's signed-event input) the difference is shown to be exactly that
term. ``--energy-model memory`` / ``lemaire`` are checked against ``estimate_simple_energy``
/ ``estimate_lemaire_energy`` on the same network (same module objects and weights, the
snnc neurons replaced by SpikingJelly ``LIFNode``s with the same dynamics; the spikes are
checked equal first), term by term (docs/STREAM_ENERGY.md states the tolerance).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

sj = pytest.importorskip("spikingjelly.activation_based.op_counter")

from spikingjelly.activation_based import functional  # noqa: E402
from spikingjelly.activation_based.neuron import LIFNode  # noqa: E402
from spikingjelly.activation_based.op_counter.ac import _spike_convolution  # noqa: E402
from spikingjelly.activation_based.op_counter.mac import _mac_convolution  # noqa: E402

from snnc.energy.costs import COST_TABLE  # noqa: E402
from snnc.energy.models import MemoryConfig  # noqa: E402
from snnc.energy.ops import OpsRecorder, count_ops  # noqa: E402
from snnc.energy.report import energy_report  # noqa: E402
from snnc.models.build import build_model  # noqa: E402
from snnc.models.fold import fold_bn  # noqa: E402

MKLDNN = torch.ops.aten.mkldnn_convolution.default


class Stepper(nn.Module):
    """``forward`` = one ``step`` of an snnc net, so SpikingJelly's module tracker names every layer."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, state: Any) -> Any:
        return self.net.step(x, state)


def _mkldnn(rule: Any) -> Any:
    """SpikingJelly's own convolution rule on ``aten.mkldnn_convolution`` (snnc's batch-1 Conv3d path).

    ``mkldnn_convolution(x, w, b, padding, stride, dilation, groups)`` is reordered into
    ``convolution(x, w, b, stride, padding, dilation, transposed=False, output_padding, groups)``.
    """

    def counted(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> int:
        x, w, b, pad, stride, dil, groups = args[:7]
        return int(rule((x, w, b, stride, pad, dil, False, [0] * len(stride), groups), kwargs, out))

    return counted


def _spiking(net: nn.Module) -> nn.Module:
    """Folded, eval, weights scaled so spikes reach every layer of an untrained net."""
    torch.manual_seed(0)
    net = fold_bn(net).eval()
    with torch.no_grad():
        for p in net.parameters():
            if p.dim() > 1:
                p.mul_(3)
    return net


def _both_counts(net: nn.Module, x: torch.Tensor) -> tuple[Any, dict[str, int], dict[str, int]]:
    """Run ``net`` step by step under snnc's recorder and SpikingJelly's counters at once."""
    syn = sj.SynOpCounter(extra_rules={MKLDNN: _mkldnn(_spike_convolution)})
    mac = sj.MACCounter(extra_rules={MKLDNN: _mkldnn(_mac_convolution)})
    stepper = Stepper(net)
    with torch.no_grad(), OpsRecorder(net, fanout="input") as rec:
        state = net.init_state(x[0])
        with sj.DispatchCounterMode([syn, mac]):
            for x_t in x:
                _, state = stepper(x_t, state)

    def per_scope(counter: Any) -> dict[str, int]:
        return {k.removeprefix("Stepper.net."): sum(v.values()) for k, v in counter.get_counts().items()}

    return rec.report(), per_scope(syn), per_scope(mac)


def _assert_layers_match(report: Any, syn: dict[str, int], mac: dict[str, int], skip: tuple[str, ...] = ()) -> int:
    checked = 0
    for layer in report.layers:
        if layer.name in skip:
            continue
        if layer.input_is_binary:  # spikes: events = SynOps, no MAC
            assert syn.get(layer.name, 0) == pytest.approx(layer.fanout_events, abs=1e-6), layer.name
            assert mac.get(layer.name, 0) == 0, layer.name
        else:  # real-valued input: dense MACs, no SynOp
            assert mac.get(layer.name, 0) == layer.dense_ops, layer.name
            assert syn.get(layer.name, 0) == 0, layer.name
        checked += 1
    return checked


def _sequential(image_size: int = 8, **kw: Any) -> nn.Module:
    return build_model("sequential-dvs", image_size=image_size, **kw)


def test_sequential_per_layer_synops_and_macs_equal_spikingjelly():
    net = _spiking(_sequential())
    x = (torch.rand(3, 1, 2, 8, 8) < 0.3).float()
    report, syn, mac = _both_counts(net, x)
    kinds = {layer.input_is_binary for layer in report.layers}
    assert _assert_layers_match(report, syn, mac) == len(report.layers) == 4 and kinds == {True, False}


def test_snasnet_per_layer_synops_and_macs_equal_spikingjelly():
    from snnc.models.snasnet import SNASNetGenotype, build_snasnet

    g = SNASNetGenotype(cell="0302 0030 3003 0000", channels=4, fc_hidden=8, image_size=8, in_channels=1)
    net = _spiking(build_snasnet(g))
    report, syn, mac = _both_counts(net, torch.rand(2, 1, 1, 8, 8))
    assert _assert_layers_match(report, syn, mac) == len(report.layers)
    assert report.layers[0].input_is_binary is False  # the image: MACs on both sides


@pytest.mark.slow
def test_digits_classifier_per_layer_synops_and_macs_equal_spikingjelly():
    net = _spiking(build_model("spikedhs-cla", in_channels=1, num_classes=10, filter_multiplier=2))
    report, syn, mac = _both_counts(net, torch.rand(2, 1, 1, 8, 8))
    assert _assert_layers_match(report, syn, mac) == len(report.layers) > 20


@pytest.mark.slow
def test_stereo_per_layer_counts_and_the_signed_event_first_layer():
    net = _spiking(
        build_model("spikedhs-stereo", feature_filter_multiplier=2, matching_filter_multiplier=2, disparities=5)
    )
    torch.manual_seed(1)
    x = torch.randint(-1, 2, (2, 1, 2, 5, 24, 30)).float() * (torch.rand(2, 1, 2, 5, 24, 30) < 0.2)
    first = "feature.stem0.conv.conv"
    seen: list[torch.Tensor] = []

    def keep(module: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        if inputs[0].device.type != "meta":  # not init_state's shape probe
            seen.append(inputs[0].detach().clone())

    hook = net.get_submodule(first).register_forward_hook(keep)
    report, syn, mac = _both_counts(net, x)
    hook.remove()
    # every layer but the first agrees, the feature net counted for both views (batch 2B inside, B examples)
    assert _assert_layers_match(report, syn, mac, skip=(first,)) == len(report.layers) - 1
    # the SBT input is signed events (-1/0/1): snnc counts events (one add or subtract each),
    # SpikingJelly only takes 0/1 as spikes and counts the layer as dense MACs
    stem0 = report.by_name()[first]
    assert stem0.input_is_ternary and not stem0.input_is_binary
    assert mac[first] == stem0.dense_ops and syn.get(first, 0) == 0
    # the difference is exactly that definition: SynOps of the same conv on |x| are snnc's events
    conv = net.get_submodule(first)
    abs_syn = sj.SynOpCounter()
    with torch.no_grad(), sj.DispatchCounterMode([abs_syn]):
        for x_in in seen:
            conv(x_in.abs())
    assert abs_syn.get_total() == pytest.approx(stem0.fanout_events, abs=1e-6)


def test_definition_differences_bn_pooling_and_bias_are_exactly_those_terms():
    torch.manual_seed(0)
    net = _sequential().eval()  # BatchNorm left in
    with torch.no_grad():
        for p in net.parameters():
            if p.dim() > 1:
                p.mul_(3)
    x = (torch.rand(2, 1, 2, 8, 8) < 0.3).float()
    ac, mac = sj.ACCounter(), sj.MACCounter()
    stepper = Stepper(net)
    with torch.no_grad(), OpsRecorder(net, include_pooling=True, fanout="input") as rec:
        state = net.init_state(x[0])
        with sj.DispatchCounterMode([ac, mac]):
            for x_t in x:
                _, state = stepper(x_t, state)
    report = rec.report().by_name()
    macs = {k.removeprefix("Stepper.net."): sum(v.values()) for k, v in mac.get_counts().items()}
    acs = {k.removeprefix("Stepper.net."): sum(v.values()) for k, v in ac.get_counts().items()}
    # BatchNorm not folded: SpikingJelly adds one affine MAC per BN output element; snnc counts none
    for block in ("blocks.0.conv", "blocks.2.conv"):
        conv = report[f"{block}.conv"]
        assert macs[block] - macs.get(f"{block}.conv", 0) == conv.output_count
    # pooling: snnc's include_pooling counts k*k reads per output, SpikingJelly k*k - 1 adds
    for pool in ("blocks.1", "blocks.3"):
        assert report[pool].dense_ops - acs[pool] == report[pool].output_count
    # bias adds (snnc count_bias) = SpikingJelly's bias reads, one per output element
    folded = _spiking(_sequential())
    memory = sj.NeuromorphicMemoryAccessCounter()
    stepper = Stepper(folded)
    ops = count_ops(folded, x, count_bias=True)
    with torch.no_grad(), sj.ModuleCounterMode([memory], model=stepper):
        state = folded.init_state(x[0])
        for x_t in x:
            _, state = stepper(x_t, state)
    bias = {k.removeprefix("Stepper.net."): v["bias_read_bytes"] for k, v in memory.get_counts().items()}
    assert all(layer.bias_ops > 0 for layer in ops.layers)
    for layer in ops.layers:
        assert layer.bias_ops * 4 == bias[layer.name], layer.name


class _Twin(nn.Module):
    """The snnc sequential net's own layer modules with SpikingJelly LIF neurons, stepped ``T`` times."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for block in net.blocks:
            synapse = getattr(block, "conv", None) or getattr(block, "fc", None)
            if synapse is None:
                layers.append(block)
                continue
            spec = block.neuron.spec
            # snnc: u' = decay u (1 - y) + I, hard reset; SpikingJelly (decay_input=False, v_reset=0):
            # v' = (1 - 1/tau) v + x, reset to 0 on a spike: the same with tau = 1 / (1 - decay)
            lif = LIFNode(tau=1.0 / (1.0 - spec.decay), decay_input=False, v_threshold=spec.vth, v_reset=0.0)
            layers += [synapse, lif]
        self.layers = nn.Sequential(*layers)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        functional.reset_net(self)
        return torch.stack([self.layers(x_t) for x_t in x_seq])


def _twin_case() -> tuple[nn.Module, nn.Module, torch.Tensor]:
    net = _spiking(_sequential(image_size=8))
    x = (torch.rand(4, 1, 2, 8, 8) < 0.3).float()
    twin = _Twin(net).eval()
    with torch.no_grad():
        assert torch.equal(twin(x), net(x))  # the same network: every output spike equal
    return net, twin, x


def test_memory_model_against_estimate_simple_energy():
    net, twin, x = _twin_case()
    cfg = sj.SimpleEnergyConfig(cost_config=sj.SimpleEnergyCostConfig(4.6, 0.9, MemoryConfig().pj_per_byte))
    ref = sj.estimate_simple_energy(twin, x, config=cfg)
    ops = count_ops(net, x, fanout="input", neurons=True)
    rep = energy_report(ops, count="events", energy_model="memory", steps_per_frame=4.0)
    parts: dict[str, float] = {}
    for row in [*rep.layers, *rep.neurons]:
        for k, v in row.memory_bytes.items():
            parts[k] = parts.get(k, 0.0) + v
    counts = ref.counts
    assert rep.mac == counts["mac"] and rep.ac == pytest.approx(counts["synop"], abs=1e-6)
    assert parts["weights"] == pytest.approx(counts["weight_read_bytes"], rel=1e-12)
    assert parts["bias"] == pytest.approx(counts["bias_read_bytes"], rel=1e-12)
    assert parts["state_read"] == pytest.approx(counts["neuron_state_read_bytes"], rel=1e-12)
    assert parts["state_write"] == pytest.approx(counts["neuron_state_write_bytes"], rel=1e-12)
    shared_pj = ref.energy_mac_pj + counts["synop"] * 0.9 + ref.energy_memory_pj
    ours_pj = rep.energy_j * 1e12
    # the remaining difference is exactly snnc's two extra terms: activation reads and neuron updates
    extra_pj = parts["activations"] * MemoryConfig().pj_per_byte + rep.neuron_j * 1e12
    assert parts["activations"] > 0 and rep.neuron_j > 0
    assert ours_pj - shared_pj == pytest.approx(extra_pj, rel=1e-9)
    # SpikingJelly's AC count also holds the element-wise adds of the neuron dynamics (not synaptic ops)
    assert counts["ac"] > counts["synop"]


def test_lemaire_model_against_estimate_lemaire_energy():
    net, twin, x = _twin_case()
    with pytest.warns(RuntimeWarning):  # pooling / flatten are outside Lemaire's formulas on both sides
        ref = sj.estimate_lemaire_energy(twin, x, config=sj.LemaireEnergyConfig(strict=False))
    ops = count_ops(net, x, fanout="input", neurons=True)
    costs = COST_TABLE["45nm-int32"]  # Lemaire: 32-bit integer add 0.1, mul 3.1 pJ
    rep = energy_report(ops, costs=costs, energy_model="lemaire", steps_per_frame=4.0)
    assert rep.ac + sum(n.ac for n in rep.neurons) == pytest.approx(ref.counts["ac"], abs=1e-6)
    assert rep.mac + sum(n.mac for n in rep.neurons) == pytest.approx(ref.counts["mac"], abs=1e-6)
    bytes_by: dict[str, float] = {}
    for row in [*rep.layers, *rep.neurons]:
        for k, v in row.memory_bytes.items():
            bytes_by[k] = bytes_by.get(k, 0.0) + v
    assert bytes_by["params"] == pytest.approx(ref.counts["read_params_bytes"], rel=1e-12)
    assert bytes_by["read_in"] == pytest.approx(ref.counts["read_in_bytes"], rel=1e-12)
    assert bytes_by["potential_read"] == pytest.approx(ref.counts["read_potential_bytes"], rel=1e-12)
    assert bytes_by["spikes_out"] == pytest.approx(ref.counts["write_out_bytes"], rel=1e-12)
    assert rep.memory_j * 1e12 == pytest.approx(ref.breakdown_pj["memory_pj"], rel=1e-9)
    compute_pj = (rep.compute_j + rep.neuron_j) * 1e12
    assert compute_pj == pytest.approx(ref.breakdown_pj["ops_pj"] + ref.breakdown_pj["addressing_pj"], rel=1e-9)
    assert rep.energy_j * 1e12 == pytest.approx(ref.total_pj, rel=1e-9)


def test_ann_comparison_uses_the_same_memory_model():
    net, _, x = _twin_case()
    ops = count_ops(net, x, fanout="input", neurons=True)
    paper = energy_report(ops, count="events", steps_per_frame=4.0)
    memory = energy_report(ops, count="events", energy_model="memory", steps_per_frame=4.0)
    assert memory.ann is not None and memory.ann["memory_j"] > 0
    # the ANN reads every weight once per pass: dense ops x 4 bytes at the same pJ/byte
    cfg = MemoryConfig()
    dense = sum(layer.dense_ops for layer in ops.layers) / 4.0
    assert memory.ann["memory_j"] > dense * cfg.word_bytes * cfg.pj_per_byte * 1e-12
    assert memory.ann_energy_j > paper.ann_energy_j
    assert paper.energy_j == pytest.approx(paper.compute_j)  # the papers' total: compute only
