"""int8 networks: one integer graph that torch (GraphModule), onnxruntime and stock NIR importers run identically.

Proofs against code nobody here wrote: onnxruntime's kernels, SpikingJelly's stock NIR importer.
Spikes are compared per layer and step (every ``<layer>.v`` and ``<layer>.y`` state tensor for ONNX).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from snnc.data.images import load_digits_set
from snnc.errors import SnncError
from snnc.export.lower import graph_inputs
from snnc.export.nir_consumers import ConsumerRun, compare, run_consumer, run_reference
from snnc.export.nir_writer import DEFAULT_DT, write_nir
from snnc.export.onnx_writer import export_graph_stream
from snnc.export.runtime import GraphModule
from snnc.models.loading import load_network_checkpoint, open_model, save_network
from snnc.quant import (
    QuantFields,
    apply_head,
    apply_int8,
    int8_graph,
    nir_form,
    quantize_input,
    quantize_network,
    value_bounds,
)


@pytest.fixture(scope="module")
def digits():
    om = open_model("digits-cla")
    data = load_digits_set()
    fields = quantize_network(om.model, (1, 1, 8, 8), [data.x_train[:256]])
    return om, data, fields


def _torch_run(gm: GraphModule, inputs: list[dict[str, torch.Tensor]]):
    state = gm.init_state(inputs[0])
    steps = []
    with torch.no_grad():
        for x in inputs:
            values, state = gm.step_nodes(x, state)
            steps.append((values, state))
    return steps


def _onnx_matches_torch(gm: GraphModule, inputs: list[dict[str, torch.Tensor]], path) -> tuple[int, int, float]:
    """(differing state values, compared state values, mean spike rate) of onnxruntime vs GraphModule."""
    import onnxruntime as ort

    info = export_graph_stream(gm, inputs[0], path)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    state = [s.numpy() for s in gm.init_state(inputs[0])]
    names = info["state_names"]
    differ = seen = 0
    rates = []
    for (values, torch_state), x in zip(_torch_run(gm, inputs), inputs, strict=True):
        feed = {k: v.numpy() for k, v in x.items()}
        feed.update({f"state_in_{k}": v for k, v in enumerate(state)})
        out = session.run(None, feed)
        n_out = len(gm.output_names)
        assert all(np.array_equal(values[o].numpy(), out[i]) for i, o in enumerate(gm.output_names))
        state = out[n_out:]
        for k, name in enumerate(names):
            differ += int((torch_state[k].numpy() != state[k]).sum())
            seen += state[k].size
            if name.endswith(".y"):
                rates.append(float(state[k].mean()))
    return differ, seen, float(np.mean(rates))


def test_integer_graph_has_integer_weights_and_the_stated_bounds(digits):
    om, _, fields = digits
    g = int8_graph(om.model, (2, 1, 8, 8), fields)
    assert g.meta["precision"] == "int8"
    for node in g.nodes.values():
        if node.op in ("conv", "affine"):
            w = node.params["weight"]
            assert node.params["integer"] and np.array_equal(w, np.round(w)) and np.abs(w).max() <= 127
        if node.op == "neuron":
            assert node.params["int"].dv == 4096 - 64 * 13  # decay 0.2 -> 13/64
        assert node.op != "avgpool"
    bounds = value_bounds(g)
    assert max(float(np.max(bounds[n])) for n in g.nodes if g[n].op == "conv") <= 2**17 - 1


@pytest.mark.slow
def test_digits_ptq_loses_at_most_one_point(digits):
    om, data, fields = digits
    model, x, t = om.model, data.x_test, om.genotype.time_steps
    with torch.no_grad():
        float_logits = model(x.unsqueeze(0).expand(t, *x.shape)).mean(0)
        gm = GraphModule(int8_graph(model, tuple(x.shape), fields))
        xi = quantize_input(x, fields)
        outs = [vals["y"] for vals, _ in _torch_run(gm, [{"x": xi}] * t)]
        int_logits = apply_head(gm.graph.meta["int8"], torch.stack(outs).mean(0))
    acc_float = float((float_logits.argmax(1) == data.y_test).float().mean())
    acc_int = float((int_logits.argmax(1) == data.y_test).float().mean())
    assert acc_int >= acc_float - 0.01, (acc_float, acc_int)


def test_digits_onnx_equals_torch_per_layer_over_12_steps(digits, tmp_path):
    om, data, fields = digits
    x = quantize_input(data.x_test[:16], fields)
    gm = GraphModule(int8_graph(om.model, tuple(x.shape), fields)).eval()
    differ, seen, rate = _onnx_matches_torch(gm, [{"x": x}] * 12, tmp_path / "d.onnx")
    assert differ == 0 and seen > 0 and 0.05 < rate < 0.95


@pytest.mark.slow
def test_stereo_onnx_equals_torch_per_layer_over_10_steps_with_firing_layers(tmp_path):
    """Trained stereo-synth at 24x32, 25 % input events: all 24 layers' v and y, 10 steps (full size: benchmark)."""
    om = open_model("stereo-synth")
    gen = torch.Generator().manual_seed(0)
    shape = (1, 2, 5, 24, 32)
    frames = [
        (torch.rand(shape, generator=gen) < 0.25).float() * (torch.randint(0, 2, shape, generator=gen) * 2 - 1)
        for _ in range(10)
    ]
    fields = quantize_network(om.model, shape, frames[:2])
    gm = GraphModule(int8_graph(om.model, shape, fields)).eval()
    inputs = [graph_inputs("spikedhs-stereo", f) for f in frames]
    differ, seen, rate = _onnx_matches_torch(gm, inputs, tmp_path / "s.onnx")
    assert differ == 0 and seen > 0 and rate > 0.1


@pytest.mark.slow
def test_nir_of_int8_digits_runs_in_stock_spikingjelly_with_no_mismatch(digits, tmp_path):
    pytest.importorskip("spikingjelly.activation_based.nir_exchange")
    om, data, fields = digits
    x = quantize_input(data.x_test[:64], fields)
    gm = GraphModule(int8_graph(om.model, tuple(x.shape), fields))
    steps = [{"x": x}] * om.genotype.time_steps
    ref = ConsumerRun("snnc-int8", imported=True, ran=True)
    ref.spikes = {n: [] for n in gm.neuron_nodes()}
    for values, _ in _torch_run(gm, steps):
        ref.outputs.append(values["y"])
        for n in ref.spikes:
            ref.spikes[n].append(values[n])
    path = tmp_path / "digits-int8.nir"
    write_nir(nir_form(gm.graph), path, consumer="spikingjelly")
    for run in (
        run_consumer("spikingjelly", path, [x] * len(steps), DEFAULT_DT),
        run_reference(path, [x] * len(steps)),
    ):
        agree = compare(run, ref)
        assert run.error is None and agree is not None
        assert agree.layers == agree.layers_total == 13
        assert agree.spike_mismatches == 0 and agree.spikes_seen > 10_000
        assert agree.output_max_diff == 0.0 and agree.prediction_agreement == 1.0


def test_overflow_is_refused_naming_the_layer(digits):
    om, _, fields = digits
    from snnc.export.lower import lower

    graph = lower(om.model, (1, 1, 8, 8))
    loud = QuantFields(**{**fields.__dict__, "weights": dict(fields.weights)})
    loud.weights["stem.conv"] = np.full_like(fields.weights["stem.conv"], 127)
    with pytest.raises(SnncError, match=r"int8: layer 'stem\.neuron' can receive a synaptic input of 14"):
        apply_int8(graph, loud)
    bad = QuantFields(**{**fields.__dict__, "weights": dict(fields.weights)})
    bad.weights["fc.part0"] = fields.weights["fc.part0"] * 2
    bad.weights["fc.part0"][0, 0] = 200
    with pytest.raises(SnncError, match=r"int8: layer 'fc\.part0' has a weight beyond"):
        apply_int8(graph, bad)


def test_int8_fields_round_trip_through_one_network_checkpoint(digits, tmp_path):
    om, data, fields = digits
    path = tmp_path / "digits-int8.pt"
    save_network(om.model, path, folded=True, input_shape=(1, 1, 8, 8), int8=fields.to_checkpoint())
    model, _, doc = load_network_checkpoint(path)
    back = QuantFields.from_checkpoint(doc["int8"], path)
    assert back.neurons == fields.neurons and back.input_scale == fields.input_scale
    x = quantize_input(data.x_test[:8], back)
    a = _torch_run(GraphModule(int8_graph(model, tuple(x.shape), back)), [{"x": x}] * 3)
    b = _torch_run(GraphModule(int8_graph(om.model, tuple(x.shape), fields)), [{"x": x}] * 3)
    assert all(torch.equal(s, t) for (_, sa), (_, sb) in zip(a, b, strict=True) for s, t in zip(sa, sb, strict=True))
    doc["int8"]["format"] = "snnc-int8/0"
    with pytest.raises(SnncError, match="format 'snnc-int8/1'"):
        QuantFields.from_checkpoint(doc["int8"], path)
