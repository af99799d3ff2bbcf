"""NIR export: folded nets -> nir.write -> nir.read -> snnc importer spike exactly like torch, step by step."""

from __future__ import annotations

import json

import h5py
import nir
import numpy as np
import pytest
import torch

from snnc.errors import SnncError
from snnc.export.lower import graph_inputs, lower
from snnc.export.nir_reader import import_nir, read_nir
from snnc.export.nir_writer import write_nir
from snnc.export.partition import PartitionedNet, split_graph, write_partition
from snnc.models.build import build_model
from snnc.models.fold import batchnorm_layers, fold_bn
from snnc.models.loading import save_network

from _export_util import (
    SMALL_CLASSIFIERS,
    SMALL_STEREO,
    folded_small,
    record_spikes,
    small_genotype,
    train_bn,
    write_genotype,
)
from cli_helpers import assert_user_error, expect_ok, run_snnc

STEPS = 12


def compare_stepwise(gm, family, net_spikes, y_ref, x_seq, names=None):
    """Run the imported module step by step; return (spike mismatches, spikes seen, max output diff)."""
    state = gm.init_state(graph_inputs(family, x_seq[0]))
    mismatches = seen = 0
    max_diff = 0.0
    names = list(net_spikes) if names is None else names
    for t in range(x_seq.shape[0]):
        with torch.no_grad():
            values, state = gm.step_nodes(graph_inputs(family, x_seq[t]), state)
        for name in names:
            mismatches += int((values[name] != net_spikes[name][t]).sum())
            seen += int(net_spikes[name][t].sum())
        if y_ref is not None:
            max_diff = max(max_diff, float((values["y"] - y_ref[t]).abs().max()))
    return mismatches, seen, max_diff


@pytest.mark.parametrize("preset", sorted(SMALL_CLASSIFIERS))
def test_classifier_round_trip_spikes_identically(preset, tmp_path):
    overrides, shape = SMALL_CLASSIFIERS[preset]
    net, x = folded_small(preset, shape, STEPS, **overrides)
    assert not batchnorm_layers(net)
    y, spikes = record_spikes(net, x)
    path = tmp_path / "net.nir"
    write_nir(lower(net, shape), path, dt=1e-4)

    graph = nir.read(str(path))  # an ordinary NIR graph: nir's own reader and type check accept it
    assert graph.metadata["dt"] == pytest.approx(1e-4)
    kinds = {type(n).__name__ for n in graph.nodes.values()}
    assert {"Input", "Output", "LIF"} <= kinds and kinds <= {
        "Input",
        "Output",
        "Conv2d",
        "Affine",
        "Linear",
        "LIF",
        "AvgPool2d",
        "Flatten",
        "Scale",
        "Delay",
    }
    if preset.startswith("snasnet"):
        assert "Delay" in kinds  # backward (t-1) edges form cycles through Delay nodes
    if preset == "spikedhs-cla":  # concatenations became split consumer weights with summed edges
        assert any(".part" in n for n in graph.nodes)

    gm = import_nir(path)
    assert set(spikes) <= set(gm.neuron_nodes())  # neuron nodes keep the network's layer names
    mismatches, seen, max_diff = compare_stepwise(gm, net.genotype.family, spikes, y, x)
    assert seen > 100  # the comparison covers real spike trains
    assert mismatches == 0
    assert max_diff < 1e-5


def test_stereo_feature_net_to_nir_and_the_rest_to_onnx(tmp_path):
    shape = (1, 2, 5, 24, 36)
    net, x = folded_small("spikedhs-stereo", shape, 10, feature_path=(0, 0), **SMALL_STEREO)
    y, spikes = record_spikes(net, x)
    graph = lower(net, shape)
    front, _rest, cuts, blocker = split_graph(graph)
    assert blocker == "cost_volume" and cuts == ["feature.last.neuron"]
    feature_neurons = [n for n in spikes if n.startswith("feature.")]
    assert set(feature_neurons) == {n for n, node in front.nodes.items() if node.op == "neuron"}

    doc = write_partition(graph, tmp_path / "stereo.json")
    assert json.loads((tmp_path / "stereo.json").read_text()) == doc
    assert [p["format"] for p in doc["pieces"]] == ["nir", "onnx"]
    assert doc["connections"] == [{"from": "front:out.feature.last.neuron", "to": "rest:feature.last.neuron"}]
    assert "cost volume" in doc["pieces"][1]["reason"]

    gm = import_nir(tmp_path / "stereo.front.nir")  # the feature net alone, both cameras in the batch
    mismatches, seen, _ = compare_stepwise(gm, "spikedhs-stereo", spikes, None, x, names=feature_neurons)
    assert seen > 100 and mismatches == 0

    runner = PartitionedNet(tmp_path / "stereo.json")  # NIR front (snnc importer) + ONNX rest (onnxruntime)
    state = runner.init_state(x[0])
    for t in range(x.shape[0]):
        cost, state = runner.step(x[t], state)
        assert float((cost - y[t]).abs().max()) < 1e-5


def test_cli_partition_of_the_preset_stereo_path(tmp_path):
    """Preset feature path [1, 0]: NIR keeps the stems and the first (down-sampled) cell; cell 1 up-samples."""
    genotype = write_genotype(small_genotype("spikedhs-stereo", **SMALL_STEREO), tmp_path / "stereo.json")
    manifest = tmp_path / "out.json"
    out = expect_ok(
        run_snnc("export", genotype, "--to", "nir", "--partition", "--out", manifest, "--input-shape", "1,2,5,24,36")
    )
    assert "out.front.nir" in out and "out.rest.onnx" in out and "up-sampling" in out
    doc = json.loads(manifest.read_text())
    assert (tmp_path / "out.front.nir").is_file() and (tmp_path / "out.rest.onnx").is_file()
    assert "feature.stem1.neuron" in doc["pieces"][1]["inputs"]

    from snnc.models.loading import open_model

    folded = fold_bn(open_model(genotype, seed=0).model).eval()  # the CLI's seeded weights
    x = torch.randint(-1, 2, (4, 1, 2, 5, 24, 36)).float()
    with torch.no_grad():
        y = folded(x)
    runner = PartitionedNet(manifest)
    state = runner.init_state(x[0])
    for t in range(x.shape[0]):
        cost, state = runner.step(x[t], state)
        assert float((cost - y[t]).abs().max()) < 1e-5


def test_cli_exports_a_checkpoint_to_nir(tmp_path):
    overrides, shape = SMALL_CLASSIFIERS["spikedhs-cla"]
    torch.manual_seed(3)
    net = build_model(small_genotype("spikedhs-cla", **overrides))
    x = torch.rand(STEPS, *shape)
    train_bn(net, x[:4])
    ckpt = tmp_path / "trained.pt"
    save_network(net, ckpt, epoch=7)
    out = tmp_path / "cla.nir"
    text = expect_ok(run_snnc("export", ckpt, "--to", "nir", "--out", out, "--input-shape", "1,3,16,16"))
    assert "NIR graph of spikedhs-cla" in text
    folded = fold_bn(net).eval()
    y, spikes = record_spikes(folded, x)
    mismatches, seen, max_diff = compare_stepwise(import_nir(out), "spikedhs-cla", spikes, y, x)
    assert seen > 100 and mismatches == 0 and max_diff < 1e-5


# --------------------------------------------------------------------------- refusals
def test_stereo_without_partition_names_the_node(tmp_path):
    net = fold_bn(build_model(small_genotype("spikedhs-stereo", **SMALL_STEREO)).eval())  # preset feature path [1, 0]
    with pytest.raises(SnncError, match=r"node 'feature.trellis.cells.1.s1.resize0' .*up-sampling.*--partition"):
        write_nir(lower(net, (1, 2, 5, 48, 72)), tmp_path / "s.nir")
    assert not (tmp_path / "s.nir").exists()
    with pytest.raises(SnncError, match=r"'feature.trellis.cells.0.s0.resize' .*non-integer factor"):
        write_nir(lower(net, (1, 2, 5, 48, 64)), tmp_path / "s.nir")  # 64 -> 11 columns: not a stride
    # with the whole feature net expressible, the first refusal is the cost volume
    net, _ = folded_small("spikedhs-stereo", (1, 2, 5, 24, 36), 1, feature_path=(0, 0), **SMALL_STEREO)
    with pytest.raises(SnncError, match=r"'cost_volume'.*cost volume"):
        write_nir(lower(net, (1, 2, 5, 24, 36)), tmp_path / "t.nir")


def test_cli_refuses_overwrite_and_unknown_format(tmp_path):
    out = tmp_path / "a.nir"
    out.write_text("keep")
    assert_user_error(run_snnc("export", "snasnet-cifar10", "--to", "nir", "--out", out), "exists", "--force")
    assert out.read_text() == "keep"
    assert_user_error(
        run_snnc("export", "snasnet-cifar10", "--to", "tflite", "--out", tmp_path / "b"),
        "unknown export format 'tflite'",
        "nir, onnx, lava",
    )
    assert_user_error(
        run_snnc("export", "snasnet-cifar10", "--to", "onnx", "--partition", "--out", tmp_path / "c"), "--partition"
    )


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    cla = build_model(small_genotype("spikedhs-cla", filter_multiplier=2))
    other = build_model(small_genotype("snasnet-cifar10", channels=4, image_size=8, fc_hidden=16))
    bad = tmp_path / "mixed.pt"
    torch.save({"genotype": cla.genotype.to_dict(), "model": other.state_dict()}, bad)
    assert_user_error(
        run_snnc("export", bad, "--to", "nir", "--out", tmp_path / "x.nir"),
        "mixed.pt",
        "do not fit its genotype",
        "another architecture",
    )
    wider = build_model(small_genotype("spikedhs-cla", filter_multiplier=3))
    torch.save({"genotype": cla.genotype.to_dict(), "model": wider.state_dict()}, tmp_path / "wider.pt")
    from snnc.models.loading import load_network_checkpoint

    with pytest.raises(SnncError, match="of another shape"):
        load_network_checkpoint(tmp_path / "wider.pt")
    torch.save({"model": cla.state_dict()}, tmp_path / "nogeno.pt")
    with pytest.raises(SnncError, match="not an snnc checkpoint"):
        load_network_checkpoint(tmp_path / "nogeno.pt")


def _tiny_nir(path, metadata=None):
    graph = nir.NIRGraph.from_list(
        nir.Affine(weight=np.eye(3, dtype=np.float32) * 0.6, bias=np.zeros(3, np.float32)),
        nir.LIF(tau=np.full(3, 2e-4), r=np.full(3, 2.0), v_leak=np.zeros(3), v_threshold=np.ones(3)),
    )
    if metadata is not None:
        graph.metadata = metadata
    nir.write(str(path), graph)
    return path


def test_nir_files_that_are_not_ours(tmp_path):
    junk = tmp_path / "junk.nir"
    with h5py.File(junk, "w") as f:
        f.create_dataset("data", data=np.arange(3))
    with pytest.raises(SnncError, match="not a NIR file"):
        import_nir(junk)
    (tmp_path / "text.nir").write_text("hello")
    with pytest.raises(SnncError, match="not an HDF5 file"):
        import_nir(tmp_path / "text.nir")

    foreign = _tiny_nir(tmp_path / "foreign.nir")  # a valid NIR graph from elsewhere: no dt
    with pytest.raises(SnncError, match="no 'dt'"):
        import_nir(foreign)
    gm = import_nir(foreign, dt=1e-4)  # tau = 2 dt -> leak 0.5, r dt / tau = 1
    spec = gm.graph[gm.neuron_nodes()[0]].params["spec"]
    assert spec.decay == pytest.approx(0.5) and spec.vth == 1.0
    state = gm.init_state(torch.ones(1, 3))
    outs = []
    for _ in range(3):
        y, state = gm.step(torch.tensor([[1.0, 2.0, 0.0]]), state)
        outs.append(y)
    # u: 0.6 -> 0.9 -> 1.05 (fires at step 3); 1.2 (fires) -> reset -> 1.2; 0
    assert torch.equal(torch.cat(outs), torch.tensor([[0.0, 1, 0], [0, 1, 0], [1, 1, 0]]))

    unknown = _tiny_nir(tmp_path / "unknown.nir", {"dt": 1e-4})
    with h5py.File(unknown, "r+") as f:
        del f["node/nodes/lif/type"]
        f["node/nodes/lif"].create_dataset("type", data="Spiral", dtype=h5py.string_dtype())
    with pytest.raises(SnncError, match="'lif' has type 'Spiral'"):
        import_nir(unknown)

    cuba = tmp_path / "cuba.nir"
    nir.write(
        str(cuba),
        nir.NIRGraph.from_list(
            nir.CubaLIF(
                tau_syn=np.ones(2), tau_mem=np.ones(2), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2)
            )
        ),
    )
    with pytest.raises(SnncError, match="'cubalif' has type 'CubaLIF'"):
        read_nir(cuba, dt=1e-4)
