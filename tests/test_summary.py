"""`snnc info` summaries: fields, totals, table."""

from __future__ import annotations

import json

import torch
from torch import nn

from snnc.energy import count_ops
from snnc.energy.summary import describe, format_table
from snnc.models.snasnet import SNASNetGenotype, build_snasnet


def small_net():
    g = SNASNetGenotype(cell="0302 0030 3003 0000", channels=4, fc_hidden=8, image_size=8, in_channels=1)
    return build_snasnet(g)


def test_describe_snasnet_fields_and_totals():
    net = small_net()
    x = torch.rand(2, 1, 1, 8, 8)
    d = describe(net, x)
    assert json.loads(json.dumps(d)) == d
    assert d["model"] == "SNASNet" and d["family"] == "snasnet" and d["input_shape"] == [2, 1, 1, 8, 8]
    assert d["parameters"] == sum(p.numel() for p in net.parameters())
    frozen = sum(p.numel() for p in net.parameters() if not p.requires_grad)
    assert d["trainable_parameters"] == d["parameters"] - frozen and frozen == 3 * 4  # channel_bn identities
    assert isinstance(d["parameters"], int)
    layer_params = sum(layer["parameters"] for layer in d["layers"])
    assert layer_params == d["layer_parameters"] < d["parameters"]  # BatchNorm is not a layer row
    bn = sum(p.numel() for m in net.modules() if isinstance(m, nn.BatchNorm2d) for p in m.parameters())
    assert layer_params + bn == d["parameters"]
    assert d["dense_ops"] == sum(layer["dense_ops"] for layer in d["layers"]) == count_ops(net, x).dense_ops
    assert all(layer["calls"] == 2 for layer in d["layers"])
    assert set(d["layers"][0]) == {"name", "type", "output_shape", "parameters", "dense_ops", "calls"}
    assert [n["name"] for n in d["neurons"]] == [n for n, _ in net.neurons()]
    assert d["neuron_types"] == {"lif": len(net.neurons())}
    assert d["neurons"][0]["spec"]["vth"] == net.genotype.neuron.vth


def test_describe_plain_module_and_table():
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 16, 10))
    d = describe(net, torch.randn(1, 3, 4, 4))
    assert d["family"] is None and d["neurons"] == [] and d["neuron_types"] == {}
    assert d["layer_parameters"] == d["parameters"] == 3 * 8 * 9 + 8 + 128 * 10 + 10
    assert d["dense_ops"] == 8 * 16 * 27 + 1280
    table = format_table(d)
    assert "Sequential, input 1x3x4x4" in table
    assert f"{d['dense_ops']:,}" in table and f"{d['parameters']:,}" in table
    assert "neuron layers: 0 (none)" in table
    snn_table = format_table(describe(small_net(), torch.rand(2, 1, 1, 8, 8)))
    assert "cell1.fwd.0_1.conv.conv" in snn_table and "lif: 13" in snn_table and "fc_neuron" in snn_table
