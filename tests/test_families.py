"""The family registry is the one place a family name means something; every preset goes through it."""

from __future__ import annotations

import pytest

from snnc.errors import SnncError
from snnc.models.build import build_model
from snnc.models.families import FAMILIES, Genotype, default_step_shape, family, family_of_model, genotype_class
from snnc.models.genotype import genotype_from_dict, load_genotype, preset_names


def test_every_preset_round_trips_through_its_registered_family():
    seen = set()
    for name in preset_names():
        g = load_genotype(name)
        fam = family(g.family)
        assert isinstance(g, genotype_class(fam.name)) and isinstance(g, Genotype)
        assert genotype_from_dict(g.to_dict()) == g
        assert isinstance(g.time_steps, int) and g.time_steps >= 1
        seen.add(fam.name)
    assert seen == set(FAMILIES)


@pytest.mark.parametrize("name", ["sequential-dvs", "snasnet-cifar10", "spikedhs-cla"])
def test_built_network_knows_its_family_and_default_shape(name):
    g = load_genotype(name)
    net = build_model(g)
    assert family_of_model(net).name == g.family
    shape = default_step_shape(g)
    assert shape[0] == 1 and shape[1] == getattr(g, "in_channels", 3)


def test_stereo_default_shape_is_a_davis346_pair():
    assert default_step_shape(load_genotype("spikedhs-stereo")) == (1, 2, 5, 260, 346)
    assert family("spikedhs-stereo").task == "stereo" and family("snasnet").task == "classification"


def test_unknown_or_missing_family_is_one_line():
    with pytest.raises(SnncError, match=r"unknown genotype family 'nope' .expected one of spikedhs-cla"):
        genotype_from_dict({"family": "nope"})
    with pytest.raises(SnncError, match="has no 'family'"):
        genotype_from_dict({})
    with pytest.raises(SnncError, match="'family' must be a string"):
        genotype_from_dict({"family": 3})
    with pytest.raises(SnncError, match="not a network of a registered family"):
        family_of_model(object())
