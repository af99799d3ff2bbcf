"""NIR interop: snnc's exports through other libraries' STOCK importers, spikes compared per layer.

Every family (digits classifier, sequential net, SNASNet with backward edges, stereo front) is
exported with snnc's own NIR writer, loaded by each consumer's importer, stepped with its state
carried over T steps at batch size 2, and compared with snnc's run of the same file
(``import_nir``, itself spike-exact with the torch model: tests/test_export_nir.py). Where a
consumer cannot run a construct, the test asserts snnc's documented refusal for that consumer
(``write_nir(..., consumer=...)`` / ``snnc export --for``) and what the stock importer does.
Consumers that are not installed are skipped (tools/install.sh installs them all).
"""

from __future__ import annotations

import nir
import numpy as np
import pytest
import torch

from snnc.errors import SnncError
from snnc.export.interop_cases import CASES, interop_case
from snnc.export.nir_consumers import compare, run_consumer, run_reference
from snnc.export.nir_writer import write_nir

from _export_util import small_genotype, write_genotype
from cli_helpers import assert_user_error, expect_ok, run_snnc

DT = 1e-4
EXACT = ("spikingjelly", "snntorch")
IMPORTERS = {
    "spikingjelly": "spikingjelly.activation_based.nir_exchange",
    "snntorch": "snntorch.import_nir",
    "norse": "norse.torch",
    "sinabs": "sinabs",
    "rockpool": "rockpool.nn.modules",
    "nirtorch": "nirtorch",
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """``{case name: (case, plain NIR file, snnc's reference run)}``, batch 2, 8 steps."""
    folder = tmp_path_factory.mktemp("interop")
    out = {}
    for name in CASES:
        case = interop_case(name, batch=2, steps=8)
        path = folder / f"{name}.nir"
        write_nir(case.graph, path, DT)
        out[name] = (case, path, run_reference(path, case.inputs))
    return out


def _need(consumer):
    pytest.importorskip(IMPORTERS[consumer])


def test_reference_run_is_the_torch_model(exported):
    """snnc's run of each exported file spikes like the folded torch network (the ground truth here)."""
    from _export_util import record_spikes

    for name in ("digits", "sequential", "snasnet"):
        case, _, ref = exported[name]
        y, spikes = record_spikes(case.model, torch.stack(case.inputs))
        assert set(spikes) <= set(ref.spikes)
        for layer, steps in spikes.items():
            for got, want in zip(ref.spikes[layer], steps, strict=True):
                assert torch.equal(got, want), (name, layer)
        assert float((torch.stack(ref.outputs) - y).abs().max()) < 1e-5


@pytest.mark.parametrize("consumer", EXACT)
@pytest.mark.parametrize("name", ["digits", "sequential", "stereo-front"])
def test_stock_importer_runs_the_plain_export_spike_exact(consumer, name, exported, tmp_path):
    _need(consumer)
    case, path, ref = exported[name]
    run = run_consumer(consumer, path, case.inputs, DT)
    assert run.ran, run.error
    agree = compare(run, ref, case.classify)
    assert agree.layers == agree.layers_total > 0  # every neuron layer of the graph was compared
    assert agree.spikes_seen > 1000
    assert agree.spike_mismatches == 0
    assert agree.output_max_diff < 1e-5  # nirtorch sums edges in set order: float rounding only
    if case.classify:
        assert agree.prediction_agreement == 1.0
    # the same network written for this consumer (checked) runs the same way
    target = tmp_path / f"{name}.{consumer}.nir"
    write_nir(case.graph, target, DT, consumer=consumer)
    assert nir.read(str(target)).metadata["snnc.target"] == consumer
    again = compare(run_consumer(consumer, target, case.inputs, DT), ref, case.classify)
    assert again.spike_mismatches == 0 and again.layers == again.layers_total


def test_plain_export_has_no_junction_nodes_and_batched_flatten(exported):
    """What made the stock importers fail before: Scale(1) junctions, Flatten over the batch axis."""
    for name in CASES:
        _, path, _ = exported[name]
        graph = nir.read(str(path))
        assert float(graph.metadata["dt"]) == DT
        for node_name, node in graph.nodes.items():
            assert type(node).__name__ != "Scale", (name, node_name)
            if type(node).__name__ == "Flatten":
                assert node.start_dim < 0 and node.end_dim < 0
            if type(node).__name__ == "LIF":  # dt is implied by the parameters too: r = tau / dt
                assert float(node.tau.flat[0]) / float(node.r.flat[0]) == pytest.approx(DT)
        assert sum(type(n).__name__ == "Output" for n in graph.nodes.values()) == 1


@pytest.mark.parametrize("consumer", EXACT)
def test_feedback_runs_as_nirtorch_cycles_when_exported_for_the_consumer(consumer, exported, tmp_path):
    """SNASNet's backward (t-1) edges: the stock importers have no Delay; --for spells them as nirtorch cycles."""
    _need(consumer)
    case, path, ref = exported["snasnet"]
    run = run_consumer(consumer, path, case.inputs, DT)
    assert not run.imported and "Delay" in run.error  # the plain file: no Delay mapping
    target = tmp_path / f"snasnet.{consumer}.nir"
    write_nir(case.graph, target, DT, consumer=consumer)
    graph = nir.read(str(target))
    assert not any(type(n).__name__ == "Delay" for n in graph.nodes.values())
    assert all(n.metadata["snnc.name"] in case.graph.nodes for n in graph.nodes.values())
    agree = compare(run_consumer(consumer, target, case.inputs, DT), ref, case.classify)
    assert agree.layers == agree.layers_total and agree.spikes_seen > 1000
    assert agree.spike_mismatches == 0 and agree.output_max_diff < 1e-5 and agree.prediction_agreement == 1.0
    # the feedback matters: without it (Delay outputs held at zero) snnc's own run spikes differently
    from snnc.export.nir_reader import import_nir

    gm = import_nir(path)
    state = gm.init_state(case.inputs[0])
    names = gm.state_names()
    differs = 0
    for t, x_t in enumerate(case.inputs):
        state = tuple(torch.zeros_like(v) if ".feedback." in n else v for n, v in zip(names, state, strict=True))
        values, state = gm.step_nodes(x_t, state)
        differs += sum(int((values[k] != ref.spikes[k][t]).sum()) for k in ref.spikes)
    assert differs > 0


def test_feedback_that_nirtorch_cannot_delay_is_refused(tmp_path):
    from snnc.export.graph import Graph
    from snnc.neurons import NeuronSpec

    spec = NeuronSpec(type="lif", decay=0.5, vth=0.5)
    g = Graph({"family": "sequential"})
    g.add("x", "input", shape=(3,))
    g.add("fc", "affine", ["x"], weight=torch.eye(3).numpy(), bias=None)
    d = g.add("fb", "delay", [], shape=(3,), steps=1)
    g.add("n1", "neuron", ["fc", d], spec=spec, gain=1.0)
    g.add("n2", "neuron", [d], spec=spec, gain=1.0)  # fed by the feedback alone
    g.connect(d, ["n1"])
    g.add("y", "output", ["n2"])
    with pytest.raises(SnncError, match="node 'n2' for snntorch: a node fed only by a feedback loop"):
        write_nir(g, tmp_path / "f.nir", DT, consumer="snntorch")
    write_nir(g, tmp_path / "plain.nir", DT)  # the plain file keeps the Delay


@pytest.mark.parametrize("name", CASES)
def test_norse_runs_chains_exported_for_it_and_refuses_dags(name, exported, tmp_path):
    _need("norse")
    case, path, ref = exported[name]
    run = run_consumer("norse", path, case.inputs, DT)  # the plain file in norse's stock importer
    if run.ran:  # the stereo front imports, but without r its neurons integrate (1 - beta) of the input
        assert compare(run, ref, case.classify).spike_mismatches > 0
    else:  # AvgPool2d / Delay are not mapped: nirtorch's old loader fails on the missing module
        assert "KeyError" in run.error
    target = tmp_path / "n.nir"
    if name != "sequential":
        with pytest.raises(
            SnncError,
            match=r"for norse: a node with several inputs or consumers: norse's importer "
            r"runs a graph depth-first",
        ):
            write_nir(case.graph, target, DT, consumer="norse")
        return
    write_nir(case.graph, target, DT, consumer="norse")  # r folded into the weights, AvgPool2d as SumPool2d
    kinds = {type(n).__name__ for n in nir.read(str(target)).nodes.values()}
    assert "AvgPool2d" not in kinds and "SumPool2d" in kinds
    agree = compare(run_consumer("norse", target, case.inputs, DT), ref, case.classify)
    assert agree.layers == agree.layers_total and agree.spikes_seen > 1000
    assert agree.spike_mismatches == 0 and agree.prediction_agreement == 1.0


@pytest.mark.parametrize("name", CASES)
def test_sinabs_and_rockpool_are_refused(name, exported, tmp_path):
    case, path, _ = exported[name]
    with pytest.raises(SnncError, match=r"for sinabs: a (LIF/IF neuron: sinabs.from_nir builds multi-spike|Delay)"):
        write_nir(case.graph, tmp_path / "s.nir", DT, consumer="sinabs")
    with pytest.raises(SnncError, match="for rockpool: a Conv2d node"):
        write_nir(case.graph, tmp_path / "r.nir", DT, consumer="rockpool")
    if name != "digits":
        return
    _need("sinabs")
    _need("rockpool")
    assert not run_consumer("sinabs", path, case.inputs, DT).imported  # wants 1-D neuron parameters
    rock = run_consumer("rockpool", path, case.inputs, DT)
    assert not rock.imported and "NotImplementedError" in rock.error


def test_nirtorch_default_map_has_no_neurons(exported):
    _need("nirtorch")
    case, path, _ = exported["sequential"]
    run = run_consumer("nirtorch", path, case.inputs, DT)
    assert not run.imported and "LIF" in run.error


def test_cli_for_snntorch_runs_in_the_stock_importer_at_batch_2(tmp_path):
    _need("snntorch")
    genotype = write_genotype(small_genotype("sequential-dvs", image_size=16), tmp_path / "seq.json")
    out = tmp_path / "seq.nir"
    text = expect_ok(
        run_snnc("export", genotype, "--to", "nir", "--for", "snntorch", "--out", out, "--input-shape", "2,2,16,16")
    )
    assert "checked for snntorch" in text
    x = [(torch.rand(2, 2, 16, 16) < 0.4).float() for _ in range(6)]
    ref = run_reference(out, x)
    agree = compare(run_consumer("snntorch", out, x, DT), ref, classify=True)
    assert agree.layers == agree.layers_total and agree.spike_mismatches == 0
    assert_user_error(
        run_snnc(
            "export",
            genotype,
            "--to",
            "nir",
            "--for",
            "snntorch",
            "--dt",
            "1e-3",
            "--out",
            tmp_path / "b.nir",
            "--input-shape",
            "2,2,16,16",
        ),
        "fixes dt at 0.0001",
    )
    assert_user_error(
        run_snnc("export", genotype, "--to", "onnx", "--for", "snntorch", "--out", tmp_path / "c.onnx"),
        "--for",
        "--to nir",
    )
    assert_user_error(
        run_snnc("export", genotype, "--to", "nir", "--for", "tvm", "--out", tmp_path / "d.nir"),
        "unknown NIR consumer 'tvm'",
    )
    assert not (tmp_path / "b.nir").exists()


# --------------------------------------------------------------------------- the other direction
def _foreign_spikes(net, x, layers, reset):
    """Per named layer of a foreign torch net, its spikes at every step (``reset`` called first)."""
    spikes = {n: [] for n in layers}
    hooks = [
        getattr(net, n).register_forward_hook(
            lambda _m, _i, out, n=n: spikes[n].append((out[0] if isinstance(out, tuple) else out).clone())
        )
        for n in layers
    ]
    reset(net)
    with torch.no_grad():
        for x_t in x:
            net(x_t)
    for h in hooks:
        h.remove()
    return spikes


def _snnc_mismatches(path, x, spikes, dt):
    from snnc.export.nir_reader import load_nir_model

    opened = load_nir_model(path, dt)
    state = opened.module.init_state(x[0])
    mismatches = seen = 0
    for t, x_t in enumerate(x):
        with torch.no_grad():
            values, state = opened.module.step_nodes(x_t, state)
        for name, steps in spikes.items():
            mismatches += int((values[name] != steps[t]).sum())
            seen += int(steps[t].sum())
    return mismatches, seen


def test_a_spikingjelly_network_runs_in_snnc_with_the_same_spikes(tmp_path):
    pytest.importorskip("spikingjelly.activation_based.nir_exchange")
    from collections import OrderedDict

    from spikingjelly.activation_based import functional, layer, neuron
    from spikingjelly.activation_based.nir_exchange import export_to_nir

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        OrderedDict(
            conv=layer.Conv2d(2, 4, 3, padding=1),
            lif1=neuron.LIFNode(tau=2.0, decay_input=False, v_threshold=0.5),
            pool=layer.AvgPool2d(2),
            flat=layer.Flatten(),
            fc=layer.Linear(4 * 8 * 8, 10),
            lif2=neuron.LIFNode(tau=3.0, decay_input=False, v_threshold=0.3),
        )
    )
    with torch.no_grad():
        net.conv.weight.mul_(3)
    path = tmp_path / "sj.nir"
    export_to_nir(net, torch.zeros(2, 2, 16, 16), save_path=str(path), dt=1e-3)
    x = (torch.rand(10, 2, 2, 16, 16) < 0.4).float()
    spikes = _foreign_spikes(net, x, ("lif1", "lif2"), functional.reset_net)
    with pytest.raises(SnncError, match=r"no 'dt'.*--dt"):  # SpikingJelly writes no dt
        _snnc_mismatches(path, x, spikes, None)
    mismatches, seen = _snnc_mismatches(path, x, spikes, 1e-3)
    assert seen > 1000 and mismatches == 0
    text = expect_ok(run_snnc("info", path, "--dt", "1e-3"))
    assert "NIR graph" in text and "lif1" in text and "Conv2d" in text
    assert_user_error(run_snnc("info", path), "sj.nir", "no 'dt'", "--dt")
    # ... and on to ONNX: stock onnxruntime, state fed back, gives SpikingJelly's output spikes
    assert_user_error(run_snnc("export", path, "--to", "onnx", "--out", tmp_path / "sj.onnx"), "no 'dt'", "--dt")
    assert not (tmp_path / "sj.onnx").exists()
    text = expect_ok(run_snnc("export", path, "--to", "onnx", "--dt", "1e-3", "--out", tmp_path / "sj.onnx"))
    assert "one-step streaming graph of NIR file sj.nir" in text
    import onnxruntime as ort

    sess = ort.InferenceSession(str(tmp_path / "sj.onnx"), providers=["CPUExecutionProvider"])
    inputs = [i.name for i in sess.get_inputs()]
    state = [np.zeros(i.shape, dtype=np.float32) for i in sess.get_inputs()[1:]]
    outputs = 0
    for t in range(x.shape[0]):
        got = sess.run(None, {inputs[0]: x[t][:1].numpy(), **dict(zip(inputs[1:], state, strict=False))})
        y, state = got[0], got[1:]
        assert np.array_equal(y, spikes["lif2"][t][:1].numpy()), t
        outputs += int(y.sum())
    assert outputs > 0
    assert_user_error(
        run_snnc("export", path, "--to", "nir", "--dt", "1e-3", "--out", tmp_path / "x.nir"), "already a NIR file"
    )


@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_snntorch_exports_run_in_snnc_reset_to_zero_only(reset, tmp_path):
    """snnTorch writes every Leaky as a reset-to-zero LIF: its subtract-reset export is mislabelled."""
    pytest.importorskip("snntorch.export_nir")
    import snntorch as snn
    import snntorch.utils
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)

    def leaky(n, beta, vth):  # per-neuron arrays: snnTorch's scalar parameters fail nir 1.0.8's type check
        return snn.Leaky(
            beta=torch.full((n,), beta), threshold=torch.full((n,), vth), init_hidden=True, reset_mechanism=reset
        )

    net = torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(2 * 16 * 16, 40),
        leaky(40, 0.5, 0.5),
        torch.nn.Linear(40, 10),
        leaky(10, 0.75, 0.3),
    )
    with torch.no_grad():
        net[1].weight.mul_(3)
    path = tmp_path / "snt.nir"
    nir.write(str(path), export_to_nir(net, torch.zeros(1, 2, 16, 16), ignore_dims=[0]))  # batch 1: its Flatten
    graph = nir.read(str(path))
    assert (graph.nodes["2"].v_reset == 0).all()  # written as reset to zero whatever reset_mechanism says
    x = (torch.rand(10, 2, 2, 16, 16) < 0.4).float()
    spikes = _foreign_spikes(net, x, ("2", "4"), snntorch.utils.reset)
    mismatches, seen = _snnc_mismatches(path, x, spikes, 1e-4)  # snnTorch's fixed dt
    assert seen > 100
    if reset == "zero":
        assert mismatches == 0
    else:
        assert mismatches > 0


@pytest.mark.parametrize("form", ["0-d", "(1,)"])
def test_nir_1_0_8_refuses_scalar_neuron_parameters(form, tmp_path):
    """Why snnc writes uniform neuron parameters as per-neuron arrays: nir 1.0.8 types a LIF by its
    parameter shape, so a 0-d or one-element tau/r/v_threshold/v_leak fails the type check that
    ``nir.NIRGraph(type_check=True)`` and ``nir.read`` (which every consumer calls) run; a 0-d one
    cannot even be written."""

    def p(v):
        return np.array(v) if form == "0-d" else np.array([v])

    nodes = {
        "x": nir.Input(input_type={"input": np.array([3])}),
        "fc": nir.Affine(weight=np.eye(3, dtype=np.float32), bias=np.zeros(3, dtype=np.float32)),
        "lif": nir.LIF(tau=p(2e-4), r=p(2.0), v_leak=p(0.0), v_threshold=p(0.5), v_reset=p(0.0)),
        "y": nir.Output(output_type={"output": np.array([3])}),
    }
    edges = [("x", "fc"), ("fc", "lif"), ("lif", "y")]
    with pytest.raises(ValueError, match="Type inference error"):
        nir.NIRGraph(nodes=nodes, edges=edges, type_check=True)
    path = tmp_path / "scalar.nir"
    unchecked = nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)
    if form == "0-d":  # nir.write cannot even store it (compressed HDF5 datasets must have a shape)
        with pytest.raises(TypeError, match="Scalar datasets"):
            nir.write(str(path), unchecked)
        return
    nir.write(str(path), unchecked)
    with pytest.raises(ValueError, match="Type inference error"):
        nir.read(str(path))
