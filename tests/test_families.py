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


# ----------------------------------------------------------------------------- one place dispatches on family
def _family_comparisons(path):
    """``(line, source)`` of each comparison of a family-valued expression with a registered family name,
    and of each literal dict keyed by family names, in one source file."""
    import ast

    names = set(FAMILIES)
    tree = ast.parse(path.read_text(), str(path))
    found = []

    def names_in(node):
        if isinstance(node, ast.Constant) and node.value in names:
            return True
        return isinstance(node, (ast.Tuple, ast.List, ast.Set)) and any(names_in(e) for e in node.elts)

    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            literal = [o for o in operands if names_in(o)]
            others = [o for o in operands if not names_in(o)]
            # a genotype validating its own constant field (``self.family != "snasnet"``) is not dispatch
            own = all(ast.unparse(o) == "self.family" for o in others)
            if literal and not own and any("family" in ast.unparse(o).lower() for o in others):
                found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.Dict) and sum(names_in(k) for k in node.keys if k is not None) >= 2:
            found.append((node.lineno, "dict keyed by family names"))
    return found


def test_only_the_family_registry_compares_family_names():
    from pathlib import Path

    import snnc

    root = Path(snnc.__file__).parent
    offenders = [
        f"{p.relative_to(root)}:{line}: {src}"
        for p in sorted(root.rglob("*.py"))
        if p.name != "families.py"
        for line, src in _family_comparisons(p)
    ]
    assert offenders == []


def test_the_family_scan_finds_a_comparison(tmp_path):
    src = tmp_path / "x.py"
    src.write_text(
        'def f(net, g):\n    if net.family == "snasnet":\n        pass\n    return g["family"] in ("sequential",)\n'
        'T = {"snasnet": 1, "sequential": 2}\nclass G:\n    def v(self):\n        return self.family != "snasnet"\n'
    )
    assert sorted(line for line, _ in _family_comparisons(src)) == [2, 4, 5]


# ----------------------------------------------------------------------------- facts the registry gives
def test_input_layout_and_graph_inputs_follow_stereo_input():
    import torch

    from snnc.export.lower import graph_inputs, input_layout

    assert [f.name for f in FAMILIES.values() if f.stereo_input] == ["spikedhs-stereo"]
    pair = torch.arange(2 * 2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 2, 3, 4, 5)
    x = graph_inputs("spikedhs-stereo", pair)["x"]
    assert x.shape == (4, 3, 4, 5)
    assert torch.equal(x[:2], pair[:, 0]) and torch.equal(x[2:], pair[:, 1])  # left frames first
    assert "both cameras in the batch" in input_layout("spikedhs-stereo")
    image = pair[:, 0]
    for name in ("spikedhs-cla", "snasnet", None, "from-a-foreign-nir-file"):
        assert graph_inputs(name, image)["x"] is image
    assert input_layout("snasnet") == "x = x_t (B, C, H, W)"


def test_classification_overrides_are_the_family_data_fields():
    from types import SimpleNamespace

    import torch

    from snnc.train.task_cls import ClassificationTask
    from snnc.train.task_stereo import StereoTask

    data = SimpleNamespace(in_channels=1, num_classes=10, image_size=(8, 8))
    task = ClassificationTask(data, 4, 2, 2, torch.device("cpu"))
    assert task.model_overrides("spikedhs-cla") == {"in_channels": 1, "num_classes": 10, "time_steps": 4}
    assert task.model_overrides("snasnet") == {"in_channels": 1, "num_classes": 10, "image_size": 8, "time_steps": 4}
    for name in ("sequential", "spikedhs-stereo", "nope"):
        with pytest.raises(SnncError, match=r"is not a classifier; use a spikedhs-cla or snasnet genotype"):
            task.model_overrides(name)
    task.data = SimpleNamespace(in_channels=1, num_classes=10, image_size=(8, 6))
    with pytest.raises(SnncError, match="snasnet needs square images, the data has 8x6"):
        task.model_overrides("snasnet")
    with pytest.raises(SnncError, match="'snasnet' is not a stereo network; use a spikedhs-stereo genotype"):
        StereoTask.model_overrides(object.__new__(StereoTask), "snasnet")


# ----------------------------------------------------------------------------- lowerings keyed by network class
def test_lowering_is_found_by_network_class(monkeypatch):
    import snnc.export.lower as lower_mod
    from snnc.models.fold import fold_bn
    from snnc.models.sequential import SequentialNet

    class Variant(SequentialNet):
        pass

    genotype = load_genotype("sequential-dvs")
    net = fold_bn(build_model(genotype).eval())
    shape = default_step_shape(genotype)
    reference = lower_mod.lower(net, shape)
    net.__class__ = Variant  # still a sequential-family network (isinstance), but no lowering for its class
    with pytest.raises(SnncError, match=r"^cannot export a Variant: no lowering is registered for that class$"):
        lower_mod.lower(net, shape)
    monkeypatch.setitem(lower_mod._LOWERINGS, Variant, lower_mod._LOWERINGS[SequentialNet])
    graph = lower_mod.lower(net, shape)
    assert [(n.name, n.op, n.inputs) for n in graph.nodes.values()] == [
        (n.name, n.op, n.inputs) for n in reference.nodes.values()
    ]
    assert graph.meta["family"] == "sequential" and graph.meta["input_layout"] == "x = x_t (B, C, H, W)"


def test_every_family_has_a_lowering_and_a_size_estimator():
    import snnc.export.lower as lower_mod
    from snnc.models.families import _resolve, size_estimator

    assert {_resolve(f.network) for f in FAMILIES.values()} == set(lower_mod._LOWERINGS)
    for name in FAMILIES:
        assert callable(size_estimator(name))
    assert size_estimator("nope") is None and size_estimator(None) is None
