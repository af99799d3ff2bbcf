"""Energy model: ACs / MACs / joules from the one counting pass (spec/energy.md fixtures and hand counts)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from snnc.energy import COST_TABLE, EnergyMeter, OpsRecorder, count_ops, energy_report, resolve_costs, rho_table
from snnc.energy.rho import neuron_type_rho, type_rates
from snnc.errors import SnncError
from snnc.neurons import Neuron, NeuronSpec

AC, MAC = 0.9e-12, 4.6e-12

FIXTURES = [
    (lambda: nn.Conv2d(3, 64, 3, padding=1, bias=False), (1, 3, 32, 32), 1_769_472, 1_696_512),
    (lambda: nn.Conv2d(3, 64, 3, stride=2, padding=1, bias=False), (1, 3, 32, 32), 442_368, None),
    (lambda: nn.Conv3d(16, 16, 3, padding=1, bias=False), (1, 16, 8, 16, 16), 14_155_776, 11_917_312),
    (lambda: nn.Linear(512, 10, bias=False), (1, 512), 5_120, None),
]


@pytest.mark.parametrize("make,shape,dense,events", FIXTURES)
def test_energy_md_fixtures_real_input_is_mac_and_spikes_are_ac(make, shape, dense, events):
    layer = make()
    real = energy_report(count_ops(layer, torch.randn(shape) + 3.0))  # real-valued input: all MACs
    assert real.layers[0].input_kind == "real"
    assert real.mac == dense and real.ac == 0
    assert real.energy_j == pytest.approx(dense * MAC)
    ones = energy_report(count_ops(layer, torch.ones(shape), fanout="input"))  # all-ones spikes: rate 1
    assert ones.layers[0].input_kind == "spikes" and ones.layers[0].input_rate == 1.0
    assert ones.ac == dense and ones.mac == 0
    assert ones.energy_j == pytest.approx(dense * AC)
    assert ones.ann_mac == dense and ones.ann_energy_j == pytest.approx(dense * MAC)
    if events is not None:  # the stricter fan-out count excludes padding
        strict = energy_report(count_ops(layer, torch.ones(shape), fanout="input"), count="events")
        assert strict.ac == events and strict.energy_j == pytest.approx(events * AC)


class TwoLayer(nn.Module):
    """lin1 on the input, a threshold (spikes), lin2 on the spikes."""

    def __init__(self) -> None:
        super().__init__()
        self.lin1 = nn.Linear(6, 4, bias=False)
        self.lin2 = nn.Linear(4, 2, bias=False)
        with torch.no_grad():
            self.lin1.weight.copy_(
                torch.tensor([[1.0, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1]])
            )
            self.lin2.weight.fill_(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin2((self.lin1(x) > 0.5).float())


def test_two_layer_net_ac_count_by_hand():
    net = TwoLayer()
    steps = [torch.tensor([[1.0, 0, 0, 0, 0, 0]]), torch.tensor([[1.0, 1, 0, 0, 1, 0]]), torch.zeros(1, 6)]
    with OpsRecorder(net) as rec:
        for x in steps:
            net(x)
    rep = energy_report(rec.report(), steps_per_frame=3)
    l1, l2 = rep.layers
    # lin1: each input spike reaches 4 synapses: (1 + 3 + 0) spikes x 4 = 16 ACs over the 3 steps
    assert l1.ac == 16 and l1.mac == 0 and l1.dense_ops == 3 * 24
    assert l1.input_rate == pytest.approx(4 / 18)
    # hidden spikes: step 1 -> units 0, 3 (2 spikes); step 2 -> 0, 1, 3 (3); step 3 -> none; 2 synapses each
    assert l2.ac == (2 + 3 + 0) * 2 and l2.dense_ops == 3 * 8
    assert rep.ac == 26 and rep.mac == 0 and rep.energy_j == pytest.approx(26 * AC)
    assert rep.ann_mac == 24 + 8  # one pass of the network, every dense op a MAC


def test_first_layer_on_real_input_is_mac_times_steps_and_signed_events_are_ac():
    net = TwoLayer()
    image = torch.rand(1, 6) * 0.3 + 0.1  # real-valued, presented at every step (direct coding)
    with OpsRecorder(net) as rec:
        for _ in range(4):
            net(image)
    rep = energy_report(rec.report(), steps_per_frame=4)
    assert rep.layers[0].input_kind == "real" and rep.layers[0].mac == 4 * 24  # dense ops x steps
    assert rep.layers[1].input_kind == "spikes"
    signed = torch.tensor([[1.0, -1, 0, 0, -1, 0]])  # an SBT-like input: each event is one add/subtract
    one = energy_report(count_ops(net, signed))
    assert one.layers[0].input_kind == "spikes" and one.layers[0].ac == 3 * 4
    forced = energy_report(count_ops(net, signed), mac_layers=["lin1"])
    assert forced.layers[0].input_kind == "real" and forced.layers[0].mac == 24


def test_meter_per_frame_reports_add_up_to_the_total():
    net = TwoLayer()
    frames = [(torch.rand(2, 6) < p).float() for p in (0.1, 0.5, 0.9)]
    reports = []
    with EnergyMeter(net) as meter:
        for x in frames:
            net(x)
            reports.append(meter.frame())
    total = meter.total()
    assert meter.frames == 3
    assert sum(r.ac for r in reports) == pytest.approx(3 * total.ac)
    assert [r.layers[0].input_rate for r in reports] == pytest.approx([float(x.mean()) for x in frames])
    assert all(r.layers[0].dense_ops == 24 for r in reports)  # per example (batch of 2), per frame


def test_report_json_csv_table_and_errors():
    rep = energy_report(count_ops(TwoLayer(), torch.ones(1, 6)))
    d = json.loads(json.dumps(rep.to_dict()))
    assert {"name", "dense_ops", "input_rate", "ac", "mac", "energy_j"} <= set(d["layers"][0])
    assert set(d["total"]) >= {"ac", "mac", "energy_j"} and set(d["ann_total"]) == {"mac", "energy_j"}
    csv = rep.to_csv().splitlines()
    assert csv[0].startswith("name,type,input_kind,dense_ops") and csv[-2].startswith("TOTAL")
    assert "as an ANN" in rep.format_table()
    with pytest.raises(SnncError, match="fanout='input'"):
        energy_report(count_ops(TwoLayer(), torch.ones(1, 6)), count="events")
    with pytest.raises(SnncError, match="frames"):
        energy_report(count_ops(TwoLayer(), torch.ones(1, 6)), frames=0)


def test_cost_table_and_overrides():
    assert (COST_TABLE["45nm-fp32"].ac_pj, COST_TABLE["45nm-fp32"].mac_pj) == (0.9, pytest.approx(4.6))
    custom = resolve_costs("45nm-int8", mac_pj=1.0)
    assert custom.ac_pj == 0.03 and custom.mac_pj == 1.0
    rep = energy_report(count_ops(TwoLayer(), torch.ones(1, 6)), costs=custom)
    assert rep.energy_j == pytest.approx(rep.ac * 0.03e-12)
    with pytest.raises(SnncError, match="unknown energy cost table"):
        resolve_costs("7nm")


class Spiking(nn.Module):
    def __init__(self, kind: str) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 8)
        self.neuron = Neuron(NeuronSpec(type=kind))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.neuron(self.fc(x))[0]


def test_rho_paper_and_measured_match_hns():
    from snnc.train.hns import PAPER_RHO_RELU, relu_energy_factor

    paper = rho_table(["lif", "relu"])
    assert paper["lif"] == 1.0 and paper["relu"] == pytest.approx(PAPER_RHO_RELU, abs=0.01)
    measured = rho_table(["lif", "relu"], mode="measured", rates={"lif": 0.05}, steps=6)
    assert measured["lif"] == 1.0 and measured["relu"] == pytest.approx(relu_energy_factor(0.05, 6))
    assert neuron_type_rho("lif", rate=0.1) == pytest.approx(0.5)  # half the reference rate 0.2
    assert rho_table(["relu"], rho_relu=3.0) == {"relu": 3.0}
    with pytest.raises(SnncError, match="measured"):
        rho_table(["lif"], mode="measured")
    torch.manual_seed(0)
    net = Spiking("lif")
    x = torch.randn(64, 4) * 3
    rates = type_rates(count_ops(net, x, neurons=True))
    with torch.no_grad():
        expected = float(net(x).mean())  # one step from rest: the spikes' mean
    assert set(rates) == {"lif"} and 0 < rates["lif"] < 1 and rates["lif"] == pytest.approx(expected)
    assert type_rates(count_ops(Spiking("relu"), torch.randn(8, 4), neurons=True)) == {}


def test_stereo_net_counts_acs_only_like_the_paper():
    from snnc.models.build import build_model
    from snnc.models.fold import fold_bn

    torch.manual_seed(0)
    net = fold_bn(
        build_model("spikedhs-stereo", feature_filter_multiplier=2, matching_filter_multiplier=2, disparities=5)
    ).eval()
    with torch.no_grad():
        for p in net.parameters():
            if p.dim() > 1:
                p.mul_(3)
    x = torch.randint(-1, 2, (2, 1, 2, 5, 24, 30)).float() * (torch.rand(2, 1, 2, 5, 24, 30) < 0.2)
    rep = energy_report(count_ops(net, x), frames=2)
    assert rep.mac == 0 and rep.ac > 0  # SBT events and spikes everywhere: 0 MAC (paper: 7414 M AC, 0 MAC)
    assert all(layer.input_kind == "spikes" for layer in rep.layers)
    assert rep.ac < rep.dense_ops and rep.ann_mac == rep.dense_ops


def test_hns_rho_priced_by_each_energy_model():
    from snnc.energy.costs import COST_TABLE
    from snnc.energy.models import MemoryConfig
    from snnc.energy.rho import dense_op_pj, neuron_type_rho
    from snnc.train.hns import relu_energy_factor

    assert relu_energy_factor(0.2, 6) == pytest.approx(4.6 / (0.2 * 6 * 0.9))
    w = MemoryConfig().word_bytes * MemoryConfig().pj_per_byte  # one weight read: 4 B x 25 pJ/B
    assert dense_op_pj(COST_TABLE["45nm-fp32"], "memory") == pytest.approx((0.9 + w, 4.6 + w))
    # memory traffic dominates: a ReLU layer's consumer reads each weight once, a LIF layer's r x T times
    assert relu_energy_factor(0.2, 6, "memory") == pytest.approx((4.6 + w) / (0.2 * 6 * (0.9 + w)))
    assert relu_energy_factor(0.2, 6, "memory") < 1 < relu_energy_factor(0.02, 6, "memory")
    for model in ("paper", "memory"):
        assert neuron_type_rho("relu", reference_rate=0.1, steps=4, energy_model=model) == pytest.approx(
            relu_energy_factor(0.1, 4, model)
        )
    with pytest.raises(SnncError, match="unknown energy model"):
        neuron_type_rho("relu", energy_model="nope")
