"""Decoding a SpikeDHS search: alphas -> cell genotype, betas -> trellis path (Viterbi).

Cell (NeurIPS §3.3 "retaining two strongest afferent edges for each node";
the authors' ``decoding_formulas.py``, inherited from LEAStereo)
    1. ``p = softmax(alpha, -1)`` per edge.
    2. Edge strength = the largest ``p`` over the candidate ops **other than
       skip_connect**. The authors' code ranks by ``max(p[edge, 1:])`` (column 0
       was ``none`` in LEAStereo and is ``skip_connect`` in SpikeDHS's op list),
       so a skip-dominated edge does not win its place by the skip weight.
       :func:`decode_cell` follows the code (``rank_exclude=("skip_connect",)``);
       there is no ``none``/zero op in this space.
    3. Each node keeps its 2 strongest incoming edges (all of them if it has
       fewer), strongest first; ties go to the lower edge index.
    4. The op of a kept edge is ``argmax p`` over **all** candidates (skip included).
    Rows are ``[edge_index, op_index]`` in that order: node by node, strongest
    edge first, exactly the published format (e.g. ``[[1,1],[0,1],[3,2],...]``).

Path (NeurIPS §3.3 "maximum probability path", LEAStereo ``viterbi_decode``)
    With ``q = normalized_betas`` (softmax over valid directions times
    ``n_valid / 3``, :func:`snnc.nas.arch.normalized_betas`), the probability
    of a level sequence ``l_0 .. l_{L-1}`` is ``prod_i q[i, l_{i-1}, dir_i]``
    with ``l_{-1} = 0`` (the stem). :func:`viterbi_path` returns the most
    probable sequence (max-product dynamic programming and backtracking; ties
    go to the lower level / the earlier direction in up, same, down order).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from snnc.errors import SnncError, list_items
from snnc.models.genotype import (
    PRIMITIVES,
    CellGenotype,
    SpikeDHSClassifierGenotype,
    SpikeDHSStereoGenotype,
    edge_count,
    edge_index,
)
from snnc.nas.arch import TrellisGeometry, normalized_betas

__all__ = [
    "cell_rows",
    "decode_cell",
    "viterbi_path",
    "level_probabilities",
    "decode_classifier",
    "decode_stereo",
]


def _as_tensor(x: Any) -> Tensor:
    return x.detach().float().cpu() if isinstance(x, Tensor) else torch.as_tensor(x, dtype=torch.float32)


def cell_rows(alphas: Any, nodes: int, rank_exclude: Sequence[str] = ("skip_connect",)) -> list[list[int]]:
    """Published-format rows ``[[edge_index, op_index], ...]`` (see module docstring).

    Args:
        alphas: ``(edge_count(nodes), len(PRIMITIVES))`` raw architecture weights.
        nodes: nodes per cell.
        rank_exclude: ops ignored when ranking the edges of a node.

    Raises:
        SnncError: wrong shape, or every op excluded from ranking.
    """
    a = _as_tensor(alphas)
    want = (edge_count(nodes), len(PRIMITIVES))
    if tuple(a.shape) != want:
        raise SnncError(f"alphas for a {nodes}-node cell must be shaped {want}, got {tuple(a.shape)}")
    unknown = [op for op in rank_exclude if op not in PRIMITIVES]
    if unknown:
        raise SnncError(f"rank_exclude: unknown op(s) {list_items(unknown, fmt=repr)} (ops: {', '.join(PRIMITIVES)})")
    ranked_cols = [k for k, op in enumerate(PRIMITIVES) if op not in rank_exclude]
    if not ranked_cols:
        raise SnncError("rank_exclude leaves no op to rank edges by")
    p = torch.softmax(a, dim=-1)
    strength = p[:, ranked_cols].max(dim=-1).values
    rows: list[list[int]] = []
    for dst in range(nodes):
        edges = [edge_index(src, dst) for src in range(2 + dst)]
        edges.sort(key=lambda e: (-float(strength[e]), e))
        for e in edges[:2]:
            rows.append([e, int(p[e].argmax())])
    return rows


def decode_cell(
    alphas: Any, nodes: int, dims: int = 2, rank_exclude: Sequence[str] = ("skip_connect",)
) -> CellGenotype:
    """:class:`CellGenotype` of :func:`cell_rows`."""
    return CellGenotype.from_rows(cell_rows(alphas, nodes, rank_exclude), nodes=nodes, dims=dims)


def viterbi_path(betas: Any, geometry: TrellisGeometry) -> tuple[int, ...]:
    """Most probable level sequence through the trellis (see module docstring)."""
    q = normalized_betas(_as_tensor(betas), geometry).double()
    n_layers, n_levels = geometry.layers, geometry.levels
    prob = torch.zeros(n_layers, n_levels, dtype=torch.float64)
    back = torch.full((n_layers, n_levels), -1, dtype=torch.long)
    for layer in range(n_layers):
        for dst in geometry.reachable(layer):
            best, best_src = -1.0, -1
            for src, direction in geometry.incoming(layer, dst):
                before = 1.0 if layer == 0 else float(prob[layer - 1, src])
                value = before * float(q[layer, src, direction])
                if value > best:
                    best, best_src = value, src
            prob[layer, dst] = best
            back[layer, dst] = best_src
    last = list(geometry.reachable(n_layers - 1))
    level = max(last, key=lambda lv: (float(prob[-1, lv]), -lv))
    path = [level]
    for layer in range(n_layers - 1, 0, -1):
        level = int(back[layer, level])
        path.append(level)
    return tuple(reversed(path))


def level_probabilities(betas: Any, geometry: TrellisGeometry) -> Tensor:
    """``(layers, levels)``: share of each level per layer, for logs and plots.

    Sum-product (forward algorithm) over the trellis with the decoder's
    normalised betas, each row then renormalised to sum to 1 (the
    ``n_valid / 3`` scaling of the two-exit levels leaks mass).
    """
    q = normalized_betas(_as_tensor(betas), geometry)
    out = torch.zeros(geometry.layers, geometry.levels)
    for layer in range(geometry.layers):
        for dst in geometry.reachable(layer):
            total = 0.0
            for src, direction in geometry.incoming(layer, dst):
                before = 1.0 if layer == 0 else float(out[layer - 1, src])
                total += before * float(q[layer, src, direction])
            out[layer, dst] = total
    return out / out.sum(-1, keepdim=True).clamp_min(1e-30)


def decode_classifier(model: Any, **fields: Any) -> SpikeDHSClassifierGenotype:
    """Genotype of a :class:`~snnc.nas.supernet.ClassifierSupernet` (fixed path, decoded cell).

    ``fields`` are further genotype fields (``filter_multiplier``, ``in_channels``,
    ``num_classes``, ``time_steps``, ``mixing``, ...); defaults come from the supernet.
    """
    values: dict[str, Any] = {
        "filter_multiplier": model.width,
        "in_channels": model.in_channels,
        "num_classes": model.num_classes,
        "mixing": model.mixing,
    }
    values.update(fields)
    cell = decode_cell(model.alphas, model.nodes_per_cell, dims=2)
    return SpikeDHSClassifierGenotype(cell=cell, path=model.path, **values)


def decode_stereo(model: Any, **fields: Any) -> SpikeDHSStereoGenotype:
    """Genotype of a :class:`~snnc.nas.supernet.StereoSupernet` (both cells, both Viterbi paths).

    ``fields`` are further genotype fields (filter multipliers, ``disparities``,
    ``disp_step``, ``time_steps``, ...); ``disparities``, ``in_channels``,
    ``mixing`` and the geometry (``feature_stride``, ``volume_disparities``: 0
    when V = D) default to the supernet's.
    """
    values: dict[str, Any] = {
        "in_channels": model.in_channels,
        "disparities": model.disparities,
        "mixing": model.mixing,
        "feature_stride": model.feature_stride,
        "volume_disparities": 0 if model.volume_shifts == model.disparities else model.volume_shifts,
    }
    values.update(fields)
    n = model.nodes_per_cell
    return SpikeDHSStereoGenotype(
        feature_cell=decode_cell(model.feature_alphas, n, dims=2),
        feature_path=viterbi_path(model.feature_betas, model.feature_geometry),
        matching_cell=decode_cell(model.matching_alphas, n, dims=3),
        matching_path=viterbi_path(model.matching_betas, model.matching_geometry),
        **values,
    )
