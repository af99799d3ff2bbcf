"""``snnc data info`` / ``snnc data synth`` as a user runs them, good and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from snnc.data import layout

from _mvsec_h5 import random_events, write_data, write_gt, write_recording
from cli_helpers import assert_user_error, expect_ok, run_snnc


def test_info_prints_summary_and_json(tmp_path: Path) -> None:
    data = write_recording(tmp_path, n=3000, n_depth=6)
    out = expect_ok(run_snnc("data", "info", data))
    assert "events" in out and "disparity_hist" in out and "3000" in out
    summary = json.loads(expect_ok(run_snnc("data", "info", data, "--json")))
    assert summary["cameras"]["left"]["events"] == 3000
    assert summary["depth"]["frames"] == 6


def test_info_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope_data.hdf5"
    assert_user_error(run_snnc("data", "info", missing), str(missing), "not found")


def test_info_not_hdf5(tmp_path: Path) -> None:
    bad = tmp_path / "junk_data.hdf5"
    bad.write_bytes(b"this is not an hdf5 file" * 10)
    assert_user_error(run_snnc("data", "info", bad), str(bad), "HDF5")


def test_info_truncated_hdf5(tmp_path: Path) -> None:
    data = write_recording(tmp_path, n=5000)
    raw = data.read_bytes()
    data.write_bytes(raw[: len(raw) // 3])
    assert_user_error(run_snnc("data", "info", data), str(data))


def test_info_without_events_dataset(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    data = write_data(tmp_path / "a_data.hdf5", {"left": None, "right": random_events(rng, 100)})
    assert_user_error(run_snnc("data", "info", data), str(data), "davis/left/events")


def test_info_events_with_wrong_column_count(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    ev = random_events(rng, 100)
    bad = np.concatenate([ev, np.zeros((100, 1))], axis=1)
    data = write_data(tmp_path / "b_data.hdf5", {"left": bad, "right": ev})
    assert_user_error(run_snnc("data", "info", data), str(data), "5 columns", "expected 4")


def test_info_unsorted_timestamps(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    ev = random_events(rng, 1000)
    shuffled = ev.copy()
    shuffled[[10, 500]] = shuffled[[500, 10]]
    data = write_data(tmp_path / "c_data.hdf5", {"left": ev, "right": shuffled})
    assert_user_error(run_snnc("data", "info", data), str(data), "sorted")


def test_info_gt_of_another_resolution(tmp_path: Path) -> None:
    data = write_recording(tmp_path, name="d", gt=False)
    depth = np.ones((3, 100, 120), np.float32)
    write_gt(tmp_path / "d_gt.hdf5", depth, 1.5e9 + np.arange(3) * 0.05)
    err = assert_user_error(run_snnc("data", "info", data), "d_gt.hdf5")
    assert "100x120" in err


def test_info_nan_depth_everywhere_is_reported_not_crashing(tmp_path: Path) -> None:
    data = write_recording(tmp_path, name="e", gt=False)
    write_gt(
        tmp_path / "e_gt.hdf5",
        np.full((4, layout.HEIGHT, layout.WIDTH), np.nan, np.float32),
        1.5e9 + 0.1 + np.arange(4) * 0.05,
    )
    summary = json.loads(expect_ok(run_snnc("data", "info", data, "--json")))
    assert summary["depth"]["valid_fraction"] == 0.0


def test_synth_then_info_then_refuse_overwrite(tmp_path: Path) -> None:
    data = tmp_path / "s_data.hdf5"
    expect_ok(run_snnc("data", "synth", data, "--frames", "4", "--height", "48", "--width", "64", "--quiet"))
    gt = tmp_path / "s_gt.hdf5"
    with h5py.File(data, "r") as f, h5py.File(gt, "r") as g:  # real layout, plain h5py
        assert f["davis/left/events"].shape[1] == 4 and f["davis/right/events"].dtype == np.float64
        assert g["davis/left/depth_image_rect"].shape == (4, 48, 64)
    png = tmp_path / "s.png"
    summary = json.loads(expect_ok(run_snnc("data", "info", data, "--json", "--plot", png)))
    assert summary["depth"]["frames"] == 4 and summary["cameras"]["left"]["events"] > 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert_user_error(run_snnc("data", "info", data, "--plot", png), str(png), "--force")
    before = data.read_bytes()
    assert_user_error(
        run_snnc("data", "synth", data, "--frames", "4", "--height", "48", "--width", "64"), str(data), "--force"
    )
    assert data.read_bytes() == before


def test_synth_rejects_bad_name_and_arguments(tmp_path: Path) -> None:
    assert_user_error(run_snnc("data", "synth", tmp_path / "s.hdf5", "--frames", "2"), "_data.hdf5")
    assert_user_error(run_snnc("data", "synth", tmp_path / "t_data.hdf5", "--frames", "0"), "frames")
    assert not (tmp_path / "t_data.hdf5").exists()
