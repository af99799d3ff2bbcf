"""``--backend hybrid --precision int8``: the integer graph's front (integer runtime) and rest (onnxruntime)
compute the integers of the torch and onnx int8 backends, layer by layer and step by step; energy per part."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import torch

from _export_reuse import reuse_exports
from snnc.data.mvsec import MVSECRecording
from snnc.data.synth import synthesize
from snnc.energy.costs import resolve_costs
from snnc.quant.network import network_fields
from snnc.runtime.engine import StreamEngine
from snnc.runtime.frames import frame_times
from snnc.runtime.int8_backend import make_precision_backend
from snnc.runtime.model import load_network

from _mvsec_h5 import write_recording

CPU = torch.device("cpu")
FRAMES = 10
SHAPE = (1, 2, 5, 16, 24)

pytest.importorskip("onnxruntime")


def _state_by_name(be: Any) -> dict[tuple[str, str], np.ndarray]:
    """Every neuron's state after the last step, by ``(node, field)`` (``v`` membrane, ``y`` spikes)."""
    if be.name == "hybrid":
        (front, rest), net = be._state, be._net
        pairs = list(zip(net.front.state_layout(), front, strict=True))
        pairs += list(zip([tuple(e) for e in net.rest_piece["state_layout"]], rest, strict=True))
    elif be.name == "onnx":
        pairs = list(zip(be._layout, be._state, strict=True))
    else:
        pairs = list(zip(be._gm.state_layout(), be._state, strict=True))
    return {(str(n), str(f)): np.asarray(s) for (n, f), s in pairs if f in ("v", "y")}


def _stream(net: Any, fields: Any, backend: str, data: Any, energy: bool) -> dict[str, Any]:
    """Stream the recording at int8 through ``backend``; per-step disparities and neuron states (torch: also
    each step's input and flat state before/after, to count the whole integer graph's activity from)."""
    be = make_precision_backend(backend, net, CPU, fields, {"threads": 1})
    states: list[dict[tuple[str, str], np.ndarray]] = []
    steps: list[tuple[torch.Tensor, Any, Any]] = []
    inner_step = be.step

    def step(x: torch.Tensor) -> Any:
        before = getattr(be, "_state", None)
        cost = inner_step(x)
        states.append(_state_by_name(be))
        if backend == "torch":
            steps.append((x.clone(), before, be._state))
        return cost

    be.step = step  # type: ignore[method-assign]
    engine = StreamEngine(net, be, energy=energy, costs=resolve_costs("45nm-int8"))
    try:
        with MVSECRecording(data) as rec:
            times, _ = frame_times(rec, limit=FRAMES)
            results = list(engine.run(rec, times, with_gt=False))
        report = engine.summary.energy
        parts = be.energy_parts(report) if backend == "hybrid" and report is not None else None
        placement = be.placement()
    finally:
        be.close()
    return {
        "disparity": np.stack([r.disparity for r in results]),
        "states": states,
        "steps": steps,
        "graph": be._gm.graph if backend == "torch" else None,
        "energy": report,
        "parts": parts,
        "placement": placement,
        "mode": engine.energy_mode,
    }


@pytest.fixture(scope="module", autouse=True)
def exports():
    """The fixture's and the onnx test's exports are the CLI streams' too (stereo-synth at int8, 16x24, energy
    taps): each traced once (tests/_export_reuse)."""
    with reuse_exports() as ledger:
        yield ledger


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The trained stereo-synth at int8 (as ``snnc stream`` quantises it), streamed through torch and hybrid."""
    tmp = tmp_path_factory.mktemp("hybrid_int8")
    net = load_network("stereo-synth")
    fields = network_fields(net.model, SHAPE, net.meta, None, "stereo-synth")
    # random events (about 20 % of the SBT bins nonzero), 1 s: 20 frames on the stream clock, 10 streamed
    data = write_recording(tmp, "h", n=8000, height=SHAPE[3], width=SHAPE[4], gt=False)
    out = {b: _stream(net, fields, b, data, energy=b != "torch") for b in ("torch", "hybrid")}
    return {**out, "net": net, "fields": fields, "data": data}


def _assert_same_run(ref: dict[str, Any], got: dict[str, Any], backend: str) -> None:
    """Identical disparity arrays, and every neuron's membrane and spikes identical at every step."""
    names = set(ref["states"][0])
    assert np.array_equal(got["disparity"], ref["disparity"]), backend
    for t, (want, have) in enumerate(zip(ref["states"], got["states"], strict=True)):
        assert set(have) == names, (backend, t)
        for key in sorted(names):
            assert np.array_equal(want[key], have[key]), (backend, t, key)


def _graph_counts(run: dict[str, Any], net: Any, fields: Any) -> dict[str, tuple[float, float]]:
    """Per-layer ACs/MACs of the whole integer graph's own values (the torch int8 run's inputs and state),
    counted by the plan the onnx int8 backend counts with (no export)."""
    from snnc.energy.meter import ActivityMeter
    from snnc.export.activity import ActivityPlan, step_values
    from snnc.export.lower import graph_inputs
    from snnc.export.runtime import GraphModule
    from snnc.quant import quantize_input

    graph = run["graph"]
    family = str(graph.meta["family"])
    layout = GraphModule(graph).state_layout()
    plan = ActivityPlan(graph, net.model, batch=2)
    meter = ActivityMeter(costs=resolve_costs("45nm-int8"), count="rate", steps_per_frame=1.0)
    meter.bind(plan.specs(), plan.neurons, batch=1)
    for x, before, after in run["steps"]:
        values = step_values(graph_inputs(family, quantize_input(x, fields)), layout, before, after)
        meter.record(plan.measure(values, events=meter.events))
        meter.frame()
    return {lay.name: (lay.ac, lay.mac) for lay in meter.total().layers}


def test_hybrid_int8_equals_torch_in_every_layer_every_step(runs):
    ref = runs["torch"]
    assert len(ref["states"]) == FRAMES and ref["disparity"].shape == (FRAMES, SHAPE[3], SHAPE[4])
    names = set(ref["states"][0])
    neurons = {n for n, _ in names}
    assert len(neurons) >= 10 and all((n, f) in names for n in neurons for f in ("v", "y"))
    _assert_same_run(ref, runs["hybrid"], "hybrid")
    fired = {n: float(np.mean([s[(n, "y")].mean() for s in ref["states"]])) for n in neurons}
    assert sum(r > 0.01 for r in fired.values()) >= len(neurons) - 2, fired  # not a comparison of silent layers
    assert ref["disparity"].std() > 0  # a non-flat answer
    place = runs["hybrid"]["placement"]
    assert [p["part"] for p in place] == ["front", "rest"]
    assert "integer graph" in place[0]["runs_on"] and "integer graph" in place[1]["runs_on"]
    assert "no NIR node type" in place[1]["cut_after"]


def test_hybrid_int8_energy_per_part_at_int8_costs(runs):
    """The hybrid's energy is the whole integer graph's own activity (counted from its two pieces' values),
    priced at 45nm-int8 and split into front and rest."""
    hyb = runs["hybrid"]
    report = hyb["energy"]
    assert hyb["mode"] == "step outputs" and report.costs.name == "45nm-int8"
    assert report.costs.ac_j == pytest.approx(0.03e-12) and report.costs.mac_j == pytest.approx(0.23e-12)
    want = _graph_counts(runs["torch"], runs["net"], runs["fields"])
    got = {lay.name: (lay.ac, lay.mac) for lay in report.layers}
    assert got.keys() == want.keys()
    for name, (ac, mac) in want.items():
        assert got[name] == (pytest.approx(ac), pytest.approx(mac)), name
    parts = {p["part"]: p for p in hyb["parts"]}
    assert set(parts) == {"front", "rest"} and parts["front"]["ac"] > 0 and parts["rest"]["ac"] > 0
    assert sum(p["ac"] for p in parts.values()) == pytest.approx(report.ac)
    assert sum(p["energy_j"] for p in parts.values()) == pytest.approx(report.energy_j)
    front = parts["front"]
    assert front["energy_j"] == pytest.approx(front["ac"] * 0.03e-12 + front["mac"] * 0.23e-12)
    assert front["dense_energy_j"] == pytest.approx(front["dense_ops"] * 0.23e-12)


@pytest.mark.slow  # one more ONNX export of the whole integer graph (~7 s CPU; the CLI test's onnx stream reuses it)
def test_onnx_int8_equals_torch_and_hybrid_in_every_layer_and_energy(runs):
    onnx = _stream(runs["net"], runs["fields"], "onnx", runs["data"], energy=True)
    _assert_same_run(runs["torch"], onnx, "onnx")
    same = {lay.name: (lay.ac, lay.mac) for lay in onnx["energy"].layers}
    assert {lay.name: (lay.ac, lay.mac) for lay in runs["hybrid"]["energy"].layers} == same


@pytest.mark.slow
def test_stream_int8_identical_on_torch_onnx_hybrid(tmp_path):
    """snnc stream --precision int8 on the trained stereo-synth: the same disparity array on every backend;
    the hybrid's energy parts survive --check-against. (Lava against torch on the same recording, with its
    placement and energy parts: tests/test_lava_int8.py::test_stream_lava_int8_disparity_identical_to_torch.)"""
    import h5py

    from cli_helpers import expect_ok, run_snnc

    others = ("onnx", "hybrid")
    data, _ = synthesize(tmp_path / "t_data.hdf5", frames=3, height=16, width=24, progress=False)
    disp, summaries = {}, {}
    for backend in ("torch", *others):
        args = ["stream", data, "--model", "stereo-synth", "--backend", backend, "--precision", "int8"]
        if backend == "hybrid":
            args += ["--check-against", "torch"]
        out = tmp_path / f"{backend}.h5"
        summaries[backend] = json.loads(expect_ok(run_snnc(*args, "--threads", "1", "--out", out, "--json")))
        with h5py.File(out, "r") as f:
            disp[backend] = f["disparity"][()]
    assert disp["torch"].shape == (3, 16, 24)
    for backend in others:
        assert np.array_equal(disp[backend], disp["torch"]), backend
    hyb = summaries["hybrid"]
    assert hyb["check"]["pixels_differing"] == 0 and hyb["energy_costs"] == "45nm-int8"
    assert hyb["energy_count"] == "step outputs"
    assert [p["part"] for p in hyb["energy_parts"]] == ["front", "rest"]


def test_check_against_keeps_the_stream_backends_meter_and_energy_parts():
    """--check-against wraps the stream backend: its own meter and energy per part must still reach the engine
    and the summary (they vanished: the wrapper had neither), and the reference is not counted."""
    from snnc.energy.meter import ActivityMeter
    from snnc.runtime.base import Backend
    from snnc.runtime.check import CheckedBackend

    class Plain(Backend):
        name = "plain"

        def reset(self, x0):
            pass

        def step(self, x):
            return x

        def placement(self):
            return []

    class Parted(Plain):
        name = "parted"

        def activity_meter(self, *, costs, count, energy_model):
            self.meter = ActivityMeter(costs=costs, count=count, energy_model=energy_model)
            return self.meter

        def energy_parts(self, report):
            return [{"part": "front", "report": report}]

        def part_of(self, layer):
            return "front"

    costs = resolve_costs("45nm-int8")
    primary, reference = Parted(), Plain()
    checked = CheckedBackend(primary, reference)
    meter = checked.activity_meter(costs=costs, count="rate", energy_model="paper")
    assert meter is primary.meter and meter.costs is costs
    assert checked.energy_parts("R") == [{"part": "front", "report": "R"}] and checked.part_of(None) == "front"
    plain = CheckedBackend(Plain(), Parted())
    assert plain.activity_meter(costs=costs, count="rate", energy_model="paper") is None
    assert getattr(plain, "energy_parts", None) is None and not hasattr(plain, "part_of")
