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


#: the int8 stream tests' recording: frames and size (the shape of the other int8 stream proofs)
FRAMES, HEIGHT, WIDTH = 4, 16, 24


@pytest.fixture(scope="module")
def int8_streams(tmp_path_factory):
    """``snnc stream --precision int8`` of the trained stereo-synth over one synthetic recording, both counting
    energy: ``--backend onnx --check-against torch`` and ``--backend torch``; their JSON summaries by backend
    (one ONNX export serves both tests below)."""
    tmp = tmp_path_factory.mktemp("int8_cli")
    data = tmp / "s_data.hdf5"
    size = ["--frames", str(FRAMES), "--height", str(HEIGHT), "--width", str(WIDTH)]
    expect_ok(run_snnc("data", "synth", data, *size, "--quiet"))
    summaries = {}
    for backend, extra in (("onnx", ["--check-against", "torch"]), ("torch", [])):
        args = ["stream", data, "--model", "stereo-synth", "--precision", "int8", "--backend", backend, *extra]
        out = expect_ok(run_snnc(*args, "--threads", "1", "--json"))
        summaries[backend] = json.loads(out.strip().splitlines()[-1])
    return summaries


@pytest.mark.slow
def test_stream_int8_onnx_equals_torch_pixel_for_pixel(int8_streams):
    summary = int8_streams["onnx"]
    check = summary["check"]
    assert summary["precision"] == "int8" and check["frames"] == FRAMES and check["pixels"] == FRAMES * HEIGHT * WIDTH
    assert check["pixels_differing"] == 0 and check["one_pixel_accuracy_difference"] == 0.0


@pytest.mark.slow
def test_stream_int8_energy_is_counted_on_the_integer_spikes_alike_on_torch_and_onnx(int8_streams):
    """torch counts from its integer graph's node values, onnx from its state outputs: the same ops and joules
    (onnx's own count: --check-against leaves the reference uncounted)."""
    torch_s, onnx_s = int8_streams["torch"], int8_streams["onnx"]
    assert torch_s["energy_count"] == onnx_s["energy_count"] == "step outputs"
    for key in ("ac_per_frame", "mac_per_frame", "energy_j_per_frame"):
        assert torch_s[key] == pytest.approx(onnx_s[key], rel=1e-12), key
    assert torch_s["ac_per_frame"] > 0 and torch_s["energy_j_per_frame"] > 0
