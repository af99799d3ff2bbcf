"""snnc train on classification data: accuracy, run files, checkpoint format, folding, exact resume."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from snnc.errors import SnncError
from snnc.models.build import build_model
from snnc.models.fold import batchnorm_layers
from snnc.models.genotype import load_genotype
from snnc.train import load_model, train
from snnc.train.checkpoint import load_checkpoint

from _train_util import config, digits_subset, load, quiet_log, tiny_genotype


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """Full sklearn digits, T = 4, a 2-cell SpikeDHS net (width 8), 3 epochs."""
    root = tmp_path_factory.mktemp("digits")
    arch = tiny_genotype(root / "tiny.json", filter_multiplier=8)
    out = root / "run"
    metrics = train(config(arch, "digits", out, epochs=3, steps=4), log=quiet_log)
    return out, metrics


@pytest.mark.slow
def test_digits_reaches_90_percent(digits_run):
    out, metrics = digits_run
    assert metrics["test_accuracy"] >= 0.90
    assert json.loads((out / "metrics.json").read_text())["test_accuracy"] == pytest.approx(metrics["test_accuracy"])


def test_run_folder_files_and_per_epoch_metrics(digits_run):
    out, _ = digits_run
    for name in (
        "checkpoint.pt",
        "folded.pt",
        "metrics.csv",
        "metrics.jsonl",
        "metrics.json",
        "genotype.json",
        "config.json",
        "learning_curve.png",
    ):
        assert (out / name).is_file(), name
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert all(0.0 <= float(r["test_accuracy"]) <= 1.0 for r in rows)
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    assert (out / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_checkpoint_format_and_genotype(digits_run):
    out, _ = digits_run
    ckpt = load_checkpoint(out / "checkpoint.pt")
    for key in ("genotype", "model", "optimizer", "scheduler", "epoch", "rng", "config", "folded"):
        assert key in ckpt, key
    assert ckpt["epoch"] == 3 and ckpt["folded"] is False
    g = load_genotype(out / "genotype.json")
    assert (g.in_channels, g.num_classes, g.time_steps, g.filter_multiplier) == (1, 10, 4, 8)
    model = build_model(g)
    model.load_state_dict(ckpt["model"])  # the export helper's path: genotype + state dict


def test_folded_checkpoint_equals_trained_network(digits_run):
    out, metrics = digits_run
    folded_ckpt = load(out / "folded.pt")
    assert folded_ckpt["folded"] is True and folded_ckpt["fold_check"]["exact"]
    trained = load_model(out / "checkpoint.pt")
    folded = load_model(out / "folded.pt")
    assert batchnorm_layers(trained) and not batchnorm_layers(folded)
    from sklearn.datasets import load_digits

    x = torch.tensor(load_digits().images[:128] / 16.0, dtype=torch.float32)[:, None]
    seq = x.unsqueeze(0).expand(4, *x.shape)
    with torch.no_grad():
        a, b = trained(seq), folded(seq)
    assert torch.allclose(a, b, atol=1e-4 * float(a.abs().max()))
    assert metrics["folded"]["test_accuracy"] == pytest.approx(metrics["test_accuracy"], abs=0.01)


def test_resume_continues_bit_for_bit(tmp_path):
    data = digits_subset(tmp_path / "npz", n_train=150, n_test=50)  # 3 batches an epoch
    arch = tiny_genotype(tmp_path / "tiny.json")
    straight = tmp_path / "straight"
    given = config(arch, data, straight, epochs=4)
    before = given.to_dict()
    train(given, log=quiet_log)
    assert given.to_dict() == before  # the trainer works on its own copy of the caller's config
    split = tmp_path / "split"
    assert train(config(arch, data, split, epochs=4, stop_after=2), log=quiet_log) is None
    assert load(split / "checkpoint.pt")["epoch"] == 2
    from snnc.train.resume import resumed_config

    train(resumed_config(split, {}), resume=True, log=quiet_log)
    a, b = load(straight / "checkpoint.pt"), load(split / "checkpoint.pt")
    assert a["epoch"] == b["epoch"] == 4
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert [r["test_accuracy"] for r in a["history"]] == [r["test_accuracy"] for r in b["history"]]
    rows = list(csv.DictReader((split / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]


def test_classifier_steps_default_to_the_genotypes_time_steps():
    from dataclasses import replace

    from snnc.models.snasnet import SNASNET_PRESETS
    from snnc.train.config import TrainConfig, resolve_defaults

    dhs = replace(load_genotype("spikedhs-cla"), time_steps=3)
    assert resolve_defaults(TrainConfig(task="classification"), dhs).steps == 3
    assert resolve_defaults(TrainConfig(task="classification", steps=5), dhs).steps == 5  # explicit wins
    snas = replace(SNASNET_PRESETS["snasnet-cifar10"], time_steps=7)
    assert resolve_defaults(TrainConfig(task="classification"), snas).steps == 7
    assert resolve_defaults(TrainConfig(task="classification")).steps == 6  # recipe without a genotype
    assert resolve_defaults(TrainConfig(task="stereo"), load_genotype("spikedhs-stereo")).steps == 6


def test_freeze_bn_epochs_keep_running_statistics(tmp_path):
    from snnc.train.resume import resumed_config

    data = digits_subset(tmp_path / "npz", n_train=150, n_test=50)  # 3 batches an epoch
    arch = tiny_genotype(tmp_path / "tiny.json")
    out = tmp_path / "run"
    assert train(config(arch, data, out, epochs=2, freeze_bn_epochs=1, stop_after=1), log=quiet_log) is None
    first = load(out / "checkpoint.pt")["model"]
    train(resumed_config(out, {}), resume=True, log=quiet_log)
    second = load(out / "checkpoint.pt")["model"]
    stats = [k for k in first if k.endswith(("running_mean", "running_var"))]
    weights = [k for k in first if k.endswith("weight")]
    assert stats and all(torch.equal(first[k], second[k]) for k in stats)  # epoch 2 ran with frozen statistics
    assert any(not torch.equal(first[k], second[k]) for k in weights)  # ... while the weights still trained
    with pytest.raises(SnncError, match="--freeze-bn-epochs 3 exceeds --epochs 2"):
        train(config(arch, data, tmp_path / "bad", epochs=2, freeze_bn_epochs=3), log=quiet_log)
