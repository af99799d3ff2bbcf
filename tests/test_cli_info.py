"""``snnc info`` as a user runs it: presets, JSON output, parameter counts, bad input."""

from __future__ import annotations

import json
from pathlib import Path

from cli_helpers import assert_user_error, expect_ok, run_snnc

PRESET_DIR = Path(__file__).resolve().parents[1] / "snnc" / "presets"


def test_list_presets() -> None:
    names = expect_ok(run_snnc("info", "--list")).split()
    assert {"spikedhs-cla", "spikedhs-stereo", "snasnet-cifar10", "snasnet-cifar100"} <= set(names)


def test_stereo_json_matches_paper_parameter_count() -> None:
    out = expect_ok(run_snnc("info", "spikedhs-stereo", "--input-shape", "1,2,5,48,64", "--json"))
    desc = json.loads(out)
    assert isinstance(desc["parameters"], int)
    assert abs(desc["parameters"] - 0.87e6) / 0.87e6 < 0.02
    for layer in desc["layers"]:
        assert {"name", "type", "output_shape", "parameters", "dense_ops"} <= set(layer)
        assert layer["dense_ops"] > 0
    assert desc["layers"][0]["output_shape"][-2:] == [48, 64]


def test_cla_table_output() -> None:
    out = expect_ok(run_snnc("info", "spikedhs-cla", "--input-shape", "1,3,16,16"))
    assert "parameters: 14,2" in out  # 14.29 M, the paper's "n3, 14M"
    assert "Conv2d" in out and "Linear" in out


def test_genotype_file_round_trip(tmp_path: Path) -> None:
    g = json.loads((PRESET_DIR / "spikedhs-cla.json").read_text())
    g["filter_multiplier"] = 4
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(g))
    desc = json.loads(expect_ok(run_snnc("info", path, "--input-shape", "1,3,8,8", "--json")))
    assert desc["parameters"] < 0.01 * 14.29e6  # width 4 instead of the preset's 48


def test_unknown_preset() -> None:
    assert_user_error(run_snnc("info", "spikedhs-nope"), "spikedhs-nope", "spikedhs-cla")


def _bad_genotype(tmp_path: Path, mutate) -> Path:
    g = json.loads((PRESET_DIR / "spikedhs-cla.json").read_text())
    mutate(g)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(g))
    return path


def test_malformed_genotypes(tmp_path: Path) -> None:
    def wrong_op(g):
        g["cell"]["edges"][0][1] = "conv_7x7"

    def missing_node(g):
        g["cell"]["edges"][0][0] = 42

    def cycle(g):
        # states: 0 = s0, 1 = s1, 2 + k = node k; node0 <- node1 and node1 <- node0
        g["cell"]["edges"] = [
            {"from": 3, "to": 0, "op": "snn_b3"},
            {"from": 2, "to": 1, "op": "snn_b3"},
            {"from": 0, "to": 0, "op": "snn_b3"},
            {"from": 1, "to": 1, "op": "snn_b3"},
            {"from": 0, "to": 2, "op": "snn_b3"},
            {"from": 1, "to": 2, "op": "snn_b3"},
        ]

    assert_user_error(run_snnc("info", _bad_genotype(tmp_path, wrong_op)), "bad.json", "conv_7x7")
    assert_user_error(run_snnc("info", _bad_genotype(tmp_path, missing_node)), "bad.json", "42")
    err = assert_user_error(run_snnc("info", _bad_genotype(tmp_path, cycle)), "bad.json")
    assert "cycle" in err or "backward" in err
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert_user_error(run_snnc("info", broken), "broken.json")


def test_bad_input_shape() -> None:
    assert_user_error(run_snnc("info", "spikedhs-cla", "--input-shape", "a,b"), "--input-shape")
