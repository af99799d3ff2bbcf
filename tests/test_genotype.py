"""SpikeDHS genotypes: presets, JSON round trips, validation messages, dispatch."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from snnc.errors import SnncError
from snnc.models.build import build_model
from snnc.models.genotype import (
    PRIMITIVES,
    CellEdge,
    CellGenotype,
    SpikeDHSClassifierGenotype,
    SpikeDHSStereoGenotype,
    edge_count,
    edge_endpoints,
    genotype_from_dict,
    load_genotype,
    preset_names,
    save_genotype,
)
from snnc.neurons import NeuronSpec

CLA_ROWS = [[1, 1], [0, 1], [3, 2], [2, 1], [7, 1], [8, 1]]
MATCH_ROWS = [[0, 1], [1, 2], [4, 2], [3, 2], [8, 1], [6, 1]]


def cla_dict() -> dict:
    return load_genotype("spikedhs-cla").to_dict()


def one_line_error(fn, *args, match: str) -> str:
    with pytest.raises(SnncError, match=match) as info:
        fn(*args)
    message = str(info.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------- edges and presets
def test_edge_numbering_matches_darts_convention():
    assert edge_count(3) == 9 and edge_count(4) == 14
    expected = [(0, 0), (1, 0), (0, 1), (1, 1), (2, 1), (0, 2), (1, 2), (2, 2), (3, 2)]
    assert [edge_endpoints(i, 3) for i in range(9)] == expected
    assert all(CellEdge(s, d, "snn_b3").index == i for i, (s, d) in enumerate(expected))


def test_presets_hold_the_published_genotypes():
    assert {"spikedhs-cla", "spikedhs-stereo"} <= set(preset_names())
    cla = load_genotype("spikedhs-cla")
    assert isinstance(cla, SpikeDHSClassifierGenotype) and cla.family == "spikedhs-cla"
    assert cla.cell == CellGenotype.from_rows(CLA_ROWS, nodes=3)
    assert cla.path == (0, 0, 1, 1, 1, 2, 2, 2)
    assert cla.neuron == NeuronSpec(type="lif", decay=0.2, vth=0.5, surrogate="dspike", b=3.0)
    # node2 <- node0 (edge 7) and node1 (edge 8)
    assert [(e.src, e.op) for e in cla.cell.inputs_of(2)] == [(2, "snn_b3"), (3, "snn_b3")]
    stereo = load_genotype("spikedhs-stereo")
    assert isinstance(stereo, SpikeDHSStereoGenotype)
    assert stereo.feature_cell == cla.cell and stereo.feature_path == (1, 0)
    assert stereo.matching_cell == CellGenotype.from_rows(MATCH_ROWS, nodes=3, dims=3)
    assert stereo.matching_path == (1, 2, 2, 1)
    assert (stereo.disparities, stereo.disp_step, stereo.in_channels) == (33, 2.0, 5)


@pytest.mark.parametrize("name", ["spikedhs-cla", "spikedhs-stereo"])
def test_json_round_trip(name, tmp_path):
    g = load_genotype(name)
    assert genotype_from_dict(json.loads(json.dumps(g.to_dict()))) == g
    g2 = type(g).from_dict({**g.to_dict(), "neuron_layers": {"x.y": {"type": "relu"}}})
    assert g2.neuron_layers == {"x.y": NeuronSpec(type="relu")} and g2 != g
    path = tmp_path / "g.json"
    save_genotype(g2, path)
    assert load_genotype(path) == g2
    assert load_genotype(str(path)) == g2


def test_op_codes_and_explicit_rows_are_equivalent():
    by_code = CellGenotype.from_rows(CLA_ROWS)
    by_name = CellGenotype.from_rows([[e, PRIMITIVES[o]] for e, o in CLA_ROWS])
    explicit = CellGenotype.from_dict(
        {"nodes": 3, "edges": [{"from": e.src, "to": e.dst, "op": e.op} for e in by_code.edges]}
    )
    assert by_code == by_name == explicit


# ---------------------------------------------------------------- malformed genotypes
@pytest.mark.parametrize(
    "edges, nodes, match",
    [
        (
            [[1, "conv9x9"], [0, 1]],
            1,
            r"cell: edges\[0\]: unknown op 'conv9x9' \(expected one of skip_connect, snn_b3, snn_b5\)",
        ),
        ([[1, 7], [0, 1]], 1, r"op index 7 out of range"),
        ([[1, 1], [0, 1], [9, 1]], 3, r"edges\[2\]: edge index 9 out of range for a 3-node cell \(valid 0..8\)"),
        (
            [{"from": 0, "to": 0, "op": "snn_b3"}, {"from": 1, "to": 3, "op": "snn_b3"}],
            2,
            r"edge into node 3, but the cell has 2 node\(s\)",
        ),
        (
            [
                {"from": 1, "to": 0, "op": "snn_b3"},
                {"from": 3, "to": 0, "op": "snn_b3"},
                {"from": 2, "to": 1, "op": "snn_b3"},
            ],
            2,
            r"cycle node0 -> node1 -> node0",
        ),
        ([{"from": 1, "to": 0, "op": "snn_b3"}, {"from": 2, "to": 0, "op": "snn_b3"}], 1, r"cycle node0 -> node0"),
        ([{"from": 1, "to": 1, "op": "snn_b3"}, {"from": 3, "to": 0, "op": "snn_b3"}], 2, r"goes backwards"),
        ([[1, 1], [0, 1], [3, 1], [2, 1]], 3, r"node\(s\) 2 have no incoming edge .*wrong node count"),
        ([[1, 1], [1, 2]], 1, r"listed twice"),
        ([[1, 1]], 0, r"nodes must be >= 1"),
        ([[1]], 1, r"must be \[edge_index, op\]"),
    ],
)
def test_malformed_cells_are_rejected(edges, nodes, match):
    one_line_error(CellGenotype.from_dict, {"nodes": nodes, "edges": edges}, match=match)


@pytest.mark.parametrize(
    "change, match",
    [
        ({"path": [0, 2, 2]}, r"path: layer 1 jumps from level 0 to 2"),
        ({"path": [2, 2]}, r"path\[0\] = 2: the first layer must be at level 0 or 1"),
        ({"path": [0, 1, 2, 3, 4]}, r"path\[4\] = 4 but the trellis has levels 0..3"),
        ({"path": []}, r"path must be a non-empty list"),
        ({"mixing": "avg"}, r"mixing must be one of mm, ms"),
        ({"num_classes": 0}, r"num_classes must be >= 1"),
        ({"filter_multiplier": "wide"}, r"filter_multiplier must be an integer"),
        ({"neuron": {"type": "lif", "vth": -1}}, r"neuron: .*vth must be positive"),
        ({"neuron_layers": {"stem.neuron": {"type": "tanh"}}}, r"unknown neuron type 'tanh'"),
        ({"colour": 3}, r"unknown key\(s\) 'colour'"),
        ({"family": "spikedhs-stereo"}, r"spikedhs-stereo genotype: unknown key\(s\) 'cell'"),
        ({"family": "resnet"}, r"unknown genotype family 'resnet'"),
    ],
)
def test_malformed_network_genotypes_name_the_file(change, match, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({**cla_dict(), **change}))
    message = one_line_error(load_genotype, path, match=match)
    assert message.startswith(str(path))


def test_missing_required_field():
    d = cla_dict()
    del d["path"]
    one_line_error(genotype_from_dict, d, match=r"spikedhs-cla genotype: missing key\(s\) 'path'")


def test_matching_cell_must_be_3d():
    d = load_genotype("spikedhs-stereo").to_dict()
    d["matching_cell"]["dims"] = 2
    one_line_error(genotype_from_dict, d, match=r"matching_cell must be 3-D")
    d = load_genotype("spikedhs-stereo").to_dict()
    d["matching_cell"]["edges"][0] = [0, "pool"]
    one_line_error(genotype_from_dict, d, match=r"^matching_cell: edges\[0\]: unknown op 'pool'")


def test_unknown_preset_lists_the_valid_ones():
    message = one_line_error(load_genotype, "spikedhs-imagenet", match=r"unknown genotype preset 'spikedhs-imagenet'")
    assert "spikedhs-cla" in message and "spikedhs-stereo" in message and "snasnet-cifar10" in message


def test_snasnet_presets_resolve_through_load_genotype():
    from snnc.models.snasnet import SNASNET_PRESETS

    assert {"snasnet-cifar10", "snasnet-cifar100"} <= set(preset_names())
    for name, genotype in SNASNET_PRESETS.items():
        loaded = load_genotype(name)
        assert loaded == genotype and loaded.family == "snasnet"
        assert genotype_from_dict(json.loads(json.dumps(loaded.to_dict()))) == genotype


def test_malformed_and_missing_json_files(tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text('{"family": "spikedhs-cla", "path": [0, 0,, 1]}')
    message = one_line_error(load_genotype, bad, match=r"invalid JSON: .* at line 1 column")
    assert str(bad) in message
    one_line_error(load_genotype, tmp_path / "nope.json", match=r"nope.json: genotype file not found")
    (tmp_path / "list.json").write_text("[1, 2]")
    one_line_error(load_genotype, tmp_path / "list.json", match=r"list.json: genotype must be a JSON object")


# ---------------------------------------------------------------- build-time checks and dispatch
def test_per_layer_neuron_specs_and_overrides():
    g = load_genotype("spikedhs-cla")
    net = build_model(g, filter_multiplier=2, neuron_layers={"trellis.cells.3.nodes.1": NeuronSpec(type="relu")})
    layers = dict(net.neurons())
    assert layers["trellis.cells.3.nodes.1"].spec.type == "relu"
    assert layers["trellis.cells.3.nodes.0"].spec == g.neuron
    assert net.genotype.filter_multiplier == 2
    with pytest.raises(SnncError, match=r"unknown neuron layer\(s\) 'cells.9.nodes.0' .*stem.neuron"):
        build_model(g, filter_multiplier=2, neuron_layers={"cells.9.nodes.0": NeuronSpec()})
    with pytest.raises(SnncError, match=r"unknown override\(s\) 'width'"):
        build_model(g, width=3)
    with pytest.raises(SnncError, match=r"unknown genotype preset"):
        build_model("no-such-net")


def test_snasnet_family_dispatches_lazily(monkeypatch):
    fake = types.ModuleType("snnc.models.snasnet")

    class SNASNetGenotype:
        family = "snasnet"

        def __init__(self, d):
            self.d = d

        @classmethod
        def from_dict(cls, d, path=None):
            if "cell" not in d:
                raise SnncError("snasnet genotype: missing key 'cell'")
            return cls(d)

    fake.SNASNetGenotype = SNASNetGenotype
    fake.build_snasnet = lambda genotype, **kw: ("built", genotype.d["cell"], kw)
    monkeypatch.setitem(sys.modules, "snnc.models.snasnet", fake)
    g = genotype_from_dict({"family": "snasnet", "cell": "0303"})
    assert isinstance(g, SNASNetGenotype)
    assert build_model(g, time_steps=5) == ("built", "0303", {"time_steps": 5})
    with pytest.raises(SnncError, match=r"^f.json: snasnet genotype: missing key 'cell'"):
        genotype_from_dict({"family": "snasnet"}, Path("f.json"))
