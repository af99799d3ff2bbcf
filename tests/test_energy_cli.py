"""``snnc energy`` as a user runs it: JSON / CSV / table, plot, digits, one-line errors."""

from __future__ import annotations

import json

import pytest

from snnc.data.synth import synthesize
from snnc.energy.units import format_energy

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


def test_energy_plot_of_the_shipped_default_model(tmp_path):
    """No MODEL (the shipped digits model) with --plot: the output check must not need a model path."""
    out = expect_ok(
        run_snnc("energy", "--data", "digits", "--frames", "4", "--threads", "1", "--plot", tmp_path / "e.png")
    )
    assert (tmp_path / "e.png").stat().st_size > 0
    # the totals as people read them: an SI prefix (a small net is not "0.0000 mJ"), the JSON's joules
    d = json.loads(
        expect_ok(run_snnc("energy", "--data", "digits", "--frames", "4", "--threads", "1", "--format", "json"))
    )
    total, ann = format_energy(d["total"]["energy_j"]), format_energy(d["ann_total"]["energy_j"])
    assert f"= {total} per frame; as an ANN" in out and f"= {ann} (SNN/ANN" in out, out
    assert "0.0000 mJ" not in out


def test_energy_bad_input_gives_one_line_errors(files, tmp_path):
    assert_user_error(run_snnc("energy", files["ckpt"], "--data", "digits"), "stereo network")
    assert_user_error(run_snnc("energy", files["ckpt"], "--data", tmp_path / "none_data.hdf5"), "not found")


def test_energy_models_split_and_compare(files):
    common = ("--data", files["data"], "--frames", "2", "--threads", "1")
    runs = {
        m: json.loads(expect_ok(run_snnc("energy", files["ckpt"], *common, "--format", "json", "--energy-model", m)))
        for m in ("paper", "memory", "lemaire")
    }
    paper, memory, lemaire = runs["paper"], runs["memory"], runs["lemaire"]
    # paper: the papers' total (compute only); neuron updates counted on their own line, outside it
    assert paper["total"]["energy_j"] == pytest.approx(paper["total"]["ac"] * 0.9e-12)
    assert paper["total"]["neuron_updates"] > 0 and paper["total"]["neuron_in_total"] is False
    assert paper["total"]["memory_j"] == 0 and paper["costs"]["name"] == "45nm-fp32"
    for d in (memory, lemaire):
        t = d["total"]
        assert t["energy_j"] == pytest.approx(t["synaptic_j"] + t["neuron_j"] + t["memory_j"])
        assert t["memory_j"] > t["synaptic_j"] > 0  # memory dominates
        assert d["ann_total"]["memory_j"] > 0 and d["snn_vs_ann_energy"] == pytest.approx(
            t["energy_j"] / d["ann_total"]["energy_j"]
        )
        assert {"weights", "bias", "activations"} <= set(d["layers"][1]["memory_bytes"]) or d is lemaire
    assert lemaire["costs"]["name"] == "45nm-int32"  # Lemaire's 32-bit integer ops unless --costs says otherwise
    assert memory["neurons"] and all(n["memory_j"] > 0 for n in memory["neurons"] if n["type"] != "relu")
    out = expect_ok(run_snnc("energy", files["ckpt"], *common, "--compare", "paper", "memory"))
    assert "[paper]" in out and "[memory]" in out and "memory (mJ)" in out and "SNN/ANN" in out
    csv = expect_ok(run_snnc("energy", files["ckpt"], *common, "--compare", "paper", "lemaire", "--format", "csv"))
    assert csv.splitlines()[0].startswith("quantity,") and len(csv.splitlines()) == 11
    table = expect_ok(run_snnc("energy", files["ckpt"], *common, "--costs", "loihi"))
    assert "Davies" in table and "neuron uJ" in table and "split: synaptic compute" in table
    assert_user_error(run_snnc("energy", files["ckpt"], *common, "--costs", "nope"), "unknown energy cost table")


def test_stacked_plot_parts_add_up_to_the_total():
    import torch

    from snnc.energy import count_ops, energy_report
    from snnc.energy.plot import stacked_parts
    from snnc.models.build import build_model

    torch.manual_seed(0)
    net = build_model("sequential-dvs", image_size=8).eval()
    x = (torch.rand(3, 1, 2, 8, 8) < 0.3).float()
    ops = count_ops(net, x, fanout="input", neurons=True)
    for model in ("paper", "memory", "lemaire"):
        rep = energy_report(ops, energy_model=model, steps_per_frame=3.0)
        names, parts = stacked_parts(rep)
        assert len(names) == len(rep.layers) + len(rep.neurons) and len(parts) == 3
        assert sum(map(sum, parts)) == pytest.approx(rep.energy_j)
        assert (sum(parts[2]) > 0) == (model != "paper")


def test_stream_energy_model_per_frame_matches_energy(files):
    common = ("--frames", "2", "--threads", "1")
    for model in ("memory", "lemaire"):
        stream = json.loads(
            expect_ok(
                run_snnc("stream", files["data"], "--model", files["ckpt"], *common, "--json", "--energy-model", model)
            )
        )
        energy = json.loads(
            expect_ok(
                run_snnc(
                    "energy",
                    files["ckpt"],
                    "--data",
                    files["data"],
                    *common,
                    "--format",
                    "json",
                    "--energy-model",
                    model,
                )
            )
        )
        assert stream["energy_model"] == model
        assert stream["energy_j_per_frame"] == pytest.approx(energy["total"]["energy_j"], rel=1e-9)
        assert stream["ann_energy_j_per_frame"] == pytest.approx(energy["ann_total"]["energy_j"], rel=1e-9)
