"""``snnc energy x.nir``: the energy of a NIR file is the energy of the network it was exported from.

A folded classifier is saved as a checkpoint and exported to NIR with the CLI; ``snnc energy``
on both gives the same dense ops, MACs, fan-out ACs, energy and neuron rates (``--count events``
counts each input spike's synapses, so a convolution split into per-source parts, as the export
graph spells a concatenation, counts the same). ``--count rate`` multiplies each layer's mean
input rate by its dense ops, so there the parts' rates give slightly different ACs.
"""

from __future__ import annotations

import json

import pytest

from snnc.export.interop_cases import interop_case
from snnc.export.nir_writer import write_nir
from snnc.models.loading import save_network

from cli_helpers import assert_user_error, expect_ok, run_snnc

pytestmark = pytest.mark.slow  # one spikedhs classifier built, exported and counted 7 times (~1 min)


@pytest.fixture(scope="module")
def digits_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nir-energy")
    case = interop_case("digits", batch=2, steps=4)
    ckpt = folder / "digits.pt"
    save_network(case.model, ckpt, folded=True, input_shape=(1, 1, 8, 8))
    nir_file = folder / "digits.nir"
    expect_ok(run_snnc("export", ckpt, "--to", "nir", "--out", nir_file))
    return case, ckpt, nir_file


def _energy(model, *args):
    return json.loads(
        expect_ok(
            run_snnc("energy", model, "--data", "digits", "--frames", "10", "--format", "json", "--threads", "1", *args)
        )
    )


def test_nir_energy_equals_the_checkpoint_energy(digits_files):
    _, ckpt, nir_file = digits_files
    want = _energy(ckpt, "--count", "events")
    got = _energy(nir_file, "--count", "events")
    for key in ("dense_ops", "mac", "neuron_updates"):
        assert got["total"][key] == want["total"][key], key
    assert got["total"]["ac"] == pytest.approx(want["total"]["ac"], rel=1e-9)
    assert got["total"]["energy_j"] == pytest.approx(want["total"]["energy_j"], rel=1e-9)
    assert want["total"]["ac"] > 1e4  # the network fires: this compares real counts
    assert got["neuron_rates"] == pytest.approx(want["neuron_rates"], rel=1e-9)
    assert got["model"].startswith("NIR file digits.nir (snnc spikedhs-cla")
    # the rate rule: same dense ops and MACs, ACs within a percent (per-part input rates)
    rate_want, rate_got = _energy(ckpt), _energy(nir_file)
    assert rate_got["total"]["dense_ops"] == rate_want["total"]["dense_ops"]
    assert rate_got["total"]["mac"] == rate_want["total"]["mac"]
    assert rate_got["total"]["ac"] == pytest.approx(rate_want["total"]["ac"], rel=0.01)
    table = expect_ok(run_snnc("energy", nir_file, "--data", "digits", "--frames", "5", "--threads", "1"))
    assert "NIR file digits.nir" in table and "trellis.cells.0.ops.0" in table


def test_nir_energy_errors(digits_files, tmp_path):
    case, _, _ = digits_files
    bare = tmp_path / "bare.nir"  # a graph without snnc's genotype metadata: no time steps known
    case.graph.meta.pop("genotype", None)
    write_nir(case.graph, bare)
    assert_user_error(run_snnc("energy", bare, "--data", "digits"), "bare.nir", "no time steps", "--steps")
    expect_ok(run_snnc("energy", bare, "--data", "digits", "--frames", "5", "--steps", "2", "--threads", "1"))
    seq = interop_case("sequential", batch=1, steps=2)
    seq_file = tmp_path / "seq.nir"
    write_nir(seq.graph, seq_file)
    assert_user_error(run_snnc("energy", seq_file, "--data", "digits"), "seq.nir", "do not fit the NIR graph's input")
    assert_user_error(run_snnc("energy", tmp_path / "missing.nir", "--data", "digits"), "missing.nir", "not found")
