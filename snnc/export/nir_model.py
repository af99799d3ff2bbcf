"""A NIR file as a runnable snnc model, and its description for ``snnc info``.

:func:`snnc.export.nir_reader.load_nir_model` returns a :class:`NirModel`: the
:class:`~snnc.export.runtime.GraphModule` that runs the file step by step, the export
graph behind it, ``dt``, the one-step input shape (batch 1) and :func:`describe_graph`'s
summary, which has the keys of :func:`snnc.energy.summary.describe` so that
:func:`snnc.energy.summary.format_table` prints it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from snnc.export.graph import Graph
from snnc.export.runtime import GraphModule

__all__ = ["NirModel", "describe_graph"]

_LAYER_TYPES = {"conv": "Conv2d", "affine": "Affine"}


@dataclass
class NirModel:
    """A NIR file opened for running (see module docstring).

    Attributes:
        module: runs the graph (``init_state``, ``step``, ``step_nodes``, ``forward`` over ``(T, B, ...)``).
        graph: the export graph read from the file.
        dt: seconds per step used to map the neurons (from the file's metadata or the caller).
        input_shape: one step's graph input with a batch axis of 1.
        path: the file.
        info: :func:`describe_graph` of the graph.
        writer: ``snnc`` for files snnc wrote (``snnc.format`` metadata), else ``foreign``.
    """

    module: GraphModule
    graph: Graph
    dt: float
    input_shape: tuple[int, ...]
    path: Path
    info: dict[str, Any] = field(default_factory=dict)
    writer: str = "foreign"


def _layer(name: str, graph: Graph) -> dict[str, Any] | None:
    node = graph[name]
    if node.op not in _LAYER_TYPES:
        return None
    w = node.params["weight"]
    bias = node.params.get("bias")
    params = int(w.size) + (int(np.asarray(bias).size) if bias is not None else 0)
    if node.op == "conv":
        ops = int(np.prod(node.shape)) * int(np.prod(w.shape[1:]))
        kind = "Conv2d" if w.ndim == 4 else "Conv3d"
    else:
        ops = int(w.shape[0]) * int(w.shape[1])
        kind = "Affine" if bias is not None else "Linear"
    return {
        "name": name,
        "type": kind,
        "output_shape": [1, *node.shape],
        "parameters": params,
        "dense_ops": ops,
        "calls": 1,
    }


def describe_graph(graph: Graph, dt: float) -> dict[str, Any]:
    """One step of ``graph`` summarised like :func:`snnc.energy.summary.describe` (batch 1).

    Extra keys: ``dt``, ``nodes`` (count per export-graph op), ``outputs`` (output names).
    """
    layers = [d for d in (_layer(n, graph) for n in graph.order()) if d is not None]
    neurons = [(n, node.params["spec"]) for n, node in graph.nodes.items() if node.op == "neuron"]
    total = sum(d["parameters"] for d in layers)
    meta = graph.meta
    return {
        "model": "NIR graph",
        "family": meta.get("family") or None,
        "input_shape": [1, *graph[graph.inputs[0]].shape],
        "parameters": total,
        "trainable_parameters": 0,
        "layers": layers,
        "layer_parameters": total,
        "dense_ops": sum(d["dense_ops"] for d in layers),
        "neurons": [{"name": n, "type": s.type, "spec": s.to_dict()} for n, s in neurons],
        "neuron_types": dict(Counter(s.type for _, s in neurons)),
        "dt": dt,
        "nodes": dict(Counter(node.op for node in graph.nodes.values())),
        "outputs": graph.outputs,
    }
