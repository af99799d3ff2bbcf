"""Streaming engine and backends on tiny recordings (48 x 64, 6 frames) and a small stereo net."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from snnc.data.metrics import METRIC_NAMES
from snnc.data.mvsec import MVSECRecording
from snnc.errors import SnncError
from snnc.runtime import make_backend
from snnc.runtime.engine import StreamEngine
from snnc.runtime.frames import STREAM_HZ, frame_times, iter_frames
from snnc.runtime.model import load_network

from _mvsec_h5 import write_recording
from _stream_util import small_stereo_json, stream_files

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return stream_files(tmp_path_factory.mktemp("stream"), frames=6)


def stream(files, backend: str, spec=None, data=None, **kw):
    net = load_network(str(spec or files["ckpt"]))
    be = make_backend(backend, net, CPU)
    engine = StreamEngine(net, be, **kw)
    try:
        with MVSECRecording(data or files["data"]) as rec:
            times, clock = frame_times(rec)
            results = list(engine.run(rec, times, with_gt=clock == "gt"))
    finally:
        be.close()
    return results, engine


@pytest.fixture(scope="module")
def torch_run(files):
    return stream(files, "torch")


@pytest.fixture(scope="module")
def onnx_run(files):
    """One onnx-backend stream (a stereo ONNX export, the suite's costly step) for every test that reads one."""
    pytest.importorskip("onnxruntime")
    return stream(files, "onnx")


def test_torch_stream_gives_disparity_energy_and_metrics(torch_run):
    results, engine = torch_run
    assert [r.index for r in results] == list(range(6))
    for r in results:
        assert r.disparity.shape == (48, 64) and r.disparity.dtype == np.float32
        assert np.isfinite(r.disparity).all() and r.disparity.min() >= 0 and r.disparity.max() <= 8 * 2 / 7 + 1e-5
        assert r.ac > 0 and r.mac == 0 and r.energy_j == pytest.approx(r.ac * 0.9e-12)
        assert set(METRIC_NAMES) <= set(r.metrics) and r.gt_depth is not None
    s = engine.summary
    assert s.frames == 6 and s.ac == pytest.approx(sum(r.ac for r in results))
    assert s.energy is not None and not s.energy.silent
    assert s.energy.ac == pytest.approx(s.ac / 6)  # per-frame numbers and the total come from one pass
    assert 0 <= s.metrics["one_pixel_accuracy"] <= 1 and s.metrics["frames_used"] == 6
    assert engine.energy_mode == "step outputs"  # from the spikes in the state the step returns: no hooks


def test_state_is_carried_across_frames(files, torch_run):
    """Streaming frame by frame equals the fixed-window forward over the same stacks."""
    results, _ = torch_run
    net = load_network(str(files["ckpt"]))
    with MVSECRecording(files["data"]) as rec:
        times, _ = frame_times(rec)
        xs = torch.stack([torch.from_numpy(f.x).float()[None] for f in iter_frames(rec, times, with_gt=False)])
    with torch.no_grad():
        costs = net.model(xs)
    disp = net.model.estimate(costs[-1])[0].numpy() / 7.0
    assert np.abs(disp - results[-1].disparity).max() < 1e-5
    with torch.no_grad():  # from rest, the last frame alone gives another answer
        alone = net.model.estimate(net.model(xs[-1:])[0])[0].numpy() / 7.0
    assert np.abs(alone - results[-1].disparity).max() > 1e-3


def test_onnx_backend_matches_torch(onnx_run, torch_run):
    results, engine = onnx_run
    ref = torch_run[0]
    assert engine.energy_mode == "step outputs"  # counted from the spikes in the state outputs: no torch pass
    for a, b in zip(ref, results, strict=False):
        assert np.abs(a.disparity - b.disparity).max() <= 1e-4
        assert a.ac == pytest.approx(b.ac)  # the same numbers as the torch hooks on the running network


def test_hybrid_backend_matches_torch_and_splits_energy(files, torch_run):
    pytest.importorskip("onnxruntime")
    net = load_network(str(files["ckpt"]))
    be = make_backend("hybrid", net, CPU)
    engine = StreamEngine(net, be)
    with MVSECRecording(files["data"]) as rec:
        times, _ = frame_times(rec, limit=3)
        results = list(engine.run(rec, times, with_gt=True))
    parts = be.energy_parts(engine.summary.energy)
    placement = be.placement()
    be.close()
    for a, b in zip(torch_run[0], results, strict=False):
        assert np.abs(a.disparity - b.disparity).max() <= 1e-4
    assert [p["part"] for p in parts] == ["front", "rest"]
    assert sum(p["ac"] for p in parts) == pytest.approx(engine.summary.energy.ac)
    assert parts[0]["layers"] >= 1 and "3-D" not in placement[0]["runs_on"]
    assert "no NIR node type" in placement[1]["cut_after"]


@pytest.mark.lava
def test_lava_backend_runs_stem_in_lava_within_tolerance(files):
    """The Lava part (feature.stem0) agrees with float torch on >= 99.5 % of its spike positions."""
    pytest.importorskip("lava")
    results, _engine = stream(files, "lava", energy=False)
    assert [r.index for r in results] == list(range(6))  # one frame of latency, flushed at the end
    assert all(np.isfinite(r.disparity).all() for r in results)
    net = load_network(str(files["ckpt"]))
    be = make_backend("lava", net, CPU)
    stem0 = net.model.feature.stem0
    with MVSECRecording(files["data"]) as rec:
        times, _ = frame_times(rec, limit=3)
        xs = [torch.from_numpy(f.x).float()[None] for f in iter_frames(rec, times, with_gt=False)]
    try:
        be.reset(xs[0])
        outs = [be._lava_step(x) for x in xs] + [be._lava_step(None)]
        assert be.placement()[0]["layers"] == ["feature.stem0.conv"]
        w, pad = be._width, be._pad
    finally:
        be.close()
    state = None
    with torch.no_grad():
        for k, x in enumerate(xs):
            current = stem0.conv(x[0])
            state = stem0.neuron.init_state(current) if state is None else state
            ref, state = stem0.neuron(current, state)
            lava = np.stack([outs[k + 1][:, :, :w], outs[k + 1][:, :, w + pad : 2 * w + pad]])
            assert (lava == ref.numpy()).mean() >= 0.995
            assert ref.sum() > 0


def test_plain_h5py_recording_streams_and_no_gt_uses_20hz_clock(tmp_path, files):
    """A real-layout file written with plain h5py (tests/_mvsec_h5.py) streams unchanged."""
    data = write_recording(tmp_path, "real", n=3000, n_depth=3, height=48, width=64, duration=0.3)
    results, engine = stream(files, "torch", data=data)
    assert len(results) == 3 and engine.summary.metrics["frames_total"] == 3
    nogt = write_recording(tmp_path, "nogt", n=3000, height=48, width=64, duration=0.3, gt=False)
    with MVSECRecording(nogt) as rec:
        times, clock = frame_times(rec)
        t0, t1 = rec.time_range()
    assert clock == "20 Hz" and times[0] == pytest.approx(t0 + 0.05)
    assert len(times) == math.floor((t1 - t0 - 0.05) * STREAM_HZ + 1e-9) + 1
    assert np.allclose(np.diff(times), 1 / STREAM_HZ)
    results, engine = stream(files, "torch", data=nogt)
    assert len(results) == len(times) and all(r.metrics is None for r in results)


def test_event_windows_are_read_one_window_at_a_time(files, monkeypatch):
    calls = []
    orig = MVSECRecording.events_between

    def spy(self, camera, t0, t1):
        calls.append(t1 - t0)
        return orig(self, camera, t0, t1)

    monkeypatch.setattr(MVSECRecording, "events_between", spy)
    with MVSECRecording(files["data"]) as rec:
        times, _ = frame_times(rec)
        frames = list(iter_frames(rec, times, with_gt=True))
    assert len(calls) == 2 * len(frames) and max(calls) == pytest.approx(0.05)


def test_empty_event_windows_give_valid_zero_frames(tmp_path, files):
    from _mvsec_h5 import T0, random_events, write_data, write_gt

    rng = np.random.default_rng(0)
    ev = random_events(rng, 500, duration=0.1, height=48, width=64)
    late = random_events(rng, 100, t0=T0 + 0.95, duration=0.05, height=48, width=64)  # the depth clock overlaps
    ev = np.concatenate([ev, late])  # the events (issue 14 check), with a gap of empty windows in between
    data = write_data(tmp_path / "gap_data.hdf5", {"left": ev, "right": ev.copy()}, image_shape=(48, 64))
    depth = np.full((3, 48, 64), 2.0, np.float32)
    write_gt(tmp_path / "gap_gt.hdf5", depth, T0 + np.array([0.1, 0.5, 0.9]))  # 2 windows without events
    results, _ = stream(files, "torch", data=data)
    assert [r.events for r in results][1:] == [(0, 0), (0, 0)]
    assert all(np.isfinite(r.disparity).all() and r.metrics is not None for r in results)


def test_model_data_mismatch_is_one_line_error(tmp_path, files):
    net = load_network("sequential-dvs")
    with pytest.raises(SnncError, match="cannot stream stereo"):
        StreamEngine(net, make_backend("torch", net, CPU))
    bad = load_network(str(small_stereo_json(tmp_path, in_channels=4)))
    with pytest.raises(SnncError, match="takes 4 SBT frames"):
        StreamEngine(bad, make_backend("torch", bad, CPU))


def test_engine_is_reusable_runs_start_afresh(files, torch_run):
    """A second run of the same engine gives the same frames, energy and summary as the first."""
    first, _ = torch_run
    net = load_network(str(files["ckpt"]))
    be = make_backend("torch", net, CPU)
    engine = StreamEngine(net, be)
    try:
        runs = []
        for _ in range(2):
            with MVSECRecording(files["data"]) as rec:
                times, clock = frame_times(rec)
                results = list(engine.run(rec, times, with_gt=clock == "gt"))
                s = engine.summary
                runs.append(
                    (results, (s.frames, s.ac, s.mac, s.energy_j, s.metrics, s.energy.energy_j, s.energy.frames))
                )
    finally:
        be.close()
    (a, sa), (b, sb) = runs
    assert len(a) == len(b) == len(first)
    for x, y, z in zip(a, b, first, strict=False):
        assert np.array_equal(x.disparity, y.disparity) and np.array_equal(x.disparity, z.disparity)
        assert x.energy_j == y.energy_j == z.energy_j and x.ac == y.ac
    assert sa == sb and sa[0] == len(first)


def test_fps_is_wall_time_with_energy_counting_and_onnx_threads_do_not_spin(onnx_run):
    _, engine = onnx_run
    s = engine.summary
    assert engine.energy_mode == "step outputs" and s.energy_s > 0  # no second pass: the deferred counting
    assert s.fps == pytest.approx(s.frames / (s.read_s + s.infer_s + s.energy_s))
    assert s.infer_fps > s.fps
    from snnc.export.ort_options import session_options

    assert session_options(2).get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert session_options(2).intra_op_num_threads == 2
    one = session_options(1)
    assert one.intra_op_num_threads == 1
    with pytest.raises(RuntimeError, match="does not have configuration with key"):  # default spinning for 1 thread
        one.get_session_config_entry("session.intra_op.allow_spinning")
