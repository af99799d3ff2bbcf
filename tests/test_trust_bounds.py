"""Adversarial corpus for issue 14 item 4 (bounds on network descriptions).

Every size a genotype file declares is bounded before anything is built
(snnc/models/limits.py names the bounds; snnc/models/size.py estimates the whole
network arithmetically). Each crafted file must end in one short line naming the
bound, exit code 2, and return at once: no layer is built for it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from snnc.errors import MAX_MESSAGE_CHARS, SnncError, list_items, short_repr
from snnc.models import limits

from cli_helpers import ROOT, assert_user_error, run_snnc

PRESETS = ROOT / "snnc" / "presets"
CLA: dict[str, Any] = json.loads((PRESETS / "spikedhs-cla.json").read_text())
STEREO: dict[str, Any] = json.loads((PRESETS / "spikedhs-stereo.json").read_text())
SEQ: dict[str, Any] = {
    "family": "sequential",
    "in_channels": 2,
    "image_size": 16,
    "time_steps": 8,
    "layers": [{"type": "conv", "channels": 8}, {"type": "flatten"}, {"type": "dense", "features": 10}],
}
SNAS: dict[str, Any] = {"family": "snasnet", "cell": "0303 0030 2002 0200", "channels": 16}


def _seq(**changes: Any) -> dict[str, Any]:
    return {**SEQ, **changes}


def _conv(channels: int, **kw: Any) -> dict[str, Any]:
    return {"type": "conv", "channels": channels, **kw}


#: (case id, genotype dict, fragments the message must contain)
CASES: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    ("layers-1e4", {**CLA, "path": [0] * 10**4}, ("path has 10000 entries", "MAX_LAYERS")),
    ("stereo-matching-path", {**STEREO, "matching_path": [1] * 300}, ("matching_path", "MAX_LAYERS")),
    (
        "channels-1e6",
        {**CLA, "filter_multiplier": 10**6},
        ("filter_multiplier 1000000 exceeds the limit 4096 (snnc.models.limits.MAX_CHANNELS)",),
    ),
    ("in-channels", {**STEREO, "in_channels": 10**5}, ("in_channels 100000", "MAX_CHANNELS")),
    (
        "cell-nodes-1e6",
        {**CLA, "cell": {"nodes": 10**6, "dims": 2, "edges": [[1, "snn_b3"]]}},
        ("cell: nodes 1000000 exceeds the limit 16", "MAX_CELL_NODES"),
    ),
    (
        "cell-edges",
        {**CLA, "cell": {"nodes": 3, "dims": 2, "edges": [[1, "snn_b3"]] * 1000}},
        ("cell: edges has 1000 entries", "MAX_CELL_EDGES"),
    ),
    ("time-steps", {**CLA, "time_steps": 10**9}, ("time_steps 1000000000", "MAX_TIME_STEPS")),
    ("disparities", {**STEREO, "disparities": 10**6}, ("disparities 1000000", "MAX_DISPARITIES")),
    ("volume-disparities", {**STEREO, "volume_disparities": 10**5}, ("volume_disparities", "MAX_DISPARITIES")),
    ("feature-stride", {**STEREO, "feature_stride": 10**4}, ("feature_stride", "MAX_STRIDE")),
    ("classes", {**CLA, "num_classes": 10**7}, ("num_classes", "MAX_CLASSES")),
    ("seq-layers-1e4", _seq(layers=[_conv(8)] * 10**4), ("layers has 10000 entries", "MAX_LAYERS")),
    ("seq-channels", _seq(layers=[_conv(10**6)]), ("layers[0].channels 1000000", "MAX_CHANNELS")),
    (
        "seq-features",
        _seq(layers=[{"type": "flatten"}, {"type": "dense", "features": 10**6}]),
        ("layers[1].features", "MAX_CHANNELS"),
    ),
    ("seq-kernel", _seq(layers=[_conv(8, kernel_size=1001)]), ("kernel_size 1001", "MAX_KERNEL_SIZE")),
    ("seq-stride", _seq(layers=[_conv(8, stride=10**6)]), ("stride", "MAX_STRIDE")),
    ("seq-image", _seq(image_size=10**6, layers=[_conv(8)]), ("image_size 1000000", "MAX_IMAGE_SIZE")),
    ("seq-time-steps", _seq(time_steps=10**7), ("time_steps", "MAX_TIME_STEPS")),
    ("snasnet-channels", {**SNAS, "channels": 10**6}, ("snasnet genotype: channels 1000000", "MAX_CHANNELS")),
    ("snasnet-timesteps", {**SNAS, "timesteps": 10**6}, ("1000000 exceeds the limit 1024", "MAX_TIME_STEPS")),
    ("snasnet-fc", {**SNAS, "fc_hidden": 10**6}, ("fc_hidden", "MAX_CHANNELS")),
    ("snasnet-image", {**SNAS, "image_size": 4 * 10**6}, ("image_size", "MAX_IMAGE_SIZE")),
    # every field allowed on its own, the network as a whole is not: refused before allocation
    (
        "parameters-seq",
        _seq(image_size=8, layers=[_conv(4096)] * 200),
        ("parameters (estimated from the genotype)", "MAX_PARAMETERS"),
    ),
    (
        "parameters-cla",
        {**CLA, "filter_multiplier": 4096, "path": [0, 1, 2, 3, 3, 2, 1, 0] * 32},
        ("parameters", "MAX_PARAMETERS"),
    ),
    ("dense-ops", _seq(image_size=1024, layers=[_conv(512)] * 2), ("dense synaptic ops", "MAX_DENSE_OPS")),
    (
        "activations",
        _seq(in_channels=1, image_size=4096, layers=[_conv(128, kernel_size=1)]),
        ("activations", "MAX_ACTIVATIONS"),
    ),
    ("snasnet-parameters", {**SNAS, "channels": 4096, "fc_hidden": 4096}, ("parameters", "MAX_PARAMETERS")),
]


def _write(tmp_path: Path, name: str, d: Any) -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(d, separators=(",", ":")))
    return path


def _short(err: str) -> None:
    assert len(err) < MAX_MESSAGE_CHARS + len("snnc: error: "), len(err)


@pytest.mark.parametrize("name, genotype, fragments", CASES, ids=[c[0] for c in CASES])
def test_each_bound_refused_by_the_api(name, genotype, fragments):
    from snnc.models.genotype import genotype_from_dict

    with pytest.raises(SnncError) as info:
        genotype_from_dict(genotype, f"{name}.json")
    msg = str(info.value)
    assert msg.startswith(f"{name}.json: ") and "\n" not in msg and len(msg) < MAX_MESSAGE_CHARS, msg
    for frag in fragments:
        assert frag in msg, (frag, msg)


@pytest.mark.parametrize(
    "name",
    [
        "layers-1e4",
        "channels-1e6",
        "cell-nodes-1e6",
        "time-steps",
        "disparities",
        "seq-layers-1e4",
        "snasnet-channels",
        "parameters-seq",
        "dense-ops",
    ],
)
def test_each_bound_refused_by_snnc_info(name, tmp_path):
    genotype, fragments = next((g, f) for n, g, f in CASES if n == name)
    path = _write(tmp_path, name, genotype)
    err = assert_user_error(run_snnc("info", path, timeout=60), str(path), *fragments)
    _short(err)


def test_deeply_nested_json(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text('{"family": "spikedhs-cla", "cell": ' + "[" * 10**5 + "]" * 10**5 + "}")
    err = assert_user_error(
        run_snnc("info", path, timeout=60), str(path), "JSON nested deeper than the limit", "MAX_JSON_DEPTH"
    )
    _short(err)


def test_nesting_just_over_the_limit_is_refused_after_parsing():
    from snnc.models.genotype import _read_json

    deep = "[" * (limits.MAX_JSON_DEPTH + 1) + "]" * (limits.MAX_JSON_DEPTH + 1)
    with pytest.raises(SnncError, match="MAX_JSON_DEPTH"):
        _read_json(deep, "x.json")
    ok = "[" * limits.MAX_JSON_DEPTH + "]" * limits.MAX_JSON_DEPTH
    assert _read_json(ok, "x.json") is not None


def test_50_mb_json_file(tmp_path):
    path = tmp_path / "huge.json"
    with path.open("w") as f:
        f.write('{"family": "spikedhs-cla", "pad": "')
        f.write("x" * (50 * 10**6))
        f.write('"}')
    err = assert_user_error(
        run_snnc("info", path, timeout=60),
        str(path),
        "genotype file of 50000037 bytes exceeds",
        "MAX_GENOTYPE_JSON_BYTES",
    )
    _short(err)


def test_integer_literal_with_too_many_digits(tmp_path):
    path = tmp_path / "digits.json"
    path.write_text(json.dumps(CLA)[:-1] + ', "time_steps": ' + "9" * 5000 + "}")
    err = assert_user_error(run_snnc("info", path, timeout=60), str(path), "a number has too many digits")
    _short(err)


def test_many_unknown_keys_are_listed_briefly(tmp_path):
    path = _write(tmp_path, "keys", {**CLA, **{f"k{i}": 0 for i in range(50_000)}})
    err = assert_user_error(run_snnc("info", path, timeout=60), "unknown key(s) 'k0', 'k1', 'k10'; and 49997 more")
    _short(err)


def test_many_unknown_neuron_layers_are_listed_briefly(tmp_path):
    from snnc.models.build import build_model
    from snnc.models.genotype import genotype_from_dict

    g = genotype_from_dict(_seq(neuron_layers={f"nope{i}": {} for i in range(1000)}))
    with pytest.raises(SnncError) as info:
        build_model(g)
    msg = str(info.value)
    assert "'nope0', 'nope1', 'nope2'; and 997 more" in msg and len(msg) < MAX_MESSAGE_CHARS, msg


def test_many_invalid_edges_are_counted():
    from snnc.models.genotype import genotype_from_dict

    with pytest.raises(SnncError) as info:
        genotype_from_dict({**CLA, "cell": {"nodes": 3, "edges": [[99, "snn_b3"]] * 150}}, "e.json")
    msg = str(info.value)
    assert (
        msg.startswith("e.json: cell: 150 of 150 edges invalid: edges[0]: edge index 99 out of range")
        and msg.endswith("; and 147 more")
        and len(msg) < MAX_MESSAGE_CHARS
    ), msg


def test_long_values_are_abbreviated():
    from snnc.models.genotype import genotype_from_dict

    with pytest.raises(SnncError) as info:
        genotype_from_dict({**CLA, "mixing": "m" * 10**6})
    assert "mixing must be one of mm, ms" in str(info.value) and len(str(info.value)) < 200
    with pytest.raises(SnncError) as info:
        genotype_from_dict({**SNAS, "cell": "0" * 10**6})
    assert "expected 4 rows" in str(info.value) and len(str(info.value)) < 300


@pytest.mark.parametrize(
    "shape, fragments",
    [
        ("1,3,100000,100000", ("--input-shape 1x3x100000x100000 has 30000000000 elements", "MAX_INPUT_ELEMENTS")),
        ("1,3,5000,10", ("side 5000 exceeds the limit 4096", "MAX_IMAGE_SIZE")),
        ("1,3,4096,4096", ("dense synaptic ops per time step", "MAX_DENSE_OPS")),
        ("64,3,1024,1024", ("has 201326592 elements", "MAX_INPUT_ELEMENTS")),
    ],
)
def test_huge_input_shape(shape, fragments):
    err = assert_user_error(run_snnc("info", "spikedhs-cla", "--input-shape", shape, timeout=60), *fragments)
    _short(err)


def test_nir_graph_declaring_huge_arrays_is_refused_before_reading(tmp_path):
    import h5py

    from snnc.export.nir_reader import read_nir

    path = tmp_path / "huge.nir"
    with h5py.File(path, "w") as f:
        node = f.create_group("node")
        node["type"] = "NIRGraph"
        nodes = node.create_group("nodes")
        lin = nodes.create_group("fc")
        lin["type"] = "Linear"
        lin.create_dataset("weight", shape=(100_000, 100_000), dtype="f4", chunks=(100, 100))  # never written
        node.create_group("edges")
    assert path.stat().st_size < 100_000
    with pytest.raises(SnncError) as info:
        read_nir(path)
    assert "NIR graph declares 1000000000" in str(info.value) and "MAX_NIR_ARRAY_ELEMENTS" in str(info.value)


def test_nir_graph_with_too_many_nodes(tmp_path, monkeypatch):
    import h5py

    from snnc.export.nir_reader import read_nir

    monkeypatch.setattr(limits, "MAX_NIR_NODES", 5)  # the reader reads the bound at call time
    path = tmp_path / "many.nir"
    with h5py.File(path, "w") as f:
        node = f.create_group("node")
        node["type"] = "NIRGraph"
        nodes = node.create_group("nodes")
        for i in range(6):
            nodes.create_group(f"n{i}")["type"] = "Input"
    with pytest.raises(SnncError, match=r"6 nodes, more than the limit 5 \(snnc.models.limits.MAX_NIR_NODES\)"):
        read_nir(path)


# --------------------------------------------------------------------------- the helpers and the bounds themselves
def test_message_cap_and_item_lists():
    err = SnncError("x" * 10**6, "f.json")
    assert len(str(err)) == MAX_MESSAGE_CHARS and str(err).endswith("… (1000008 characters)")
    again = SnncError(str(err), "g.json")  # re-wrapped with a path keeps the original count
    assert len(str(again)) == MAX_MESSAGE_CHARS and str(again).endswith("… (1000008 characters)")
    assert list_items(range(10**6)) == "0, 1, 2; and 999997 more"
    assert list_items(["b", "a"], fmt=repr, sort=True) == "'a', 'b'"
    assert len(short_repr(list(range(10**5)))) < 50


def test_presets_are_far_inside_the_bounds_and_the_estimate_is_exact():
    from snnc.models.build import build_model
    from snnc.models.genotype import load_genotype
    from snnc.models.size import estimate_size

    for name in ("spikedhs-stereo", "spikedhs-cla", "snasnet-cifar100", "sequential-dvs"):
        g = load_genotype(name)
        size = estimate_size(g)
        assert size.parameters == sum(p.numel() for p in build_model(g).parameters()), name
        assert size.parameters * 4 < limits.MAX_PARAMETERS, name  # CLA-large (58 M) fits too
        assert size.dense_ops * 50 < limits.MAX_DENSE_OPS and size.activations * 30 < limits.MAX_ACTIVATIONS, name


def test_stereo_at_256_disparities_and_a_deep_classifier_are_allowed():
    from snnc.models.genotype import genotype_from_dict

    genotype_from_dict({**STEREO, "disparities": 256})
    genotype_from_dict({**CLA, "path": ([0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 1, 1, 1, 0, 0, 0]) * 2, "filter_multiplier": 64})


def test_every_bound_is_documented():
    doc = (ROOT / "docs" / "MODEL_API.md").read_text()
    for name, _value in limits.LIMITS.items():
        assert f"`{name}`" in doc, name


def test_export_with_a_huge_input_shape(tmp_path):
    out = tmp_path / "net.onnx"
    err = assert_user_error(
        run_snnc("export", "spikedhs-cla", "--to", "onnx", "--out", out, "--input-shape", "1,3,4096,4096", timeout=60),
        "--input-shape 1x3x4096x4096",
        "MAX_DENSE_OPS",
    )
    _short(err)
    assert not out.exists()


@pytest.mark.parametrize("delay", [1e9, float("inf")])
def test_nir_delay_of_too_many_steps(delay, tmp_path):
    import nir
    import numpy as np

    from snnc.export.nir_reader import read_nir

    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([4])),
            "delay": nir.Delay(delay=np.full(4, delay)),
            "output": nir.Output(output_type=np.array([4])),
        },
        edges=[("input", "delay"), ("delay", "output")],
        metadata={"dt": 1.0},
    )
    path = tmp_path / "delay.nir"
    nir.write(str(path), graph)
    with pytest.raises(SnncError, match=r"time steps exceeds the limit 1024 \(snnc.models.limits.MAX_TIME_STEPS\)"):
        read_nir(path)
