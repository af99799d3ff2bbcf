"""DGS, TPS and HNS: the mixed neuron, and that each search moves and applies what it searches."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from snnc.models.build import build_model
from snnc.models.genotype import load_genotype
from snnc.neurons import NeuronSpec, init_state, neuron_step
from snnc.train import train
from snnc.train.dgs import DGSearch, dgs_candidates
from snnc.train.hns import relu_energy_factor, spike_rate
from snnc.train.mixed import MixedNeuron
from snnc.train.tps import TPSearch, tps_candidates

from _train_util import config, digits_subset, load, quiet_log, tiny_genotype


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("search")
    return tiny_genotype(root / "tiny.json"), digits_subset(root / "npz", n_train=200, n_test=60), root


# ---------------------------------------------------------------------------- mixed neuron
def test_mixed_neuron_is_the_weighted_sum_of_candidates_with_own_state():
    specs = [NeuronSpec(decay=0.1), NeuronSpec(decay=0.9), NeuronSpec(type="relu"), NeuronSpec(type="alif")]
    w = torch.tensor([0.1, 0.2, 0.3, 0.4])
    mixed = MixedNeuron(specs, lambda: w)
    torch.manual_seed(0)
    currents = torch.rand(5, 3, 4) * 1.5 - 0.2
    state = mixed.init_state(currents[0])
    assert len(state) == 3 and state[0].shape == (3, 3, 4)  # ALIF's (u, y, a), 3 stateful candidates
    own = [init_state(s, currents[0]) for s in specs]
    for t in range(5):
        y, state = mixed(currents[t], state)
        expected = 0
        for k, s in enumerate(specs):
            yk, own[k] = neuron_step(s, currents[t], own[k])
            expected = expected + w[k] * yk
        assert torch.allclose(y, expected)
    assert torch.equal(state[0][0], own[0][0]) and torch.equal(state[2][2], own[3][2])
    mixed.fixed = 1
    y, _ = mixed(currents[0], mixed.init_state(currents[0]))
    assert torch.equal(y, neuron_step(specs[1], currents[0], init_state(specs[1], currents[0]))[0])


def test_candidate_sets():
    assert [c.decay for c in tps_candidates(NeuronSpec(decay=0.2), 0.1)] == [0.3, 0.2, 0.1]
    assert [c.decay for c in tps_candidates(NeuronSpec(decay=0.95), 0.1)] == [1.0, 0.95, 0.85]
    alif = tps_candidates(NeuronSpec(type="alif", decay=0.5, decay_a=0.3), 0.2)
    assert (
        len(alif) == 9
        and (alif[4].decay, alif[4].decay_a) == (0.5, 0.3)
        and (alif[0].decay, alif[0].decay_a) == (0.7, 0.5)
    )
    assert dgs_candidates(3.0, 5, 0.2) == [2.6, 2.8, 3.0, 3.2, 3.4]
    assert dgs_candidates(0.3, 5, 0.2) == [0.1, 0.3, 0.5, 0.7]  # b - 0.4 < 0 dropped
    assert relu_energy_factor(0.2, 6) == pytest.approx(4.26, abs=0.01)


# ---------------------------------------------------------------------------- DGS
@pytest.fixture()
def probe_task(small):
    from snnc.data.images import load_npz_folder
    from snnc.train.task_cls import ClassificationTask

    arch, data, _ = small
    task = ClassificationTask(load_npz_folder(data), 2, 25, 256, torch.device("cpu"))
    torch.manual_seed(0)
    model = build_model(load_genotype(arch), in_channels=1, num_classes=10, time_steps=2)
    return task, model


def _batches(task):
    return lambda cycle: task.train_batches(torch.Generator().manual_seed(cycle))


def test_dgs_round_is_a_probe_that_only_changes_b(probe_task):
    task, model = probe_task
    before = {k: v.clone() for k, v in model.state_dict().items()}
    dgs = DGSearch(
        model, layers=["s1", "trellis.cells.1.nodes.0"], every=1, iters=2, candidates=5, db=0.2, eps=1e-3, alpha_lr=1.0
    )
    records = dgs.run(model, task, epoch=0, lr=0.1, batches=_batches(task))
    assert [r["layer"] for r in records] == ["stem.neuron", "trellis.cells.1.nodes.0"]
    for r in records:
        assert r["chosen_b"] == r["candidates"][max(range(5), key=lambda i: r["alpha_mean"][i])]
        assert dict(model.neurons())[r["layer"]].spec.b == r["chosen_b"]
    assert records[1]["weights"] == ["trellis.cells.1.ops.0.conv.weight", "trellis.cells.1.ops.1.conv.weight"]
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and BN statistics untouched


def test_dgs_on_a_tps_layer_reaches_the_tps_candidates(probe_task):
    task, model = probe_task
    tps = TPSearch(
        model, layers=["s1"], dtau=0.1, every=10, warmup=0, eps=1e-3, arch_lr=3e-3, device=torch.device("cpu")
    )
    tps.attach(model)
    dgs = DGSearch(model, layers=["s1"], every=1, iters=1, candidates=3, db=1.0, eps=1e-3, alpha_lr=1.0)
    (record,) = dgs.run(model, task, epoch=0, lr=0.1, batches=_batches(task))
    tps.sync(model)
    assert [c.b for c in tps.candidates["stem.neuron"]] == [record["chosen_b"]] * 3
    assert tps.decided_spec("stem.neuron").b == record["chosen_b"]


def test_dgs_in_training_moves_b_and_writes_it_to_the_genotype(small):
    arch, data, root = small
    out = root / "dgs"
    train(config(arch, data, out, epochs=2, dgs=True, dgs_every=1, dgs_iters=3), log=quiet_log)
    records = [json.loads(line) for line in (out / "dgs.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [0, 1]
    assert records[1]["previous_b"] == records[0]["chosen_b"]
    assert any(r["chosen_b"] != r["previous_b"] for r in records)  # the temperature moved
    b = records[-1]["chosen_b"]
    default = json.loads((out / "genotype.json").read_text())["neuron"]
    for genotype in (json.loads((out / "genotype.json").read_text()), load(out / "checkpoint.pt")["genotype"]):
        assert genotype["neuron_layers"].get("stem.neuron", default)["b"] == b
    model = build_model(load_genotype(out / "genotype.json"))
    assert dict(model.neurons())["stem.neuron"].spec.b == b


# ---------------------------------------------------------------------------- TPS
def test_tps_moves_time_constants_and_applies_them(small):
    arch, data, root = small
    out = root / "tps"
    metrics = train(config(arch, data, out, epochs=2, tps=True, search_every=2, search_warmup=1), log=quiet_log)
    records = [json.loads(line) for line in (out / "tps.jsonl").read_text().splitlines()]
    assert len(records) >= 2 and all(r["epoch"] == 1 for r in records)  # nothing during the warm-up epoch
    taus = {
        name: spec["decay"] for name, spec in json.loads((out / "genotype.json").read_text())["neuron_layers"].items()
    }
    assert taus and all(t != 0.2 for t in taus.values())  # some leaks moved, and only those are listed
    assert all(round(t * 10) == t * 10 for t in taus.values())  # on the 0.1 grid
    assert metrics["searches"]["tps"] == {n: {"decay": taus.get(n, 0.2)} for n in metrics["searches"]["tps"]}
    model = build_model(load_genotype(out / "genotype.json"))
    model.load_state_dict(load(out / "checkpoint.pt")["model"])
    assert all(dict(model.neurons())[n].spec.decay == t for n, t in taus.items())
    assert not any(isinstance(m, MixedNeuron) for m in model.modules())


# ---------------------------------------------------------------------------- HNS
@pytest.mark.parametrize("energy_lambda", [0.0, 100.0])
def test_hns_energy_weight_decides_between_relu_and_spikes(small, energy_lambda):
    arch, data, root = small
    out = root / f"hns{energy_lambda:g}"
    metrics = train(
        config(
            arch, data, out, epochs=2, steps=1, hns=True, energy_lambda=energy_lambda, search_every=3, search_warmup=0
        ),
        log=quiet_log,
    )
    types = metrics["searches"]["hns"]
    genotype = load_genotype(out / "genotype.json")
    relu = [n for n, s in genotype.neuron_layers.items() if s.type == "relu"]
    assert sorted(relu) == sorted(n for n, t in types.items() if t == "relu")
    if energy_lambda > 0:
        assert relu == [] and set(types.values()) == {"lif"}  # energy dominates: spikes everywhere
    else:
        assert relu  # T = 1: float activations help
    model = build_model(genotype)  # the hybrid genotype builds
    assert sorted(n for n, m in model.neurons() if m.spec.type == "relu") == sorted(relu)


def test_hns_measured_rho_comes_from_the_op_counter(small):
    arch, data, root = small
    out = root / "hns_measured"
    metrics = train(
        config(
            arch, data, out, epochs=2, hns=True, rho="measured", energy_lambda=0.01, search_every=2, search_warmup=1
        ),
        log=quiet_log,
    )
    state = load(out / "checkpoint.pt")["search"]["mixing"]["extra"]
    rate = state["measured_rate"]
    assert 0.0 < rate < 1.0
    assert state["rho_relu"] == pytest.approx(relu_energy_factor(rate, 2))
    assert metrics["searches"]["hns_energy"]["rho_relu"] == pytest.approx(state["rho_relu"])
    # a silent network: rate 0, and the factor stays finite (rate clamped)
    model = build_model(load_genotype(arch), in_channels=1, num_classes=10)
    for _, neuron in model.neurons():
        neuron.spec = dataclasses.replace(neuron.spec, vth=1e9)
    assert spike_rate(model, torch.rand(2, 4, 1, 8, 8)) == 0.0
    assert relu_energy_factor(0.0, 2) == pytest.approx(4.6 / (1e-3 * 2 * 0.9))


def test_resume_inside_a_search_is_exact(small):
    """HNS with decisions (some ReLU) before the stop: resuming rebuilds the mixed layers and continues exactly."""
    arch, data, root = small
    settings = {
        "epochs": 2,
        "steps": 1,
        "hns": True,
        "search_every": 3,
        "search_warmup": 0,
        "dgs": True,
        "dgs_every": 1,
        "dgs_iters": 1,
    }
    straight, split = root / "hns_straight", root / "hns_split"
    train(config(arch, data, straight, **settings), log=quiet_log)
    train(config(arch, data, split, stop_after=1, **settings), log=quiet_log)
    mid = load(split / "checkpoint.pt")
    assert mid["search"]["mixing"]["records"] and not mid["search"]["mixing"]["finished"]
    from snnc.train.resume import resumed_config

    train(resumed_config(split, {}), resume=True, log=quiet_log)
    a, b = load(straight / "checkpoint.pt"), load(split / "checkpoint.pt")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert a["genotype"] == b["genotype"]
    assert (straight / "hns.jsonl").read_text() == (split / "hns.jsonl").read_text()
    assert (straight / "dgs.jsonl").read_text() == (split / "dgs.jsonl").read_text()
