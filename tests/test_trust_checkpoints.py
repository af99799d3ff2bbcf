"""Adversarial corpus for checkpoints and model names: no file runs code, a name means one thing.

Every command that takes a model or a state gets a crafted pickle whose load would
run ``os.system``: each must refuse it in one line that says it was not loaded, with
exit code 2, and the payload must not have run (its marker file is absent).
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from snnc.checkpoint import VERSION, read_checkpoint, upgrade_checkpoint, write_checkpoint
from snnc.errors import SnncError
from snnc.models.build import build_model
from snnc.models.genotype import load_genotype
from snnc.models.loading import load_network_checkpoint, open_model, resolve_model, save_network

from cli_helpers import assert_user_error, expect_ok, run_snnc


class _RunsCode:
    """Unpickling this runs ``touch MARKER`` (what an attacker's checkpoint would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _evil(path: Path, marker: Path, **fields) -> Path:
    """A checkpoint-looking dict (valid header) with a code-running object inside."""
    torch.save(
        {"format": "snnc-checkpoint", "version": VERSION, "kind": "training", **fields, "payload": _RunsCode(marker)},
        path,
    )
    return path


def _assert_refused(proc, path: Path, marker: Path) -> None:
    err = assert_user_error(proc, str(path.name), "refused", "not loaded", "system")
    assert not marker.exists(), f"the pickle ran: {err}"


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("rec")
    data = folder / "r_data.hdf5"
    expect_ok(run_snnc("data", "synth", data, "--frames", "3", "--height", "24", "--width", "32", "--seed", "1"))
    return data


def test_model_commands_refuse_code_running_checkpoints(tmp_path, recording):
    marker = tmp_path / "PWNED"
    evil = _evil(tmp_path / "evil.pt", marker)
    _assert_refused(run_snnc("info", evil), evil, marker)
    _assert_refused(run_snnc("export", evil, "--to", "nir", "--out", tmp_path / "x.nir"), evil, marker)
    assert not (tmp_path / "x.nir").exists()
    _assert_refused(run_snnc("energy", evil, "--data", "digits"), evil, marker)
    _assert_refused(run_snnc("stream", recording, "--model", evil, "--frames", "1"), evil, marker)
    _assert_refused(run_snnc("checkpoint", "show", evil), evil, marker)
    _assert_refused(run_snnc("checkpoint", "upgrade", evil, tmp_path / "new.pt"), evil, marker)
    assert not (tmp_path / "new.pt").exists()


def test_resume_refuses_code_running_states(tmp_path):
    marker = tmp_path / "PWNED"
    run = tmp_path / "run"
    run.mkdir()
    _evil(run / "checkpoint.pt", marker)
    _assert_refused(run_snnc("train", "--out", run, "--resume"), run / "checkpoint.pt", marker)
    state = tmp_path / "arch.search_state.pt"
    _evil(state, marker)
    _assert_refused(
        run_snnc(
            "search",
            "--method",
            "snasnet",
            "--task",
            "cls",
            "--data",
            "digits",
            "--out",
            tmp_path / "arch.json",
            "--resume",
        ),
        state,
        marker,
    )
    assert not (tmp_path / "arch.json").exists()


def test_library_loaders_never_unpickle(tmp_path):
    marker = tmp_path / "PWNED"
    evil = _evil(tmp_path / "evil.pt", marker)
    for load in (
        read_checkpoint,
        load_network_checkpoint,
        lambda p: open_model(str(p)),
        lambda p: upgrade_checkpoint(p, tmp_path / "out.pt"),
    ):
        with pytest.raises(SnncError, match=r"refused.*posix.system.*not loaded"):
            load(evil)
    assert not marker.exists() and not (tmp_path / "out.pt").exists()


def test_foreign_and_corrupt_files_are_named(tmp_path):
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(SnncError, match=r"empty.pt: not an snnc checkpoint .an empty file"):
        read_checkpoint(empty)
    legacy = tmp_path / "legacy.pt"  # torch's pre-1.6 pickle format: not a zip archive
    torch.save({"a": 1}, legacy, _use_new_zipfile_serialization=False)
    with pytest.raises(SnncError, match="not a torch zip archive"):
        read_checkpoint(legacy)
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(2)}, plain)
    with pytest.raises(SnncError, match="no 'format'"):
        read_checkpoint(plain)
    future = tmp_path / "future.pt"
    torch.save({"format": "snnc-checkpoint", "version": 99, "kind": "network"}, future)
    with pytest.raises(SnncError, match="version 99 is not supported"):
        read_checkpoint(future)
    arr = tmp_path / "arr.pt"
    torch.save({"format": "snnc-checkpoint", "version": VERSION, "kind": "network", "x": np.zeros(3)}, arr)
    with pytest.raises(SnncError, match=r"refused.*numpy.*not loaded.*snnc checkpoint upgrade"):
        read_checkpoint(arr)


def test_kinds_are_checked(tmp_path):
    net = build_model(load_genotype("sequential-dvs"))
    save_network(net, tmp_path / "net.pt", folded=False, input_shape=(1, 2, 32, 32))
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes((tmp_path / "net.pt").read_bytes())
    assert_user_error(
        run_snnc("train", "--out", run, "--resume"), "is a network checkpoint", "expected a training checkpoint"
    )
    with pytest.raises(SnncError, match="is a network checkpoint, expected a search checkpoint"):
        read_checkpoint(tmp_path / "net.pt", kinds=("search",))
    with pytest.raises(ValueError, match="header"):
        write_checkpoint(tmp_path / "x.pt", "network", {"version": 1})
    with pytest.raises(TypeError, match="cannot be stored"):
        write_checkpoint(tmp_path / "x.pt", "network", {"thing": object()})
    assert not (tmp_path / "x.pt").exists()


def test_network_round_trip_records_input_shape(tmp_path):
    torch.manual_seed(0)
    net = build_model(load_genotype("sequential-dvs"))
    save_network(net, tmp_path / "n.pt", input_shape=(1, 2, 32, 32), epoch=3)
    opened = open_model(str(tmp_path / "n.pt"))
    assert opened.trained and opened.input_shape == (1, 2, 32, 32) and opened.meta["epoch"] == 3
    for (k, a), (_, b) in zip(net.state_dict().items(), opened.model.state_dict().items(), strict=False):
        assert torch.equal(a, b), k
    # a weights-only load of the file itself accepts it: only data inside
    doc = torch.load(tmp_path / "n.pt", weights_only=True)
    assert doc["kind"] == "network" and doc["version"] == VERSION


def test_preset_seeding_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a = open_model("sequential-dvs", seed=5).model
    assert torch.equal(torch.rand(3), expected)
    b = open_model("sequential-dvs", seed=5).model
    for (k, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=False):
        assert torch.equal(x, y), k


def _v01_training_checkpoint(path: Path) -> dict:
    """A training checkpoint exactly as snnc 0.1 wrote it: NumPy RNG tuple, np.float64 history."""
    net = build_model(load_genotype("sequential-dvs"))
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[2, 4], gamma=0.5)
    # a 0.1 checkpoint holds the legacy global NumPy state tuple (NPY002 on purpose)
    rng = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}  # noqa: NPY002
    payload = {
        "format": "snnc-checkpoint",
        "version": 1,
        "genotype": net.genotype.to_dict(),
        "family": "sequential",
        "task": "classification",
        "model": net.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "epoch": 1,
        "rng": rng,
        "config": {"epochs": 3},
        "folded": False,
        "search": {},
        "history": [{"epoch": 1, "train_loss": np.float64(0.5)}],
    }
    torch.save(payload, path)
    return payload


def test_upgrade_converts_an_01_training_checkpoint_losslessly(tmp_path):
    old = tmp_path / "old.pt"
    payload = _v01_training_checkpoint(old)
    err = assert_user_error(
        run_snnc("checkpoint", "show", old), "refused", "numpy", "not loaded", "snnc checkpoint upgrade"
    )
    assert "old.pt" in err
    new = tmp_path / "new.pt"
    text = expect_ok(run_snnc("checkpoint", "upgrade", old, new))
    assert "training checkpoint, format version 2" in text
    doc = read_checkpoint(new, kinds=("training",))
    for k, v in payload["model"].items():
        assert torch.equal(doc["model"][k], v), k
    _name, keys, pos, has_gauss, _cached = payload["rng"]["numpy"]
    assert np.array_equal(np.asarray(doc["rng"]["numpy"]["keys"], dtype=np.uint32), keys)
    assert (doc["rng"]["numpy"]["pos"], doc["rng"]["numpy"]["has_gauss"]) == (pos, has_gauss)
    assert doc["history"][0]["train_loss"] == 0.5 and type(doc["history"][0]["train_loss"]) is float
    assert torch.equal(doc["rng"]["torch"], payload["rng"]["torch"])
    assert_user_error(run_snnc("checkpoint", "upgrade", old, new), "exists", "--force")
    assert_user_error(run_snnc("checkpoint", "upgrade", new, tmp_path / "again.pt"), "already a version 2")
    assert_user_error(run_snnc("checkpoint", "upgrade", new, new, "--force"), "both the input and the output")
    show = json.loads(expect_ok(run_snnc("checkpoint", "show", new, "--json")))
    assert show["kind"] == "training" and show["family"] == "sequential" and show["epoch"] == 1


def test_names_resolve_predictably(tmp_path):
    assert resolve_model("spikedhs-stereo").kind == "preset"
    (tmp_path / "net.json").write_text(json.dumps(load_genotype("sequential-dvs").to_dict()))
    assert resolve_model(str(tmp_path / "net.json")).kind == "genotype"
    with pytest.raises(SnncError, match="checkpoint file not found"):
        resolve_model(str(tmp_path / "missing.pt"))
    (tmp_path / "model").write_text("{}")
    with pytest.raises(SnncError, match="no model file extension"):
        resolve_model(str(tmp_path / "model"))
    with pytest.raises(SnncError, match=r"unknown model 'no-such-net'.*not a preset"):
        resolve_model("no-such-net")
    with pytest.raises(SnncError, match="is a preset name, but this command takes checkpoint"):
        resolve_model("spikedhs-stereo", allowed=("checkpoint",))
    # a genotype file is typed by its extension: JSON content under .pt is checked as a checkpoint
    (tmp_path / "geno.pt").write_text((tmp_path / "net.json").read_text())
    with pytest.raises(SnncError, match=r"geno.pt: not an snnc checkpoint .not a torch zip archive"):
        open_model(str(tmp_path / "geno.pt"))


def test_a_file_named_like_a_preset_does_not_replace_it(tmp_path):
    """In a folder holding a (code-running) file called ``spikedhs-stereo``, the name means the preset."""
    marker = tmp_path / "PWNED"
    _evil(tmp_path / "spikedhs-stereo", marker)
    (tmp_path / "sequential-dvs").write_text(json.dumps({"family": "spikedhs-cla"}))
    proc = run_snnc("info", "spikedhs-stereo", "--json", cwd=tmp_path)  # in-process, working directory tmp_path
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["family"] == "spikedhs-stereo" and not marker.exists()
    proc = run_snnc("info", "sequential-dvs", "--json", cwd=tmp_path)
    assert proc.returncode == 0 and json.loads(proc.stdout)["family"] == "sequential", proc.stderr
    proc = run_snnc("info", "./spikedhs-stereo", cwd=tmp_path)
    assert proc.returncode == 2 and "no model file extension" in proc.stderr and not marker.exists()
