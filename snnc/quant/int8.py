"""Float export graph -> integer fields (post-training quantisation) -> integer export graph.

:func:`quantize_graph` reads a folded network's export graph and makes its
:class:`~snnc.quant.fields.QuantFields`; :func:`apply_int8` writes those fields
onto an export graph (of any frame size) as the **integer graph** every
backend runs. The rules (``docs/INT8.md``):

* Every value of the graph is ``scale * integer``; spikes have scale 1, the
  input ``input_scale``, an average pool becomes a sum pool (scale divided by
  its window), resampling, concatenation and the cost volume keep the scale.
* The synaptic nodes summed into one neuron share that neuron's scale
  ``s = max_c max|W_c * scale_in(c)| / 127`` (per layer: Lava's LIF has one
  threshold per population); ``W_int = round(W * scale_in / s)``,
  ``b_int = round(b / s)`` (clamped to Lava's 13-bit bias), ``vth_int =
  round(vth / s)``. The synaptic nodes summed into an output share the output scale.
* Decay: ``dv = 4096 - 64 * round(64 * decay)`` (6-bit; ``if``: 0).
* ``apply_int8``: conv/affine nodes get integer-valued float32 weights and
  ``integer=True`` (their output is rounded to the nearest integer, exact for
  any float algorithm with error below 0.5); neuron nodes get ``int`` (the
  :class:`IntNeuron`) and ``spec``/``gain`` set to the float relaxation a
  float32 NIR consumer runs (decay ``(4096 - dv) / 4096``, gain 64, threshold
  ``vth * 64 + 0.5``). A stereo graph ends at the integer matching cost: the
  trilinear resize and channel selection move to the host
  (``meta["int8"]["head"]``, :func:`snnc.quant.head.apply_head`), so every backend
  shares them. Then :func:`snnc.quant.bounds.check_int_graph` refuses overflow.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from snnc.errors import SnncError
from snnc.export.graph import Graph
from snnc.neurons import NeuronSpec, leak_factor
from snnc.neurons.integer import A_MAX, ACT_SHIFT, BIAS_MAX, DECAY_UNITY, VTH_MAX, W_MAX, IntNeuron
from snnc.quant.bounds import FLOAT32_EXACT
from snnc.quant.fields import QuantFields

__all__ = [
    "SUPPORTED_OPS",
    "SYNAPTIC_OPS",
    "nir_form",
    "quantize_graph",
    "apply_int8",
    "int_neuron_of",
    "float_relaxation",
]

#: Export-graph operations an int8 network may hold (``interp``/``select`` only as the stereo head).
SUPPORTED_OPS = (
    "input",
    "output",
    "conv",
    "affine",
    "avgpool",
    "sumpool",
    "flatten",
    "neuron",
    "sum",
    "resize",
    "cost_volume",
    "cost_conv",
    "concat",
    "interp",
    "select",
)
#: Operations with integer weights (a synaptic sum feeding a neuron or the output).
SYNAPTIC_OPS = ("conv", "affine", "cost_conv")
_PASS_OPS = ("flatten", "resize", "cost_volume", "concat", "output", "select", "interp")


def int_neuron_of(spec: NeuronSpec, scale: float, name: str) -> IntNeuron:
    """The integer neuron of a float neuron layer whose membrane unit is ``scale``.

    Raises:
        SnncError: ALIF/ReLU layers, a threshold beyond 17 bits, a decay too small for 6 bits (named).
    """
    if spec.type not in ("lif", "if", "binary"):
        raise SnncError(
            f"int8: layer {name!r} is a {spec.type} neuron; only lif, if and binary neurons have an integer form"
        )
    vth = round(spec.vth / scale)
    if vth > VTH_MAX:
        raise SnncError(f"int8: layer {name!r} threshold {vth} (vth / scale) leaves Lava's 17 bits ({VTH_MAX})")
    if spec.type == "binary":
        return IntNeuron("binary", vth, DECAY_UNITY)
    if spec.type == "if":
        return IntNeuron("if", vth, 0)
    keep64 = round(64 * leak_factor(spec))
    if keep64 == 0:
        raise SnncError(
            f"int8: layer {name!r} decay {leak_factor(spec):g} rounds to 0 in 6 bits; make it a binary neuron"
        )
    return IntNeuron("lif", vth, DECAY_UNITY - 64 * keep64)


def float_relaxation(neuron: IntNeuron, surrogate: NeuronSpec | None = None) -> tuple[NeuronSpec, float]:
    """``(spec, gain)`` of the float LIF that a float32 NIR consumer runs for ``neuron``.

    Decay ``keep / 4096``, gain ``64`` (``u = a << 6``), threshold ``vth * 64 + 0.5``
    (between two integers: consumers comparing with ``>`` and ``>=`` agree).
    """
    base = surrogate or NeuronSpec()
    decay = {"lif": neuron.keep / DECAY_UNITY, "if": 1.0, "binary": 0.0}[neuron.type]
    spec = NeuronSpec(type=neuron.type, decay=decay, vth=neuron.threshold + 0.5, surrogate=base.surrogate, b=base.b)
    return spec, float(1 << ACT_SHIFT)


def _check_ops(graph: Graph) -> None:
    for name, node in graph.nodes.items():
        if node.op not in SUPPORTED_OPS:
            raise SnncError(
                f"int8: node {name!r} is a {node.op} operation; int8 networks support "
                f"SpikeDHS classifiers, SpikeDHS-Stereo and sequential nets (no {node.op})"
            )


def _sink(graph: Graph, consumers: dict[str, list[str]], name: str) -> str:
    """The node a synaptic node's output ends in (through ``sum`` junctions); it must be unique."""
    seen = name
    while True:
        nxt = consumers[seen]
        if len(set(nxt)) != 1:
            raise SnncError(f"int8: synaptic node {name!r} feeds {len(set(nxt))} nodes; expected one")
        seen = nxt[0]
        if graph[seen].op != "sum":
            return seen


def _groups(graph: Graph) -> dict[str, list[str]]:
    consumers = graph.consumers()
    groups: dict[str, list[str]] = {}
    for name, node in graph.nodes.items():
        if node.op in SYNAPTIC_OPS:
            groups.setdefault(_sink(graph, consumers, name), []).append(name)
    for sink in groups:
        if graph[sink].op == "neuron":
            direct = [s for s in graph[sink].inputs if graph[s].op not in (*SYNAPTIC_OPS, "sum")]
            if direct:
                raise SnncError(f"int8: neuron {sink!r} reads {direct[0]!r} without a synaptic layer")
    return groups


def quantize_graph(
    graph: Graph, input_scale: float, input_max: int = W_MAX, method: str = "ptq", notes: dict[str, Any] | None = None
) -> QuantFields:
    """Post-training quantisation of a folded network's export graph (module docstring).

    Args:
        graph: the float export graph (:func:`snnc.export.lower.lower`).
        input_scale: float input per integer step (:func:`snnc.quant.calibrate.calibrate_input`).
        input_max: largest integer input (<= 127); lowered when the first layer would overflow.

    Raises:
        SnncError: an operation or neuron type without an integer form (named).
    """
    _check_ops(graph)
    groups = _groups(graph)
    order = graph.order()
    scale: dict[str, float] = {}
    fields = QuantFields(float(input_scale), int(input_max), 1.0, method=method, notes=dict(notes or {}))
    clamped: list[str] = []
    coarsened: list[str] = []
    vmax: dict[str, float] = {}
    # the first layer: lower input_max when its worst case would leave A_MAX
    for members in groups.values():
        for c in members:
            if graph[c].inputs[0] == "x":
                w = graph[c].params["weight"]
                rows = np.abs(np.round(W_MAX * w / max(float(np.abs(w).max()), 1e-30))).reshape(w.shape[0], -1)
                fields.input_max = int(
                    max(1, min(fields.input_max, (A_MAX - BIAS_MAX) // max(1, int(rows.sum(1).max()))))
                )
    if fields.input_max != input_max:
        fields.notes["input_max_lowered"] = f"{input_max} -> {fields.input_max} (first layer worst case within 2**17)"
    for name in order:
        node = graph[name]
        op = node.op
        if op == "input":
            scale[name] = fields.input_scale
            vmax[name] = float(fields.input_max)
        elif op in SYNAPTIC_OPS or op == "sum":
            continue
        elif op == "avgpool":
            k = node.params["kernel"]
            scale[name] = scale[node.inputs[0]] / (int(k[0]) * int(k[1]))
            vmax[name] = vmax[node.inputs[0]] * int(k[0]) * int(k[1])
        elif name in groups:
            members = groups[name]
            s = max(float(np.abs(graph[c].params["weight"]).max()) * scale[graph[c].inputs[0]] for c in members) / W_MAX
            if op == "neuron":  # a bias beyond Lava's 13 bits coarsens the layer's scale rather than clamping
                bias = sum(
                    np.abs(np.asarray(graph[c].params["bias"], dtype=np.float64))
                    for c in members
                    if graph[c].params.get("bias") is not None
                )
                s = max(s, float(np.max(bias, initial=0.0)) / BIAS_MAX)
            s = s if s > 0 else 1.0
            limit = A_MAX if op == "neuron" else FLOAT32_EXACT - 1
            for _ in range(8):  # a worst case beyond the limit coarsens the scale (fewer weight levels) until it fits
                worst = _quantize_members(graph, members, s, scale, vmax, fields, op == "neuron", clamped)
                if worst <= limit:
                    break
                coarsened.append(name)
                s *= worst / limit * (1 + 1e-9)
            fields.notes.setdefault("scales", {})[name] = s  # float per integer step of this sum (QAT uses them)
            if op == "neuron":
                fields.neurons[name] = int_neuron_of(node.params["spec"], s, name)
                scale[name], vmax[name] = 1.0, 1.0
            else:
                fields.output_scale = s
                scale[name], vmax[name] = s, worst
        elif op == "neuron":
            raise SnncError(f"int8: neuron {name!r} has no synaptic input")
        elif op in _PASS_OPS or op == "sumpool":
            srcs = {scale[s] for s in node.inputs}
            if len(srcs) != 1:
                raise SnncError(f"int8: node {name!r} joins values of different scales")
            scale[name] = srcs.pop()
            vmax[name] = max(vmax[s] for s in node.inputs)
            if op == "sumpool":
                vmax[name] *= int(node.params["kernel"][0]) * int(node.params["kernel"][1])
    if clamped:
        fields.notes["bias_clamped"] = sorted(set(clamped))
    if coarsened:
        fields.notes["scale_coarsened"] = sorted(set(coarsened))
    return fields


def _quantize_members(
    graph: Graph,
    members: list[str],
    s: float,
    scale: dict[str, float],
    vmax: dict[str, float],
    fields: QuantFields,
    neuron: bool,
    clamped: list[str],
) -> float:
    """Quantise a group's synapses at scale ``s`` into ``fields``; returns the worst-case ``|sum|`` per channel."""
    total: Any = 0.0
    for c in members:
        p = graph[c].params
        src = graph[c].inputs[0]
        w = np.clip(np.round(p["weight"] * (scale[src] / s)), -W_MAX, W_MAX).astype(np.int64)
        fields.weights[c] = w
        fields.notes.setdefault("grids", {})[c] = s / scale[src]  # float weight per integer step (QAT)
        row = np.abs(w).reshape(w.shape[0], -1).sum(axis=1).astype(np.float64) * vmax[src]
        if p.get("bias") is not None:
            b = np.round(np.asarray(p["bias"], dtype=np.float64) / s)
            if neuron and np.abs(b).max(initial=0) > BIAS_MAX:
                clamped.append(c)
                b = np.clip(b, -BIAS_MAX, BIAS_MAX)
            fields.biases[c] = b.astype(np.int64)
            row = row + np.abs(b)
        total = total + row
    return float(np.max(total))


def apply_int8(graph: Graph, fields: QuantFields) -> Graph:
    """The integer export graph: ``graph`` (float, any frame size) with ``fields`` on it (module docstring).

    Raises:
        SnncError: a node the fields do not cover or cover with another shape, an unsupported
            operation, or a layer that can overflow (:func:`snnc.quant.bounds.check_int_graph`).
    """
    from snnc.quant.bounds import check_int_graph

    _check_ops(graph)
    head: dict[str, Any] | None = None
    out = Graph({**graph.meta, "precision": "int8"})
    drop: dict[str, str] = {}  # head node -> the node standing for its value
    for name, node in graph.nodes.items():
        p = dict(node.params)
        inputs = [drop.get(s, s) for s in node.inputs]
        op = node.op
        if op in ("interp", "select"):
            if op == "interp":
                head = {"size": [int(s) for s in p["size"]], "mode": str(p["mode"])}
            else:
                if head is None:
                    raise SnncError(f"int8: node {name!r} selects a channel outside the stereo head")
                head["index"] = int(p["index"])
            src = inputs[0] if len(inputs) == 1 else out.add(f"{name}.sum", "sum", inputs)
            drop[name] = src
            continue
        if op in SYNAPTIC_OPS:
            if name not in fields.weights:
                raise SnncError(f"int8: the integer fields have no weight for node {name!r}")
            w = fields.weights[name]
            if tuple(w.shape) != tuple(p["weight"].shape):
                raise SnncError(f"int8: weight of {name!r} is {tuple(w.shape)} in the fields, {p['weight'].shape} here")
            p["weight"] = w.astype(np.float32)
            p["bias"] = fields.biases[name].astype(np.float32) if name in fields.biases else None
            p["integer"] = True
        elif op == "neuron":
            if name not in fields.neurons:
                raise SnncError(f"int8: the integer fields have no neuron {name!r}")
            neuron = fields.neurons[name]
            p["int"] = neuron
            p["spec"], p["gain"] = float_relaxation(neuron, node.params["spec"])
        elif op == "avgpool":
            op = "sumpool"
        if op == "sumpool":
            p["integer"] = True  # (average * window) rounded: the exact integer sum
        out.add(name, op, inputs, shape=node.shape if op == "input" else None, **p)
    out.meta["int8"] = {
        "input_scale": fields.input_scale,
        "input_max": fields.input_max,
        "output_scale": fields.output_scale,
        "head": head,
    }
    out.check()
    check_int_graph(out)
    return out


def nir_form(graph: Graph) -> Graph:
    """The float graph a NIR file of an integer graph is written from (``docs/INT8.md``).

    Every neuron becomes its float relaxation with unit gain, the gain ``64`` (``u = a << 6``)
    moving into the synaptic weights and biases feeding it (still integers, below ``2**24``
    in every sum), so stock importers that take no input gain run the same numbers; a sum
    pool becomes an average pool with its window moved into the next synaptic weights
    (SpikingJelly's importer has no SumPool2d).

    Raises:
        SnncError: ``graph`` is not an integer graph.
    """
    if graph.meta.get("precision") != "int8":
        raise SnncError("nir_form needs an integer graph (snnc.quant.apply_int8)")
    consumers = graph.consumers()
    gain: dict[str, float] = {}
    for name, node in graph.nodes.items():
        if node.op in SYNAPTIC_OPS:
            sink = _sink(graph, consumers, name)
            gain[name] = float(graph[sink].params["gain"]) if graph[sink].op == "neuron" else 1.0
    out = Graph({**graph.meta, "precision": "int8-nir"})
    pooled: dict[str, int] = {}  # node -> the sum pool window its value is an average over
    for name, node in graph.nodes.items():
        p = dict(node.params)
        op = node.op
        window = max((pooled.get(s, 1) for s in node.inputs), default=1)
        if op in SYNAPTIC_OPS:
            p["weight"] = p["weight"] * np.float32(gain[name] * window)
            p["bias"] = None if p.get("bias") is None else p["bias"] * np.float32(gain[name])
            p.pop("integer", None)
        elif op == "neuron":
            p.pop("int", None)
            p["gain"] = 1.0
        elif op == "sumpool":  # several importers lack SumPool2d: average, times the window in the next weights
            op = "avgpool"
            p.pop("integer", None)
            pooled[name] = window * int(p["kernel"][0]) * int(p["kernel"][1])
        elif op == "flatten":
            pooled[name] = window
        if window != 1 and op not in (*SYNAPTIC_OPS, "flatten"):
            raise SnncError(f"int8: NIR form: the sum pool before {name!r} does not feed a synaptic layer")
        out.add(name, op, node.inputs, shape=node.shape, **p)
    out.check()
    return out
