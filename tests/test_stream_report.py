"""The stream's summary and results-file attributes (snnc.runtime.stream_report), from a real engine run."""

from __future__ import annotations

import math

import pytest
import torch

from snnc.data.mvsec import MVSECRecording
from snnc.data.synth import synthesize
from snnc.energy.costs import resolve_costs
from snnc.runtime import make_backend
from snnc.runtime.engine import StreamEngine
from snnc.runtime.frames import frame_times
from snnc.runtime.model import load_network
from snnc.runtime.stream_report import StreamSetup, result_attrs, stream_summary

from _stream_util import active_checkpoint

#: The summary's keys in order (``snnc stream --json`` prints them so; energy keys only with energy on).
HEAD = [
    "frames",
    "fps",
    "infer_fps",
    "energy_j_per_frame",
    "ac_per_frame",
    "mac_per_frame",
    "mean_disparity_error",
    "mean_depth_error",
    "median_depth_error",
    "one_pixel_accuracy",
    "frames_with_gt",
    "backend",
    "device",
    "model",
    "trained",
    "clock",
    "t_first",
    "t_last",
    "energy_count",
    "ac_count",
    "energy_model",
    "energy_costs",
    "read_s",
    "infer_s",
    "energy_s",
    "wall_s",
    "placement",
    "out",
]
ENERGY = ["spike_input_rate", "silent", "ann_energy_j_per_frame"]
TAIL = ["precision", "check", "gt_file", "rectification", "windows", "windows_note"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The small active stereo net streamed over 3 frames, energy on and off: (engine, setup, rec, times, frames)."""
    tmp = tmp_path_factory.mktemp("stream_report")
    data, _ = synthesize(tmp / "tiny_data.hdf5", frames=3, height=32, width=48, progress=False)
    net = load_network(str(active_checkpoint(tmp)))
    costs = resolve_costs("45nm-fp32")
    out = {}
    with MVSECRecording(data) as rec:
        times, clock = frame_times(rec)
        for energy in (True, False):
            be = make_backend("torch", net, torch.device("cpu"))
            engine = StreamEngine(net, be, energy=energy, costs=costs)
            frames = list(engine.run(rec, times, with_gt=clock == "gt"))
            setup = StreamSetup(data, "torch", "cpu", clock, costs, out_file=tmp / "r.h5" if energy else None)
            out[energy] = (engine, setup, rec, times, frames)
    return out


def test_summary_totals_come_from_the_frames_in_schema_order(runs):
    engine, setup, rec, times, frames = runs[True]
    s = stream_summary(engine, setup, rec, times, wall_s=1.5, check={"reference": "onnx"})
    assert list(s) == HEAD + ENERGY + TAIL
    assert s["frames"] == len(frames) == 3 and s["clock"] == "gt" and s["frames_with_gt"] == 3
    assert s["energy_j_per_frame"] == pytest.approx(sum(r.energy_j for r in frames) / 3) and s["energy_j_per_frame"] > 0
    assert s["ac_per_frame"] == pytest.approx(sum(r.ac for r in frames) / 3)
    mean_1pa = sum(r.metrics["one_pixel_accuracy"] for r in frames) / 3
    assert s["one_pixel_accuracy"] == pytest.approx(mean_1pa)
    assert (s["t_first"], s["t_last"]) == (float(times[0]), float(times[-1]))
    assert (
        s["energy_count"] == engine.energy_mode != "off"
        and s["ac_count"] == "rate"
        and s["energy_costs"] == "45nm-fp32"
    )
    assert s["placement"] == engine.backend.placement() and s["out"] == str(setup.out_file)
    assert s["wall_s"] == 1.5 and s["check"] == {"reference": "onnx"} and s["silent"] is False
    assert s["gt_file"] == str(rec.gt_path) and s["windows"]["windows"] == 3
    assert s["fps"] == pytest.approx(3 / sum(r.read_s + r.infer_s + r.energy_s for r in frames))


def test_summary_without_energy_has_no_energy_numbers_and_a_video_last(runs, tmp_path):
    engine, setup, rec, times, _ = runs[False]
    s = stream_summary(engine, setup, rec, times, wall_s=0.5, video=(tmp_path / "v.mp4", 3))
    assert list(s) == HEAD + TAIL + ["video", "video_frames"]
    assert s["energy_j_per_frame"] is s["ac_per_frame"] is s["mac_per_frame"] is s["ac_count"] is None
    assert s["energy_count"] == "off" and s["out"] is None and s["check"] is None
    assert (s["video"], s["video_frames"]) == (str(tmp_path / "v.mp4"), 3)


def test_summary_without_ground_truth_reports_no_metrics(runs):
    engine, setup, rec, times, _ = runs[False]
    s = stream_summary(engine, StreamSetup(setup.data_file, "torch", "cpu", "20 Hz", setup.costs), rec, times, wall_s=1)
    assert s["frames_with_gt"] == 0 and s["clock"] == "20 Hz"
    assert all(s[k] is None for k in ("mean_disparity_error", "mean_depth_error", "one_pixel_accuracy"))


def test_result_attrs_name_the_run(runs):
    on, off = runs[True], runs[False]
    attrs = result_attrs(on[0], on[1], on[2])
    assert list(attrs) == [
        "disparity_units",
        "model",
        "backend",
        "device",
        "clock",
        "data_file",
        "gt_file",
        "fb",
        "disparity_scale",
        "energy_costs",
        "energy_count",
        "energy_model",
        "precision",
    ]
    assert attrs["energy_count"] == "rate" and result_attrs(off[0], off[1], off[2])["energy_count"] == "off"
    assert attrs["energy_costs"]["name"] == "45nm-fp32" and math.isclose(attrs["disparity_scale"], 7.0)
    assert attrs["data_file"] == str(on[1].data_file) and attrs["gt_file"] == str(on[2].gt_path)
    assert "unscaled" in attrs["disparity_units"] and attrs["model"] == on[0].net.describe()
