"""Adversarial recordings (issue 14, "silently wrong results" and "misdiagnoses" of recording data).

Each crafted file was accepted before and gave empty windows, a lost camera or
wrong units with exit 0. Now each is a one-line ``snnc: error:`` with exit 2
that names the file and the problem, and leaves no output file behind.
Synthetic ``snnc data synth`` recordings pass every check (the normal path).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from snnc.data import layout, sanity
from snnc.data.mvsec import MVSECRecording
from snnc.errors import SnncError

from _mvsec_h5 import T0, random_events, write_data, write_gt
from _stream_util import small_stereo_json
from cli_helpers import assert_user_error, expect_ok, run_snnc

H, W = 48, 64
N = 3000  # events per camera over 1 s


def _events(seed: int, n: int = N, **kw) -> np.ndarray:
    return random_events(np.random.default_rng(seed), n, height=H, width=W, **kw)


def _recording(
    tmp: Path,
    name: str,
    *,
    left: np.ndarray | None = None,
    right: np.ndarray | None = None,
    depth: np.ndarray | None = None,
    ts: np.ndarray | None = None,
    gt: bool = True,
    rect_maps: dict | None = None,
) -> Path:
    """A small recording in the real layout; any part can be replaced by a crafted one."""
    ev = {"left": _events(0) if left is None else left, "right": _events(1) if right is None else right}
    data = write_data(tmp / f"{name}_data.hdf5", ev, image_shape=(H, W), rect_maps=rect_maps)
    if gt:
        if ts is None:
            ts = T0 + np.linspace(0.1, 1.0, 10)
        if depth is None:
            depth = np.random.default_rng(2).uniform(1.0, 8.0, (len(ts), H, W)).astype(np.float32)
        write_gt(tmp / f"{name}_gt.hdf5", depth, ts)
    return data


def _refused(data: Path, tmp: Path, *fragments: str, stream: bool = False, where: Path | None = None) -> str:
    """``data info --plot`` (and with ``stream``: ``stream --out``) fail with the fragments; no output is left."""
    png = tmp / "never.png"
    err = assert_user_error(run_snnc("data", "info", data, "--plot", png), str(where or data), *fragments)
    assert not png.exists()
    if stream:
        out = tmp / "never.h5"
        proc = run_snnc(
            "stream", data, "--model", small_stereo_json(tmp), "--no-energy", "--quiet", "--threads", "1", "--out", out
        )
        assert_user_error(proc, str(where or data), *fragments)
        assert not out.exists() and not list(tmp.glob("*never.h5*"))
    return err


# --------------------------------------------------------------------------- the normal path
def test_synthetic_recording_passes_every_check(tmp_path):
    data = tmp_path / "s_data.hdf5"
    expect_ok(run_snnc("data", "synth", data, "--frames", "6", "--height", "48", "--width", "64", "--quiet"))
    summary = json.loads(expect_ok(run_snnc("data", "info", data, "--json")))
    checks = summary["checks"]
    assert checks["problems"] == "none"
    assert checks["depth_frames_in_events"] == "6 of 6"
    assert checks["cameras_overlap_s"] > 0.3
    for cam in layout.CAMERAS:
        t0, t1 = checks["time_ranges_s"][cam]
        assert t0 < checks["time_ranges_s"]["depth"][0] and t1 >= checks["time_ranges_s"]["depth"][1]
        sample = checks["event_sample"][cam]
        assert sample["off_sensor"] == 0 and 0 <= sample["dropped_fraction"] < 0.1
        assert sample["map_pixels_kept"] > 0.9
    assert summary["rectification"] == "maps embedded in the data file (left, right)"
    text = expect_ok(run_snnc("data", "info", data))
    assert "time_ranges_s" in text and "cameras_overlap_s" in text and "rect_dropped" in text


# --------------------------------------------------------------------------- event dtype and time units
def test_float32_events_collapse(tmp_path):
    data = _recording(tmp_path, "f32", left=_events(0).astype(np.float32), right=_events(1).astype(np.float32))
    err = _refused(data, tmp_path, "davis/left/events is float32", "collapse", stream=True)
    assert "128 s" in err  # the step of float32 at 1.5e9 s


def test_integer_microsecond_events(tmp_path):
    def micro(seed):
        ev = _events(seed)
        ev[:, 2] = np.round((ev[:, 2] - T0) * 1e6)
        return ev.astype(np.int64)

    data = _recording(tmp_path, "int_us", left=micro(0), right=micro(1), ts=np.linspace(1e5, 1e6, 10))
    _refused(data, tmp_path, "is int64", "integer timestamps (microseconds?)", stream=True)


def test_float_microsecond_events(tmp_path):
    def micro(seed):
        ev = _events(seed)
        ev[:, 2] *= 1e6  # ROS-epoch microseconds stored as float64
        return ev

    data = _recording(tmp_path, "f_us", left=micro(0), right=micro(1))
    _refused(data, tmp_path, "davis/left/events", "are not seconds", "microseconds")


# --------------------------------------------------------------------------- the two cameras
def test_right_camera_offset_in_time(tmp_path):
    data = _recording(tmp_path, "offset", right=_events(1, t0=T0 + 30.0))
    _refused(data, tmp_path, "clocks disagree", "right camera offset", stream=True)


def test_right_camera_empty(tmp_path):
    data = _recording(tmp_path, "noright", right=np.zeros((0, 4)))
    _refused(data, tmp_path, "the right camera has no events", stream=True)


# --------------------------------------------------------------------------- depth clock and units
def test_depth_clock_outside_the_events(tmp_path):
    data = _recording(tmp_path, "late", ts=T0 + 500.0 + np.linspace(0.1, 1.0, 10))
    _refused(
        data,
        tmp_path,
        "depth clock does not overlap the events",
        "0 of 10",
        stream=True,
        where=tmp_path / "late_gt.hdf5",
    )


def test_depth_clock_in_microseconds(tmp_path):
    data = _recording(tmp_path, "ts_us", ts=(T0 + np.linspace(0.1, 1.0, 10)) * 1e6)
    _refused(data, tmp_path, "are not seconds", "other time units", where=tmp_path / "ts_us_gt.hdf5")
    relative = _recording(tmp_path, "rel_us", ts=T0 + np.linspace(0.1, 1.0, 10) * 1e6)  # spacing 1e5 "s"
    _refused(relative, tmp_path, "depth images are a median", "other time units", where=tmp_path / "rel_us_gt.hdf5")


def test_depth_timestamps_float32(tmp_path):
    data = _recording(tmp_path, "ts32", ts=(T0 + np.linspace(0.1, 1.0, 10)).astype(np.float32))
    _refused(data, tmp_path, "depth_image_rect_ts is float32", "collapse", where=tmp_path / "ts32_gt.hdf5")


def test_depth_in_millimetres(tmp_path):
    depth_mm = np.random.default_rng(2).uniform(1000.0, 8000.0, (10, H, W)).astype(np.float32)
    data = _recording(tmp_path, "mm", depth=depth_mm)
    _refused(data, tmp_path, "median depth", "millimetres", stream=True, where=tmp_path / "mm_gt.hdf5")


# --------------------------------------------------------------------------- coordinates and rectification
def test_all_events_off_the_sensor(tmp_path):
    def off(seed):
        ev = _events(seed)
        ev[:, 0] += 1000.0
        return ev

    data = _recording(tmp_path, "offsensor", left=off(0), right=off(1))
    _refused(data, tmp_path, "lie off the 64x48 sensor", "at most 1%", stream=True)


def test_a_few_off_sensor_events_are_dropped_and_counted(tmp_path):
    ev = _events(0)
    ev[::400, 0] = W + 5  # 8 of 3000 events (0.27 %): dropped, counted, not an error
    data = _recording(tmp_path, "few", left=ev)
    summary = json.loads(expect_ok(run_snnc("data", "info", data, "--json")))
    assert summary["checks"]["event_sample"]["left"]["off_sensor"] == 8
    proc = run_snnc(
        "stream",
        data,
        "--model",
        small_stereo_json(tmp_path),
        "--no-energy",
        "--quiet",
        "--threads",
        "1",
        "--frames",
        "4",
        "--json",
    )
    doc = json.loads(expect_ok(proc))
    assert doc["windows"]["left"]["off_sensor"] > 0 and doc["windows"]["right"]["off_sensor"] == 0
    assert "off the sensor" in doc["windows_note"]


@pytest.mark.parametrize("bad", ["nan", "huge"])
def test_rectification_maps_that_drop_every_event(tmp_path, bad):
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    value = np.nan if bad == "nan" else 1e6
    maps = {cam: {"x": np.full_like(xx, value), "y": yy} for cam in layout.CAMERAS}
    data = _recording(tmp_path, f"rect_{bad}", rect_maps=maps)
    _refused(
        data, tmp_path, "left rectification maps keep 0.0% of the sensor pixels", "NaN or out-of-range", stream=True
    )


def test_rect_dir_wins_over_embedded_maps_and_is_printed(tmp_path):
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    embedded = {cam: {"x": xx, "y": yy} for cam in layout.CAMERAS}
    data = _recording(tmp_path, "both", rect_maps=embedded)
    calib = tmp_path / "calib"
    calib.mkdir()
    for cam in layout.CAMERAS:
        np.savetxt(calib / f"indoor_flying_{cam}_x_map.txt", xx + 1.0, fmt="%.3f")
        np.savetxt(calib / f"indoor_flying_{cam}_y_map.txt", yy, fmt="%.3f")
    text = expect_ok(run_snnc("data", "info", data, "--rect-dir", calib))
    assert f"txt maps from {calib} (--rect-dir; embedded maps ignored) (left, right)" in text
    with MVSECRecording(data, rect_dir=calib) as rec:
        assert rec.rect_maps("left")[0][0, 0] == pytest.approx(1.0) and rec.rect_source("right") == str(calib)
    with MVSECRecording(data) as rec:
        assert rec.rect_source("left") == "embedded"
    empty = tmp_path / "empty_calib"
    empty.mkdir()
    assert_user_error(run_snnc("data", "info", data, "--rect-dir", empty), str(empty), "no left_x_map.txt")
    proc = run_snnc(
        "stream",
        data,
        "--model",
        small_stereo_json(tmp_path),
        "--no-energy",
        "--quiet",
        "--threads",
        "1",
        "--frames",
        "2",
        "--rect-dir",
        calib,
    )
    assert "(--rect-dir; embedded maps ignored)" in expect_ok(proc)


@pytest.mark.parametrize("command", ["stream", "train", "energy", "data info"])
def test_every_reading_command_has_rect_dir_and_window_limit(command):
    out = expect_ok(run_snnc(*command.split(), "--help"))
    assert "--rect-dir" in out and "--max-window-events" in out


# --------------------------------------------------------------------------- empty windows
def _gappy(seed: int, gap: tuple[float, float], duration: float = 2.5) -> np.ndarray:
    ev = _events(seed, int(2400 * duration), duration=duration)
    t = ev[:, 2] - T0
    return ev[(t < gap[0]) | (t > gap[1])]


def test_run_of_empty_windows_stops_the_stream(tmp_path):
    ts = T0 + np.arange(1, 51) * 0.05  # 50 depth frames over 2.5 s
    data = _recording(
        tmp_path,
        "gap",
        left=_gappy(0, (0.5, 2.0)),
        right=_events(1, 6000, duration=2.5),
        ts=ts,
        depth=np.full((50, H, W), 3.0, np.float32),
    )
    _refused_stream = tmp_path / "gap_out.h5"
    proc = run_snnc(
        "stream",
        data,
        "--model",
        small_stereo_json(tmp_path),
        "--no-energy",
        "--quiet",
        "--threads",
        "1",
        "--out",
        _refused_stream,
    )
    assert_user_error(proc, str(data), "left camera: 20 consecutive windows", "no event on the frame")
    assert not _refused_stream.exists() and not list(tmp_path.glob("*gap_out.h5*"))


def test_all_empty_short_stream_is_an_error_not_metrics(tmp_path):
    ev = np.concatenate([_events(0, 300, duration=0.05), _events(1, 300, t0=T0 + 0.95, duration=0.05)])
    ev = ev[np.argsort(ev[:, 2], kind="stable")]
    data = _recording(
        tmp_path,
        "hollow",
        left=ev,
        right=ev.copy(),
        ts=T0 + np.array([0.3, 0.5, 0.7]),
        depth=np.full((3, H, W), 3.0, np.float32),
    )
    out = tmp_path / "hollow_out.h5"
    proc = run_snnc(
        "stream", data, "--model", small_stereo_json(tmp_path), "--no-energy", "--quiet", "--threads", "1", "--out", out
    )
    assert_user_error(proc, str(data), "left camera: all 3 windows have no event on the frame")
    assert not out.exists()


def test_partly_empty_stream_says_so_in_its_summary(tmp_path):
    ts = T0 + np.arange(1, 21) * 0.05
    data = _recording(
        tmp_path,
        "part",
        left=_gappy(0, (0.3, 0.6), 1.05),
        right=_events(1, 3000, duration=1.05),
        ts=ts,
        depth=np.full((20, H, W), 3.0, np.float32),
    )
    model = small_stereo_json(tmp_path)
    doc = json.loads(
        expect_ok(run_snnc("stream", data, "--model", model, "--no-energy", "--quiet", "--threads", "1", "--json"))
    )
    assert 4 <= doc["windows"]["left"]["empty_windows"] <= 6 and doc["windows"]["right"]["empty_windows"] == 0
    assert "empty windows left" in doc["windows_note"]
    text = expect_ok(run_snnc("stream", data, "--model", model, "--no-energy", "--quiet", "--threads", "1", "--quiet"))
    assert "empty windows left" in text and "of 20" in text


# --------------------------------------------------------------------------- per-window event limit
def _dense_window_file(tmp: Path, rows: int) -> Path:
    """``rows`` events per camera, all (x, y, t, p) = 1.0, as unwritten chunks with fill value 1: a few KB."""
    data = tmp / "dense_data.hdf5"
    with h5py.File(data, "w") as f:
        for cam in layout.CAMERAS:
            f.create_dataset(
                layout.events_key(cam),
                shape=(rows, 4),
                dtype=np.float64,
                chunks=(min(rows, 1 << 16), 4),
                fillvalue=1.0,
                compression="gzip",
            )
            f.create_dataset(layout.image_key(cam), data=np.zeros((1, H, W), np.uint8))
    write_gt(tmp / "dense_gt.hdf5", np.full((1, H, W), 3.0, np.float32), np.array([1.01]))
    return data


def test_window_limit_is_checked_before_reading(tmp_path):
    data = _dense_window_file(tmp_path, 50_000_000)
    assert data.stat().st_size < 200_000  # declares 5e7 events per camera (1.6 GB each)
    out = tmp_path / "dense_out.h5"
    t = time.perf_counter()
    proc = run_snnc(
        "stream", data, "--model", small_stereo_json(tmp_path), "--no-energy", "--quiet", "--threads", "1", "--out", out
    )
    assert_user_error(
        proc, str(data), "left camera: 50000000 events in the window", "more than --max-window-events 2000000"
    )
    assert not out.exists()
    assert time.perf_counter() - t < 60
    with MVSECRecording(data, max_window_events=10) as rec:
        with pytest.raises(SnncError, match="--max-window-events 10"):
            rec.events_between("left", 0.5, 1.5)
        assert rec.events_between("left", 1.0, 2.0).shape == (0, 4)


def test_window_limit_option_raises_the_bound(tmp_path):
    data = _dense_window_file(tmp_path, 3000)
    bad = run_snnc("data", "info", data, "--max-window-events", "0")  # click's usage error
    assert bad.returncode == 2 and "--max-window-events" in bad.stderr
    with MVSECRecording(data, max_window_events=3000) as rec:
        assert rec.events_between("left", 0.5, 1.5).shape == (3000, 4)


# --------------------------------------------------------------------------- honest messages
def test_missing_compression_filter_is_named(tmp_path):
    data = tmp_path / "blosc_data.hdf5"
    with h5py.File(data, "w") as f:
        for cam in layout.CAMERAS:
            ds = f.create_dataset(
                layout.events_key(cam),
                shape=(10, 4),
                chunks=(10, 4),
                dtype=np.float64,
                compression=32001,
                allow_unknown_filter=True,
            )
            ds.id.write_direct_chunk((0, 0), b"blosc-compressed bytes")
    err = assert_user_error(
        run_snnc("data", "info", data),
        str(data),
        "davis/left/events is compressed",
        "blosc, HDF5 filter id 32001",
        "pip install hdf5plugin",
    )
    assert "corrupt" not in err


def test_locked_file_says_locked(tmp_path):
    data = _recording(tmp_path, "locked")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import h5py, sys, time\nf = h5py.File(sys.argv[1], 'a')\nprint('open', flush=True)\ntime.sleep(60)",
            str(data),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        err = assert_user_error(run_snnc("data", "info", data), str(data), "locked by another program")
        assert "corrupt" not in err
    finally:
        holder.kill()
        holder.wait()


def test_loaded_gt_without_valid_depth_is_not_called_missing(tmp_path):
    data = _recording(tmp_path, "nangt", depth=np.full((10, H, W), np.nan, np.float32))
    text = expect_ok(
        run_snnc(
            "stream", data, "--model", small_stereo_json(tmp_path), "--no-energy", "--threads", "1", "--frames", "2"
        )
    )
    assert f"ground truth {tmp_path / 'nangt_gt.hdf5'} is loaded" in text and "no gt file" not in text


def test_thresholds_are_documented():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "STREAM_ENERGY.md").read_text()
    for value in (
        f"{sanity.CAMERA_SKEW_S:g} s",
        f"{sanity.MAX_OFF_SENSOR_FRACTION:.0%}",
        f"{sanity.MIN_RECT_KEEP:.0%}",
        "20 consecutive",
        "--max-window-events",
        "--rect-dir",
    ):
        assert value in doc, value


# --------------------------------------------------------------------------- train and energy read the same way
def test_train_refuses_depth_in_millimetres_and_writes_no_model(tmp_path):
    depth_mm = np.random.default_rng(2).uniform(1000.0, 8000.0, (10, H, W)).astype(np.float32)
    data = _recording(tmp_path, "trainmm", depth=depth_mm)
    run = tmp_path / "run"
    proc = run_snnc(
        "train",
        "--arch",
        "spikedhs-stereo",
        "--data",
        data,
        "--width",
        "2",
        "--steps",
        "2",
        "--epochs",
        "1",
        "--out",
        run,
        "--quiet",
        "--threads",
        "1",
    )
    assert_user_error(proc, str(tmp_path / "trainmm_gt.hdf5"), "millimetres")
    assert not list(run.glob("*.pt")) and not (run / "metrics.json").exists()


def test_energy_refuses_an_empty_right_camera(tmp_path):
    data = _recording(tmp_path, "energy_noright", right=np.zeros((0, 4)))
    png = tmp_path / "energy.png"
    proc = run_snnc("energy", small_stereo_json(tmp_path), "--data", data, "--frames", "2", "--plot", png)
    assert_user_error(proc, str(data), "the right camera has no events")
    assert not png.exists()
