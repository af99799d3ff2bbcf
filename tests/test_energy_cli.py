"""``snnc energy`` as a user runs it: JSON / CSV / table, plot, digits, one-line errors."""

from __future__ import annotations

import json

import pytest

from snnc.data.synth import synthesize

from _stream_util import active_checkpoint, small_stereo_json
from cli_helpers import assert_user_error, expect_ok, run_snnc


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("energy_cli")
    data, _ = synthesize(tmp / "tiny_data.hdf5", frames=4, height=48, width=64, progress=False)
    return {"data": data, "ckpt": active_checkpoint(tmp), "genotype": small_stereo_json(tmp), "tmp": tmp}


def test_energy_json_per_layer_totals_ann_and_plot(files):
    png = files["tmp"] / "energy.png"
    d = json.loads(
        expect_ok(
            run_snnc(
                "energy",
                files["ckpt"],
                "--data",
                files["data"],
                "--frames",
                "3",
                "--format",
                "json",
                "--plot",
                png,
                "--threads",
                "1",
            )
        )
    )
    assert d["frames"] == 3 and d["per"] == "frame" and not d["silent"]
    for layer in d["layers"]:
        assert {"name", "dense_ops", "input_rate", "ac", "mac", "energy_j"} <= set(layer)
    assert d["total"]["mac"] == 0 and d["total"]["ac"] == pytest.approx(sum(la["ac"] for la in d["layers"]))
    assert d["total"]["energy_j"] == pytest.approx(d["total"]["ac"] * 0.9e-12)
    assert d["ann_total"]["mac"] == pytest.approx(sum(la["dense_ops"] for la in d["layers"]))
    assert d["ann_total"]["energy_j"] > d["total"]["energy_j"]
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"
    assert_user_error(run_snnc("energy", files["ckpt"], "--data", files["data"], "--plot", png), "exists")


def test_energy_table_notes_silence_and_digits_csv(files):
    out = expect_ok(run_snnc("energy", files["genotype"], "--data", files["data"], "--frames", "2", "--threads", "1"))
    assert "as an ANN" in out and "nearly silent" in out and "7414 M AC" in out
    csv = expect_ok(
        run_snnc("energy", "sequential-dvs", "--data", "digits", "--frames", "20", "--format", "csv", "--threads", "1")
    )
    rows = [r.split(",") for r in csv.strip().splitlines()]
    assert rows[0][:4] == ["name", "type", "input_kind", "dense_ops"]
    assert rows[1][2] == "real" and float(rows[1][6]) > 0  # the first layer reads the image: MACs
    assert rows[-2][0] == "TOTAL" and rows[-1][0] == "ANN"


def test_energy_bad_input_gives_one_line_errors(files, tmp_path):
    assert_user_error(run_snnc("energy", files["ckpt"], "--data", "digits"), "stereo network")
    assert_user_error(run_snnc("energy", files["ckpt"], "--data", tmp_path / "none_data.hdf5"), "not found")
