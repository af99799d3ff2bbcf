"""``--precision int8`` on the command line: export, stream (cross-backend check), energy, refusals."""

from __future__ import annotations

import json

import pytest

from cli_helpers import assert_user_error, expect_ok, run_snnc


@pytest.mark.slow
def test_export_int8_checkpoint_then_nir_for_spikingjelly_and_onnx(tmp_path):
    ckpt, nir_file, onnx_file = tmp_path / "d8.pt", tmp_path / "d8.nir", tmp_path / "d8.onnx"
    out = expect_ok(
        run_snnc(
            "export", "digits-cla", "--precision", "int8", "--calibrate", "digits", "--to", "checkpoint", "--out", ckpt
        )
    )
    assert "network checkpoint of int8 spikedhs-cla (ptq, 13 integer neuron layers" in out
    out = expect_ok(
        run_snnc("export", ckpt, "--precision", "int8", "--to", "nir", "--for", "spikingjelly", "--out", nir_file)
    )
    assert "checked for spikingjelly's stock importer" in out and nir_file.is_file()
    out = expect_ok(run_snnc("export", ckpt, "--precision", "int8", "--to", "onnx", "--out", onnx_file))
    assert "outputs y (integer; float = y *" in out
    import onnx

    props = {p.key: p.value for p in onnx.load(str(onnx_file)).metadata_props}
    assert props["snnc.precision"] == "int8" and json.loads(props["snnc.int8"])["input_max"] >= 1


def test_int8_refusals_are_one_line(tmp_path):
    out = tmp_path / "x.pt"
    assert_user_error(run_snnc("export", "digits-cla", "--to", "checkpoint", "--out", out), "--precision int8")
    assert_user_error(
        run_snnc("export", "digits-cla", "--precision", "int8", "--to", "nir", "--out", tmp_path / "x.nir"),
        "--calibrate DATA",
    )
    assert_user_error(
        run_snnc("export", "digits-cla", "--precision", "int8", "--to", "lava", "--out", tmp_path / "x.h5"),
        "--to lava does not apply",
    )
    assert_user_error(
        run_snnc(
            "export",
            "snasnet-cifar10",
            "--precision",
            "int8",
            "--calibrate",
            "digits",
            "--to",
            "onnx",
            "--out",
            tmp_path / "s.onnx",
        ),
        "int8",
    )


def test_energy_int8_uses_the_45nm_int8_costs():
    out = expect_ok(run_snnc("energy", "digits-cla", "--data", "digits", "--frames", "4", "--precision", "int8"))
    assert "costs: 45nm-int8 (AC 0.03 pJ, MAC 0.23 pJ" in out


@pytest.mark.slow
def test_stream_int8_onnx_equals_torch_pixel_for_pixel(tmp_path):
    data = tmp_path / "s_data.hdf5"
    expect_ok(run_snnc("data", "synth", data, "--frames", "4", "--height", "32", "--width", "48", "--quiet"))
    out = expect_ok(
        run_snnc(
            "stream",
            data,
            "--model",
            "stereo-synth",
            "--precision",
            "int8",
            "--backend",
            "onnx",
            "--check-against",
            "torch",
            "--threads",
            "1",
            "--json",
            "--no-energy",
        )
    )
    summary = json.loads(out.strip().splitlines()[-1])
    check = summary["check"]
    assert summary["precision"] == "int8" and check["frames"] == 4 and check["pixels"] == 4 * 32 * 48
    assert check["pixels_differing"] == 0 and check["one_pixel_accuracy_difference"] == 0.0


@pytest.mark.slow
def test_stream_int8_energy_is_counted_on_the_integer_spikes_alike_on_torch_and_onnx(tmp_path):
    """torch counts from its integer graph's node values, onnx from its state outputs: the same ops and joules."""
    data = tmp_path / "s_data.hdf5"
    expect_ok(run_snnc("data", "synth", data, "--frames", "3", "--height", "32", "--width", "48", "--quiet"))
    summaries = {}
    for backend in ("torch", "onnx"):
        out = expect_ok(
            run_snnc(
                "stream",
                data,
                "--model",
                "stereo-synth",
                "--precision",
                "int8",
                "--backend",
                backend,
                "--threads",
                "1",
                "--json",
            )
        )
        summaries[backend] = json.loads(out.strip().splitlines()[-1])
    torch_s, onnx_s = summaries["torch"], summaries["onnx"]
    assert torch_s["energy_count"] == onnx_s["energy_count"] == "step outputs"
    for key in ("ac_per_frame", "mac_per_frame", "energy_j_per_frame"):
        assert torch_s[key] == pytest.approx(onnx_s[key], rel=1e-12), key
    assert torch_s["ac_per_frame"] > 0 and torch_s["energy_j_per_frame"] > 0
