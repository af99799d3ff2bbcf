"""The graph spelled for OpenVINO (``GraphModule(target="openvino")``, the file ``--backend openvino`` writes):
every nearest resampling one flat Gather, integer neurons' spikes (and their ``y`` state) in uint8. The values
are the default spelling's, checked in torch, stock onnxruntime and OpenVINO on the traced file."""

from __future__ import annotations

import importlib.util

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F

from snnc.errors import SnncError
from snnc.export.graph import Graph
from snnc.export.lower import graph_inputs
from snnc.export.onnx_writer import export_graph_stream
from snnc.export.runtime import GraphModule
from snnc.neurons import NeuronSpec
from snnc.neurons.integer import IntNeuron
from snnc.quant import int8_graph, quantize_input
from snnc.quant.network import network_fields
from snnc.runtime.model import load_network

from _stream_util import active_checkpoint

HAVE_OPENVINO = importlib.util.find_spec("openvino") is not None


def _int_resize_graph(channels, src, dst):
    """``x -> integer LIF -> resize(dst) -> y``, the spikes also as output ``s``."""
    g = Graph()
    g.add("x", "input", shape=(channels, *src))
    spikes = g.add(
        "lif", "neuron", ["x"], spec=NeuronSpec(type="lif", decay=0.5, vth=0.5), int=IntNeuron("lif", vth=3, dv=2048)
    )
    g.add("s", "output", [spikes])
    g.add("y", "output", [g.add("up", "resize", [spikes], size=dst)])
    return g


def _states(sess_or_model, like):
    """Zero state tensors in the dtypes the ONNX inputs declare (uint8 spikes, float32 membranes)."""
    kinds = {"tensor(uint8)": np.uint8, "tensor(float)": np.float32}
    return [np.zeros(s.shape, kinds[i.type]) for s, i in zip(like, sess_or_model.get_inputs()[1:], strict=True)]


@pytest.mark.parametrize(
    ("src", "dst"),
    [
        ((5, 6, 7), (10, 12, 14)),  # x2 up
        ((5, 6, 7), (9, 11, 13)),  # x2 up, odd 2m - 1 on every axis
        ((17, 44, 58), (9, 22, 29)),  # the matching trellis down (odd index patterns)
        ((44, 58), (87, 116)),  # the feature net (2-D, odd rows)
        ((26, 35), (5, 6)),  # a general down-sampling
    ],
)
def test_flat_gather_spikes_are_interpolate_in_torch_onnxruntime_and_openvino(src, dst, tmp_path):
    graph = _int_resize_graph(3, src, dst)
    ov_form, default = GraphModule(graph, target="openvino"), GraphModule(graph)
    assert [kind for _, kind, _ in ov_form._nearest["up"]] == ["flat"]
    gen = torch.Generator().manual_seed(src[-1])
    xs = [torch.randint(-4, 9, (2, 3, *src), generator=gen).float() for _ in range(4)]
    state, ref_state = ov_form.init_state(xs[0]), default.init_state(xs[0])
    path = tmp_path / "r.onnx"
    export_graph_stream(ov_form, {"x": xs[0]}, path)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ort_state = _states(sess, state)
    request = None
    if HAVE_OPENVINO:
        import openvino as ov

        core = ov.Core()
        request = core.compile_model(core.read_model(str(path)), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        request = request.create_infer_request()
        ov_state = [s.copy() for s in ort_state]
    fired = 0
    for x in xs:
        values, state = ov_form.step_all(x, state)
        want, ref_state = default.step_all(x, ref_state)
        assert torch.equal(values["y"], F.interpolate(want["s"], size=dst, mode="nearest"))
        assert all(torch.equal(values[k], want[k]) for k in ("s", "y"))
        assert [s.dtype for s in state] == [torch.float32, torch.uint8]  # v, y
        assert all(torch.equal(a.float(), b) for a, b in zip(state, ref_state, strict=True))
        got = sess.run(None, {"x": x.numpy(), **{f"state_in_{k}": s for k, s in enumerate(ort_state)}})
        ort_state = got[2:]
        assert np.array_equal(got[1], want["y"].numpy()) and np.array_equal(got[0], want["s"].numpy())
        assert ort_state[1].dtype == np.uint8 and np.array_equal(ort_state[1], want["s"].numpy())
        if request is not None:
            out = request.infer({"x": x.numpy(), **{f"state_in_{k}": s for k, s in enumerate(ov_state)}})
            ov_out = list(out.values())
            ov_state = [np.array(s, copy=True) for s in ov_out[2:]]
            assert np.array_equal(ov_out[1], want["y"].numpy()) and np.array_equal(ov_state[1], want["s"].numpy())
        fired += int(want["s"].sum())
    assert fired > 50
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert ops.count("Gather") == 1 and "MatMul" not in ops and "Expand" not in ops


def test_flat_gather_of_any_values_is_interpolate():
    """The flat Gather copies elements: exact for every float (inf, nan, negative zero), not only spikes."""
    g = Graph()
    g.add("x", "input", shape=(2, 7, 9))
    g.add("y", "output", [g.add("up", "resize", ["x"], size=(13, 5))])
    gm = GraphModule(g, target="openvino")
    x = torch.randn(3, 2, 7, 9)
    x[0, 0, 0, 0], x[1, 1, 3, 4], x[2, 0, 6, 8] = float("inf"), float("nan"), -0.0
    y, _ = gm.step(x, gm.init_state(x))
    want = F.interpolate(x, size=(13, 5), mode="nearest")
    assert torch.equal(torch.nan_to_num(y, nan=7.0), torch.nan_to_num(want, nan=7.0))
    assert torch.equal(torch.signbit(y), torch.signbit(want))


def test_the_openvino_spelling_of_a_firing_int8_stereo_net_gives_the_same_integers(tmp_path):
    """Q/DQ convolutions, flat Gathers and uint8 spikes together: every layer's v and y and the cost over 6 steps
    equal the default integer graph's (torch), on a net that fires."""
    shape = (1, 2, 5, 32, 48)
    ckpt = active_checkpoint(tmp_path)
    net = load_network(str(ckpt))
    fields = network_fields(net.model, shape, net.meta, None, str(ckpt))
    graph = int8_graph(net.model, shape, fields)
    ov_form, default = GraphModule(graph, qdq=True, target="openvino").eval(), GraphModule(graph).eval()
    gen = torch.Generator().manual_seed(3)
    xs = [
        graph_inputs(
            "spikedhs-stereo",
            quantize_input(
                ((torch.rand(shape, generator=gen) < 0.25) * (torch.randint(0, 2, shape, generator=gen) * 2.0 - 1)),
                fields,
            ),
        )
        for _ in range(6)
    ]
    a, b = ov_form.init_state(xs[0]), default.init_state(xs[0])
    names = default.state_names()
    assert [s.dtype == torch.uint8 for s in a] == [n.endswith(".y") for n in names]
    spikes = 0
    with torch.no_grad():
        for x in xs:
            (ya, a), (yb, b) = ov_form.step(x, a), default.step(x, b)
            assert torch.equal(ya, yb)
            for name, s, t in zip(names, a, b, strict=True):
                assert torch.equal(s.to(t.dtype), t), name
            spikes += sum(int(t.sum()) for n, t in zip(names, b, strict=True) if n.endswith(".y"))
    assert spikes > 1000


def test_an_unknown_target_is_refused():
    with pytest.raises(SnncError, match="target must be one of onnxruntime, openvino"):
        GraphModule(_int_resize_graph(1, (4, 4), (8, 8)), target="tensorrt")


@pytest.mark.skipif(not HAVE_OPENVINO, reason="openvino is not installed")
def test_stateful_openvino_counts_like_onnx_through_delays_and_starts_from_zeros_after_reset():
    """The state lives in OpenVINO's variables: a SNASNet (feedback delays, whose outputs energy counting reads
    from the state *before* each step) streams with the onnx backend's outputs, state and energy per frame, and
    a second run after ``reset`` repeats the first exactly."""
    from snnc.energy.costs import DEFAULT_COSTS
    from snnc.runtime.onnx_backend import OnnxBackend
    from snnc.runtime.openvino_backend import OpenVinoBackend

    from _export_util import SMALL_CLASSIFIERS, folded_small

    overrides, shape = SMALL_CLASSIFIERS["snasnet-cifar10"]
    net, x = folded_small("snasnet-cifar10", shape, 4, **overrides)
    cpu = torch.device("cpu")

    def run(backend):
        meter = backend.activity_meter(costs=DEFAULT_COSTS, count="rate", energy_model="paper")
        runs = []
        for _ in range(2):
            backend.reset(x[0])
            outs, acs = [], []
            for t in range(x.shape[0]):
                outs.append(backend.step(x[t]).clone())
                acs.append(meter.frame().ac)
            runs.append((outs, acs))
        return runs

    ov_be, onnx_be = OpenVinoBackend(net, cpu, threads=1), OnnxBackend(net, cpu, threads=1)
    try:
        got, ref = run(ov_be), run(onnx_be)
        assert any(n.endswith(".d0") for n in ov_be.state_names)
        assert [len(a) for a in ov_be.state] == [len(a) for a in onnx_be._state]
        for a, b in zip(ov_be.state, onnx_be._state, strict=True):
            assert np.allclose(a, b, atol=1e-5)
    finally:
        ov_be.close()
        onnx_be.close()
    (first, acs), (second, acs2) = got
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True)) and acs == acs2
    for (outs, ac), (outs_ref, ac_ref) in zip(got, ref, strict=True):
        assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(outs, outs_ref, strict=True))
        assert ac == pytest.approx(ac_ref) and sum(ac) > 0
