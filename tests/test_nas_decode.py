"""Decoding SpikeDHS searches: hand-set alphas -> cells, hand-set betas -> Viterbi paths."""

from __future__ import annotations

import math

import pytest
import torch

from snnc.errors import SnncError
from snnc.models.build import build_model
from snnc.models.genotype import PRIMITIVES, CellGenotype, edge_count, load_genotype
from snnc.nas.arch import DOWN, SAME, UP, TrellisGeometry, normalized_betas
from snnc.nas.decode import cell_rows, decode_cell, decode_classifier, decode_stereo, level_probabilities, viterbi_path
from snnc.nas.supernet import ClassifierSupernet, StereoSupernet

PUBLISHED_CELL = [[1, 1], [0, 1], [3, 2], [2, 1], [7, 1], [8, 1]]
PUBLISHED_MATCHING = [[0, 1], [1, 2], [4, 2], [3, 2], [8, 1], [6, 1]]


def alphas_for(rows: list[list[int]], nodes: int = 3) -> torch.Tensor:
    """Alphas whose decoding is ``rows``: kept edges get a large logit on their op, the first of
    a node's pair the largest; dropped edges a smaller one on a conv op."""
    a = torch.zeros(edge_count(nodes), len(PRIMITIVES))
    for e in range(edge_count(nodes)):
        a[e, 1] = 0.5
    for k, (edge, op) in enumerate(rows):
        a[edge] = 0.0
        a[edge, op] = 4.0 if k % 2 == 0 else 3.0
    return a


def test_published_cell_from_alphas() -> None:
    a = alphas_for(PUBLISHED_CELL)
    assert cell_rows(a, 3) == PUBLISHED_CELL
    assert decode_cell(a, 3) == load_genotype("spikedhs-cla").cell
    matching = decode_cell(alphas_for(PUBLISHED_MATCHING), 3, dims=3)
    assert matching == load_genotype("spikedhs-stereo").matching_cell


def test_edges_ranked_by_strongest_non_skip_op_but_op_may_be_skip() -> None:
    a = torch.full((edge_count(3), 3), 0.0)
    # node 1 (edges 2, 3, 4): edge 2 is skip-dominated, so it loses despite its large skip weight
    a[2] = torch.tensor([6.0, 0.0, 0.0])
    a[3] = torch.tensor([0.0, 2.0, 1.0])
    a[4] = torch.tensor([0.0, 1.0, 0.5])
    # node 0: edge 0 has skip as its argmax but the strongest non-skip weight of node 0
    a[0] = torch.tensor([2.0, 1.9, -5.0])
    a[1] = torch.tensor([0.0, 0.1, 0.0])
    rows = cell_rows(a, 3)
    assert rows[0] == [0, PRIMITIVES.index("skip_connect")]
    assert [r[0] for r in rows[2:4]] == [3, 4]
    # including skip in the ranking would keep edge 2
    rows_all = cell_rows(a, 3, rank_exclude=())
    assert 2 in [r[0] for r in rows_all[2:4]]


def test_four_node_cell_keeps_two_edges_per_node() -> None:
    torch.manual_seed(0)
    a = torch.randn(edge_count(4), 3)
    cell = decode_cell(a, 4)
    assert isinstance(cell, CellGenotype) and cell.nodes == 4 and len(cell.edges) == 8
    for node in range(4):
        kept = cell.inputs_of(node)
        assert len(kept) == 2
        p = torch.softmax(a, -1)
        strength = {e: float(p[e, 1:].max()) for e in range(edge_count(4))}
        candidates = [2 * node + node * (node - 1) // 2 + s for s in range(2 + node)]
        best_two = sorted(candidates, key=lambda e: -strength[e])[:2]
        assert sorted(e.index for e in kept) == sorted(best_two)


def test_cell_rows_rejects_wrong_shape() -> None:
    with pytest.raises(SnncError, match="shaped"):
        cell_rows(torch.zeros(9, 3), 4)


def betas_for(path: list[int], levels: int = 4) -> torch.Tensor:
    """Betas with a large logit on each transition of ``path`` (from the stem at level 0)."""
    b = torch.zeros(len(path), levels, 3)
    prev = 0
    for layer, level in enumerate(path):
        direction = {-1: UP, 0: SAME, 1: DOWN}[level - prev]
        b[layer, prev, direction] = 8.0
        prev = level
    return b


@pytest.mark.parametrize("path", [[1, 2, 2, 1], [1, 0], [0, 0, 1, 1, 1, 2, 2, 2], [1, 2, 3, 3]])
def test_viterbi_recovers_hand_set_paths(path: list[int]) -> None:
    g = TrellisGeometry(len(path), 4)
    assert viterbi_path(betas_for(path), g) == tuple(path)


def test_viterbi_is_global_not_greedy() -> None:
    g = TrellisGeometry(2, 3)
    b = torch.zeros(2, 3, 3)
    b[0, 0, SAME], b[0, 0, DOWN] = math.log(0.6), math.log(0.4)  # greedy first step: stay at level 0
    b[1, 1, SAME] = 6.0  # but level 1 continues with p ~ 1
    q = normalized_betas(b, g)
    via0 = float(q[0, 0, SAME] * max(q[1, 0, SAME], q[1, 0, DOWN]))
    via1 = float(q[0, 0, DOWN] * q[1, 1, SAME])
    assert via1 > via0 and float(q[0, 0, SAME]) > float(q[0, 0, DOWN])
    assert viterbi_path(b, g) == (1, 1)


def test_normalized_betas_valid_directions_and_scaling() -> None:
    g = TrellisGeometry(4, 4)
    q = normalized_betas(torch.randn(4, 4, 3), g)
    mask = g.mask()
    assert torch.all(q[~mask] == 0)
    sums = q.sum(-1)
    n_valid = mask.sum(-1)
    assert torch.allclose(sums[n_valid > 0], n_valid[n_valid > 0].float() / 3)
    # layer 0 only leaves the stem (level 0) to the same level or down; level 3 cannot go down
    assert mask[0].tolist() == [[False, True, True], [False] * 3, [False] * 3, [False] * 3]
    assert not mask[3, 3, DOWN] and mask[3, 3, UP] and not mask[3, 0, UP]
    assert list(g.reachable(0)) == [0, 1] and list(g.reachable(5)) == [0, 1, 2, 3]
    probs = level_probabilities(torch.randn(4, 4, 3), g)
    assert torch.allclose(probs.sum(-1), torch.ones(4)) and probs[0, 2:].sum() == 0


def test_decoded_supernets_build() -> None:
    net = ClassifierSupernet(nodes=3, layers=8, width=2, in_channels=1, num_classes=10)
    with torch.no_grad():
        net.alphas.copy_(alphas_for(PUBLISHED_CELL))
    g = decode_classifier(net, time_steps=2)
    assert g.cell == load_genotype("spikedhs-cla").cell and g.path == (0, 0, 1, 1, 1, 2, 2, 2)
    model = build_model(g)
    assert model(torch.rand(2, 1, 1, 8, 8)).shape == (2, 1, 10)

    st = StereoSupernet(
        nodes=3, feature_layers=2, matching_layers=4, levels=4, feature_width=2, matching_width=2, disparities=4
    )
    with torch.no_grad():
        st.feature_alphas.copy_(alphas_for(PUBLISHED_CELL))
        st.matching_alphas.copy_(alphas_for(PUBLISHED_MATCHING))
        st.feature_betas.copy_(betas_for([1, 0]))
        st.matching_betas.copy_(betas_for([1, 2, 2, 1]))
    sg = decode_stereo(st, feature_filter_multiplier=8, matching_filter_multiplier=8, disparities=33)
    preset = load_genotype("spikedhs-stereo")
    assert sg.to_dict() == preset.to_dict()
