"""Graph walk: a folded snnc network -> export graph (:mod:`snnc.export.graph`).

The walk follows each family's structure (genotype edges, module tree) exactly
as its ``step_with`` does, without tracing. Each network class has one lowering,
registered with ``@lowers(NetworkClass)`` and found by ``type(model)``; the layout
of the graph input comes from the family registry (:mod:`snnc.models.families`),
so nothing here branches on a family name. Node names are the network's
module names: a neuron node is named like the neuron layer in
``model.neurons()`` (``stem.neuron``, ``trellis.cells.0.nodes.2``,
``cell1.fwd.0_1.neuron``...), a convolution like its ConvBN (``stem.conv``).

Rewrites that keep the computation exact (to float rounding):

* **Concatenation** feeding a convolution / the classifier: the consumer's
  weight is split along its input channels, one node per source, and the
  results are summed (``<conv>.part<i>``); the concatenation itself is never a node.
* **Nearest down-sampling** by an integer factor ``k`` feeding a convolution
  (SpikeDHS cells taking inputs from a finer level): ``conv(x[::k, ::k])`` is
  the same convolution with stride, dilation and padding multiplied by ``k``.
  Any other resampling (up-sampling, non-integer factors) stays a ``resize`` node.
* Every ``conv`` / ``affine`` node computing (part of) a torch layer records that
  layer's qualified module name in ``params["layer"]`` (``stem.conv.conv``; every
  ``.part<i>`` of a split layer names the same layer): energy counting and the hybrid
  backend map the network's counted layers to graph nodes by it.
* SNASNet's voting layer (mean of each class's ``vote`` outputs) is folded into
  the last affine layer; its backward (t-1) edges become ``delay`` nodes; its
  summing nodes become ``sum`` junctions. Dropout is the identity (eval).
* SpikeDHS-Stereo: the graph input ``x`` holds both cameras in the batch (left
  frames first), as the network's shared feature net does:
  ``x_t (B, 2, C, H, W) -> x_t.transpose(0, 1).reshape(2B, C, H, W)``
  (:func:`graph_inputs`); ``cost_volume`` splits the batch again. The volume and
  ``matching.stem0``'s 3-D convolution are one ``cost_conv`` node (named ``cost_volume``,
  run as the exact factorisation :func:`snnc.models.stereo.cost_conv`); a network with
  ``literal_matching`` set lowers to the ``cost_volume`` node and the ``conv`` node instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import numpy as np
import torch
from torch import Tensor, nn

from snnc.errors import SnncError
from snnc.export.graph import Graph
from snnc.models import families
from snnc.models.base import SpikingNet
from snnc.models.cells import SpikingCell, SpikingConv, Trellis, Upsampler
from snnc.models.fold import batchnorm_layers
from snnc.models.layers import ConvBN
from snnc.models.sequential import SequentialNet
from snnc.models.snasnet import CellOp, SNASNet, SNASNetCell
from snnc.models.spikedhs import SpikeDHSClassifier
from snnc.models.stereo import SpikeDHSStereo
from snnc.neurons import Neuron

__all__ = ["lower", "lowers", "graph_inputs", "input_layout", "family_of"]

Size = tuple[int, ...]


@dataclass(frozen=True)
class Piece:
    """A node's output, seen through a pending nearest sub-sampling by ``sub`` per spatial axis."""

    node: str
    sub: Size


Value = tuple[Piece, ...]  # channel concatenation of pieces


def _array(t: Tensor) -> np.ndarray[Any, Any]:
    return t.detach().cpu().numpy().copy()


class _Walker:
    """Graph-building helpers shared by the family walks."""

    def __init__(self, graph: Graph, layers: dict[int, str] | None = None) -> None:
        self.g = graph
        self._resized: dict[tuple[str, Size, Size], str] = {}
        self._layers = layers or {}  # id(module) -> qualified name: a node's torch layer (energy counting)

    def layer_of(self, module: nn.Module) -> str | None:
        """The qualified name of the torch layer a node computes (``params["layer"]``), None if unknown."""
        return self._layers.get(id(module))

    # ------------------------------------------------------------------ values
    def value(self, node: str) -> Value:
        dims = len(self.g[node].shape) - 1
        return (Piece(node, (1,) * dims),)

    def channels(self, piece: Piece) -> int:
        return self.g[piece.node].shape[0]

    def size(self, value: Value) -> Size:
        piece = value[0]
        return tuple(n // k for n, k in zip(self.g[piece.node].shape[1:], piece.sub, strict=False))

    def materialize(self, piece: Piece) -> str:
        """A node holding the piece's value (a ``resize`` node when sub-sampling is pending)."""
        if all(k == 1 for k in piece.sub):
            return piece.node
        size = tuple(n // k for n, k in zip(self.g[piece.node].shape[1:], piece.sub, strict=False))
        return self._resize_node(f"{piece.node}.subsample", piece.node, size)

    def _resize_node(self, name: str, node: str, size: Size) -> str:
        key = (node, (1,), size)
        if key not in self._resized:
            self._resized[key] = self.g.add(name, "resize", [node], size=size)
        return self._resized[key]

    def resize(self, value: Value, size: Sequence[int], name: str) -> Value:
        """Nearest resampling to ``size``: exact integer down-sampling stays pending (fused later).

        A real ``resize`` node (up-sampling, non-integer factor) is named ``<name>.resize[<piece>]``.
        """
        size = tuple(int(s) for s in size)
        out = []
        for i, piece in enumerate(value):
            cur = tuple(n // k for n, k in zip(self.g[piece.node].shape[1:], piece.sub, strict=False))
            if cur == size:
                out.append(piece)
            elif all(c % s == 0 for c, s in zip(cur, size, strict=False)):
                out.append(
                    Piece(piece.node, tuple(k * (c // s) for k, c, s in zip(piece.sub, cur, size, strict=False)))
                )
            else:
                label = f"{name}.resize" if len(value) == 1 else f"{name}.resize{i}"
                node = self._resize_node(label, self.materialize(piece), size)
                out.append(Piece(node, (1,) * len(size)))
        return tuple(out)

    # ------------------------------------------------------------------ layers
    def conv(self, name: str, conv: nn.Module, value: Value) -> list[str]:
        """One conv node per piece (weights split along input channels); returns the summands."""
        if isinstance(conv, ConvBN):
            if conv.bn is not None:
                raise SnncError(f"{name}: BatchNorm not folded (fold_bn the model first)")
            conv = conv.conv
        if (
            not isinstance(conv, (nn.Conv2d, nn.Conv3d))
            or conv.padding_mode != "zeros"
            or isinstance(conv.padding, str)
        ):
            raise SnncError(f"{name}: only zero-padded Conv2d/Conv3d layers can be exported")
        w = _array(conv.weight)
        bias = None if conv.bias is None else _array(conv.bias)
        if conv.groups != 1 and len(value) != 1:
            raise SnncError(f"{name}: a grouped convolution cannot read a concatenation")
        total = sum(self.channels(p) for p in value)
        if total != w.shape[1] * conv.groups:
            raise SnncError(f"{name}: weight expects {w.shape[1] * conv.groups} input channels, got {total}")
        outs, c0 = [], 0
        for i, piece in enumerate(value):
            c = self.channels(piece)
            wi = w if conv.groups != 1 else w[:, c0 : c0 + c]
            c0 += c
            outs.append(
                self.g.add(
                    name if len(value) == 1 else f"{name}.part{i}",
                    "conv",
                    [piece.node],
                    weight=np.ascontiguousarray(wi),
                    bias=bias if i == 0 else None,
                    stride=tuple(int(s) * k for s, k in zip(conv.stride, piece.sub, strict=False)),
                    padding=tuple(int(p) * k for p, k in zip(conv.padding, piece.sub, strict=False)),
                    dilation=tuple(int(d) * k for d, k in zip(conv.dilation, piece.sub, strict=False)),
                    groups=int(conv.groups),
                    layer=self.layer_of(conv),
                )
            )
        return outs

    def identity(self, name: str, value: Value, channels: int) -> list[str]:
        """``value`` as summands of a ``channels``-wide current (identity 1x1 convs when needed)."""
        total = sum(self.channels(p) for p in value)
        if total != channels:
            raise SnncError(f"{name}: identity from {total} to {channels} channels")
        if len(value) == 1 and all(k == 1 for k in value[0].sub):
            return [value[0].node]
        outs, c0 = [], 0
        dims = len(value[0].sub)
        for i, piece in enumerate(value):
            c = self.channels(piece)
            w = np.zeros((channels, c) + (1,) * dims, dtype=np.float32)
            w[np.arange(c0, c0 + c), np.arange(c)] = 1.0
            c0 += c
            outs.append(
                self.g.add(
                    f"{name}.part{i}",
                    "conv",
                    [piece.node],
                    weight=w,
                    bias=None,
                    stride=piece.sub,
                    padding=(0,) * dims,
                    dilation=(1,) * dims,
                    groups=1,
                )
            )
        return outs

    def neuron(self, name: str, neuron: Neuron, currents: Sequence[str]) -> str:
        return self.g.add(name, "neuron", currents, spec=neuron.spec, gain=1.0)

    def junction(self, name: str, terms: Sequence[str]) -> str:
        if not terms:
            raise SnncError(f"{name}: node has no inputs; it cannot be exported")
        return terms[0] if len(terms) == 1 else self.g.add(name, "sum", terms)

    def spiking_conv(self, prefix: str, module: SpikingConv, value: Value) -> Value:
        """A ``SpikingConv`` (``.conv`` ConvBN, ``.neuron``)."""
        currents = self.conv(f"{prefix}.conv", module.conv, value)
        return self.value(self.neuron(f"{prefix}.neuron", module.neuron, currents))

    def avgpool(self, name: str, pool: nn.AvgPool2d, inputs: Sequence[str]) -> str:
        if pool.ceil_mode or not pool.count_include_pad or pool.divisor_override:
            raise SnncError(f"{name}: only AvgPool2d with ceil_mode=False and count_include_pad=True is exported")

        def pair(v: int | Sequence[int]) -> tuple[int, ...]:
            return (v, v) if isinstance(v, int) else tuple(v)

        stride = pool.stride if pool.stride is not None else pool.kernel_size
        return self.g.add(
            name, "avgpool", inputs, kernel=pair(pool.kernel_size), stride=pair(stride), padding=pair(pool.padding)
        )

    def affine(self, name: str, linear: nn.Linear, value: Sequence[str], weight: Any = None, bias: Any = None) -> str:
        w = _array(linear.weight) if weight is None else weight
        b = (None if linear.bias is None else _array(linear.bias)) if bias is None else bias
        return self.g.add(name, "affine", value, weight=w, bias=b, layer=self.layer_of(linear))

    # ------------------------------------------------------------------ SpikeDHS blocks
    def cell(self, prefix: str, cell: SpikingCell, s0: Value, s1: Value, size: Size) -> Value:
        states = [self.resize(s0, size, f"{prefix}.s0"), self.resize(s1, size, f"{prefix}.s1")]
        edges = cell.genotype.edges
        c_node = cell.out_channels // cell.genotype.nodes
        for j, node in enumerate(cell.nodes):
            currents: list[str] = []
            for k, edge in enumerate(edges):
                if edge.dst != j:
                    continue
                op, src = cell.ops[k], states[edge.src]
                if isinstance(op, nn.Identity):
                    out = self.identity(f"{prefix}.ops.{k}", src, c_node)
                else:
                    out = self.conv(f"{prefix}.ops.{k}", op, src)
                if str(k) in cell.edge_neurons:
                    edge_neuron = cast(Neuron, cell.edge_neurons[str(k)])
                    out = [self.neuron(f"{prefix}.edge_neurons.{k}", edge_neuron, out)]
                currents += out
            states.append(self.value(self.neuron(f"{prefix}.nodes.{j}", cast(Neuron, node), currents)))
        return sum(states[2:], ())

    def trellis(self, prefix: str, trellis: Trellis, s0: Value, s1: Value) -> Value:
        from snnc.models.cells import level_size

        size0 = self.size(s1)
        for i, (cell, level) in enumerate(zip(trellis.cells, trellis.path, strict=False)):
            s0, s1 = s1, self.cell(f"{prefix}.cells.{i}", cast(SpikingCell, cell), s0, s1, level_size(size0, level))
        return s1

    def upsampler(self, prefix: str, up: Upsampler, x: Value, size0: Size) -> Value:
        from snnc.models.cells import level_size

        level = up.from_level
        for i, layer in enumerate(up.layers):
            x = self.spiking_conv(f"{prefix}.layers.{i}", cast(SpikingConv, layer), x)
            level -= 1
            x = self.resize(x, level_size(size0, level), f"{prefix}.layers.{i}")
        return x


# --------------------------------------------------------------------------- lowerings
#: ``lowering(walker, model, step_shape)``: adds every node after the input ``x`` (and the output ``y``).
Lowering = Callable[[_Walker, Any, Size], None]
_L = TypeVar("_L", bound=Lowering)
_LOWERINGS: dict[type[nn.Module], Lowering] = {}


def lowers(network: type[nn.Module]) -> Callable[[_L], _L]:
    """Register the decorated function as the lowering of ``network`` (exactly that class, for :func:`lower`)."""

    def register(fn: _L) -> _L:
        _LOWERINGS[network] = fn
        return fn

    return register


@lowers(SpikeDHSClassifier)
def _lower_spikedhs_classifier(w: _Walker, model: SpikeDHSClassifier, step_shape: Size) -> None:
    s = w.spiking_conv("stem", model.stem, w.value("x"))
    out = w.trellis("trellis", model.trellis, s, s)
    terms, c0 = [], 0
    weight, bias = _array(model.fc.weight), _array(model.fc.bias)  # nn.Linear(bias=True)
    for i, piece in enumerate(out):
        node = w.materialize(piece)
        h, wd = w.g[node].shape[1:]
        c = w.channels(piece)
        pooled = w.g.add(f"pool.part{i}", "avgpool", [node], kernel=(h, wd), stride=(h, wd), padding=(0, 0))
        flat = w.g.add(f"flatten.part{i}", "flatten", [pooled], start_dim=0, end_dim=-1)
        terms.append(
            w.g.add(
                "fc" if len(out) == 1 else f"fc.part{i}",
                "affine",
                [flat],
                weight=np.ascontiguousarray(weight[:, c0 : c0 + c]),
                bias=bias if i == 0 else None,
                layer=w.layer_of(model.fc),
            )
        )
        c0 += c
    w.g.add("y", "output", [w.junction("fc", terms)])


@lowers(SpikeDHSStereo)
def _lower_stereo(w: _Walker, model: SpikeDHSStereo, step_shape: Size) -> None:
    height, width = step_shape[-2:]
    f, m = model.feature, model.matching
    stem0 = w.spiking_conv("feature.stem0", f.stem0, w.value("x"))
    stem1 = w.spiking_conv("feature.stem1", f.stem1, stem0)
    out = w.trellis("feature.trellis", f.trellis, stem0, stem1)
    out = w.upsampler("feature.up", f.up, out, w.size(stem1))
    feats = w.spiking_conv("feature.last", f.last, out)
    if getattr(model, "literal_matching", False):
        volume = w.g.add("cost_volume", "cost_volume", [w.materialize(feats[0])], disparities=int(model.volume_shifts))
        s0 = w.spiking_conv("matching.stem0", m.stem0, w.value(volume))
    else:
        s0 = w.value(w.neuron("matching.stem0.neuron", m.stem0.neuron, [_cost_conv(w, model, feats)]))
    s1 = w.spiking_conv("matching.stem1", m.stem1, s0)
    out = w.trellis("matching.trellis", m.trellis, s0, s1)
    out = w.upsampler("matching.up", m.up, out, w.size(s1))
    cost = w.conv("matching.out", m.out, out)
    interp = w.g.add("interp", "interp", cost, size=(int(model.disparities), height, width), mode="trilinear")
    w.g.add("y", "output", [w.g.add("select", "select", [interp], index=0)])


def _cost_conv(w: _Walker, model: Any, feats: Value) -> str:
    """The fused ``cost_conv`` node (named ``cost_volume``): the volume and ``matching.stem0``'s convolution."""
    conv = model.matching.stem0.conv
    if not isinstance(conv, ConvBN) or conv.bn is not None:
        raise SnncError("matching.stem0.conv: BatchNorm not folded (fold_bn the model first)")
    c = conv.conv
    assert isinstance(c, nn.Conv3d)
    k = c.kernel_size
    if (
        len(set(k)) != 1
        or k[0] % 2 != 1
        or tuple(c.stride) != (1, 1, 1)
        or tuple(c.dilation) != (1, 1, 1)
        or tuple(c.padding) != (k[0] // 2,) * 3
        or c.groups != 1
        or c.padding_mode != "zeros"
    ):
        raise SnncError("matching.stem0.conv: only a stride-1 odd cubic 'same' convolution fuses with the cost volume")
    return w.g.add(
        "cost_volume",
        "cost_conv",
        [w.materialize(feats[0])],
        disparities=int(model.volume_shifts),
        weight=_array(c.weight),
        bias=None if c.bias is None else _array(c.bias),
        layer=w.layer_of(c),  # counted as the literal layer on the volume (what the torch hooks see)
    )


def _snasnet_op(w: _Walker, prefix: str, op: CellOp, h: str) -> list[str]:
    if op.neuron is not None and op.conv is not None:
        spikes = w.neuron(f"{prefix}.neuron", op.neuron, [h])
        return w.conv(f"{prefix}.conv", op.conv, w.value(spikes))
    if op.pool is not None:
        return [w.avgpool(f"{prefix}.pool", op.pool, [h])]
    return [h]


def _snasnet_cell(w: _Walker, prefix: str, cell: SNASNetCell, x_in: str) -> str:
    shape = w.g[x_in].shape
    fb = {j: w.g.add(f"{prefix}.feedback.{j}", "delay", [], shape=shape, steps=1) for j in cell.feedback_nodes}
    h = {0: w.junction(f"{prefix}.h0", [x_in] + ([fb[0]] if 0 in fb else []))}
    for j in range(1, 4):
        terms: list[str] = []
        for i, jj, _ in cell.fwd_edges:
            if jj == j:
                terms += _snasnet_op(w, f"{prefix}.fwd.{i}_{j}", cast(CellOp, cell.fwd[f"{i}_{j}"]), h[i])
        if j in fb:
            terms.append(fb[j])
        h[j] = w.junction(f"{prefix}.h{j}", terms)
    back: dict[int, list[str]] = {j: [] for j in fb}
    for i, j, _ in cell.bwd_edges:
        back[j] += _snasnet_op(w, f"{prefix}.bwd.{i}_{j}", cast(CellOp, cell.bwd[f"{i}_{j}"]), h[i])
    for j, terms in back.items():
        w.g.connect(fb[j], terms)
    return h[3]


@lowers(SNASNet)
def _lower_snasnet(w: _Walker, model: SNASNet, step_shape: Size) -> None:
    g = model.genotype
    x = w.junction("stem", w.conv("stem", model.stem, w.value("x")))
    h = _snasnet_cell(w, "cell1", model.cell1, x)
    y = w.neuron("reduce_neuron", model.reduce_neuron, w.conv("reduce_bn", model.reduce_bn, w.value(h)))
    y = w.avgpool("reduce_pool", model.reduce_pool, w.conv("reduce_conv", model.reduce_conv, w.value(y)))
    h = _snasnet_cell(w, "cell2", model.cell2, y)
    y = w.neuron("final_neuron", model.final_neuron, w.conv("final_bn", model.final_bn, w.value(h)))
    y = w.avgpool("final_pool", model.final_pool, [y])
    y = w.g.add("flatten", "flatten", [y], start_dim=0, end_dim=-1)
    y = w.neuron("fc_neuron", model.fc_neuron, [w.affine("fc1", model.fc1, [y])])
    weight = _array(model.fc2.weight).reshape(g.num_classes, g.vote, -1).mean(axis=1)
    bias = _array(model.fc2.bias).reshape(g.num_classes, g.vote).mean(axis=1)
    w.g.add("y", "output", [w.affine("fc2", model.fc2, [y], weight=weight, bias=bias)])


@lowers(SequentialNet)
def _lower_sequential(w: _Walker, model: SequentialNet, step_shape: Size) -> None:
    x = "x"
    for i, block in enumerate(model.blocks):
        if hasattr(block, "conv"):
            neuron, conv = cast(Neuron, block.neuron), cast(nn.Module, block.conv)
            x = w.neuron(f"blocks.{i}.neuron", neuron, w.conv(f"blocks.{i}.conv", conv, w.value(x)))
        elif hasattr(block, "fc"):
            neuron, fc = cast(Neuron, block.neuron), cast(nn.Linear, block.fc)
            x = w.neuron(f"blocks.{i}.neuron", neuron, [w.affine(f"blocks.{i}.fc", fc, [x])])
        elif isinstance(block, nn.AvgPool2d):
            x = w.avgpool(f"blocks.{i}.pool", block, [x])
        else:
            x = w.g.add(f"blocks.{i}.flatten", "flatten", [x], start_dim=0, end_dim=-1)
    w.g.add("y", "output", [x])


# --------------------------------------------------------------------------- public API
def family_of(model: nn.Module) -> str:
    """The export family of a network (``spikedhs-cla``, ``spikedhs-stereo``, ``snasnet``, ``sequential``)."""
    from snnc.models.families import family_of_model

    try:
        return family_of_model(model).name
    except SnncError:
        raise SnncError(
            f"cannot export a {type(model).__name__}: snnc exports SpikeDHS, SNASNet and sequential nets"
        ) from None


def _stereo_input(family: str | None) -> bool:
    fam = families.find(family)
    return fam is not None and fam.stereo_input


def input_layout(family: str) -> str:
    """How one step's network input becomes the graph input ``x`` (recorded in exported files).

    The family's :attr:`~snnc.models.families.Family.input_layout`.

    Raises:
        SnncError: not a registered family.
    """
    return families.family(family).input_layout


def graph_inputs(family: str | None, x_t: Tensor) -> dict[str, Tensor]:
    """The graph inputs for one step's network input ``x_t`` (see :func:`input_layout`).

    ``family`` is a graph's ``meta["family"]``: a stereo-input family's pair ``(B, 2, C, H, W)``
    goes into the batch; any other value (also an unknown or missing family, e.g. a foreign NIR
    file) passes ``x_t`` through.
    """
    if _stereo_input(family):
        return {"x": x_t.transpose(0, 1).reshape(2 * x_t.shape[0], *x_t.shape[2:])}
    return {"x": x_t}


def lower(model: nn.Module, step_shape: Sequence[int]) -> Graph:
    """The export graph of a **folded** network for one-step inputs of ``step_shape`` (with batch).

    Args:
        model: a SpikeDHS classifier / stereo net, SNASNet or sequential net with
            no BatchNorm left (:func:`snnc.models.fold.fold_bn`).
        step_shape: one step's input shape including the batch axis, e.g. ``(1, 3, 32, 32)``.

    Returns:
        A checked :class:`Graph` with input ``x`` and output ``y``; ``graph.meta``
        holds ``family``, ``genotype`` (dict), ``input_shape`` and ``input_layout``.

    Raises:
        SnncError: unknown network type, BatchNorm left, or an input shape the network rejects.
    """
    fam = families.family(family_of(model))
    lowering = _LOWERINGS.get(type(model))
    if lowering is None:
        raise SnncError(f"cannot export a {type(model).__name__}: no lowering is registered for that class")
    left = batchnorm_layers(model)
    if left:
        raise SnncError(f"cannot export with BatchNorm left ({left[0]}...): fold it first (snnc.models.fold.fold_bn)")
    step_shape = tuple(int(s) for s in step_shape)
    try:
        cast(SpikingNet, model).check_input(torch.zeros(step_shape, device="meta"))  # family_of: a SpikingNet
    except SnncError as err:
        raise SnncError(f"input shape {step_shape} does not fit the network: {err}") from None
    genotype = getattr(model, "genotype", None)
    meta = {
        "family": fam.name,
        "genotype": genotype.to_dict() if genotype is not None else None,
        "input_shape": list(step_shape),
        "input_layout": fam.input_layout,
    }
    graph = Graph(meta)
    w = _Walker(graph, {id(m): n for n, m in model.named_modules()})
    # the per-sample graph input: a stereo pair's two cameras go into the batch (graph_inputs)
    graph.add("x", "input", shape=step_shape[2:] if fam.stereo_input else step_shape[1:])
    lowering(w, model, step_shape)
    graph.check()
    return graph
