"""Energy from the spikes a streaming step already produced equals the torch-hook counting pass, layer by layer."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

from snnc.energy.meter import ActivityMeter, EnergyMeter
from snnc.export.activity import ActivityPlan, step_values
from snnc.export.lower import graph_inputs, lower
from snnc.export.onnx_writer import export_stream
from snnc.export.runtime import GraphModule

from _export_util import SMALL_STEREO, folded_small

STEPS = 4


def hook_counts(net, x, **meter_args):
    """The torch-hook pass (EnergyMeter on the network itself) over the steps of ``x``."""
    meter = EnergyMeter(net, **meter_args)
    with torch.no_grad(), meter:
        state = net.init_state(x[0])
        for t in range(x.shape[0]):
            _, state = net.step(x[t], state)
            meter.frame()
    return meter


def onnx_counts(net, x, path, **meter_args):
    """The same counts from each onnxruntime step's state outputs (spikes) and the frame, no torch pass."""
    meter = ActivityMeter(**meter_args)
    graph = lower(net, tuple(x.shape[1:]))
    family = graph.meta["family"]
    plan = ActivityPlan(graph, net, batch=graph_inputs(family, x[0])["x"].shape[0])
    layout = GraphModule(graph).state_layout()
    taps = plan.taps(layout, neurons=meter.neurons)
    info = export_stream(net, tuple(x.shape[1:]), path, taps=taps, graph=graph)
    assert info["state_layout"] == layout
    meter.bind(plan.specs(), plan.neurons, batch=x.shape[1])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    shapes = json.loads(sess.get_modelmeta().custom_metadata_map["snnc.state_shapes"])
    state = [np.zeros(s, dtype=np.float32) for s in shapes]
    n_values = len(info["outputs"]) - len(state)
    for t in range(x.shape[0]):
        out = sess.run(None, {"x": x[t].numpy(), **{f"state_in_{k}": s for k, s in enumerate(state)}})
        tapped = dict(zip(taps, out[1:n_values], strict=True))
        values = step_values(graph_inputs(family, x[t]), layout, state, out[n_values:], tapped)
        meter.record(plan.measure(values, events=meter.events), plan.measure_neurons(values) if meter.neurons else None)
        meter.frame()
        state = out[n_values:]
    return meter, taps


def assert_same_counts(a, b):
    da, db = a.ops().to_dict(), b.ops().to_dict()
    assert [lay["name"] for lay in da["layers"]] == [lay["name"] for lay in db["layers"]]
    for la, lb in zip(da["layers"], db["layers"], strict=True):
        for key, value in la.items():
            if isinstance(value, float):
                assert lb[key] == pytest.approx(value, rel=1e-12, abs=1e-9), (la["name"], key)
            else:
                assert lb[key] == value, (la["name"], key)
    assert da.get("neurons") == db.get("neurons")


@pytest.mark.parametrize(
    ("geometry", "literal"),
    [
        pytest.param({}, True, marks=pytest.mark.slow),
        pytest.param({"feature_stride": 1, "volume_disparities": 3}, False, marks=pytest.mark.slow),
    ],
    ids=["paper-literal", "stride1-cost_conv"],
)
def test_stereo_counts_from_onnx_state_equal_torch_hooks(tmp_path, geometry, literal):
    """Literal volume + conv nodes, or the fused cost_conv node (counted as the literal layer on the volume)."""
    shape = (1, 2, 5, 24, 32) if not geometry else (1, 2, 5, 12, 16)
    net, x = folded_small("spikedhs-stereo", shape, STEPS, **SMALL_STEREO, **geometry)
    net.literal_matching = literal
    args = {"count": "events", "energy_model": "memory"}  # fan-out events and neuron outputs too
    ref = hook_counts(net, x, **args)
    got, taps = onnx_counts(net, x, tmp_path / "s.onnx", **args)
    assert taps == []  # spiking nets: everything comes from the state outputs and the frame
    report = ref.ops()
    assert report.active_ops > 0 and all(lay.calls == STEPS for lay in report.layers)
    assert sum(lay.input_rate > 0 for lay in report.layers) >= len(report.layers) - 1  # a firing net
    assert_same_counts(ref, got)
    assert got.total().energy_j == pytest.approx(ref.total().energy_j, rel=1e-12)
    assert got.frame is not None and got.frames == ref.frames == STEPS


@pytest.mark.parametrize("preset", ["spikedhs-cla", "snasnet-cifar10"])
def test_classifier_counts_from_onnx_state_equal_torch_hooks(tmp_path, preset):
    """Pooling / voting / feedback delays: what the state lacks (pooled currents, sums) comes back as taps."""
    from _export_util import SMALL_CLASSIFIERS

    overrides, shape = SMALL_CLASSIFIERS[preset]
    net, x = folded_small(preset, shape, STEPS, **overrides)
    ref = hook_counts(net, x, count="rate")
    got, _ = onnx_counts(net, x, tmp_path / "c.onnx", count="rate")
    assert_same_counts(ref, got)


@pytest.mark.parametrize("literal", [True, False], ids=["literal", "cost_conv"])
def test_stereo_counts_from_graph_state_equal_torch_hooks(literal):
    """The same plan fed by GraphModule's state (no ONNX export: fast); the ONNX runs above are slow-marked."""
    shape = (1, 2, 5, 24, 32)
    net, x = folded_small("spikedhs-stereo", shape, STEPS, **SMALL_STEREO)
    net.literal_matching = literal
    args = {"count": "events", "energy_model": "memory"}
    ref = hook_counts(net, x, **args)
    graph = lower(net, shape)
    gm = GraphModule(graph)
    plan = ActivityPlan(graph, net, batch=2)
    layout = gm.state_layout()
    assert plan.taps(layout, neurons=True) == []
    meter = ActivityMeter(**args)
    meter.bind(plan.specs(), plan.neurons, batch=1)
    with torch.no_grad():
        inputs = graph_inputs("spikedhs-stereo", x[0])
        state = gm.init_state(inputs)
        for t in range(STEPS):
            inputs = graph_inputs("spikedhs-stereo", x[t])
            _, new_state = gm.step_all(inputs, state)
            values = step_values(inputs, layout, state, new_state)
            meter.record(plan.measure(values, events=True), plan.measure_neurons(values))
            meter.frame()
            state = new_state
    assert ref.ops().active_ops > 0
    assert_same_counts(ref, meter)


@pytest.mark.slow
def test_hybrid_counts_from_front_values_and_rest_state_equal_torch_hooks():
    """The hybrid partition: front values from the NIR runtime, the rest's spikes from its ONNX state outputs."""
    from snnc.energy.costs import DEFAULT_COSTS
    from snnc.runtime.hybrid_backend import HybridBackend

    shape = (1, 2, 5, 24, 32)
    net, x = folded_small("spikedhs-stereo", shape, STEPS, **SMALL_STEREO)
    net.literal_matching = True
    ref = hook_counts(net, x, count="events", energy_model="memory")
    backend = HybridBackend(net, torch.device("cpu"))
    try:
        meter = backend.activity_meter(costs=DEFAULT_COSTS, count="events", energy_model="memory")
        backend.reset(x[0])
        for t in range(STEPS):
            backend.step(x[t])
            meter.frame()
        parts = {backend.part_of(lay) for lay in meter.total().layers}
    finally:
        backend.close()
    assert parts == {"front", "rest"}
    assert_same_counts(ref, meter)


def test_input_counts_with_special_values_match_the_hooks_definitions():
    """The input root's nonzero / negative / non-ternary counts (numpy on the CPU) on NaN, +-inf, -0, a subnormal,
    non-integers and |x| > 1, against the hooks' own tests (``count_nonzero``, ``x < 0``, ``x == 0 | |x| == 1``)."""
    shape = (1, 2, 5, 12, 16)
    net, _ = folded_small("spikedhs-stereo", shape, 1, **SMALL_STEREO)
    graph = lower(net, shape)
    plan = ActivityPlan(graph, net, batch=2)
    g = torch.Generator().manual_seed(5)
    x = torch.randint(-1, 2, shape, generator=g).float()
    special = torch.tensor([float("nan"), float("inf"), float("-inf"), -0.0, 1e-40, -1e-40, 0.5, -2.0, 3.0])
    pos = torch.randperm(x.numel(), generator=g)[: 9 * 20]
    x.view(-1)[pos] = special.repeat(20)
    inputs = graph_inputs("spikedhs-stereo", x)
    gm = GraphModule(graph)
    with torch.no_grad():
        state = gm.init_state(inputs)
        _, new_state = gm.step_all(inputs, state)
    counts = plan.measure(step_values(inputs, gm.state_layout(), state, new_state))
    first = next(p for p in plan.layers if any(v.root == "x" for v in p.views))
    got = counts[first.layer]
    v = inputs["x"]
    assert got.nonzero == int(torch.count_nonzero(v))
    assert got.negative == int((v < 0).sum())
    assert got.non_ternary == int((~((v == 0) | (v.abs() == 1))).sum())
    assert got.non_ternary >= 9 * 20 - 2 * 20  # -0 is zero; the subnormals are nonzero and non-ternary


@pytest.mark.parametrize("kind", [torch.uint8, torch.bool])
def test_counts_from_integer_spikes_equal_float_spikes(kind):
    """Spikes as uint8 / bool (OpenVINO's spike state) count exactly as the same spikes in float32."""
    shape = (1, 2, 5, 24, 32)
    net, x = folded_small("spikedhs-stereo", shape, 2, **SMALL_STEREO)
    graph = lower(net, shape)
    gm = GraphModule(graph)
    plan = ActivityPlan(graph, net, batch=2)
    layout = gm.state_layout()
    with torch.no_grad():
        inputs = graph_inputs("spikedhs-stereo", x[0])
        state = gm.init_state(inputs)
        _, state = gm.step_all(inputs, state)
        inputs = graph_inputs("spikedhs-stereo", x[1])
        _, new_state = gm.step_all(inputs, state)
    values = step_values(inputs, layout, state, new_state)
    spikes = [n for n in plan.roots if n in plan.neurons]
    assert spikes and sum(float(torch.as_tensor(values[n]).sum()) for n in spikes) > 0
    recast = {**values, **{n: torch.as_tensor(values[n]).to(kind) for n in spikes}}
    recast_np = {**values, **{n: torch.as_tensor(values[n]).to(kind).numpy() for n in spikes}}
    want = plan.count(values, events=True, neurons=True)
    assert plan.count(recast, events=True, neurons=True) == want
    assert plan.count(recast_np, events=True, neurons=True) == want
