"""``--backend openvino``: the streaming ONNX file compiled by OpenVINO, proved against stock onnxruntime."""

from __future__ import annotations

import json
import sys

import h5py
import numpy as np
import pytest
import torch

from _export_reuse import reuse_exports
from snnc.data.mvsec import MVSECRecording
from snnc.data.sbt import DEFAULT_N_FRAMES
from snnc.errors import SnncError
from snnc.runtime import make_backend
from snnc.runtime.engine import StreamEngine
from snnc.runtime.frames import frame_times
from snnc.runtime.model import load_network

from _export_util import small_genotype, write_genotype
from _stream_util import stream_files
from cli_helpers import assert_user_error, expect_ok, run_snnc

pytest.importorskip("openvino")
ort = pytest.importorskip("onnxruntime")

CPU = torch.device("cpu")
STEPS = 5


@pytest.fixture(scope="module", autouse=True)
def exports():
    """The per-layer test's export is the CLI stream's too (same net, shape, energy taps): traced once
    (tests/_export_reuse)."""
    with reuse_exports() as ledger:
        yield ledger


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return stream_files(tmp_path_factory.mktemp("openvino"), frames=5)


def test_spikes_per_layer_equal_onnxruntime_on_the_same_file(files, tmp_path):
    """Every layer's spikes at every step: OpenVINO == onnxruntime running the file the backend wrote (the
    firing stream checkpoint at the recording's frame shape, counting energy as ``snnc stream`` does)."""
    from snnc.energy.costs import resolve_costs
    from snnc.runtime.openvino_backend import OpenVinoBackend

    net = load_network(str(files["ckpt"])).model
    with MVSECRecording(files["data"]) as rec:  # the CLI's frames: 2 cameras x DEFAULT_N_FRAMES SBT bins
        shape = (1, 2, DEFAULT_N_FRAMES, rec.height, rec.width)
    x = torch.randint(-1, 2, (STEPS, *shape), generator=torch.Generator().manual_seed(0)).float()
    path = tmp_path / "stream.onnx"
    be = OpenVinoBackend(net, CPU, threads=1, onnx_path=path)
    meter = be.activity_meter(costs=resolve_costs("45nm-fp32"), count="rate", energy_model="paper")
    be.reset(x[0])
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    names = json.loads(meta["snnc.state_names"])
    assert be.state_names == names  # read from the file, not assumed
    ins = [i.name for i in sess.get_inputs()]
    state = [np.zeros(s, dtype=np.float32) for s in json.loads(meta["snnc.state_shapes"])]
    spike_layers = [k for k, n in enumerate(names) if n.endswith(".y")]
    assert len(spike_layers) >= 10
    mismatches, spikes, dy, du = 0, 0, 0.0, 0.0
    for t in range(STEPS):
        y_ov = be.step(x[t]).numpy()
        out = sess.run(None, {ins[0]: x[t].numpy(), **dict(zip(ins[1:], state, strict=True))})
        y_ort, state = out[0], out[1:]
        dy = max(dy, float(np.abs(y_ov - y_ort).max()))
        for k, (a, b) in enumerate(zip(be.state, state, strict=True)):
            if k in spike_layers:
                mismatches += int((a != b).sum())
                spikes += int(b.sum())
            else:
                du = max(du, float(np.abs(a - b).max()))
        meter.frame()
    be.close()
    assert spikes > 10_000, "the test net must fire"
    assert mismatches == 0
    assert dy < 1e-5 and du < 1e-5


@pytest.fixture(scope="module")
def cli_run(files):
    """``snnc stream --backend openvino`` run once: its JSON summary and results.h5's per-frame disparity and ACs."""
    out = files["tmp"] / "openvino_results.h5"
    text = expect_ok(
        run_snnc(
            "stream",
            files["data"],
            "--model",
            files["ckpt"],
            "--backend",
            "openvino",
            "--threads",
            "1",
            "--json",
            "--out",
            out,
        )
    )
    with h5py.File(out, "r") as f:
        return json.loads(text.strip().splitlines()[-1]), f["disparity"][()], f["ac"][()]


def test_disparity_and_energy_equal_the_onnx_backend(files, cli_run):
    """The openvino stream (the CLI's results.h5) frame by frame against the onnx backend run through the engine."""
    net = load_network(str(files["ckpt"]))
    be = make_backend("onnx", net, CPU, threads=1)
    engine = StreamEngine(net, be)
    try:
        with MVSECRecording(files["data"]) as rec:
            times, clock = frame_times(rec)
            ref = list(engine.run(rec, times, with_gt=clock == "gt"))
        assert engine.energy_mode == "step outputs"
    finally:
        be.close()
    summary, disparity, ac = cli_run
    assert summary["energy_count"] == "step outputs"  # counted from the spikes each step returns: no torch pass
    assert len(ref) == disparity.shape[0] == len(ac) == 5
    for k, a in enumerate(ref):
        assert np.abs(a.disparity - disparity[k]).max() <= 1e-5
        assert ac[k] == pytest.approx(a.ac) and ac[k] > 0
    assert summary["one_pixel_accuracy"] == pytest.approx(engine.summary.metrics["one_pixel_accuracy"])
    assert "OpenVINO" in summary["placement"][0]["runs_on"] and "fp32" in summary["placement"][0]["runs_on"]


def test_threads_and_fp32_reach_the_compiled_model(tmp_path):
    """--threads is OpenVINO's INFERENCE_NUM_THREADS; precision is pinned to f32 (bf16 is the default on AMX CPUs).

    Properties of the compiled model, whatever the network: a small classifier compiles in about a second.
    """
    import openvino as ov

    net = load_network(str(write_genotype(small_genotype("sequential-dvs", image_size=16), tmp_path / "seq.json")))
    be = make_backend("openvino", net, CPU, threads=2)
    try:
        be.reset(torch.zeros(1, 2, 16, 16))
        assert int(be._session.get_property("INFERENCE_NUM_THREADS")) == 2
        assert be._session.get_property("INFERENCE_PRECISION_HINT") == ov.Type.f32
        assert be.step(torch.ones(1, 2, 16, 16)).shape == (1, 10)
    finally:
        be.close()


def test_cli_streams_with_openvino(cli_run):
    summary = cli_run[0]
    assert summary["backend"] == "openvino" and summary["frames"] == 5
    assert "OpenVINO" in summary["placement"][0]["runs_on"] and "threads 1" in summary["placement"][0]["runs_on"]


def test_missing_openvino_is_refused_in_one_line(files, monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino -> ImportError
    assert_user_error(
        run_snnc("stream", files["data"], "--model", files["ckpt"], "--backend", "openvino", "--frames", "1"),
        "needs the openvino package",
    )


def test_cuda_device_is_refused_for_openvino():
    net = load_network("spikedhs-stereo")
    with pytest.raises(SnncError, match="runs on the CPU"):
        make_backend("openvino", net, torch.device("cuda"))
