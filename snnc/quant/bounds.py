"""Overflow refusal: prove that no value of an integer graph can leave the range its backends hold exactly.

:func:`check_int_graph` bounds every value of an integer export graph from its
weights alone (worst case over all inputs: integer inputs within
``+-input_max``, spikes 0/1). It refuses, naming the layer:

* a neuron whose synaptic input ``|a|`` (bias included) can exceed
  :data:`~snnc.neurons.integer.A_MAX` ``= 2**17 - 1``: Lava's ``u = a << 6``
  would leave its 24 bits and wrap;
* a neuron whose summed bias leaves Lava's 13-bit ``bias_mant``;
* any other synaptic sum (an output) that can reach ``2**24``, where float32
  stops holding every integer;
* weights that are not integers in ``[-127, 127]``.

The membrane ``v`` itself cannot overflow: every backend saturates it at
``+-(2**23 - 1)`` as Lava does (:mod:`snnc.neurons.integer`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from snnc.errors import SnncError
from snnc.export.graph import Graph
from snnc.neurons.integer import A_MAX, BIAS_MAX, W_MAX

__all__ = ["FLOAT32_EXACT", "value_bounds", "check_int_graph"]

#: Integers below this magnitude are exact in float32.
FLOAT32_EXACT = 1 << 24


def _int_array(node_name: str, what: str, a: Any) -> np.ndarray[Any, Any]:
    arr = np.asarray(a, dtype=np.float64)
    if not np.array_equal(arr, np.round(arr)):
        raise SnncError(f"int8: layer {node_name!r} has a non-integer {what}")
    return arr


def value_bounds(graph: Graph) -> dict[str, np.ndarray[Any, Any]]:
    """Worst-case ``|value|`` of every node (per output channel for synaptic and sum nodes, else a scalar).

    Raises:
        SnncError: a non-integer or out-of-range weight or bias (named).
    """
    meta = graph.meta.get("int8") or {}
    in_max = float(meta.get("input_max", 1))
    bound: dict[str, np.ndarray[Any, Any]] = {}
    for name in graph.order():
        node = graph[name]
        op = node.op
        if op == "input":
            bound[name] = np.array(in_max)
        elif op == "neuron":
            bound[name] = np.array(1.0)
        elif op in ("conv", "affine", "cost_conv"):
            w = _int_array(name, "weight", node.params["weight"])
            if w.size and np.abs(w).max() > W_MAX:
                raise SnncError(f"int8: layer {name!r} has a weight beyond +-{W_MAX}")
            rows = np.abs(w).reshape(w.shape[0], -1).sum(axis=1)
            b = node.params.get("bias")
            bias = np.abs(_int_array(name, "bias", b)) if b is not None else 0.0
            bound[name] = rows * float(np.max(bound[node.inputs[0]])) + bias
        elif op == "sum":
            total: Any = 0.0
            for src in node.inputs:
                total = total + bound[src]
            bound[name] = np.asarray(total)
        elif op == "sumpool":
            k = node.params["kernel"]
            bound[name] = np.array(float(np.max(bound[node.inputs[0]])) * int(k[0]) * int(k[1]))
        elif op == "avgpool":
            raise SnncError(f"int8: node {name!r} is an average pool; an integer graph sums (sumpool)")
        else:
            bound[name] = np.array(max(float(np.max(bound[s])) for s in node.inputs))
    return bound


def check_int_graph(graph: Graph) -> None:
    """Refuse an integer graph that can overflow (module docstring), naming the first such layer."""
    bound = value_bounds(graph)
    for name in graph.order():
        node = graph[name]
        if node.op == "neuron":
            if "int" not in node.params:
                raise SnncError(f"int8: neuron {name!r} has no integer parameters")
            total: Any = 0.0
            bias: Any = 0.0
            for src in node.inputs:
                total = total + bound[src]
            for src in _synapses(graph, name):
                b = graph[src].params.get("bias")
                if b is not None:
                    bias = bias + np.asarray(b, dtype=np.float64)
            worst = float(np.max(total))
            if worst > A_MAX:
                raise SnncError(
                    f"int8: layer {name!r} can receive a synaptic input of {worst:.0f} > 2**17 - 1 = {A_MAX} "
                    f"(Lava's 24-bit u = a << 6 would wrap); lower its weights or the input range"
                )
            if float(np.max(np.abs(bias), initial=0.0)) > BIAS_MAX:
                raise SnncError(f"int8: layer {name!r} has a summed bias beyond Lava's 13-bit +-{BIAS_MAX}")
        elif node.op == "output":
            worst = float(np.max(bound[node.inputs[0]]))
            if worst >= FLOAT32_EXACT:
                raise SnncError(
                    f"int8: output {name!r} can reach {worst:.0f} >= 2**24, beyond float32's exact integers"
                )


def _synapses(graph: Graph, name: str) -> list[str]:
    out: list[str] = []
    for src in graph[name].inputs:
        if graph[src].op == "sum":
            out += _synapses(graph, src)
        elif graph[src].op in ("conv", "affine", "cost_conv"):
            out.append(src)
    return out
