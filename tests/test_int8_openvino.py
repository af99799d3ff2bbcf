"""``--backend openvino --precision int8``: the integer graph with its spike-fed convolutions as Q/DQ int8
convolutions, run by OpenVINO, proved against the int8 torch graph (GraphModule) and stock onnxruntime on the
very file OpenVINO compiled: every layer's membrane and spikes, step by step, and the disparity."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

from _export_reuse import reuse_exports
from snnc.export.lower import graph_inputs
from snnc.export.runtime import GraphModule
from snnc.quant import apply_head, int8_graph, quantize_input
from snnc.quant.network import network_fields
from snnc.runtime.model import load_network

from _stream_util import active_checkpoint
from cli_helpers import expect_ok, run_snnc

# found, not imported: importing openvino fixes the multiprocessing start method, after which Lava's own
# import (set_start_method('fork')) fails in tests collected with this file
pytestmark = pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="openvino is not installed")
ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

CPU = torch.device("cpu")
SHAPE = (1, 2, 5, 32, 48)
STEPS = 12


@pytest.fixture(scope="module", autouse=True)
def exports():
    """The fixture's export is the CLI test's too (same net, shape, energy taps): traced once (tests/_export_reuse)."""
    with reuse_exports() as ledger:
        yield ledger


@pytest.fixture(scope="module")
def firing(tmp_path_factory):
    """A firing small stereo net (weights x3), its int8 fields, 12 SBT frames (25 % events) and the
    int8 openvino backend that has streamed them (counting energy, as ``snnc stream`` does), with the file it
    wrote, what it returned per step and the precision OpenVINO compiled each convolution in."""
    from snnc.energy.costs import resolve_costs
    from snnc.runtime.openvino_backend import Int8OpenVinoBackend

    tmp = tmp_path_factory.mktemp("int8_openvino")
    ckpt = active_checkpoint(tmp)
    net = load_network(str(ckpt))
    fields = network_fields(net.model, SHAPE, net.meta, None, str(ckpt))
    gen = torch.Generator().manual_seed(0)
    frames = [
        (torch.rand(SHAPE, generator=gen) < 0.25).float() * (torch.randint(0, 2, SHAPE, generator=gen) * 2 - 1)
        for _ in range(STEPS)
    ]
    path = tmp / "int8.onnx"
    be = Int8OpenVinoBackend(net.model, CPU, fields=fields, threads=1, onnx_path=path)
    meter = be.activity_meter(costs=resolve_costs("45nm-int8"), count="rate", energy_model="paper")
    be.reset(frames[0])
    steps = []
    for x in frames:
        out = be.step(x)
        steps.append((out.clone(), [np.array(s, copy=True) for s in be.state]))
        meter.frame()
    info = {"qdq_convs": list(be.qdq_convs), "state_names": list(be.state_names), "placement": be.placement()}
    # what the CPU plugin made of the file it compiled (read here: compiling the same file again costs seconds)
    conv_precisions = [
        str(op.get_rt_info()["runtimePrecision"].astype(str))
        for op in be._session.get_runtime_model().get_ordered_ops()
        if str(op.get_rt_info()["layerType"].astype(str)) == "Convolution"
    ]
    be.close()
    return {
        "net": net,
        "ckpt": ckpt,
        "fields": fields,
        "frames": frames,
        "path": path,
        "steps": steps,
        "conv_precisions": conv_precisions,
        **info,
    }


@pytest.mark.slow
def test_every_layer_and_the_disparity_equal_int8_torch_and_onnxruntime_over_12_steps(firing):
    """Bit for bit: OpenVINO (int8 convolutions) == GraphModule (float32 integers) == onnxruntime (same file)."""
    net, fields, frames = firing["net"], firing["fields"], firing["frames"]
    graph = int8_graph(net.model, SHAPE, fields)
    gm = GraphModule(graph).eval()
    assert firing["state_names"] == gm.state_names()
    sess = ort.InferenceSession(str(firing["path"]), providers=["CPUExecutionProvider"])
    ins = [i.name for i in sess.get_inputs()]
    t_state = gm.init_state(graph_inputs("spikedhs-stereo", quantize_input(frames[0], fields)))
    # the file is spelled for OpenVINO: its spike states (y) are uint8, the rest float32
    dtypes = [np.uint8 if i.type == "tensor(uint8)" else np.float32 for i in sess.get_inputs()[1:]]
    assert [d == np.uint8 for d in dtypes] == [n.endswith(".y") for n in gm.state_names()]
    o_state = [s.numpy().astype(d) for s, d in zip(t_state, dtypes, strict=True)]
    spikes = {n[: -len(".y")]: 0 for n in gm.state_names() if n.endswith(".y")}
    compared = 0
    for x, (ov_out, ov_state) in zip(frames, firing["steps"], strict=True):
        xq = quantize_input(x, fields)
        with torch.no_grad():
            y, t_state = gm.step(graph_inputs("spikedhs-stereo", xq), t_state)
        out = sess.run(None, {ins[0]: xq.numpy(), **dict(zip(ins[1:], o_state, strict=True))})
        o_state = out[-len(o_state) :]
        head = apply_head(graph.meta["int8"], y)
        assert torch.equal(ov_out, head)
        assert torch.equal(apply_head(graph.meta["int8"], torch.from_numpy(out[0])), head)
        for name, t, o, v in zip(gm.state_names(), t_state, o_state, ov_state, strict=True):
            assert np.array_equal(t.numpy(), v), f"openvino differs from torch in {name}"
            assert np.array_equal(t.numpy(), o), f"onnxruntime differs from torch in {name}"
            compared += t.numel()
            if name.endswith(".y"):
                spikes[name[: -len(".y")]] += int(t.sum())
    assert compared > 1_000_000
    assert sum(spikes.values()) > 10_000, "the test net must fire"
    assert sum(1 for n in spikes.values() if n > 0) >= 0.8 * len(spikes), spikes


def test_the_cost_layer_on_the_spikes_before_upsampling_is_the_literal_integer_convolution(firing):
    """The integer graph's 24 -> 1 cost layer runs as upsampled_conv3d on the last up layer's spikes (1/8 of the
    positions); its regrouped sums are integers below 2**24, so every value equals the literal conv's."""
    graph = int8_graph(firing["net"].model, SHAPE, firing["fields"])
    fast, literal = GraphModule(graph).eval(), GraphModule(graph).eval()
    assert fast._upsampled  # the rewrite applies to the integer graph
    literal._upsampled = {}  # the resize, then the conv as written
    gen = torch.Generator().manual_seed(1)
    xs = [
        (torch.rand(SHAPE, generator=gen) < 0.25) * (torch.randint(0, 2, SHAPE, generator=gen) * 2.0 - 1)
        for _ in range(6)
    ]
    inputs = [graph_inputs("spikedhs-stereo", quantize_input(x.float(), firing["fields"])) for x in xs]
    sf, sl = fast.init_state(inputs[0]), literal.init_state(inputs[0])
    cost = 0.0
    with torch.no_grad():
        for x in inputs:
            (yf, sf), (yl, sl) = fast.step(x, sf), literal.step(x, sl)
            assert torch.equal(yf, yl)
            assert all(torch.equal(a, b) for a, b in zip(sf, sl, strict=True))
            cost += float(yl.abs().sum())
    assert cost > 0


@pytest.mark.slow
def test_the_file_marks_the_spike_fed_convolutions_as_qdq_and_openvino_runs_them_in_int8(firing):
    """The fast path cannot silently disappear: the integer convolutions reading spikes are Q/DQ convolutions
    (uint8 spikes, int8 weights, scale 1, zero point 0) in the ONNX file and OpenVINO compiles them as u8/i8."""
    graph = int8_graph(firing["net"].model, SHAPE, firing["fields"])
    integer_convs = [n for n, node in graph.nodes.items() if node.op == "conv" and node.params.get("integer")]
    fed_by_input = [n for n in integer_convs if graph[graph[n].inputs[0]].op == "input"]
    # every integer convolution but the first layer's (signed integer input) reads spikes
    assert set(firing["qdq_convs"]) >= set(integer_convs) - set(fed_by_input)
    assert fed_by_input and not set(fed_by_input) & set(firing["qdq_convs"])
    # each becomes one ONNX Conv, but the narrow ones (<= 4 outputs: one tap GEMM) and the cost_conv rewrite
    plain = [n for n in firing["qdq_convs"] if graph[n].op == "conv" and graph[n].params["weight"].shape[0] > 4]

    proto = onnx.load(str(firing["path"]))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["snnc.qdq_convs"]) == firing["qdq_convs"]
    producer = {o: node for node in proto.graph.node for o in node.output}
    consts = {i.name: onnx.numpy_helper.to_array(i) for i in proto.graph.initializer}
    for node in proto.graph.node:
        if node.op_type == "Constant":
            consts[node.output[0]] = onnx.numpy_helper.to_array(node.attribute[0].t)

    def dequantized(name: str, dtype: type) -> bool:
        dq = producer.get(name)
        if dq is None or dq.op_type != "DequantizeLinear":
            return False
        q = producer.get(dq.input[0])
        ok = all(float(consts[s]) == 1.0 for s in (dq.input[1], q.input[1])) if q is not None else False
        return ok and q.op_type == "QuantizeLinear" and consts[q.input[2]].dtype == dtype and consts[q.input[2]] == 0

    qdq = [n for n in proto.graph.node if n.op_type == "Conv" and dequantized(n.input[0], np.uint8)]
    assert all(dequantized(n.input[1], np.int8) for n in qdq)
    assert len(qdq) >= len(plain) > 10

    precisions = firing["conv_precisions"]  # the backend's compiled model (f32 hint, as openvino_config sets)
    assert sum(p in ("u8", "i8") for p in precisions) >= len(plain)
    assert "int8" in firing["placement"][0]["runs_on"]


@pytest.mark.slow
def test_cli_streams_int8_on_openvino_pixel_for_pixel_like_torch(firing, tmp_path):
    data = tmp_path / "s_data.hdf5"
    expect_ok(run_snnc("data", "synth", data, "--frames", "3", "--height", "32", "--width", "48", "--quiet"))
    out = expect_ok(
        run_snnc(
            "stream",
            data,
            "--model",
            firing["ckpt"],
            "--precision",
            "int8",
            "--backend",
            "openvino",
            "--check-against",
            "torch",
            "--threads",
            "1",
            "--json",
        )
    )
    summary = json.loads(out.strip().splitlines()[-1])
    check = summary["check"]
    assert summary["backend"] == "openvino" and summary["precision"] == "int8"
    assert check["frames"] == 3 and check["pixels_differing"] == 0
    assert "int8" in summary["placement"][0]["runs_on"]
