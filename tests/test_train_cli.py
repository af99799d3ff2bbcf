"""snnc train command line: one-line errors for what a user can get wrong, and a real CLI run."""

from __future__ import annotations

import json

import pytest
import torch

from snnc.cli import main

from _train_util import digits_subset, tiny_genotype
from cli_helpers import run_snnc


def _error(capsys, *args: str) -> str:
    """Run ``snnc train ARGS`` in-process; it must exit 2 with one 'snnc: error:' line."""
    with pytest.raises(SystemExit) as exc:
        main(["train", *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("snnc: error: "), err
    return err


def test_unknown_architecture(tmp_path, capsys):
    err = _error(capsys, "--arch", "no-such-net", "--data", "digits", "--out", str(tmp_path / "r"))
    assert "unknown genotype preset 'no-such-net'" in err and "spikedhs-cla" in err
    assert not (tmp_path / "r").exists()


def test_missing_data(tmp_path, capsys):
    err = _error(capsys, "--arch", "spikedhs-cla", "--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "r"))
    assert "nothing" in err and "data not found" in err


def test_data_of_the_wrong_kind(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    err = _error(capsys, "--arch", "spikedhs-cla", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "r"))
    assert "no .npz files" in err
    err = _error(capsys, "--arch", "spikedhs-stereo", "--data", "digits", "--out", str(tmp_path / "r"))
    assert "_data.hdf5" in err


def test_existing_run_folder_is_refused(tmp_path, capsys):
    run = tmp_path / "r"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    err = _error(capsys, "--arch", "spikedhs-cla", "--data", "digits", "--out", str(run))
    assert "not empty" in err and "--resume" in err and "--force" in err
    err = _error(capsys, "--out", str(run), "--resume")
    assert "no checkpoint.pt" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA present")
def test_cuda_requested_without_gpu(tmp_path, capsys):
    err = _error(capsys, "--arch", "spikedhs-cla", "--data", "digits", "--out", str(tmp_path / "r"), "--device", "cuda")
    assert "CUDA is not available" in err


def test_cli_run_then_resume_rules(tmp_path, capsys):
    data = digits_subset(tmp_path / "npz", n_train=120, n_test=40)
    arch = tiny_genotype(tmp_path / "tiny.json")
    out = tmp_path / "run"
    common = ["--arch", str(arch), "--data", str(data), "--out", str(out), "--steps", "2", "--threads", "1", "--quiet"]
    proc = run_snnc("train", *common, "--epochs", "2", "--stop-after", "1", subprocess=True)  # real process, once
    assert proc.returncode == 0, proc.stderr
    assert "epoch 1/2" in proc.stdout and "--resume" in proc.stdout
    assert not (out / "folded.pt").exists()
    assert "--lr 0.5 differs" in _error(capsys, "--out", str(out), "--resume", "--lr", "0.5")
    assert "not empty" in _error(capsys, *common)
    assert "less than the 1 epochs already trained" in _error(capsys, "--out", str(out), "--resume", "--epochs", "0")
    main(["train", "--out", str(out), "--resume"])
    stdout = capsys.readouterr().out
    assert "resuming after epoch 1" in stdout and "epoch 2/2" in stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["test_accuracy"] <= 1.0 and metrics["epochs"] == 2
    main(["train", *common, "--epochs", "1", "--force"])
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 1
    assert json.loads((out / "config.json").read_text())["epochs"] == 1
