"""SNASNet training-free search: candidate rules, the SAH kernel by hand, scores, the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from snnc.errors import SnncError
from snnc.models.base import SpikingNet, StepContext
from snnc.models.build import build_model
from snnc.models.genotype import load_genotype
from snnc.models.snasnet import SNASNetGenotype, parse_cell
from snnc.nas.snasnet_search import (
    KernelCollector,
    SNASNetSearchConfig,
    candidate_cells,
    conv_edge_count,
    prune_cell,
    run_snasnet_search,
    sah_kernel,
    sample_cell,
    score_batches,
    score_cell,
    score_network,
)
from snnc.neurons import Neuron, NeuronSpec

from cli_helpers import assert_user_error, run_snnc


def _on_path(m: tuple[tuple[int, ...], ...], node: int) -> bool:
    """Brute force: node lies on a walk 0 -> ... -> node -> ... -> 3 along nonzero entries."""

    def reaches(a: int, b: int) -> bool:
        seen, todo = {a}, [a]
        while todo:
            i = todo.pop()
            for j in range(4):
                if m[i][j] and j not in seen:
                    seen.add(j)
                    todo.append(j)
        return b in seen and a != b

    return reaches(0, node) and reaches(node, 3)


def test_sampled_cells_follow_the_rules() -> None:
    rng = np.random.default_rng(0)
    cells = [sample_cell(rng) for _ in range(300)]
    backward_seen = 0
    for m in cells:
        assert parse_cell([list(r) for r in m]) == m  # valid for the model (incl. never both directions)
        assert all(m[i][i] == 0 for i in range(4))
        assert all(not (m[i][j] and m[j][i]) for i in range(4) for j in range(4) if i != j)
        assert m[0][3] != 0  # direct input -> output connection
        for node in (1, 2):
            used = any(m[node]) or any(row[node] for row in m)
            assert not used or _on_path(m, node)
        backward_seen += any(m[i][j] for i in range(4) for j in range(i))
    assert backward_seen > 50
    fwd = [sample_cell(rng, backward=False) for _ in range(100)]
    assert all(m[i][j] == 0 for m in fwd for i in range(4) for j in range(i))
    assert candidate_cells(5, seed=3) == candidate_cells(5, seed=3) != candidate_cells(5, seed=4)


def test_conv_edge_budget_filters_the_same_generator(tmp_path: Path) -> None:
    assert conv_edge_count("0303 0030 2002 0200") == 6  # 4 forward + 2 backward conv edges
    assert conv_edge_count("0001 0000 0000 0000") == 0
    free = candidate_cells(200, seed=2)
    for k in (0, 2, 3):
        budget = candidate_cells(6, seed=2, conv_edges=k)
        assert len(budget) == 6 and all(conv_edge_count(c) == k for c in budget)
        assert budget == candidate_cells(6, seed=2, conv_edges=k)
        expected = [c for c in free if conv_edge_count(c) == k][:6]  # same draws, filtered in order
        assert len(expected) < 6 or budget == expected
    assert len({conv_edge_count(c) for c in free}) >= 4  # the unconstrained space mixes sizes
    with pytest.raises(SnncError, match=r"--conv-edges must be in 0..6"):
        candidate_cells(3, seed=0, conv_edges=7)
    proc = run_snnc(
        "search", "--method", "snasnet", "--data", "digits", "--out", tmp_path / "s.json", "--conv-edges", "9"
    )
    assert_user_error(proc, "--conv-edges must be in 0..6")
    out = tmp_path / "b.json"
    quiet = {"progress": False, "echo": lambda s: None, "plot": False}
    run_snasnet_search(
        {"candidates": 3, "batch_size": 8, "width": 4, "fc_hidden": 16, "time_steps": 2, "conv_edges": 2}, out, **quiet
    )
    assert conv_edge_count(load_genotype(out).cell) == 2


def test_prune_cell_disconnects_dead_ends() -> None:
    # node 1 gets input but feeds nothing onward; node 2 feeds the output but receives nothing
    m = ((0, 3, 0, 2), (0, 0, 0, 0), (0, 0, 0, 1), (0, 0, 0, 0))
    assert prune_cell(m) == ((0, 0, 0, 2), (0, 0, 0, 0), (0, 0, 0, 0), (0, 0, 0, 0))
    # a backward edge 3 -> 1 (node 1 at t reads node 3 at t-1) and 1 -> 3 forward: node 1 kept
    m2 = ((0, 2, 0, 1), (0, 0, 0, 3), (0, 0, 0, 0), (0, 0, 0, 0))
    assert prune_cell(m2) == m2


def test_sah_kernel_matches_hand_computation() -> None:
    c = torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1]], dtype=torch.float32)
    # N_A = 4, sparsities r = 0.75, 0.5, 0.5; d_H = 1 (1,2), 3 (1,3), 4 (2,3)
    # denominators r_i(1-r_j)+(1-r_i)r_j = 0.5 for all three pairs -> d_SAH = 0.5/0.5 * d_H
    expected = torch.tensor([[4.0, 3.0, 1.0], [3.0, 4.0, 0.0], [1.0, 0.0, 4.0]], dtype=torch.float64)
    assert torch.allclose(sah_kernel(c), expected)
    # all-zero vs all-zero: 0/0 -> distance 0; all-ones vs all-zeros: denominator 1, d = 0.5 * 4
    z = torch.tensor([[0, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]], dtype=torch.float32)
    assert torch.allclose(sah_kernel(z), torch.tensor([[4.0, 4, 2], [4, 4, 2], [2, 2, 4]], dtype=torch.float64))


def test_sah_kernel_normalises_by_both_sparsities() -> None:
    # unequal sparsities: r = 0.75 and 0.25 -> denominator 0.75*0.75 + 0.25*0.25 = 0.625; d_H = 2
    c = torch.tensor([[1, 0, 0, 0], [1, 1, 1, 0]], dtype=torch.float32)
    d = 0.5 / 0.625 * 2
    assert torch.allclose(sah_kernel(c), torch.tensor([[4.0, 4 - d], [4 - d, 4.0]], dtype=torch.float64))
    # the same d_H between a sparse pair (r = 0.75, 0.75 -> denominator 0.375) counts for more
    sparse = torch.tensor([[1, 0, 0, 0], [0, 1, 0, 0]], dtype=torch.float32)
    assert math.isclose(float(sah_kernel(sparse)[0, 1]), 4 - 0.5 / 0.375 * 2)
    # eq. 8-9: for independent patterns E[d_SAH] = alpha * N_A whatever the two firing rates,
    # while the plain Hamming distance depends on them
    gen = torch.Generator().manual_seed(0)
    n_a = 100_000
    rates = torch.tensor([0.02, 0.1, 0.3, 0.5, 0.8, 0.97])
    pat = (torch.rand(len(rates), n_a, generator=gen) < rates[:, None]).to(torch.float32)
    k = sah_kernel(pat)
    off = ~torch.eye(len(rates), dtype=torch.bool)
    d_sah = (n_a - k)[off]
    assert torch.allclose(d_sah, torch.full_like(d_sah, 0.5 * n_a), rtol=0.03)
    ones = pat.sum(1, dtype=torch.float64)
    d_h = (ones[:, None] + ones[None, :] - 2 * pat.double() @ pat.double().T)[off]
    assert float(d_h.max() / d_h.min()) > 5


class _TwoLayers(SpikingNet):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(6, 5), nn.Linear(5, 4)
        self.n1, self.n2 = Neuron(NeuronSpec(vth=0.1)), Neuron(NeuronSpec(vth=0.1))

    def step_with(self, x_t: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        return ctx(self.n2, self.fc2(ctx(self.n1, self.fc1(x_t))))


def test_kernel_collector_sums_layers_and_steps() -> None:
    torch.manual_seed(0)
    net = _TwoLayers()
    x = torch.randn(3, 7, 6)  # T = 3, 7 samples
    recorded: list[torch.Tensor] = []
    handles = [
        m.register_forward_hook(lambda mod, i, o: recorded.append(o[0].detach().clone())) for m in (net.n1, net.n2)
    ]
    with KernelCollector(net) as col:
        net(x)
    for h in handles:
        h.remove()
    assert col.calls == 6 and len(recorded) == 6
    expected = sum(sah_kernel(r) for r in recorded)
    assert torch.allclose(col.kernel, expected)
    s = score_network(net, x)
    assert math.isclose(s, float(torch.linalg.slogdet(expected)[1]), rel_tol=1e-9)
    assert math.isclose(
        score_network(net, x, reduce="mean"), float(torch.linalg.slogdet(expected / 6)[1]), rel_tol=1e-9
    )
    assert not net.n1._forward_hooks  # hooks removed


def test_candidate_scores_are_finite_and_reproducible() -> None:
    cfg = SNASNetSearchConfig.resolve({"batch_size": 16, "width": 4, "fc_hidden": 32, "time_steps": 3})
    batches = score_batches(cfg, torch.device("cpu"))
    net = cfg.search_genotype()
    cells = [*candidate_cells(3, seed=0), "0303 0030 2002 0200"]
    scores = [score_cell(c, batches, net, seed=7) for c in cells]
    assert all(math.isfinite(s) for s in scores)
    assert score_cell(cells[-1], batches, net, seed=7) == scores[-1]
    # the kernel is at most N_A per entry summed, so the score is bounded by N log(sum N_A)
    assert max(scores) < 16 * math.log(1e7)


def test_snasnet_search_writes_best_and_resumes(tmp_path: Path) -> None:
    given = {"candidates": 4, "batch_size": 8, "width": 4, "fc_hidden": 16, "time_steps": 2, "retrain_width": 8}
    quiet = {"progress": False, "echo": lambda s: None, "plot": False}
    out = tmp_path / "snas.json"
    part = run_snasnet_search(given, out, stop_after=2, **quiet)
    assert not part["finished"] and part["scored"] == 2 and not out.exists()
    done = run_snasnet_search({}, out, resume=True, **quiet)
    assert done["finished"] and done["scored"] == 4
    fresh = run_snasnet_search(given, tmp_path / "new" / "folder" / "snas.json", **quiet)  # folders created
    keys = ("index", "cell", "score")
    assert [fresh["best"][k] for k in keys] == [done["best"][k] for k in keys]
    beside = run_snasnet_search(given, tmp_path / "other.json", stop_after=1, **quiet)  # own state file
    assert beside["paths"]["state"].name == "other.search_state.pt" and (tmp_path / "snas.search_state.pt").exists()
    scores = [json.loads(x)["score"] for x in (tmp_path / "snas.search.jsonl").read_text().splitlines()]
    assert len(scores) == 4 and done["best"]["score"] == max(scores)
    genotype = load_genotype(out)
    assert isinstance(genotype, SNASNetGenotype) and genotype.channels == 8 and genotype.image_size == 8
    assert genotype.cell == done["best"]["cell"] and genotype.cell in candidate_cells(4, seed=0)
    model = build_model(out)
    assert model(torch.rand(2, 3, 1, 8, 8)).shape == (2, 3, 10)


def test_cli_snasnet_rejects_spikedhs_options(tmp_path: Path) -> None:
    proc = run_snnc("search", "--method", "snasnet", "--data", "digits", "--out", tmp_path / "s.json", "--epochs", "3")
    assert_user_error(proc, "--epochs does not apply to --method snasnet")
