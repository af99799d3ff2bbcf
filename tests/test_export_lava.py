"""Lava export: a sequential spiking net as lava-dl netx HDF5, simulated in Loihi2SimCfg(fixed_pt).

Tolerance (fixed point vs float): per layer, the total spike count over the run
is within 10 % of the float network's (or 5 spikes for sparse layers), and a
neuron's spike count differs by less than 1 spike on average. Lava itself must
equal snnc's bit-exact fixed-point model of the written file.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from snnc.errors import SnncError
from snnc.export.lava_run import lava_timing_graph, simulate_fixed_point, simulate_netx
from snnc.export.lava_writer import _fold_pool_into_conv, _fold_pool_into_dense, netx_layers, write_netx
from snnc.export.lower import lower
from snnc.export.runtime import GraphModule
from snnc.models.build import build_model
from snnc.models.fold import fold_bn

from _export_util import SMALL_CLASSIFIERS, folded_small, small_genotype, train_bn, write_genotype
from cli_helpers import expect_ok, run_snnc

LAYERS = [
    {"type": "conv", "channels": 8},
    {"type": "pool", "kernel_size": 2},
    {"type": "conv", "channels": 16},
    {"type": "pool", "kernel_size": 2},
    {"type": "flatten"},
    {"type": "dense", "features": 32},
    {"type": "dense", "features": 10},
]
STEPS = 24


def sequential_net(seed: int = 1):
    """A trained-BN sequential net whose dense layers fire too, and binary input spikes."""
    torch.manual_seed(seed)
    net = build_model(small_genotype("sequential-dvs", image_size=16, layers=LAYERS))
    x = (torch.rand(STEPS, 1, 2, 16, 16) < 0.25).float()
    train_bn(net, x[:8])
    with torch.no_grad():
        for block in net.blocks:
            if hasattr(block, "fc"):
                block.fc.weight.mul_(3.0)
    return fold_bn(net).eval(), x


def float_with_lava_timing(graph, x, total):
    """Every neuron node's spikes of the float graph with Lava's one-step latency per layer."""
    gm = GraphModule(lava_timing_graph(graph))
    xs = torch.zeros(total, *x.shape[1:])
    xs[: x.shape[0]] = x
    state = gm.init_state(xs[0])
    spikes = {n: [] for n in gm.neuron_nodes()}
    with torch.no_grad():
        for t in range(total):
            values, state = gm.step_nodes(xs[t], state)
            for n in spikes:
                spikes[n].append(values[n][0])
    return {n: torch.stack(s).numpy() for n, s in spikes.items()}


@pytest.mark.lava
@pytest.mark.slow
def test_sequential_net_runs_in_lava_like_torch(tmp_path):
    net, x = sequential_net()
    graph = lower(net, (1, 2, 16, 16))
    info = write_netx(graph, tmp_path / "net.h5")
    assert [layer["kind"] for layer in info["layers"]] == ["conv", "conv", "dense", "dense"]
    assert [layer["name"] for layer in info["layers"]] == [n for n, _ in net.neurons()]

    spikes_in = x[:, 0].numpy()
    lava = simulate_netx(tmp_path / "net.h5", spikes_in)  # hdf5.Network + RingBuffers, Loihi2SimCfg(fixed_pt)
    fixed = simulate_fixed_point(tmp_path / "net.h5", spikes_in)
    reference = float_with_lava_timing(graph, x, lava[0].shape[0])
    for (name, ref), got, exact in zip(reference.items(), lava, fixed, strict=False):
        assert got.shape == ref.shape
        np.testing.assert_array_equal(got, exact, err_msg=f"Lava differs from the fixed-point model at {name}")
        want, have = float(ref.sum()), float(got.sum())
        assert want > 20, f"{name} is nearly silent: the comparison would be empty"
        assert abs(have - want) <= max(0.10 * want, 5), (name, want, have)
        assert np.abs(ref.sum(0) - got.sum(0)).mean() < 1.0, name


def test_pool_folding_is_exact():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 12, 12, generator=g, dtype=torch.float64)
    w = torch.randn(5, 3, 3, 3, generator=g, dtype=torch.float64)
    big, stride, padding = _fold_pool_into_conv(w.numpy(), (1, 1), (1, 1), 2)
    want = F.conv2d(F.avg_pool2d(x, 2), w, padding=1)
    got = F.conv2d(x, torch.from_numpy(big), stride=stride, padding=padding)
    assert big.shape == (5, 3, 6, 6) and torch.allclose(got, want, atol=1e-12)
    dense = torch.randn(7, 3 * 4 * 4, generator=g, dtype=torch.float64)
    spread = torch.from_numpy(_fold_pool_into_dense(dense.numpy(), (3, 4, 4), 3))
    assert torch.allclose(F.linear(x.flatten(1), spread), F.linear(F.avg_pool2d(x, 3).flatten(1), dense), atol=1e-12)


def test_dags_are_refused_naming_the_first_non_sequential_node(tmp_path):
    overrides, shape = SMALL_CLASSIFIERS["spikedhs-cla"]
    net, _ = folded_small("spikedhs-cla", shape, 2, **overrides)
    with pytest.raises(SnncError, match=r"node 'stem.neuron' feeds .* not sequential"):
        write_netx(lower(net, shape), tmp_path / "dag.h5")
    overrides, shape = SMALL_CLASSIFIERS["snasnet-cifar10"]
    net, _ = folded_small("snasnet-cifar10", shape, 2, **overrides)
    with pytest.raises(SnncError, match="not sequential"):
        netx_layers(lower(net, shape))
    assert not (tmp_path / "dag.h5").exists()


def test_cli_lava_export(tmp_path):
    genotype = write_genotype(small_genotype("sequential-dvs", image_size=16, layers=LAYERS), tmp_path / "seq.json")
    out = expect_ok(run_snnc("export", genotype, "--to", "lava", "--out", tmp_path / "seq.h5"))
    assert "4 CUBA layers" in out and "(W, H, C)" in out
    spikes = (np.random.default_rng(0).random((6, 2, 16, 16)) < 0.3).astype(np.float32)
    layers = simulate_fixed_point(tmp_path / "seq.h5", spikes)
    assert [a.shape for a in layers] == [(10, 8, 16, 16), (10, 16, 8, 8), (10, 32), (10, 10)]
