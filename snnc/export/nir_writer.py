"""Export graph -> NIR (nir 1.0.8): ``nir.write`` of the folded spiking network.

Node mapping (export graph op -> NIR node):

===============================  ==============================================================
``input`` / ``output``           ``Input`` / ``Output`` (types without the batch axis)
``conv`` (2-D)                   ``Conv2d`` (grouped convs written as dense, block-diagonal
                                 weights: nir 1.0.8 types a grouped Conv2d's input wrongly)
``affine``                       ``Affine`` (``Linear`` when it has no bias)
``avgpool`` / ``sumpool``        ``AvgPool2d`` (zero padding counted) / ``SumPool2d``
``flatten``                      ``Flatten`` (dims over the unbatched type, counted from the end:
                                 ``-3..-1``, so importers that apply them to batched tensors keep
                                 the batch axis)
``neuron`` lif / binary          ``LIF`` with ``tau = dt/(1-beta)``, ``r = gain/(1-beta)``,
                                 ``v_leak = 0``, ``v_threshold = vth``, ``v_reset = 0``
``neuron`` if                    ``IF`` with ``r = gain/dt``, ``v_threshold = vth``, ``v_reset = 0``
``sum`` (junction)               no node: its incoming edges go to each of its consumers (NIR sums
                                 edges); in front of an ``Output`` an identity ``Linear`` (1-D) or
                                 ``Scale`` of ones
``scale``                        ``Scale``
``delay``                        ``Delay`` of ``steps * dt`` seconds (a cycle of the graph)
repeated edge a -> b (n times)   ``a -> Scale(n) -> b``
===============================  ==============================================================

The discrete snnc LIF ``u <- beta u (1 - s) + I`` (hard reset, ``beta`` =
``NeuronSpec.decay``) is NIR's ``tau du/dt = (v_leak - u) + r I`` under forward
Euler with step ``dt``; ``dt`` (default 1e-4 s) is stored in the graph metadata
as ``dt`` and implied by every unit-gain neuron (``r = tau / dt``; IF ``r = 1 / dt``).
Neuron parameters stay per-neuron arrays (of one value): nir 1.0.8 infers a neuron's
type from its parameter shape, so scalars and one-element arrays fail ``nir.read``'s type check
(which every consumer's importer runs) and 0-d arrays cannot be written (tests/test_nir_interop.py).
``to_nir(..., consumer=...)`` also checks the graph against one library's stock
importer (:mod:`snnc.export.nir_targets`). Concatenations and skip connections are already summed edges in the
export graph. Everything else has no NIR node type (3-D convolutions, the cost
volume and the fused cost volume + 3-D convolution ``cost_conv``, resampling,
interpolation, ALIF and ReLU neurons): :func:`to_nir`
refuses it naming the first such node, and :mod:`snnc.export.partition` writes
the NIR-expressible front instead.

Graph metadata: ``dt``, ``snnc.format`` (``snnc-nir/1``), ``snnc.family``,
``snnc.genotype`` (JSON), ``snnc.input_layout``, ``snnc.input_shape`` (JSON);
neuron nodes carry ``snnc.spec`` (their NeuronSpec as JSON).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from snnc.errors import SnncError
from snnc.export.graph import Graph, Node
from snnc.neurons import leak_factor

__all__ = ["NIR_FORMAT", "DEFAULT_DT", "nir_blocker", "to_nir", "write_nir"]

#: ``snnc.format`` value of NIR files written by snnc.
NIR_FORMAT = "snnc-nir/1"
#: Default time step (seconds) of the discrete-to-continuous neuron mapping.
DEFAULT_DT = 1e-4


def nir_blocker(graph: Graph, name: str) -> str | None:
    """Why node ``name`` has no NIR node type (a short phrase), or ``None`` when it has one."""
    node = graph[name]
    op = node.op
    if op in ("input", "output", "affine", "avgpool", "sumpool", "flatten", "sum", "scale", "delay"):
        return None
    if op == "conv":
        return None if node.params["weight"].ndim == 4 else "a 3-D convolution"
    if op == "neuron":
        kind = node.params["spec"].type
        if kind in ("lif", "if", "binary"):
            return None
        return {"alif": "an adaptive-threshold (ALIF) neuron", "relu": "a ReLU activation"}.get(
            kind, f"a {kind} neuron"
        )
    if op == "resize":
        src = graph[node.inputs[0]].shape[1:]
        if any(s > i for s, i in zip(node.params["size"], src, strict=False)):
            return "nearest up-sampling"
        return "nearest resampling by a non-integer factor"
    return {
        "interp": f"{node.params.get('mode', 'linear')} interpolation",
        "cost_volume": "the stereo cost volume",
        "cost_conv": "the stereo cost volume (fused with its 3-D convolution)",
        "select": "a channel selection",
        "concat": "a concatenation",
    }.get(op, f"a {op} operation")


def _f32(a: Any) -> np.ndarray[Any, Any]:
    return np.asarray(a, dtype=np.float32)


def _dense_weight(node: Node) -> np.ndarray[Any, Any]:
    """Grouped conv weight as an equivalent dense (block-diagonal) weight."""
    w: np.ndarray[Any, Any] = node.params["weight"]
    groups = int(node.params["groups"])
    if groups == 1:
        return w
    out_c, in_per = w.shape[0], w.shape[1]
    dense = np.zeros((out_c, in_per * groups, *w.shape[2:]), dtype=w.dtype)
    per_out = out_c // groups
    for g in range(groups):
        dense[g * per_out : (g + 1) * per_out, g * in_per : (g + 1) * in_per] = w[g * per_out : (g + 1) * per_out]
    return dense


def _negative_dims(ndim: int, start: int, end: int) -> tuple[int, int]:
    """Flatten dims counted from the end: the same axes of the unbatched type, and of a batched tensor.

    NIR's ``Flatten`` dims index the unbatched type; importers that hand them to
    ``torch.nn.Flatten`` on batched tensors (snnTorch, Norse) flatten the batch axis into the
    features for non-negative dims. Negative dims name the same axes either way.
    """
    start = start - ndim if start >= 0 else start
    end = end - ndim if end >= 0 else end
    return start, end


def _absorbed_inputs(graph: Graph, name: str, cache: dict[str, list[str]]) -> list[str]:
    """``name``'s inputs with every ``sum`` junction replaced by the junction's own inputs (recursively).

    A node sums its incoming edges (NIR semantics), so ``a, b -> sum -> c`` is ``a, b -> c``;
    the order of the summands is kept (left to right), which keeps snnc's own round trip exact.
    """
    if name in cache:
        return cache[name]
    out: list[str] = []
    for src in graph[name].inputs:
        if graph[src].op == "sum":
            out += _absorbed_inputs(graph, src, cache)
        else:
            out.append(src)
    cache[name] = out
    return out


def _neuron(node: Node, dt: float) -> Any:
    import nir

    spec = node.params["spec"]
    gain = float(node.params.get("gain", 1.0))
    shape = node.shape
    meta = {"snnc.spec": json.dumps(spec.to_dict())}
    # float64 so that beta = 1 - dt/tau comes back exactly (float32 would move it by ~1e-8)
    vth = np.full(shape, spec.vth, dtype=np.float64)
    zeros = np.zeros(shape, dtype=np.float64)
    beta = leak_factor(spec)
    if beta >= 1.0:
        return nir.IF(r=np.full(shape, gain / dt), v_threshold=vth, v_reset=zeros, metadata=meta)
    return nir.LIF(
        tau=np.full(shape, dt / (1.0 - beta)),
        r=np.full(shape, gain / (1.0 - beta)),
        v_leak=zeros,
        v_threshold=vth,
        v_reset=zeros.copy(),
        metadata=meta,
    )


def _nir_node(graph: Graph, node: Node, dt: float) -> Any:
    import nir

    p = node.params
    op = node.op
    if op == "input":
        return nir.Input(input_type={"input": np.array(node.shape)})
    if op == "output":
        return nir.Output(output_type={"output": np.array(node.shape)})
    if op == "conv":
        w = _f32(_dense_weight(node))
        bias = _f32(p["bias"]) if p["bias"] is not None else np.zeros(w.shape[0], dtype=np.float32)
        in_shape = graph[node.inputs[0]].shape
        return nir.Conv2d(
            input_shape=tuple(in_shape[1:]),
            weight=w,
            stride=tuple(p["stride"]),
            padding=tuple(p["padding"]),
            dilation=tuple(p["dilation"]),
            groups=1,
            bias=bias,
        )
    if op == "affine":
        if p["bias"] is None:
            return nir.Linear(weight=_f32(p["weight"]))
        return nir.Affine(weight=_f32(p["weight"]), bias=_f32(p["bias"]))
    if op in ("avgpool", "sumpool"):
        cls = nir.AvgPool2d if op == "avgpool" else nir.SumPool2d
        return cls(kernel_size=np.array(p["kernel"]), stride=np.array(p["stride"]), padding=np.array(p["padding"]))
    if op == "flatten":
        in_shape = graph[node.inputs[0]].shape
        start, end = _negative_dims(len(in_shape), int(p["start_dim"]), int(p["end_dim"]))
        return nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=start, end_dim=end)
    if op == "neuron":
        return _neuron(node, dt)
    if op == "sum":  # written only in front of an Output (elsewhere its edges go to its consumers)
        if len(node.shape) == 1:
            return nir.Linear(weight=np.eye(node.shape[0], dtype=np.float32))
        return nir.Scale(scale=np.ones(node.shape, dtype=np.float32))
    if op == "scale":
        return nir.Scale(scale=np.broadcast_to(_f32(p["scale"]), node.shape).copy())
    if op == "delay":
        return nir.Delay(delay=np.full(node.shape, int(p["steps"]) * dt, dtype=np.float32))
    raise SnncError(f"internal: no NIR mapping for {op}")


def to_nir(graph: Graph, dt: float = DEFAULT_DT, consumer: str | None = None) -> Any:
    """The ``nir.NIRGraph`` of an export graph (see module docstring).

    Args:
        graph: a checked export graph.
        dt: seconds per time step of the neuron mapping.
        consumer: a library whose stock importer must run the file
            (:data:`snnc.export.nir_targets.TARGETS`); ``None``: plain NIR.

    Raises:
        SnncError: ``dt <= 0``, a node NIR cannot express (the first one in
            evaluation order is named, with a hint to use --partition), or a
            construct ``consumer``'s importer cannot run (named with the consumer).
    """
    import nir

    if not dt > 0:
        raise SnncError(f"dt must be positive, got {dt!r}")
    graph.check()
    for name in graph.order():
        why = nir_blocker(graph, name)
        if why is not None:
            raise SnncError(
                f"cannot write node {name!r} to NIR: {why} has no NIR node type "
                f"(pass --partition to write the expressible spiking front to NIR and the rest to ONNX)"
            )
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    absorbed: dict[str, list[str]] = {}
    kept_sums = {
        src for node in graph.nodes.values() if node.op == "output" for src in node.inputs if graph[src].op == "sum"
    }
    for name, node in graph.nodes.items():
        if node.op == "sum" and name not in kept_sums:
            continue  # its edges go straight to its consumers
        nodes[name] = _nir_node(graph, node, dt)
        inputs = node.inputs if node.op == "output" else _absorbed_inputs(graph, name, absorbed)
        counts: dict[str, int] = {}
        for src in inputs:
            counts[src] = counts.get(src, 0) + 1
        for src, n in counts.items():
            if n == 1:
                edges.append((src, name))
            else:  # NIR forbids duplicate edges: one edge through Scale(n)
                rep = f"{name}.repeat.{src}"
                nodes[rep] = nir.Scale(scale=np.full(graph[src].shape, float(n), dtype=np.float32))
                edges += [(src, rep), (rep, name)]
    meta = graph.meta
    metadata = {
        "dt": float(dt),
        "snnc.format": NIR_FORMAT,
        "snnc.family": str(meta.get("family") or ""),
        "snnc.genotype": json.dumps(meta.get("genotype")),
        "snnc.input_layout": str(meta.get("input_layout") or ""),
        "snnc.input_shape": json.dumps(meta.get("input_shape")),
    }
    if consumer is not None:
        metadata["snnc.target"] = consumer
    try:
        ngraph = nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata, type_check=True)
    except (ValueError, AssertionError, NotImplementedError) as err:
        raise SnncError(f"internal: NIR rejected the graph: {err}") from None
    if consumer is not None:
        from snnc.export.nir_targets import NIRTORCH_BASED, check_target, nirtorch_feedback_spelling

        if consumer in NIRTORCH_BASED:
            ngraph = nirtorch_feedback_spelling(ngraph, consumer, dt)
        elif consumer == "norse":
            from snnc.export.nir_targets import norse_spelling

            ngraph = norse_spelling(ngraph, dt)
        check_target(ngraph, consumer, dt)
    return ngraph


def write_nir(graph: Graph, path: Path, dt: float = DEFAULT_DT, consumer: str | None = None) -> Any:
    """Write ``graph`` as a NIR file (``nir.write``); returns the ``NIRGraph``.

    ``consumer``: see :func:`to_nir` (a refused graph writes nothing).
    """
    import nir

    from snnc.fileio import write_failure
    from snnc.h5write import GuardedFile

    ngraph = to_nir(graph, dt, consumer)
    try:
        raw = GuardedFile(path)  # a full disk never leaves HDF5 half-open (it would crash at exit)
        try:
            nir.write(raw, ngraph)
        finally:
            raw.close()
        if raw.error is not None:
            raise raw.error
    except OSError as err:
        if write_failure(err, path) is not None:
            raise  # full / read-only disk: atomic_output names the output file
        raise SnncError(f"cannot write NIR file: {err}", path) from None
    return ngraph
