"""Shipped models (snnc.zoo, snnc models), the defaults that use them, stream --video, search warm-up default."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from snnc.errors import SnncError
from snnc.fileio import file_sha256
from snnc.zoo import (
    DEFAULT_DIGITS,
    DEFAULT_STEREO,
    REQUIRED_FIELDS,
    ZOO_DIR,
    default_model,
    verify_entry,
    zoo_entry,
    zoo_names,
    zoo_path,
)

from cli_helpers import assert_user_error, expect_ok, run_snnc

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_rec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 32x48, 4-frame synthetic recording (seed 4242, never used to train a shipped model)."""
    path = tmp_path_factory.mktemp("zoo") / "tiny_data.hdf5"
    expect_ok(
        run_snnc("data", "synth", path, "--frames", "4", "--height", "32", "--width", "48", "--seed", "4242", "--quiet")
    )
    return path


def test_zoo_lists_the_shipped_models_with_complete_sidecars() -> None:
    names = zoo_names()
    assert DEFAULT_STEREO in names and DEFAULT_DIGITS in names
    for name in names:
        entry = zoo_entry(name)
        assert all(k in entry for k in REQUIRED_FIELDS)
        assert entry["name"] == name and entry["file"] == f"{name}.pt"
        assert zoo_path(name) == ZOO_DIR / f"{name}.pt"
        assert entry["training_command"] and entry["metrics"]["held_out"]
        assert entry["bytes"] < 5_000_000  # a few MB at most each
    assert zoo_entry(DEFAULT_STEREO)["family"] == "spikedhs-stereo"
    assert zoo_entry(DEFAULT_DIGITS)["metrics"]["held_out"]["accuracy"] >= 0.9


def test_sidecar_sha256_matches_the_checkpoint() -> None:
    for name in zoo_names():
        entry = zoo_entry(name)
        assert file_sha256(zoo_path(name)) == entry["sha256"]
        assert zoo_path(name).stat().st_size == entry["bytes"]
        verify_entry(name)


def test_unknown_zoo_name_is_a_user_error() -> None:
    with pytest.raises(SnncError, match="unknown shipped model 'nope'"):
        zoo_entry("nope")
    with pytest.raises(SnncError, match="stereo or classification"):
        default_model("segmentation")


def test_snnc_models_lists_the_zoo_as_table_and_json() -> None:
    out = expect_ok(run_snnc("models"))
    for name in zoo_names():
        assert name in out
    assert "parameters" in out.splitlines()[0] and "tools/train_zoo.sh" in out
    entries = json.loads(expect_ok(run_snnc("models", "--json", "--verify")))
    assert [e["name"] for e in entries] == zoo_names()
    assert all(e["sha256"] for e in entries)


def test_zoo_package_data_is_declared() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    assert "zoo/*.pt" in text and "zoo/*.json" in text


def test_zoo_model_streams_a_small_recording(tiny_rec: Path) -> None:
    summary = json.loads(
        expect_ok(run_snnc("stream", tiny_rec, "--model", DEFAULT_STEREO, "--json", "--no-energy", "--threads", "1"))
        .strip()
        .splitlines()[-1]
    )
    assert summary["trained"] is True and summary["frames"] == 4
    assert 0.0 <= summary["one_pixel_accuracy"] <= 1.0


def test_stream_without_model_uses_the_shipped_model_and_writes_a_video(tiny_rec: Path, tmp_path: Path) -> None:
    from snnc.runtime.video import read_video_info

    video = tmp_path / "s.gif"
    proc = run_snnc("stream", tiny_rec, "--no-energy", "--threads", "1", "--video", video)
    out = expect_ok(proc)
    first = out.splitlines()[0]
    assert first.startswith(f"model: shipped {DEFAULT_STEREO} (no --model given")
    assert f"wrote {video} (4 frames)" in out
    frames, (width, height) = read_video_info(video)
    assert frames == 4 and width > 4 * 48 and height > 32
    assert not [p for p in tmp_path.iterdir() if p.name != video.name]  # no temporary file left


def test_video_writer_mp4_frame_count_and_size(tmp_path: Path) -> None:
    from snnc.runtime.video import StreamVideo, read_video_info

    rng = np.random.default_rng(0)
    path = tmp_path / "v.mp4"
    with StreamVideo(path, 40, 56, max_disparity_px=5.4, title="t") as v:
        for i in range(5):
            depth = rng.uniform(4.0, 20.0, (40, 56))
            depth[:4] = np.nan
            v.add(
                rng.uniform(0, 5, (40, 56)).astype(np.float32),
                depth,
                rng.integers(-2, 3, (40, 56)).astype(np.float32),
                caption=f"frame {i}",
            )
    assert v.size is not None and v.size[0] % 2 == 0 and v.size[1] % 2 == 0
    assert read_video_info(path) == (5, v.size)


def test_video_errors_are_user_errors(tiny_rec: Path, tmp_path: Path) -> None:
    assert_user_error(run_snnc("stream", tiny_rec, "--video", tmp_path / "v.avi"), "--video must end in .mp4 or .gif")
    existing = tmp_path / "v.mp4"
    existing.write_bytes(b"x")
    assert_user_error(run_snnc("stream", tiny_rec, "--video", existing), "exists; pass --force")
    assert existing.read_bytes() == b"x"


def test_energy_without_model_uses_the_shipped_model(tiny_rec: Path) -> None:
    out = expect_ok(run_snnc("energy", "--data", tiny_rec, "--frames", "2", "--threads", "1"))
    assert out.splitlines()[0].startswith(f"model: shipped {DEFAULT_STEREO} (no MODEL given")
    assert "trained weights" in out


def test_search_warmup_default_follows_epochs() -> None:
    from snnc.nas.spikedhs_search import resolve_config, scaled_warmup

    assert scaled_warmup("cls", 50) == 15 and scaled_warmup("cls", 2) == 1 and scaled_warmup("stereo", 12) == 3
    cfg = resolve_config({"task": "cls", "data": "digits", "epochs": 2})
    assert cfg.epochs == 2 and cfg.warmup == 1
    explicit = resolve_config({"task": "cls", "data": "digits", "epochs": 2, "warmup": 0})
    assert explicit.warmup == 0


@pytest.mark.slow
def test_search_epochs_2_runs_with_the_default_warmup(tmp_path: Path) -> None:
    out = expect_ok(
        run_snnc(
            "search",
            "--method",
            "spikedhs",
            "--task",
            "cls",
            "--data",
            "digits",
            "--epochs",
            "2",
            "--layers",
            "2",
            "--width",
            "2",
            "--time-steps",
            "1",
            "--threads",
            "1",
            "--quiet",
            "--out",
            tmp_path / "a.json",
        )
    )
    assert "over 2 epochs" in out and (tmp_path / "a.json").is_file()
    err = assert_user_error(
        run_snnc(
            "search",
            "--method",
            "spikedhs",
            "--task",
            "cls",
            "--data",
            "digits",
            "--epochs",
            "2",
            "--warmup",
            "5",
            "--out",
            tmp_path / "b.json",
        )
    )
    assert "lower --warmup or raise --epochs" in err
