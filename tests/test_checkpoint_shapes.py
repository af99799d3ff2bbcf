"""Shapes come from the checkpoint: a digits run exports, describes and loads at 1x8x8, not the genotype's 32x32."""

from __future__ import annotations

import nir

from snnc.models.loading import open_model
from snnc.train import train

from _train_util import config, quiet_log, tiny_genotype
from cli_helpers import expect_ok, run_snnc


def test_digits_checkpoint_exports_at_its_training_shape(tmp_path):
    out = tmp_path / "run"
    train(config(tiny_genotype(tmp_path / "tiny.json"), "digits", out, epochs=1, steps=2), log=quiet_log)
    for name in ("checkpoint.pt", "folded.pt"):
        assert open_model(str(out / name)).input_shape == (1, 1, 8, 8)
    text = expect_ok(run_snnc("export", out / "folded.pt", "--to", "nir", "--out", tmp_path / "d.nir"))
    assert "d.nir" in text
    graph = nir.read(str(tmp_path / "d.nir"))
    inputs = [n for n in graph.nodes.values() if isinstance(n, nir.Input)]
    assert len(inputs) == 1 and tuple(int(s) for s in inputs[0].input_type["input"]) == (1, 8, 8)
    info = expect_ok(run_snnc("info", out / "folded.pt", "--json"))
    assert '"input_shape": [\n    1,\n    1,\n    8,\n    8\n  ]' in info
