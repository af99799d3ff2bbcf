"""``--precision int8`` on the command line: export, stream (cross-backend check), energy, refusals."""

from __future__ import annotations

import json
import math

import pytest

from cli_helpers import assert_user_error, expect_ok, run_snnc


@pytest.mark.slow
def test_export_int8_checkpoint_then_nir_for_spikingjelly_and_onnx(tmp_path):
    ckpt, nir_file, onnx_file = tmp_path / "d8.pt", tmp_path / "d8.nir", tmp_path / "d8.onnx"
    out = expect_ok(
        run_snnc(
            "export", "digits-cla", "--precision", "int8", "--calibrate", "digits", "--to", "checkpoint", "--out", ckpt
        )
    )
    assert "network checkpoint of int8 spikedhs-cla (ptq, 13 integer neuron layers" in out
    out = expect_ok(
        run_snnc("export", ckpt, "--precision", "int8", "--to", "nir", "--for", "spikingjelly", "--out", nir_file)
    )
    assert "checked for spikingjelly's stock importer" in out and nir_file.is_file()
    out = expect_ok(run_snnc("export", ckpt, "--precision", "int8", "--to", "onnx", "--out", onnx_file))
    assert "outputs y (integer; float = y *" in out
    import onnx

    props = {p.key: p.value for p in onnx.load(str(onnx_file)).metadata_props}
    assert props["snnc.precision"] == "int8" and json.loads(props["snnc.int8"])["input_max"] >= 1


def test_int8_refusals_are_one_line(tmp_path):
    out = tmp_path / "x.pt"
    assert_user_error(run_snnc("export", "digits-cla", "--to", "checkpoint", "--out", out), "--precision int8")
    assert_user_error(
        run_snnc("export", "digits-cla", "--precision", "int8", "--to", "nir", "--out", tmp_path / "x.nir"),
        "--calibrate DATA",
    )
    assert_user_error(
        run_snnc("export", "digits-cla", "--precision", "int8", "--to", "lava", "--out", tmp_path / "x.h5"),
        "--to lava does not apply",
    )
    assert_user_error(
        run_snnc(
            "export",
            "snasnet-cifar10",
            "--precision",
            "int8",
            "--calibrate",
            "digits",
            "--to",
            "onnx",
            "--out",
            tmp_path / "s.onnx",
        ),
        "int8",
    )


def test_energy_int8_uses_the_45nm_int8_costs():
    out = expect_ok(run_snnc("energy", "digits-cla", "--data", "digits", "--frames", "4", "--precision", "int8"))
    assert "costs: 45nm-int8 (AC 0.03 pJ, MAC 0.23 pJ" in out


#: the int8 stream tests' recording: frames and size (the shape of the other int8 stream proofs)
FRAMES, HEIGHT, WIDTH = 4, 16, 24


@pytest.fixture(scope="module")
def int8_streams(tmp_path_factory):
    """``snnc stream --precision int8`` of the trained stereo-synth over one synthetic recording, both counting
    energy: ``--backend onnx --check-against torch`` and ``--backend torch``; their JSON summaries by backend
    (one ONNX export serves both tests below)."""
    tmp = tmp_path_factory.mktemp("int8_cli")
    data = tmp / "s_data.hdf5"
    size = ["--frames", str(FRAMES), "--height", str(HEIGHT), "--width", str(WIDTH)]
    expect_ok(run_snnc("data", "synth", data, *size, "--quiet"))
    summaries = {}
    for backend, extra in (("onnx", ["--check-against", "torch"]), ("torch", [])):
        args = ["stream", data, "--model", "stereo-synth", "--precision", "int8", "--backend", backend, *extra]
        out = expect_ok(run_snnc(*args, "--threads", "1", "--json"))
        summaries[backend] = json.loads(out.strip().splitlines()[-1])
    return summaries


@pytest.mark.slow
def test_stream_int8_onnx_equals_torch_pixel_for_pixel(int8_streams):
    summary = int8_streams["onnx"]
    check = summary["check"]
    assert summary["precision"] == "int8" and check["frames"] == FRAMES and check["pixels"] == FRAMES * HEIGHT * WIDTH
    assert check["pixels_differing"] == 0 and check["one_pixel_accuracy_difference"] == 0.0


@pytest.mark.slow
def test_stream_int8_energy_is_counted_on_the_integer_spikes_alike_on_torch_and_onnx(int8_streams):
    """torch counts from its integer graph's node values, onnx from its state outputs: the same ops and joules
    (onnx's own count: --check-against leaves the reference uncounted)."""
    torch_s, onnx_s = int8_streams["torch"], int8_streams["onnx"]
    assert torch_s["energy_count"] == onnx_s["energy_count"] == "step outputs"
    for key in ("ac_per_frame", "mac_per_frame", "energy_j_per_frame"):
        assert torch_s[key] == pytest.approx(onnx_s[key], rel=1e-12), key
    assert torch_s["ac_per_frame"] > 0 and torch_s["energy_j_per_frame"] > 0


# --------------------------------------------------------------------------- energy from the integer spikes
@pytest.fixture(scope="module")
def small_recording(tmp_path_factory):
    """A synthetic recording the size of the stream tests' (4 frames, 16 x 24)."""
    from snnc.data.synth import synthesize

    data, _ = synthesize(
        tmp_path_factory.mktemp("int8_energy") / "e_data.hdf5",
        frames=FRAMES,
        height=HEIGHT,
        width=WIDTH,
        progress=False,
    )
    return data


def test_energy_int8_equals_the_torch_int8_stream_and_not_the_float_activity(small_recording):
    """``snnc energy --precision int8`` counts the integer network's own spikes: the per-frame ops and joules of
    ``snnc stream --precision int8 --backend torch`` on the same frames; the float network's activity priced at the
    same costs (what it counted before) gives other numbers on this net, so the equality is not a tautology."""
    common = ("--data", small_recording, "--threads", "1", "--format", "json")
    int8 = json.loads(expect_ok(run_snnc("energy", "stereo-synth", *common, "--precision", "int8")))
    fp32 = json.loads(expect_ok(run_snnc("energy", "stereo-synth", *common, "--costs", "45nm-int8")))
    out = expect_ok(
        run_snnc(
            "stream", small_recording, "--model", "stereo-synth", "--precision", "int8", "--threads", "1", "--json"
        )
    )
    stream = json.loads(out.strip().splitlines()[-1])
    assert int8["frames"] == stream["frames"] == FRAMES and stream["energy_count"] == "step outputs"
    assert int8["costs"]["name"] == fp32["costs"]["name"] == stream["energy_costs"] == "45nm-int8"
    assert int8["total"]["ac"] == stream["ac_per_frame"] and int8["total"]["mac"] == stream["mac_per_frame"]
    assert int8["total"]["energy_j"] == pytest.approx(stream["energy_j_per_frame"], rel=1e-12)
    assert int8["total"]["ac"] > 0 and len(int8["neurons"]) == 24  # every integer neuron layer's firing rate
    assert abs(int8["total"]["ac"] - fp32["total"]["ac"]) > 1e-4 * fp32["total"]["ac"]  # 17.80 M vs 17.70 M here
    assert int8["total"]["energy_j"] != pytest.approx(fp32["total"]["energy_j"], rel=1e-4)


def _layer_rows(report):
    """Every per-layer and per-neuron figure of an energy report (exact values)."""
    layers = [
        (la.name, la.input_kind, la.dense_ops, la.ac, la.mac, la.energy_j, la.fanout_events) for la in report.layers
    ]
    neurons = [(n.name, n.updates, n.energy_j) for n in report.neurons]
    return layers, neurons, dict(report.neuron_rates)


def test_measure_stereo_int8_is_the_torch_int8_streams_report_layer_by_layer(small_recording):
    """measure_stereo(fields=...) against a StreamEngine run of the torch int8 backend on the same frames: every
    layer's ops, fan-out events and joules and every neuron row equal exactly (memory model: events and neurons
    counted too); the float network's count of the same frames differs."""
    import torch

    from snnc.data.mvsec import MVSECRecording
    from snnc.energy.costs import resolve_costs
    from snnc.quant.network import network_fields
    from snnc.runtime.engine import StreamEngine
    from snnc.runtime.frames import frame_times
    from snnc.runtime.int8_backend import Int8TorchBackend
    from snnc.runtime.measure import measure_stereo
    from snnc.runtime.model import load_network

    net = load_network("stereo-synth")
    costs = resolve_costs("45nm-int8")
    opts = {"costs": costs, "count": "events", "energy_model": "memory"}
    with MVSECRecording(small_recording) as rec:
        fields = network_fields(net.model, (1, 2, 5, rec.height, rec.width), net.meta)
        int8 = measure_stereo(net, rec, frames=None, fields=fields, **opts)
        fp32 = measure_stereo(net, rec, frames=None, **opts)
        engine = StreamEngine(net, Int8TorchBackend(net.model, torch.device("cpu"), fields=fields), **opts)
        frames = list(engine.run(rec, frame_times(rec)[0], with_gt=False))
    stream = engine.summary.energy
    assert engine.energy_mode == "step outputs" and len(frames) == int8.frames == FRAMES
    assert _layer_rows(int8) == _layer_rows(stream)
    assert (int8.ac, int8.mac, int8.energy_j) == (stream.ac, stream.mac, stream.energy_j)
    assert int8.neurons and all(la.fanout_events is not None for la in int8.layers)
    differs = [a.name for a, b in zip(int8.layers, fp32.layers, strict=True) if a.ac != b.ac]
    assert differs and int8.ac != fp32.ac, "int8 and float spikes should differ on this net"


def test_energy_int8_digits_counts_the_integer_classifiers_spikes():
    """Classification at int8: the firing rates snnc energy reports are those of the integer network's own spikes
    (counted here directly from its GraphModule, images quantised as every int8 backend does), not the float
    network's."""
    import torch

    from snnc.data.images import load_digits_set
    from snnc.export.lower import graph_inputs
    from snnc.quant import Int8Network, quantize_input
    from snnc.quant.network import network_fields
    from snnc.runtime.measure import measure_images
    from snnc.runtime.model import load_network

    n = 20
    net = load_network("digits-cla")
    images = load_digits_set().x_test[:n]
    fields = network_fields(net.model, (1, *images.shape[1:]), net.meta, "digits")
    int8 = measure_images(net, images, fields=fields, batch_size=n)
    fp32 = measure_images(net, images, batch_size=n)
    steps = int(int8.steps_per_frame)
    gm = Int8Network(net.model, fields).graph_module((n, *images.shape[1:]))
    x = graph_inputs("spikedhs-cla", quantize_input(images.float(), fields))
    state, spikes = gm.init_state(x), dict.fromkeys(int8.neuron_rates, 0.0)
    with torch.no_grad():
        for _ in range(steps):
            values, state = gm.step_nodes(x, state)
            for name in spikes:
                spikes[name] += float(values[name].sum())
    for name, s in spikes.items():
        elements = n * steps * math.prod(gm.graph[name].shape)
        assert int8.neuron_rates[name] == pytest.approx(s / elements, rel=1e-12), name
    assert len(int8.neuron_rates) == 13 and int8.ac > 0
    assert int8.neuron_rates != fp32.neuron_rates and int8.ac != fp32.ac
    assert int8.mac == fp32.mac  # the real-valued layers (the image, the read-out) run densely either way


def test_energy_int8_refuses_a_nir_file_in_one_line(tmp_path):
    """A NIR file holds float weights (an int8 export its float relaxation): no integer spikes to count."""
    nir_file = tmp_path / "net.nir"
    nir_file.write_bytes(b"")
    assert_user_error(run_snnc("energy", nir_file, "--data", "digits", "--precision", "int8"), "--costs 45nm-int8")
