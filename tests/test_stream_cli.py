"""``snnc stream`` as a user runs it: results.h5, JSON, tables, PNGs and one-line errors."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from snnc.data.synth import synthesize

from _stream_util import active_checkpoint, small_stereo_json
from cli_helpers import assert_user_error, expect_ok, run_snnc


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stream_cli")
    data, _ = synthesize(tmp / "tiny_data.hdf5", frames=6, height=48, width=64, progress=False)
    return {"data": data, "ckpt": active_checkpoint(tmp), "genotype": small_stereo_json(tmp), "tmp": tmp}


def test_stream_writes_results_pngs_and_tables(files):
    tmp = files["tmp"]
    out, pngs = tmp / "results.h5", tmp / "pngs"
    stdout = expect_ok(
        run_snnc(
            "stream",
            files["data"],
            "--model",
            files["ckpt"],
            "--out",
            out,
            "--png-dir",
            pngs,
            "--png-every",
            "2",
            "--threads",
            "1",
        )
    )
    assert "MDE cm" in stdout and "1PA" in stdout and "energy per frame" in stdout and "nearly silent" not in stdout
    assert len([line for line in stdout.splitlines() if line.strip()[:1].isdigit()]) >= 6  # per-frame rows
    with h5py.File(out, "r") as f:
        summary = json.loads(f.attrs["summary"])
        assert f["disparity"].shape == (6, 48, 64) and f["disparity"].dtype == np.float32
        assert "unscaled" in f["disparity"].attrs["units"]
        assert f["timestamps"].shape == (6,) and f["timestamps"].dtype == np.float64
        assert np.all(np.diff(f["timestamps"][()]) > 0)
        for name in (
            "ac",
            "mac",
            "energy_j",
            "mean_disparity_error",
            "mean_depth_error",
            "median_depth_error",
            "one_pixel_accuracy",
            "n_valid",
            "gt_index",
        ):
            assert f[name].shape == (6,), name
        assert f["energy_j"][()].mean() == pytest.approx(summary["energy_j_per_frame"])
        assert f["one_pixel_accuracy"][()].mean() == pytest.approx(summary["one_pixel_accuracy"])
    assert summary["frames"] == 6 and summary["fps"] > 0 and summary["energy_j_per_frame"] > 0
    for name in ("mean_disparity_error", "mean_depth_error", "median_depth_error", "one_pixel_accuracy"):
        assert isinstance(summary[name], float)
    assert sorted(p.name for p in pngs.iterdir()) == ["frame_000000.png", "frame_000002.png", "frame_000004.png"]
    assert_user_error(run_snnc("stream", files["data"], "--model", files["ckpt"], "--out", out), "exists", "--force")


@pytest.mark.lava
def test_stream_json_is_one_object_even_with_lava_and_says_silent(files):
    proc = run_snnc(
        "stream",
        files["data"],
        "--model",
        files["genotype"],
        "--backend",
        "lava",
        "--frames",
        "2",
        "--json",
        "--threads",
        "1",
    )
    summary = json.loads(expect_ok(proc))  # Lava's import notices must not leak into stdout
    assert summary["frames"] == 2 and summary["silent"] is True and summary["backend"] == "lava"
    assert [p["part"] for p in summary["placement"]] == ["lava", "cpu"]
    assert [p["part"] for p in summary["energy_parts"]] == ["lava", "cpu"]


def test_stream_bad_input_gives_one_line_errors(files, tmp_path):
    assert_user_error(
        run_snnc("stream", tmp_path / "missing_data.hdf5", "--model", files["ckpt"]), "missing_data.hdf5", "not found"
    )
    assert_user_error(run_snnc("stream", files["data"], "--model", "sequential-dvs"), "cannot stream stereo")
    assert_user_error(run_snnc("stream", files["data"], "--model", tmp_path / "nope.pt"), "nope.pt", "not found")
