"""End-to-end SpikeDHS searches: digits via the CLI, stereo on a tiny synthetic recording, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from snnc.data.synth import synthesize
from snnc.errors import SnncError
from snnc.models.build import build_model
from snnc.models.genotype import SpikeDHSClassifierGenotype, SpikeDHSStereoGenotype, load_genotype
from snnc.nas.spikedhs_search import run_spikedhs_search

from cli_helpers import assert_user_error, expect_ok, run_snnc

TINY_CLS = [
    "--epochs",
    "2",
    "--warmup",
    "1",
    "--layers",
    "3",
    "--width",
    "2",
    "--time-steps",
    "2",
    "--nodes",
    "3",
    "--batch-size",
    "128",
    "--threads",
    "1",
    "--quiet",
]


@pytest.mark.slow
def test_cli_digits_search_writes_buildable_genotype(tmp_path: Path) -> None:
    out = tmp_path / "arch.json"
    stdout = expect_ok(
        run_snnc("search", "--method", "spikedhs", "--task", "cls", "--data", "digits", "--out", out, *TINY_CLS)
    )
    assert "epoch 2/2 [search]" in stdout and "val_accuracy" in stdout
    genotype = load_genotype(out)
    assert isinstance(genotype, SpikeDHSClassifierGenotype)
    assert genotype.cell.nodes == 3 and len(genotype.cell.edges) == 6 and genotype.path == (0, 1, 2)
    assert genotype.in_channels == 1 and genotype.time_steps == 2
    model = build_model(out)
    assert model(torch.rand(2, 4, 1, 8, 8)).shape == (2, 4, 10)
    lines = [json.loads(line) for line in (tmp_path / "arch.search.jsonl").read_text().splitlines()]
    assert [e["phase"] for e in lines] == ["warmup", "search"]
    assert lines[1]["arch_loss"] is not None and 0 <= lines[1]["val"]["val_accuracy"] <= 100
    assert 0 < lines[1]["alpha_entropy"]["cell"] <= 1.0987
    assert (tmp_path / "arch.search.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "arch.search_state.pt").exists()


def test_cli_errors(tmp_path: Path) -> None:
    out = tmp_path / "a.json"
    assert_user_error(
        run_snnc("search", "--method", "evolution", "--data", "digits", "--out", out),
        "unknown search method 'evolution'",
    )
    assert_user_error(
        run_snnc("search", "--task", "segmentation", "--data", "digits", "--out", out), "unknown task 'segmentation'"
    )
    assert_user_error(
        run_snnc("search", "--task", "stereo", "--data", "digits", "--out", out), "needs an MVSEC recording"
    )
    assert not out.exists()
    out.write_text("{}")
    assert_user_error(run_snnc("search", "--data", "digits", "--out", out), str(out), "exists", "--force")
    assert out.read_text() == "{}"


def test_resume_continues_to_the_same_result(tmp_path: Path) -> None:
    given = {
        "task": "cls",
        "data": "digits",
        "nodes": 3,
        "width": 2,
        "layers": 2,
        "time_steps": 2,
        "epochs": 2,
        "warmup": 1,
        "batch_size": 256,
    }
    quiet = {"progress": False, "echo": lambda s: None, "plot": False}
    (tmp_path / "full").mkdir()
    full = run_spikedhs_search(given, tmp_path / "full" / "a.json", **quiet)
    split_out = tmp_path / "split" / "a.json"
    split_out.parent.mkdir()
    part = run_spikedhs_search(given, split_out, stop_after=1, **quiet)
    assert not part["finished"] and not split_out.exists()
    with pytest.raises(SnncError, match="search state exists"):
        run_spikedhs_search(given, split_out, **quiet)
    with pytest.raises(SnncError, match="options differ"):
        run_spikedhs_search({**given, "width": 3}, split_out, resume=True, **quiet)
    done = run_spikedhs_search({"data": "digits"}, split_out, resume=True, **quiet)
    assert done["finished"] and done["epochs_done"] == 2
    assert done["genotype"] == full["genotype"]
    log = [json.loads(x) for x in (split_out.parent / "a.search.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in log] == [1, 2]
    assert log[-1]["alphas"] == full["last"]["alphas"]


@pytest.mark.slow
def test_stereo_search_on_tiny_synthetic_recording(tmp_path: Path) -> None:
    data, _ = synthesize(tmp_path / "tiny_data.hdf5", frames=8, height=30, width=40, progress=False)
    given = {
        "task": "stereo",
        "data": str(data),
        "width": 2,
        "levels": 3,
        "feature_layers": 2,
        "matching_layers": 3,
        "crop": (24, 30),
        "disparities": 5,
        "disp_step": 8.0,
        "time_steps": 2,
        "burn_in": 1,
        "epochs": 1,
        "warmup": 0,
        "batch_size": 2,
        "max_frames": 4,
    }
    result = run_spikedhs_search(given, tmp_path / "stereo.json", progress=False, echo=lambda s: None, plot=False)
    genotype = load_genotype(tmp_path / "stereo.json")
    assert isinstance(genotype, SpikeDHSStereoGenotype) and genotype == result["genotype"]
    assert genotype.matching_cell.dims == 3 and len(genotype.matching_path) == 3
    assert len(genotype.feature_path) == 2 and genotype.disparities == 5 and genotype.disp_step == 8.0
    last = result["last"]
    assert last["phase"] == "search" and last["arch_loss"] is not None
    assert set(last["beta_entropy"]) == {"feature", "matching"} and last["val"]["frames_used"] >= 1
    model = build_model(genotype).eval()
    with torch.no_grad():
        cost = model(torch.zeros(1, 1, 2, 5, 24, 30))
    assert cost.shape == (1, 1, 5, 24, 30)


@pytest.mark.slow
def test_stereo_search_takes_the_training_geometry(tmp_path: Path) -> None:
    """--feature-stride 1 --volume-shifts auto: the supernet searches that geometry and the genotype records it."""
    from snnc.data.layout import DISPARITY_SCALE
    from snnc.models.stereo import auto_volume_shifts
    from snnc.nas.spikedhs_search import SpikeDHSConfig, _build

    from cli_helpers import expect_ok, run_snnc

    data, _ = synthesize(tmp_path / "tiny_data.hdf5", frames=8, height=30, width=40, progress=False)
    out = tmp_path / "stereo.json"
    expect_ok(
        run_snnc(
            "search",
            "--method",
            "spikedhs",
            "--task",
            "stereo",
            "--data",
            data,
            "--out",
            out,
            "--width",
            "2",
            "--levels",
            "2",
            "--feature-layers",
            "1",
            "--matching-layers",
            "2",
            "--crop",
            "24x30",
            "--disparities",
            "12",
            "--disp-step",
            "3",
            "--time-steps",
            "2",
            "--burn-in",
            "1",
            "--epochs",
            "1",
            "--warmup",
            "0",
            "--batch-size",
            "2",
            "--max-frames",
            "4",
            "--feature-stride",
            "1",
            "--volume-shifts",
            "auto",
            "--quiet",
        )
    )
    genotype = load_genotype(out)
    shifts = auto_volume_shifts(12, 3.0, DISPARITY_SCALE, 1)
    assert genotype.feature_stride == 1 and genotype.volume_disparities == shifts == 6  # ceil(11 * 3 / 7) + 1
    assert genotype.volume_shifts == 6
    cfg = SpikeDHSConfig(
        task="stereo",
        data=str(data),
        nodes=3,
        width=2,
        time_steps=2,
        epochs=1,
        warmup=0,
        batch_size=2,
        lr=0.01,
        levels=2,
        feature_layers=1,
        matching_layers=2,
        disparities=12,
        disp_step=3.0,
        burn_in=1,
        max_frames=4,
        crop=(24, 30),
        feature_stride=1,
        volume_shifts="auto",
    )
    supernet, _ = _build(cfg, torch.device("cpu"), progress=False)
    assert supernet.feature_stride == 1 and supernet.volume_shifts == 6
    x = torch.zeros(1, 2, 5, 24, 30)
    state = supernet.init_state(x)
    cost, _ = supernet.step(x, state)
    assert cost.shape == (1, 12, 24, 30)
    # the paper's geometry stays the default: stride 3, V = D
    paper = SpikeDHSConfig(
        task="stereo",
        data=str(data),
        nodes=3,
        width=2,
        time_steps=2,
        epochs=1,
        warmup=0,
        batch_size=2,
        lr=0.01,
        levels=2,
        feature_layers=1,
        matching_layers=2,
        disparities=12,
        disp_step=3.0,
        burn_in=1,
        max_frames=4,
        crop=(24, 30),
    )
    supernet, _ = _build(paper, torch.device("cpu"), progress=False)
    assert supernet.feature_stride == 3 and supernet.volume_shifts == 12
