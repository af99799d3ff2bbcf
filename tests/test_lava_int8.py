"""Lava runs the integer 2-D spiking part of a network from its own processes, bit-exact with the CPU.

The CPU reference here is written from the integer specification (``docs/INT8.md``)
in numpy int64, independently of snnc's torch step; the stereo test also checks
snnc's integer GraphModule run against it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from snnc.errors import SnncError
from snnc.export.graph import Graph
from snnc.export.lava_procs import LavaProcNet, lava_part, plan_lava
from snnc.neurons import NeuronSpec
from snnc.neurons.integer import IntNeuron


# --------------------------------------------------------------------------- the CPU reference (spec, int64)
def int_reference(graph: Graph, xs: list[np.ndarray]) -> dict[str, list[np.ndarray]]:
    """Every neuron's spikes per step of the graph's Lava part, by the integer spec in int64."""
    nodes, _ = lava_part(graph)
    v_of: dict[str, np.ndarray] = {}
    out: dict[str, list[np.ndarray]] = {n: [] for n in nodes if graph[n].op == "neuron"}
    for x in xs:
        vals = {graph.inputs[0]: torch.from_numpy(np.asarray(x, dtype=np.float64))}
        for name in nodes:
            node = graph[name]
            p = node.params
            if node.op == "conv":
                w = torch.from_numpy(np.asarray(p["weight"], dtype=np.float64))
                b = None if p.get("bias") is None else torch.from_numpy(np.asarray(p["bias"], dtype=np.float64))
                vals[name] = F.conv2d(vals[node.inputs[0]], w, b, p["stride"], p["padding"], p["dilation"], p["groups"])
            elif node.op == "resize":
                vals[name] = F.interpolate(vals[node.inputs[0]], size=tuple(p["size"]), mode="nearest")
            elif node.op in ("sum", "neuron"):
                total = sum(vals[s] for s in node.inputs)
                if node.op == "sum":
                    vals[name] = total
                    continue
                a = np.rint(total.numpy()).astype(np.int64)
                q = p["int"]
                v = v_of.get(name, np.zeros_like(a))
                prod = v * (4096 - q.dv)
                v = np.clip(np.sign(prod) * (np.abs(prod) >> 12) + (a << 6), -(2**23) + 1, 2**23 - 1)
                s = v > (q.vth << 6)
                v_of[name] = np.where(s, 0, v)
                vals[name] = torch.from_numpy(s.astype(np.float64))
                out[name].append(s.astype(np.float32))
    return out


def run_lava(
    graph: Graph,
    xs: list[np.ndarray],
    batch: int,
    conv_model: str = "gemm",
    chunked: bool = False,
    lif_model: str = "gated",
) -> tuple[dict[str, list[np.ndarray]], LavaProcNet]:
    """Every neuron's spikes per CPU step from Lava (its output at step t + latency).

    ``chunked``: all steps through one ``LavaProcNet.run`` (several steps per Lava run call), else one
    ``step`` per step."""
    read = [n for n in lava_part(graph)[0] if graph[n].op == "neuron"]
    net = LavaProcNet(graph, batch=batch, read=read, conv_model=conv_model, lif_model=lif_model)
    lat = net.plan.latency
    total = len(xs) + max(lat[n] for n in net.read)
    inputs = [xs[k] if k < len(xs) else None for k in range(total)]
    got: dict[str, list[np.ndarray]] = {n: [] for n in net.read}
    net.start()
    try:
        outs = net.run(inputs) if chunked else [net.step(x) for x in inputs]
        for out in outs:
            for name, spikes in out.items():
                got[name].append(spikes)
    finally:
        net.stop()
    return {n: got[n][lat[n] : lat[n] + len(xs)] for n in net.read}, net


def assert_same(ref: dict[str, list[np.ndarray]], got: dict[str, list[np.ndarray]]) -> int:
    """0 mismatches in every layer and step; returns the number of spikes compared."""
    spikes = 0
    for name, steps in ref.items():
        assert len(got[name]) == len(steps), name
        for t, (a, b) in enumerate(zip(steps, got[name], strict=True)):
            mism = int((a != b).sum())
            assert mism == 0, f"{name} step {t}: {mism} of {a.size} spikes differ"
            spikes += int(a.sum())
    return spikes


# --------------------------------------------------------------------------- a small DAG
def _conv(g: Graph, name: str, src: str, w: np.ndarray, bias: np.ndarray | None = None, stride: int = 1) -> str:
    k = w.shape[-1]
    return g.add(
        name,
        "conv",
        [src],
        weight=w.astype(np.float32),
        bias=None if bias is None else bias.astype(np.float32),
        stride=(stride, stride),
        padding=(k // 2, k // 2),
        dilation=(1, 1),
        groups=1,
    )


def _neuron(g: Graph, name: str, inputs: list[str], vth: int, dv: int) -> str:
    return g.add(name, "neuron", inputs, spec=NeuronSpec(), gain=1.0, int=IntNeuron("lif", vth, dv))


def dag_graph(seed: int = 0) -> Graph:
    """x -> n1 -> (stride 2) n2 -> up-sample; n3 sums conv(up(n2)), a skip conv(n1) and n1 itself (identity)."""
    rng = np.random.default_rng(seed)
    w = lambda *s: rng.integers(-60, 61, size=s)  # noqa: E731
    g = Graph({"int8": {"input_max": 1}})
    g.add("x", "input", shape=(2, 8, 10))
    n1 = _neuron(g, "n1", [_conv(g, "c1", "x", w(3, 2, 3, 3), rng.integers(-20, 21, 3))], vth=40, dv=1024)
    n2 = _neuron(g, "n2", [_conv(g, "c2", n1, w(4, 3, 3, 3), stride=2)], vth=30, dv=0)
    up = g.add("up", "resize", [n2], size=(8, 10))
    terms = [_conv(g, "c3a", up, w(3, 4, 3, 3), rng.integers(-9, 10, 3)), _conv(g, "c3b", n1, w(3, 3, 1, 1)), n1]
    n3 = _neuron(g, "n3", terms, vth=25, dv=3072)
    g.add("y", "output", [n3])
    g.check()
    return g


def test_plan_aligns_every_path():
    """Latencies: each neuron 1 + its latest input; earlier inputs come through delay lines at L - 1."""
    g = dag_graph()
    plan = plan_lava(g)
    assert plan.latency == {"x": 0, "n1": 1, "n2": 2, "n3": 4}
    assert plan.cut == ["n3"]
    for neuron, terms in plan.terms.items():
        assert all(plan.reads[t][1] == plan.latency[neuron] - 1 for t in terms), neuron
    assert sorted(plan.views) == [("n1", 3), ("up", 3)]  # n1 delayed 2 steps, the up-sampling relay
    assert "n3.identity2" in plan.terms["n3"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("conv_model", "lif_model", "chunked"),
    [("gemm", "gated", False), ("gemm", "gated", True), ("lava", "lava", True), ("lava", "lava", False)],
)
def test_lava_dag_bit_exact(conv_model, lif_model, chunked):
    """Skip, up-sampling, identity and three summed terms: Lava == the int64 spec, 6 steps, batch 2, with
    snnc's Conv/LIF models and Lava's own, one Lava run call per step or the whole run (split at bias switches)."""
    g = dag_graph()
    rng = np.random.default_rng(1)
    xs = [rng.choice([-1, 0, 1], size=(2, 2, 8, 10), p=[0.2, 0.6, 0.2]) for _ in range(6)]
    ref = int_reference(g, xs)
    got, _ = run_lava(g, xs, batch=2, conv_model=conv_model, chunked=chunked, lif_model=lif_model)
    assert assert_same(ref, got) > 100  # the layers fire


def test_refusals_name_the_layer():
    g = dag_graph()
    g["c2"].params["weight"] = g["c2"].params["weight"] * 0 + 200
    with pytest.raises(SnncError, match=r"'c2'.*int8"):
        plan_lava(g)
    g = dag_graph()
    del g["n2"].params["int"]
    with pytest.raises(SnncError, match="'n2' has no integer neuron"):
        plan_lava(g)
    g = dag_graph()
    g["c1"].params["weight"] = g["c1"].params["weight"] * 0 + 127
    with pytest.raises(SnncError, match="'n1' can receive"):
        plan_lava(g, input_peak=127)
    g = dag_graph()  # a skip from the graded input to n2 would need a relay, which re-emits only 0/1 spikes
    g["n2"].inputs.append(_conv(g, "c2x", "x", np.ones((4, 2, 3, 3)), stride=2))
    with pytest.raises(SnncError, match=r"'c2x' reads the graded input 1 step\(s\) late"):
        plan_lava(g)
    g = dag_graph()
    g["c1"].params["bias"] = np.array([5001.0, 0.0, 1.0], dtype=np.float32)  # 5001 << 6: no 13-bit mantissa
    with pytest.raises(SnncError, match=r"bias .* of 'n1'"):
        plan_lava(g)
    with pytest.raises(SnncError, match="unknown Lava Conv model 'scipy'"):
        LavaProcNet(dag_graph(), conv_model="scipy")
    with pytest.raises(SnncError, match="unknown Lava LIF model 'float'"):
        LavaProcNet(dag_graph(), lif_model="float")


# --------------------------------------------------------------------------- Lava's timing, measured
@pytest.mark.slow  # ~3 s alone, much more on a loaded machine (Lava forks a process per Lava process)
def test_lava_latency():
    """What lava_procs' alignment relies on: Conv/Sparse deliver 1 step late, DelaySparse 1 + d, LIF and
    Injector 0 steps, and several OutPorts into one InPort sum."""
    import scipy.sparse as sp

    from snnc.export.lava_env import import_lava

    import_lava()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.conv.process import Conv
    from lava.proc.io.extractor import Extractor, PyLoihiExtractorModel
    from lava.proc.io.injector import Injector, PyLoihiInjectorModel
    from lava.proc.lif.process import LIF
    from lava.proc.sparse.process import DelaySparse

    shape = (3, 1, 1)
    inj = Injector(shape=shape)
    one = np.ones((1, 1, 1, 1), dtype=np.int32)
    relay = {"du": 4095, "dv": 0, "vth": 0}
    conv = Conv(weight=one, input_shape=shape, num_message_bits=8)
    first = LIF(shape=shape, **relay)
    second = LIF(shape=shape, du=4095, dv=4095, vth=1)  # no memory: fires only when two inputs arrive together
    conv2, conv3 = Conv(weight=one, input_shape=shape), Conv(weight=one, input_shape=shape, num_message_bits=8)
    eye = sp.identity(3, dtype=np.int32, format="csr")
    delayed = DelaySparse(weights=eye, delays=(eye * 2).astype(np.int64))
    third = LIF(shape=shape, **relay)
    inj.out_port.connect(conv.s_in)
    conv.a_out.connect(first.a_in)
    first.s_out.connect(conv2.s_in)
    conv2.a_out.connect(second.a_in)
    delayed.a_out.reshape(shape).connect(conv3.s_in)
    conv3.a_out.connect(second.a_in)  # second sums conv2 (2 steps) and delayed->conv3 (4 steps) ...
    inj.out_port.flatten().connect(delayed.s_in)
    delayed.a_out.reshape(shape).connect(third.a_in)
    exts = [Extractor(shape=shape) for _ in range(3)]
    for lif, ext in zip((first, second, third), exts, strict=True):
        lif.s_out.connect(ext.in_port)
    cfg = Loihi2SimCfg(
        select_tag="fixed_pt",
        exception_proc_model_map={Injector: PyLoihiInjectorModel, Extractor: PyLoihiExtractorModel},
    )
    inj.create_runtime(run_cfg=cfg)
    seen = []
    try:
        for t in range(7):
            x = np.zeros(shape)
            x[0] = t == 0  # channel 0: one spike at step 0
            x[1] = t == 2  # channel 1: one spike at step 2
            x[2] = t in (0, 2)  # channel 2: spikes at steps 0 and 2
            inj.send(x)
            inj.run(condition=RunSteps(num_steps=1))
            seen.append([np.asarray(e.receive())[:, 0, 0].copy() for e in exts])
    finally:
        inj.stop()
    fired = {k: [t for t in range(7) if seen[t][k].any()] for k in range(3)}
    assert fired[0] == [1, 3]  # Conv: one step late; LIF fires in the step it receives
    assert fired[2] == [3, 5]  # DelaySparse with delay 2: 1 + 2 steps
    # second: the conv path takes 2 steps (Conv, LIF, Conv), the delay path 4 (DelaySparse 3, Conv 1):
    # channel 2's spike of step 0 (delay path, arrives 4) meets its spike of step 2 (conv path, arrives 4): 1 + 1 > 1
    assert [t for t in range(7) if seen[t][1][2]] == [4]
    assert not any(seen[t][1][:2].any() for t in range(7))  # a single input never exceeds vth 1


# --------------------------------------------------------------------------- the trained stereo feature net
@pytest.fixture(scope="module")
def stereo_int8():
    """stereo-synth (trained, zoo) quantised to int8 at 16x24, and a few SBT-like frames (both cameras)."""
    from snnc.quant import int8_graph, quantize_network
    from snnc.runtime.model import load_network

    net = load_network("stereo-synth")
    shape = (1, 2, 5, 16, 24)
    rng = np.random.default_rng(3)
    frames = [
        torch.from_numpy(rng.choice([-1, 0, 1], size=shape, p=[0.15, 0.7, 0.15]).astype(np.float32)) for _ in range(5)
    ]
    fields = quantize_network(net.model, shape, frames[:2])
    return net, int8_graph(net.model, shape, fields), frames


def test_lava_energy_parts_follow_the_graph_nodes_layers(stereo_int8):
    """A counted layer is on Lava when one of its Graph nodes is (``params["layer"]``, no name rewriting):
    int8, the whole feature net, also its layers split into ``.partK`` nodes; fp32, the netx prefix (stem0).
    The names are those the energy count reports (the synaptic modules')."""
    from snnc.export.activity import layer_nodes
    from snnc.export.lower import lower
    from snnc.runtime.lava_backend import layers_on, netx_prefix

    net, graph, _ = stereo_int8
    nodes, _ = lava_part(graph)
    on = layers_on(graph, nodes)
    synaptic = (torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.Linear)  # what the op-counting pass counts, by name
    counted = [name for name, m in net.model.named_modules() if isinstance(m, synaptic)]
    assert on == {name for name in counted if name.startswith("feature.")} and len(on) == 15
    assert set(counted) <= set(layer_nodes(graph))  # every counted layer has its Graph nodes
    split = layer_nodes(graph)["feature.last.conv.conv"]
    assert len(split) == 3 and all(".part" in n and n in nodes for n in split)
    fp32 = lower(net.model, (1, 2, 5, 16, 24))
    assert layers_on(fp32, netx_prefix(fp32)) == {"feature.stem0.conv.conv"}


@pytest.mark.slow
def test_lava_runs_the_whole_stereo_feature_net_bit_exact(stereo_int8):
    """Every 2-D spiking layer of the trained stereo net (9 layers: stems, both cells, the 1x1 over the
    concatenation) in Lava == the int64 spec == snnc's integer GraphModule, 5 steps, both cameras."""
    from snnc.export.lower import graph_inputs
    from snnc.export.runtime import GraphModule

    _, g, frames = stereo_int8
    nodes, cut = lava_part(g)
    neurons = [n for n in nodes if g[n].op == "neuron"]
    assert len(neurons) == 9 and cut == ["feature.last.neuron"]
    assert all(g[n].op != "neuron" or n.startswith("feature.") for n in nodes)  # matching (3-D) stays on the host
    xs = [graph_inputs("spikedhs-stereo", x)["x"].numpy() for x in frames]
    ref = int_reference(g, xs)
    gm = GraphModule(g)
    state = gm.init_state(graph_inputs("spikedhs-stereo", frames[0]))
    with torch.no_grad():
        for t, x in enumerate(frames):
            values, state = gm.step_nodes(graph_inputs("spikedhs-stereo", x), state)
            for n in neurons:
                assert torch.equal(values[n], torch.from_numpy(ref[n][t])), (n, t)
    got, net = run_lava(g, xs, batch=2)
    assert assert_same(ref, got) > 10_000
    assert net.plan.latency["feature.last.neuron"] == 8
    rates = {n: float(np.mean(ref[n])) for n in neurons}
    assert min(rates.values()) > 0.05, rates  # every layer fires: the comparison is not of silent layers


@pytest.mark.slow
def test_lava_backend_int8_cost_identical_to_cpu(stereo_int8):
    """--backend lava with int8 fields: feature net in Lava, matching on the host; every frame's cost
    (and so disparity) is identical to the CPU integer graph's, and the boundary and parts are recorded."""
    from snnc.export.lower import graph_inputs
    from snnc.export.runtime import GraphModule
    from snnc.quant import apply_head, quantize_network
    from snnc.runtime.lava_backend import LavaBackend

    net, g, frames = stereo_int8
    fields = quantize_network(net.model, tuple(frames[0].shape), frames[:2])
    gm = GraphModule(g)
    state = gm.init_state(graph_inputs("spikedhs-stereo", frames[0]))
    want = []
    with torch.no_grad():
        for x in frames:
            y, state = gm.step(graph_inputs("spikedhs-stereo", x), state)
            want.append(apply_head(g.meta["int8"], y))
    be = LavaBackend(net.model, torch.device("cpu"), fields=fields)
    try:
        be.reset(frames[0])
        got = [c for c in (be.step(x) for x in frames) if c is not None]
        assert got == [] and be.latency == 8  # 5 frames < the 8-step pipeline
        got += be.flush()
        place = be.placement()
    finally:
        be.close()
    assert len(got) == len(frames)
    for t, (a, b) in enumerate(zip(want, got, strict=True)):
        assert torch.equal(a, b), f"frame {t}: {int((a != b).sum())} cost values differ"
        assert torch.equal(a.argmin(1), b.argmin(1))
    assert place[0]["part"] == "lava" and len(place[0]["layers"]) == 9
    assert place[0]["boundary"]["cut"] == ["feature.last.neuron"]


@pytest.mark.slow
@pytest.mark.lava
def test_stream_lava_int8_disparity_identical_to_torch(tmp_path):
    """snnc stream --backend lava --precision int8 on the trained stereo-synth: the feature net in Lava, the
    matching on the host; 0 pixels differ from the torch int8 run; boundary and energy per part recorded."""
    import json

    import h5py

    from snnc.data.synth import synthesize

    from cli_helpers import expect_ok, run_snnc

    data, _ = synthesize(tmp_path / "t_data.hdf5", frames=3, height=16, width=24, progress=False)
    out = {}
    for backend in ("lava", "torch"):
        args = ["stream", data, "--model", "stereo-synth", "--backend", backend, "--precision", "int8"]
        summary = json.loads(expect_ok(run_snnc(*args, "--out", tmp_path / f"{backend}.h5", "--json")))
        with h5py.File(tmp_path / f"{backend}.h5", "r") as f:
            out[backend] = (summary, f["disparity"][()], {k: f[k][()] for k in ("ac", "mac", "energy_j")})
    (lava, disp_lava, energy_lava), (torch_s, disp_torch, energy_torch) = out["lava"], out["torch"]
    assert disp_lava.shape == (3, 16, 24) and np.array_equal(disp_lava, disp_torch)
    # energy from the int8 network's own spikes on both (Lava's read back for its part): every frame's the same
    assert lava["energy_count"] == torch_s["energy_count"] == "step outputs"
    assert all(np.array_equal(energy_lava[k], energy_torch[k]) for k in energy_lava)
    assert lava["ac_per_frame"] == torch_s["ac_per_frame"] > 0
    assert lava["placement"][0]["boundary"]["cut"] == ["feature.last.neuron"]
    assert len(lava["placement"][0]["layers"]) == 9
    parts = {p["part"]: p for p in lava["energy_parts"]}
    assert set(parts) == {"lava", "cpu"} and parts["lava"]["ac"] > 0 and parts["cpu"]["ac"] > 0


@pytest.mark.slow
@pytest.mark.lava
def test_lava_int8_energy_is_counted_from_lavas_own_spikes_equal_to_torch(tmp_path):
    """--backend lava at int8 counts its energy from the values it has (Lava's spikes of every feature layer, read
    back by extra Extractors, and the host GraphModule's node values): every frame's ACs, MACs and joules, and every
    layer's and neuron layer's figures (memory model: fan-out events and neuron rows too), equal the torch int8
    backend's on the same frames, 0 difference. 10 frames: 2 answered by steps, 8 by the flush (latency 8), each
    frame's counts in its own frame."""
    from snnc.data.mvsec import MVSECRecording
    from snnc.data.synth import synthesize
    from snnc.energy.costs import resolve_costs
    from snnc.quant.network import network_fields
    from snnc.runtime.engine import StreamEngine
    from snnc.runtime.frames import frame_times
    from snnc.runtime.int8_backend import Int8TorchBackend
    from snnc.runtime.lava_backend import LavaBackend
    from snnc.runtime.model import load_network

    data, _ = synthesize(tmp_path / "e_data.hdf5", frames=10, height=16, width=24, progress=False)
    net = load_network("stereo-synth")
    opts = {"costs": resolve_costs("45nm-int8"), "count": "events", "energy_model": "memory"}
    runs = {}
    with MVSECRecording(data) as rec:
        fields = network_fields(net.model, (1, 2, 5, rec.height, rec.width), net.meta)
        times = frame_times(rec)[0]
        for name, backend in (
            ("lava", LavaBackend(net.model, torch.device("cpu"), fields=fields)),
            ("torch", Int8TorchBackend(net.model, torch.device("cpu"), fields=fields)),
        ):
            engine = StreamEngine(net, backend, **opts)
            try:
                frames = [(r.index, r.ac, r.mac, r.energy_j) for r in engine.run(rec, times, with_gt=False)]
            finally:
                backend.close()
            runs[name] = (engine, frames)
    (lava, lava_frames), (torch_engine, torch_frames) = runs["lava"], runs["torch"]
    assert lava.energy_mode == torch_engine.energy_mode == "step outputs"
    assert len(lava_frames) == 10 and lava_frames == torch_frames
    assert len({f[1] for f in lava_frames}) > 1  # the frames' counts differ: a frame's count is its own
    a, b = lava.summary.energy, torch_engine.summary.energy
    rows = lambda r: (  # noqa: E731
        [(la.name, la.dense_ops, la.ac, la.mac, la.energy_j, la.fanout_events) for la in r.layers],
        [(n.name, n.updates, n.energy_j) for n in r.neurons],
        r.neuron_rates,
    )
    assert rows(a) == rows(b) and a.neurons and a.ac > 0
    read = lava.backend.boundary["read_back"]
    assert len(read) == 9 and read[0] == "feature.last.neuron"  # the cut, then every other Lava layer
    parts = {p["part"]: p for p in lava.backend.energy_parts(a)}
    assert parts["lava"]["layers"] == 15 and parts["lava"]["ac"] > 0 and parts["cpu"]["ac"] > 0
