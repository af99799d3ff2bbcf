"""ONNX export (opset 17 by default, ``torch.onnx.export(..., dynamo=False)``), checked with onnx.checker.

Every graph is written from the export :class:`~snnc.export.graph.Graph`: the
folded network is lowered (:func:`snnc.export.lower.lower`) and its
:class:`~snnc.export.runtime.GraphModule` is traced, so NIR, ONNX and the
partition pieces of one network share node names and structure. This module
is the only place that calls ``torch.onnx.export``.

**Streaming (one step)** — :func:`export_stream`: one time step of the folded
network with its state as explicit inputs and outputs, for frame-by-frame
inference in onnxruntime (feed ``state_out_k`` back as ``state_in_k``; start
from zeros)::

    inputs   x            one step's input (B, C, H, W); stereo (B, 2, C, H, W), index 0 = left
             state_in_0 .. state_in_{N-1}
    outputs  y            the step's output (classification logits / last-layer spikes;
                          stereo matching cost (B, D, H, W), lower = better)
             tap.<node> .. values of graph nodes asked for with ``taps`` (none by default)
             state_out_0 .. state_out_{N-1}

The state is the Graph's (:meth:`GraphModule.state_names`): for every stateful
node in graph order, a neuron's ``<node>.u`` / ``<node>.y`` (ALIF also
``<node>.a``; ReLU and binary neurons have none) and a delay's ``<node>.d0``..
(SNASNet's feedback edges). Neuron nodes carry the network's neuron layer
names, so the spikes of layer L at this step are the ``<L>.y`` state output.
The file's metadata property ``snnc.state_names`` lists what each
``state_in_k`` is and ``snnc.state_shapes`` their shapes.

**Fixed window** — :func:`export_window` (classification): input ``x`` one
image (B, C, H, W), direct coding for ``T`` steps from the resting state,
output ``y_mean`` = the mean of the per-step outputs (the prediction scores).

Shapes are static (the exported input shape, batch included). The metadata
properties also hold ``snnc.format`` (:data:`ONNX_FORMAT`, ``snnc-onnx/2``:
Graph state layout; ``snnc-onnx/1`` files traced the torch network's own state
layout), ``snnc.mode``, ``snnc.family``, ``snnc.genotype`` (JSON),
``snnc.input_layout`` and ``snnc.opset``.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from snnc.errors import SnncError
from snnc.export.graph import Graph
from snnc.export.runtime import GraphModule

__all__ = [
    "DEFAULT_OPSET",
    "ONNX_FORMAT",
    "READABLE_FORMATS",
    "check_format",
    "state_names",
    "export_stream",
    "export_window",
    "export_graph_stream",
]

#: Opset of the exported graphs (Greater/Cast spikes, Slice/Gather/Expand for resampling).
DEFAULT_OPSET = 17
#: ``snnc.format`` metadata value of files written now (Graph state layout).
ONNX_FORMAT = "snnc-onnx/2"
#: Formats whose state layout matches what :func:`export_stream` describes (``/1``: traced network state).
READABLE_FORMATS: tuple[str, ...] = (ONNX_FORMAT,)


def check_format(meta: dict[str, str], path: Path) -> None:
    """Refuse a streaming file whose ``snnc.format`` is not :data:`ONNX_FORMAT` (one line naming file and version).

    Raises:
        SnncError: an older layout (``snnc-onnx/1``: the torch network's state order) or a file snnc did not write.
    """
    fmt = meta.get("snnc.format")
    if fmt not in READABLE_FORMATS:
        raise SnncError(
            f"ONNX file of format {fmt!r}: this snnc reads {ONNX_FORMAT} (Graph state layout); export it again",
            path,
        )


def _lowered(model: nn.Module, step_shape: Sequence[int]) -> tuple[GraphModule, str]:
    """``(GraphModule of the model's export Graph, family)`` for one-step inputs of ``step_shape``."""
    from snnc.export.lower import lower

    graph = lower(model.eval(), step_shape)
    return GraphModule(graph), str(graph.meta["family"])


def state_names(model: nn.Module, x_t: Tensor) -> list[str]:
    """Name of each state tensor of the streaming graph of ``model`` for one step's input ``x_t`` (the Graph's)."""
    gm, _ = _lowered(model, tuple(x_t.shape))
    return list(gm.state_names())


class _NetStep(nn.Module):
    """One step of a network's GraphModule taking the network's own input ``x`` (stereo: (B, 2, C, H, W))."""

    def __init__(self, gm: GraphModule, family: str, outputs: Sequence[str]) -> None:
        super().__init__()
        self.gm = gm
        self.family = family
        self.outputs = list(outputs)

    def forward(self, x: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        from snnc.export.lower import graph_inputs

        values, new_state = self.gm.step_nodes(graph_inputs(self.family, x), tuple(state))
        return (*[values[n] for n in self.outputs], *new_state)


class _NetWindow(nn.Module):
    """``time_steps`` steps of a GraphModule from rest; the mean of its output ``y``."""

    def __init__(self, gm: GraphModule, family: str, shapes: Sequence[torch.Size], steps: int) -> None:
        super().__init__()
        self.gm = gm
        self.family = family
        self.shapes = [tuple(s) for s in shapes]
        self.steps = steps

    def forward(self, x: Tensor) -> Tensor:
        from snnc.export.lower import graph_inputs

        inputs = graph_inputs(self.family, x)
        state = tuple(x.new_zeros(s) for s in self.shapes)
        total: Tensor | None = None
        for _ in range(self.steps):
            y, state = self.gm.step(inputs, state)
            total = y if total is None else total + y
        assert total is not None
        return total / self.steps


class _GraphStep(nn.Module):
    def __init__(self, gm: GraphModule, n_inputs: int, outputs: Sequence[str]) -> None:
        super().__init__()
        self.gm = gm
        self.n_inputs = n_inputs
        self.outputs = list(outputs)

    def forward(self, *args: Tensor) -> tuple[Tensor, ...]:
        inputs = dict(zip(self.gm.input_names, args[: self.n_inputs], strict=False))
        values, new_state = self.gm.step_nodes(inputs, tuple(args[self.n_inputs :]))
        return (*[values[n] for n in self.outputs], *new_state)


def _tap_outputs(gm: GraphModule, taps: Sequence[str], path: Path) -> tuple[list[str], list[str]]:
    """``(graph nodes to output, their ONNX names)``: the graph outputs, then ``tap.<node>`` per tap."""
    nodes = gm.graph.nodes
    unknown = [t for t in taps if t not in nodes]
    if unknown:
        raise SnncError(f"internal: tapped graph nodes {unknown} do not exist", path)
    taps = [t for t in dict.fromkeys(taps) if t not in gm.output_names]
    return list(gm.output_names) + taps, list(gm.output_names) + [f"tap.{t}" for t in taps]


def _export(
    module: nn.Module,
    args: tuple[Tensor, ...],
    path: Path,
    input_names: list[str],
    output_names: list[str],
    opset: int,
    meta: dict[str, str],
    doc: str,
) -> None:
    import onnx

    module.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                module,
                args,
                str(path),
                input_names=input_names,
                output_names=output_names,
                opset_version=opset,
                dynamo=False,
                do_constant_folding=True,
            )
        except (RuntimeError, ValueError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise SnncError(f"torch.onnx.export failed: {first}", path) from None
    proto = onnx.load(str(path))
    got_in = [i.name for i in proto.graph.input]
    if got_in != input_names:
        raise SnncError(f"internal: ONNX inputs came out as {got_in}, expected {input_names}", path)
    proto.doc_string = doc
    meta = {"snnc.format": ONNX_FORMAT, "snnc.opset": str(opset), **meta}
    del proto.metadata_props[:]
    for key, value in meta.items():
        prop = proto.metadata_props.add()
        prop.key, prop.value = key, value
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(path))


def _graph_meta(graph: Any, mode: str) -> dict[str, str]:
    meta = graph.meta
    return {
        "snnc.mode": mode,
        "snnc.family": str(meta.get("family")),
        "snnc.genotype": json.dumps(meta.get("genotype")),
        "snnc.input_layout": str(meta.get("input_layout") or ""),
        **({"snnc.precision": "int8", "snnc.int8": json.dumps(meta["int8"])} if "int8" in meta else {}),
    }


def export_stream(
    model: nn.Module,
    step_shape: Sequence[int],
    path: Path,
    opset: int = DEFAULT_OPSET,
    taps: Sequence[str] = (),
    graph: Graph | None = None,
    qdq: bool = False,
    target: str = "onnxruntime",
) -> dict[str, Any]:
    """Write the one-step streaming graph of ``model`` (eval, folded) for inputs of ``step_shape``.

    The network is lowered to its export Graph and the Graph's
    :class:`~snnc.export.runtime.GraphModule` is traced (module docstring).

    Args:
        taps: graph nodes whose values this step become extra outputs ``tap.<node>``
            (after ``y``, before the state), e.g. what energy counting needs beyond the spikes.
        graph: the model's export Graph for ``step_shape`` when the caller already lowered it.
        qdq: an integer graph's spike-fed convolutions as QuantizeLinear/DequantizeLinear integer
            convolutions (``GraphModule(qdq=True)``: same values; OpenVINO runs them in int8); their
            node names are the metadata ``snnc.qdq_convs``.
        target: the runtime the file is spelled for (``GraphModule(target=)``: ``onnxruntime`` or ``openvino``,
            the same values; metadata ``snnc.target``). ``openvino`` holds integer neurons' spikes (their ``y``
            state inputs and outputs too) as uint8.

    Returns:
        ``{"inputs": [...], "outputs": [...], "state_names": [...], "state_layout": [(node, field)...],
        "taps": [...]}``.

    Raises:
        SnncError: the input shape does not fit, or export / checking fails.
    """
    path = Path(path)
    step_shape = tuple(int(s) for s in step_shape)
    if graph is None:
        gm, family = _lowered(model, step_shape)
        if qdq or target != "onnxruntime":
            gm = GraphModule(gm.graph, qdq=qdq, target=target)
    else:
        gm, family = GraphModule(graph, qdq=qdq, target=target), str(graph.meta["family"])
    x = torch.zeros(step_shape)
    from snnc.export.lower import graph_inputs

    state = gm.init_state(graph_inputs(family, x))
    names = list(gm.state_names())
    nodes, value_names = _tap_outputs(gm, taps, path)
    n = len(state)
    ins = ["x"] + [f"state_in_{k}" for k in range(n)]
    outs = value_names + [f"state_out_{k}" for k in range(n)]
    meta = _graph_meta(gm.graph, "stream")
    meta["snnc.state_names"] = json.dumps(names)
    meta["snnc.state_shapes"] = json.dumps([list(s.shape) for s in state])
    meta["snnc.target"] = target
    if qdq:
        meta["snnc.qdq_convs"] = json.dumps(gm.qdq_convs())
    doc = (
        "snnc one-step streaming graph: inputs x, state_in_0..; outputs y, state_out_0..; feed state_out_k "
        "back as state_in_k each step, start from zeros. state_k = metadata snnc.state_names[k]."
    )
    _export(_NetStep(gm, family, nodes), (x, *state), path, ins, outs, opset, meta, doc)
    return {
        "inputs": ins,
        "outputs": outs,
        "state_names": names,
        "state_layout": gm.state_layout(),
        "taps": value_names[len(gm.output_names) :],
    }


def export_window(
    model: nn.Module, step_shape: Sequence[int], time_steps: int, path: Path, opset: int = DEFAULT_OPSET
) -> dict[str, Any]:
    """Write the fixed-window graph (classification): image ``x`` -> ``y_mean`` over ``time_steps`` steps.

    Raises:
        SnncError: not a classification network, ``time_steps < 1``, or export failure.
    """
    from snnc.export.lower import family_of, graph_inputs
    from snnc.models.families import family as registered_family

    if registered_family(family_of(model)).task != "classification":
        raise SnncError(
            "the fixed-window ONNX graph is for classification networks; stream the stereo net "
            "(export without --window)"
        )
    if time_steps < 1:
        raise SnncError(f"--window must be >= 1 time steps, got {time_steps}")
    step_shape = tuple(int(s) for s in step_shape)
    gm, family = _lowered(model, step_shape)
    x = torch.zeros(step_shape)
    shapes = [s.shape for s in gm.init_state(graph_inputs(family, x))]
    meta = _graph_meta(gm.graph, "window")
    meta["snnc.time_steps"] = str(time_steps)
    doc = (
        f"snnc fixed-window graph: input x (one image, direct coding for {time_steps} steps from rest), "
        f"output y_mean = mean of the per-step outputs."
    )
    _export(_NetWindow(gm, family, shapes, time_steps), (x,), Path(path), ["x"], ["y_mean"], opset, meta, doc)
    return {"inputs": ["x"], "outputs": ["y_mean"], "time_steps": time_steps}


def export_graph_stream(
    gm: GraphModule,
    example: dict[str, Tensor],
    path: Path,
    opset: int = DEFAULT_OPSET,
    meta: dict[str, str] | None = None,
    taps: Sequence[str] = (),
) -> dict[str, Any]:
    """One-step streaming ONNX graph of a :class:`~snnc.export.runtime.GraphModule` (a partition's rest).

    Inputs are the graph's input names then ``state_in_k``; outputs the graph's
    output names, ``tap.<node>`` per tap, then ``state_out_k``; ``snnc.state_names`` lists the state.
    """
    path = Path(path)
    gm = gm.eval()
    state = gm.init_state(example)
    n = len(state)
    nodes, value_names = _tap_outputs(gm, taps, path)
    ins = list(gm.input_names) + [f"state_in_{k}" for k in range(n)]
    outs = value_names + [f"state_out_{k}" for k in range(n)]
    props = {
        "snnc.mode": "stream",
        "snnc.state_names": json.dumps(gm.state_names()),
        "snnc.state_shapes": json.dumps([list(s.shape) for s in state]),
        **(meta or {}),
    }
    doc = (
        "snnc one-step streaming graph of a network part: inputs "
        + ", ".join(gm.input_names)
        + ", state_in_0..; outputs "
        + ", ".join(gm.output_names)
        + ", state_out_0.."
    )
    args = tuple(example[n_] for n_ in gm.input_names) + tuple(state)
    _export(_GraphStep(gm, len(gm.input_names), nodes), args, path, ins, outs, opset, props, doc)
    return {
        "inputs": ins,
        "outputs": outs,
        "state_names": gm.state_names(),
        "state_layout": gm.state_layout(),
        "taps": value_names[len(gm.output_names) :],
    }
