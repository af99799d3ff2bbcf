"""``snnc demo --quick``: the whole pipeline runs end to end and leaves every artefact."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from snnc.commands.demo import write_heldout_gt
from snnc.data import layout
from snnc.data.mvsec import MVSECRecording
from snnc.data.synth import synthesize
from snnc.energy.units import format_energy

from cli_helpers import assert_user_error, expect_ok, run_snnc

ARTEFACTS = (
    "synthetic_data.hdf5",
    "synthetic_gt.hdf5",
    "recording.png",
    "heldout_gt.hdf5",
    "stereo_genotype.json",
    "train/checkpoint.pt",
    "train/folded.pt",
    "train/metrics.json",
    "stereo_partition.json",
    "stereo_partition.front.nir",
    "stereo.onnx",
    "results.h5",
    "energy.png",
    "energy.json",
)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    proc = run_snnc("demo", "--out", out, "--quick", "--threads", "1", timeout=600)  # one core per test worker
    return out, expect_ok(proc)


@pytest.mark.slow
def test_demo_quick_writes_every_artefact_and_a_summary(demo_run):
    out, stdout = demo_run
    for name in ARTEFACTS:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert list((out / "disparity_png").glob("frame_*.png"))
    assert "== snnc demo summary ==" in stdout
    for stage in ("synthesize", "search", "train", "export", "stream", "energy", "total"):
        assert any(line.startswith(stage) for line in stdout.splitlines()), stage
    assert "constant-median baseline" in stdout and "fps" in stdout
    metrics = json.loads((out / "train" / "metrics.json").read_text())
    assert metrics["baseline"]["frames_used"] == metrics["frames_used"] > 0
    manifest = json.loads((out / "stereo_partition.json").read_text())
    for piece in manifest["pieces"]:
        assert (out / piece["file"]).is_file()
    with h5py.File(out / "results.h5", "r") as f, h5py.File(out / "heldout_gt.hdf5", "r") as gt:
        summary = json.loads(f.attrs["summary"])
        assert (
            summary["frames"] == gt["davis/left/depth_image_rect_ts"].shape[0] == 2
        )  # held-out tail only (10 frames x 0.2)
        assert summary["energy_j_per_frame"] > 0
    # the stream stage's energy as people read it (an SI prefix: not "0.0000 mJ" for a small net)
    assert f"{format_energy(summary['energy_j_per_frame'])}/frame" in stdout


def test_demo_refuses_a_non_empty_folder_without_force(tmp_path: Path) -> None:
    (tmp_path / "earlier.txt").write_text("x")
    assert_user_error(run_snnc("demo", "--out", tmp_path, "--quick"), "not empty", "--force", str(tmp_path))
    assert [p.name for p in tmp_path.iterdir()] == ["earlier.txt"]


def test_heldout_gt_keeps_the_tail_that_training_holds_out(tmp_path: Path) -> None:
    data, gt = synthesize(tmp_path / "s_data.hdf5", frames=8, height=16, width=24, progress=False)
    first, n = write_heldout_gt(gt, tmp_path / "held_gt.hdf5", 0.25)
    assert (first, n) == (6, 2)
    with h5py.File(gt, "r") as full, h5py.File(tmp_path / "held_gt.hdf5", "r") as held:
        np.testing.assert_array_equal(held[layout.DEPTH_TS_KEY][()], full[layout.DEPTH_TS_KEY][6:])
        np.testing.assert_array_equal(held[layout.DEPTH_KEY][()], full[layout.DEPTH_KEY][6:])
    with MVSECRecording(data, gt_path=tmp_path / "held_gt.hdf5") as rec:
        assert rec.n_depth == 2
