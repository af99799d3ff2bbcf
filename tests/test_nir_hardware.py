"""``--check-hardware``: whether a network fits Speck / Xylo, in sinabs' and rockpool's own words.

The verdicts come from the vendors' code (sinabs' DynapcnnNetwork conversion and core mapping,
rockpool's Xylo mapper); these tests build networks on both sides of each chip's limits and check
that the tools accept the ones within them and reject the others for the documented reason.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from snnc.export.lower import lower
from snnc.models.build import build_model
from snnc.models.fold import fold_bn
from snnc.models.sequential import LayerSpec
from snnc.neurons import NeuronSpec

from _export_util import small_genotype, write_genotype
from cli_helpers import assert_user_error, expect_ok, run_snnc

IF = NeuronSpec(type="if", vth=0.5)


def _graph(layers, neuron, in_channels=2, image_size=16):
    genotype = replace(
        small_genotype("sequential-dvs", image_size=image_size, in_channels=in_channels),
        layers=tuple(layers),
        neuron=neuron,
    )
    torch.manual_seed(0)
    net = fold_bn(build_model(genotype).eval()).eval()
    return lower(net, (1, in_channels, image_size, image_size)), genotype


@pytest.mark.slow  # sinabs' graph tracing of three networks (~10 s)
def test_speck_takes_if_conv_nets_and_refuses_leaky_neurons():
    pytest.importorskip("sinabs")
    from snnc.export.nir_hardware import check_speck

    conv = [LayerSpec(type="conv", channels=8), LayerSpec(type="pool", kernel_size=2), LayerSpec(type="flatten")]
    graph, _ = _graph([*conv, LayerSpec(type="dense", features=10)], IF)
    report = check_speck(graph)
    assert report.fits, report.reason
    assert any(d.startswith("layers -> cores:") for d in report.details)  # sinabs' core assignment ran
    assert "samna" in report.not_checked
    leaky, _ = _graph([*conv, LayerSpec(type="dense", features=10)], NeuronSpec(type="lif", decay=0.5, vth=0.5))
    report = check_speck(leaky)
    assert not report.fits and "LIF layers" in report.reason and "DynapcnnNetwork" in report.reason
    # more neurons in one layer than any Speck core holds: sinabs' mapping finds no core for it
    big, _ = _graph(
        [LayerSpec(type="conv", channels=512), LayerSpec(type="flatten"), LayerSpec(type="dense", features=10)],
        IF,
        image_size=32,
    )
    report = check_speck(big)
    assert not report.fits and "core mapping" in report.reason, report.reason


@pytest.mark.slow  # rockpool's import and three mappings (~20 s)
def test_xylo_takes_small_dense_nets_and_refuses_too_many_inputs_or_neurons():
    pytest.importorskip("rockpool")
    from snnc.export.nir_hardware import check_xylo

    lif = NeuronSpec(type="lif", decay=0.5, vth=0.5)
    dense = [LayerSpec(type="flatten"), LayerSpec(type="dense", features=30), LayerSpec(type="dense", features=8)]
    graph, _ = _graph(dense, lif, in_channels=1, image_size=4)  # 16 inputs, 30 hidden, 8 outputs
    report = check_xylo(graph)
    assert report.fits, (report.reason, report.details)
    assert report.details[0].startswith("16 input channels, 30 hidden neurons, 8 output neurons")
    assert any(d.startswith("mapped: weights_in (16, 30)") for d in report.details)
    wide, _ = _graph(dense, lif, in_channels=2, image_size=4)  # 32 inputs: rockpool's DRC warns
    report = check_xylo(wide)
    assert not report.fits and "up to 16 input channels" in report.reason
    many = [LayerSpec(type="flatten"), LayerSpec(type="dense", features=1200), LayerSpec(type="dense", features=8)]
    report = check_xylo(_graph(many, lif, in_channels=1, image_size=4)[0])
    assert not report.fits and "Failed to allocate HW resources for hidden neurons" in report.reason


def test_cli_check_hardware(tmp_path):
    pytest.importorskip("sinabs")
    genotype = small_genotype("sequential-dvs", image_size=16)
    src = write_genotype(genotype, tmp_path / "seq.json")
    # snnc's LIF network: Speck refuses its leaky neurons (sinabs' words), then --for sinabs refuses the file
    proc = run_snnc("export", src, "--to", "nir", "--for", "sinabs", "--check-hardware", "--out", tmp_path / "a.nir")
    assert "hardware: Speck (sinabs DynapcnnNetwork): does not fit" in proc.stdout and "LIF" in proc.stdout
    assert_user_error(proc, "for sinabs")
    if_src = write_genotype(replace(genotype, neuron=IF), tmp_path / "seq_if.json")
    proc = run_snnc("export", if_src, "--to", "nir", "--for", "sinabs", "--check-hardware", "--out", tmp_path / "b.nir")
    assert "hardware: Speck (sinabs DynapcnnNetwork): fits" in proc.stdout, proc.stdout
    assert_user_error(proc, "for sinabs")  # the chip takes it; sinabs' NIR importer still cannot run it exactly
    assert_user_error(
        run_snnc("export", src, "--to", "nir", "--for", "snntorch", "--check-hardware", "--out", tmp_path / "c.nir"),
        "--check-hardware",
        "--for sinabs or --for rockpool",
    )
    assert not (tmp_path / "c.nir").exists()
    text = expect_ok(run_snnc("export", src, "--help"))
    assert "--check-hardware" in text
