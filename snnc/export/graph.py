"""snnc's export graph: a small NIR-like intermediate representation of one time step.

Every exporter works from this graph, never by tracing: :mod:`snnc.export.lower`
builds it by walking a folded network's structure (its genotype and modules),
:mod:`snnc.export.runtime` executes it (explicit state, one step at a time),
:mod:`snnc.export.nir_writer` / :mod:`~snnc.export.nir_reader` map it to and from
NIR, :mod:`snnc.export.lava_writer` maps a sequential one to lava-dl netx.

Semantics (as in NIR): a node applies its operation to the **sum of its
inputs** (several edges into a node are summed), except the ordered
multi-input op ``concat``. Shapes are per sample (no batch axis). A ``delay``
node outputs what its inputs summed to ``steps`` steps earlier (zeros at
first); every cycle of the graph must pass through a delay node.

Operations (``Node.op``) and their ``params``:

=============  =======================================================================
``input``      graph input (shape given)
``output``     graph output (one input)
``conv``       ``weight`` (O, I/groups, k...), ``bias`` or None, ``stride``, ``padding``,
               ``dilation`` (tuples), ``groups``; 2-D or 3-D by the weight's rank
``affine``     ``weight`` (O, I), ``bias`` or None
``avgpool``    ``kernel``, ``stride``, ``padding`` (2-D; zero padding counted)
``sumpool``    ``kernel``, ``stride``, ``padding`` (2-D)
``flatten``    ``start_dim``, ``end_dim`` (per-sample axes)
``neuron``     ``spec`` (:class:`~snnc.neurons.NeuronSpec`), ``gain`` (input scale, 1.0)
``sum``        junction: the sum of its inputs
``scale``      ``scale`` array broadcast onto the input
``delay``      ``steps`` (>= 1)
``resize``     ``size``: nearest-neighbour resampling of the spatial axes
``interp``     ``size``, ``mode`` (``trilinear``): linear resampling (align_corners False)
``cost_volume`` ``disparities``: stereo concatenation volume; the input holds the left
               maps in the first half of the batch and the right maps in the second
``cost_conv``  ``disparities``, ``weight`` (O, 2C, k, k, k), ``bias`` or None: ``cost_volume``
               followed by a stride-1 3-D convolution (odd ``k``, zero padding ``k//2``),
               fused: run as the exact factorisation :func:`snnc.models.stereo.cost_conv`
``select``     ``index``: take one channel, dropping the channel axis
``concat``     channel concatenation of the ordered inputs
=============  =======================================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from snnc.errors import SnncError

__all__ = ["OPS", "STATEFUL_OPS", "Node", "Graph", "infer_shape"]

#: Every operation the graph knows (see module docstring).
OPS: tuple[str, ...] = (
    "input",
    "output",
    "conv",
    "affine",
    "avgpool",
    "sumpool",
    "flatten",
    "neuron",
    "sum",
    "scale",
    "delay",
    "resize",
    "interp",
    "cost_volume",
    "cost_conv",
    "select",
    "concat",
)
#: Operations that carry state from one step to the next.
STATEFUL_OPS: tuple[str, ...] = ("neuron", "delay")

Shape = tuple[int, ...]


@dataclass
class Node:
    """One operation of the graph.

    Attributes:
        name: unique name (neuron nodes carry the network's neuron layer name).
        op: one of :data:`OPS`.
        inputs: names of the nodes feeding it (summed, or ordered for ``concat``).
        shape: per-sample output shape.
        params: the op's parameters (numpy arrays, ints, tuples, a NeuronSpec).
    """

    name: str
    op: str
    inputs: list[str]
    shape: Shape
    params: dict[str, Any] = field(default_factory=dict)


def _conv_out(size: int, k: int, s: int, p: int, d: int) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def infer_shape(op: str, params: dict[str, Any], in_shapes: Sequence[Shape], name: str = "") -> Shape:
    """Per-sample output shape of ``op`` on inputs of ``in_shapes``.

    Raises:
        SnncError: the inputs do not fit the op (names the node).
    """

    def fail(msg: str) -> SnncError:
        return SnncError(f"graph node {name!r} ({op}): {msg}")

    if op == "concat":
        if not in_shapes or any(s[1:] != in_shapes[0][1:] for s in in_shapes):
            raise fail(f"concat inputs must agree except in channels, got {list(in_shapes)}")
        return (sum(s[0] for s in in_shapes), *in_shapes[0][1:])
    if op != "input" and not in_shapes:
        raise fail("has no inputs")
    if any(s != in_shapes[0] for s in in_shapes[1:]):
        raise fail(f"summed inputs have different shapes {sorted(set(in_shapes))}")
    x = in_shapes[0] if in_shapes else ()
    if op in ("output", "neuron", "sum", "scale", "delay"):
        return x
    if op == "conv":
        w = params["weight"]
        dims = w.ndim - 2
        if len(x) != dims + 1 or x[0] != w.shape[1] * params["groups"]:
            raise fail(f"weight {tuple(w.shape)} (groups {params['groups']}) does not fit input {x}")
        spatial = tuple(
            _conv_out(x[1 + i], w.shape[2 + i], params["stride"][i], params["padding"][i], params["dilation"][i])
            for i in range(dims)
        )
        return (w.shape[0], *spatial)
    if op == "affine":
        w = params["weight"]
        if x != (w.shape[1],):
            raise fail(f"weight {tuple(w.shape)} does not fit input {x}")
        return (w.shape[0],)
    if op in ("avgpool", "sumpool"):
        k, s, p = params["kernel"], params["stride"], params["padding"]
        return (x[0], *(_conv_out(x[1 + i], k[i], s[i], p[i], 1) for i in range(2)))
    if op == "flatten":
        start, end = params["start_dim"], params["end_dim"]
        end = len(x) - 1 if end < 0 else end
        return (*x[:start], int(np.prod(x[start : end + 1])), *x[end + 1 :])
    if op in ("resize", "interp"):
        return (x[0], *params["size"])
    if op == "cost_volume":
        return (2 * x[0], params["disparities"], *x[1:])
    if op == "cost_conv":
        w = params["weight"]
        k = w.shape[-1]
        if len(x) != 3 or w.ndim != 5 or w.shape[1:] != (2 * x[0], k, k, k) or k % 2 != 1:
            raise fail(
                f"weight {tuple(w.shape)} does not fit a cost volume of input {x} (needs (O, 2C, k, k, k), odd k)"
            )
        return (w.shape[0], params["disparities"], *x[1:])
    if op == "select":
        return x[1:]
    raise fail("unknown operation")


class Graph:
    """An ordered set of :class:`Node` plus free-form metadata (``meta``)."""

    def __init__(self, meta: dict[str, Any] | None = None) -> None:
        self.nodes: dict[str, Node] = {}
        self.meta: dict[str, Any] = dict(meta or {})

    # ------------------------------------------------------------------ building
    def add(self, name: str, op: str, inputs: Iterable[str] = (), shape: Shape | None = None, **params: Any) -> str:
        """Add a node (shape inferred unless given, e.g. for ``input``); returns its name.

        Raises:
            SnncError: duplicate name, unknown op or input, shapes that do not fit.
        """
        if name in self.nodes:
            raise SnncError(f"graph node {name!r} defined twice")
        if op not in OPS:
            raise SnncError(f"graph node {name!r}: unknown operation {op!r}")
        inputs = list(inputs)
        for src in inputs:
            if src not in self.nodes:
                raise SnncError(f"graph node {name!r}: unknown input {src!r}")
        if shape is None:
            shape = infer_shape(op, params, [self.nodes[s].shape for s in inputs], name)
        self.nodes[name] = Node(name, op, inputs, tuple(int(s) for s in shape), params)
        return name

    def connect(self, name: str, inputs: Iterable[str]) -> None:
        """Add inputs to an existing node (closing a cycle through a delay node)."""
        node = self.nodes[name]
        for src in inputs:
            if src not in self.nodes:
                raise SnncError(f"graph node {name!r}: unknown input {src!r}")
            if self.nodes[src].shape != node.shape:
                raise SnncError(
                    f"graph node {name!r}: input {src!r} has shape {self.nodes[src].shape}, expected {node.shape}"
                )
            node.inputs.append(src)

    # ------------------------------------------------------------------ queries
    def __getitem__(self, name: str) -> Node:
        return self.nodes[name]

    def __len__(self) -> int:
        return len(self.nodes)

    @property
    def inputs(self) -> list[str]:
        """Names of the ``input`` nodes, in order."""
        return [n for n, node in self.nodes.items() if node.op == "input"]

    @property
    def outputs(self) -> list[str]:
        """Names of the ``output`` nodes, in order."""
        return [n for n, node in self.nodes.items() if node.op == "output"]

    def consumers(self) -> dict[str, list[str]]:
        """``node -> names of the nodes it feeds`` (with repeats for repeated edges)."""
        out: dict[str, list[str]] = {n: [] for n in self.nodes}
        for name, node in self.nodes.items():
            for src in node.inputs:
                out[src].append(name)
        return out

    def order(self) -> list[str]:
        """Evaluation order: every node after its inputs, delay outputs counting as known.

        Raises:
            SnncError: a cycle that passes through no delay node (named).
        """
        done: set[str] = set()
        order: list[str] = []
        pending = list(self.nodes)
        while pending:
            progressed = False
            rest = []
            for name in pending:
                node = self.nodes[name]
                if node.op == "delay" or all(s in done for s in node.inputs):
                    done.add(name)
                    order.append(name)
                    progressed = True
                else:
                    rest.append(name)
            if not progressed:
                raise SnncError(f"graph has a cycle without a delay node through {rest[0]!r}")
            pending = rest
        return order

    def check(self) -> None:
        """Validate the whole graph: inputs exist, shapes agree, outputs have one input, order exists."""
        for name, node in self.nodes.items():
            for src in node.inputs:
                if src not in self.nodes:
                    raise SnncError(f"graph node {name!r}: unknown input {src!r}")
            if node.op == "input":
                continue
            if node.op == "output" and len(node.inputs) != 1:
                raise SnncError(f"graph output {name!r} must have exactly one input, has {len(node.inputs)}")
            if node.op == "delay":
                if any(self.nodes[s].shape != node.shape for s in node.inputs) or not node.inputs:
                    raise SnncError(f"graph delay node {name!r} has no inputs or inputs of another shape")
                continue
            shape = infer_shape(node.op, node.params, [self.nodes[s].shape for s in node.inputs], name)
            if shape != node.shape:
                raise SnncError(f"graph node {name!r}: recorded shape {node.shape} but inputs give {shape}")
        if not self.inputs or not self.outputs:
            raise SnncError("graph needs at least one input and one output node")
        self.order()
