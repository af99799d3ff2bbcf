"""Per-layer input activity of one step, read from values the step already produced (spikes in the state).

Energy counting (:class:`snnc.energy.ops.OpsRecorder`) needs, for every synaptic
layer of the torch network and every call, the nonzero, element, negative and
non-ternary counts of the layer's input (and, counting events, its fan-out
events). A streaming backend already has the values those inputs are made of
(onnxruntime and OpenVINO running the export Graph, the hybrid partition, and the
torch network itself, whose flat state holds every neuron's spikes): every
spiking neuron's output is its ``<node>.y`` state output, the graph input is
the frame. :class:`ActivityPlan` maps each counted layer to its input **via the
Graph**: a ``conv`` / ``affine`` node records its torch layer (``params["layer"]``,
set by :mod:`snnc.export.lower`), and the node's input is followed back through
the index-only operations that sit between a neuron and a layer in snnc's
graphs (nearest ``resize``, ``flatten``, ``cost_volume``, and the nearest
sub-sampling the lowering fused into a convolution's stride) to a **root**: the
graph input, a neuron node, a delay node, or (for anything else, e.g. a ReLU or
a pooling output) a node the exporter must output as a tap (:attr:`ActivityPlan.taps`).

:meth:`ActivityPlan.count` turns the roots' values into
:class:`~snnc.energy.meter.LayerInput` counts (and neuron outputs): each root is
reduced over its channels once (a per-position count map, float32, on the values'
device); every count is a linear functional of those maps with integer weights
(the index operations only select, repeat and zero-pad), so one float64 matrix
product per root with its layers' stacked weight maps (found once by autograd)
gives them, exactly; the products go into their counts on the device and are read
back once per step. The counts come out exactly as the hooks would count the
layer's real input (checked against :class:`~snnc.energy.ops.OpsRecorder` in
``tests/test_energy_from_spikes.py`` and ``tests/test_energy_step_outputs.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from snnc.energy.meter import LayerInput, LayerSpec, NeuronOutput
from snnc.errors import SnncError
from snnc.export.graph import Graph

Array = np.ndarray[Any, Any]

__all__ = ["View", "LayerPlan", "ActivityPlan", "SPIKING_TYPES", "layer_nodes", "state_countable", "step_values"]

#: Neuron types whose output is 0/1 spikes (their count map is just the channel sum).
SPIKING_TYPES: tuple[str, ...] = ("lif", "if", "alif", "binary")
#: Operations that only move, repeat or zero-pad values: followed from a layer back to its root.
_INDEX_OPS: tuple[str, ...] = ("resize", "flatten", "cost_volume")
#: Conv-like ops whose input the counted torch layer reads through a cost volume.
_VOLUME_LAYER_OPS: tuple[str, ...] = ("cost_conv",)


@dataclass(frozen=True)
class View:
    """How one channel block of a layer's input is made from a root value.

    Attributes:
        root: graph node whose value is read.
        ops: index operations from the root to the layer, in order: ``("nearest", (src, dst))``
            per resampling (spatial sizes), ``("cost_volume", D)``, ``("flatten", None)``.
        channels: channels of this block in the layer's input.
    """

    root: str
    ops: tuple[tuple[str, Any], ...]
    channels: int


@dataclass(frozen=True)
class LayerPlan:
    """One counted torch layer: its module, input blocks (concatenated) and torch shapes."""

    layer: str
    module: nn.Module
    views: tuple[View, ...]
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]


def layer_nodes(graph: Graph) -> dict[str, list[str]]:
    """``{torch layer name: graph nodes computing it}`` by the nodes' ``params["layer"]`` (several nodes for a
    layer split along its input channels): how backends place a counted layer on a partition's pieces."""
    out: dict[str, list[str]] = {}
    for name, node in graph.nodes.items():
        if node.params.get("layer") is not None:
            out.setdefault(str(node.params["layer"]), []).append(name)
    return out


def state_countable(model: nn.Module) -> str | None:
    """Why energy of the torch ``model`` cannot be counted from its own flat state and input (None: it can).

    It can when the network has an export lowering (the Graph the plan follows), no BatchNorm left, no
    carried state and only neuron layers that keep their spikes in the state (``y``, :data:`snnc.neurons.STATE_FIELDS`):
    then a counted layer reads the input, spikes, or index operations of them (SpikeDHS-Stereo).
    """
    from snnc.export.lower import _LOWERINGS
    from snnc.models.base import SpikingNet
    from snnc.models.fold import batchnorm_layers
    from snnc.neurons import STATE_FIELDS

    if not isinstance(model, SpikingNet) or type(model) not in _LOWERINGS:
        return f"no export lowering for a {type(model).__name__}"
    if batchnorm_layers(model):
        return "BatchNorm not folded"
    if model.carry_names():
        return f"carried state {model.carry_names()[0]!r}"
    for name, neuron in model.neurons():
        if "y" not in STATE_FIELDS[neuron.spec.type]:
            return f"neuron layer {name!r} ({neuron.spec.type}) keeps no spikes in the state"
    return None


def _neuron_type(params: Mapping[str, Any]) -> str:
    """A neuron node's type (``lif``...; ``?`` for a node without a float spec, e.g. an integer neuron)."""
    spec = params.get("spec")
    return str(getattr(spec, "type", "?"))


def _coverage(module: nn.Conv2d | nn.Conv3d, size: tuple[int, ...]) -> Tensor:
    """Per input position, how many (output position, kernel tap) pairs of ``module`` read it (zero padding)."""
    total = torch.ones((), dtype=torch.float64)
    for axis, n in enumerate(size):
        k, s = int(module.kernel_size[axis]), int(module.stride[axis])
        p, d = int(module.padding[axis]), int(module.dilation[axis])
        out = (n + 2 * p - d * (k - 1) - 1) // s + 1
        hits = (torch.arange(out).reshape(-1, 1) * s - p + torch.arange(k).reshape(1, -1) * d).reshape(-1)
        cov = torch.bincount(hits[(hits >= 0) & (hits < n)], minlength=n).to(torch.float64)
        total = total.unsqueeze(-1) * cov
    return total


def _nearest_index(n: int, m: int) -> Tensor:
    """torch's own nearest source index for resampling ``n`` -> ``m`` samples along one axis."""
    ramp = torch.arange(n, dtype=torch.float64).reshape(1, 1, n)
    return F.interpolate(ramp, size=m, mode="nearest").reshape(m).round().long()


def _map_shape(value: Tensor) -> tuple[int, ...]:
    """Shape of the count maps of ``value`` (``(N, C, *S)``, or ``(N, F)``: one position): ``(N, 1, *S)``."""
    shape = tuple(value.shape)
    return (shape[0], 1, *(shape[2:] or (1,)))


@dataclass(frozen=True)
class _Program:
    """The per-step work of :meth:`ActivityPlan.count` for one set of options (:meth:`ActivityPlan._program`).

    Attributes:
        roots: ``(root, spiking, weights)``: the stacked weight maps ``(keys, positions)`` on the device (float32
            where every sum they give is an integer below ``2**24``, so exact; else float64).
        index, gather: per (root, statistic, layer key) the count slot it adds to and its element of the roots'
            concatenated products (layers reading a root alike share one weight row).
        slots: number of slots (the last collects products no count reads).
        ops: per layer the slots of its nonzero, negative and non-ternary input counts.
        events: per layer the slot of its fan-out events (counting events).
        totals: per spiking neuron layer the slot of its spike count.
    """

    roots: tuple[tuple[str, bool, Tensor], ...]
    index: Tensor
    gather: Tensor
    slots: int
    ops: dict[str, tuple[int, int, int]]
    events: dict[str, int]
    totals: dict[str, int]


class ActivityPlan:
    """Counted layer -> input blocks of the export ``graph`` of ``model`` (module docstring).

    Args:
        graph: the (whole) export graph of ``model``, as :func:`snnc.export.lower.lower` returns it.
        model: the folded torch network (its counted modules by ``params["layer"]``).
        batch: batch size of the graph input (stereo: both cameras, ``2B``).

    Raises:
        SnncError: a layer's input cannot be followed (an operation this plan does not know).
    """

    def __init__(self, graph: Graph, model: nn.Module, batch: int) -> None:
        self.graph = graph
        modules = dict(model.named_modules())
        order = {name: k for k, name in enumerate(modules)}
        by_layer: dict[str, list[str]] = {}
        for name, node in graph.nodes.items():
            layer = node.params.get("layer")
            if layer is None:
                continue
            if layer not in modules:
                raise SnncError(f"graph node {name!r} names layer {layer!r}, which the network does not have")
            by_layer.setdefault(str(layer), []).append(name)
        self._batch = self._node_batches(batch)
        self.layers: list[LayerPlan] = []
        for layer in sorted(by_layer, key=lambda n: order[n]):
            self.layers.append(self._layer_plan(layer, modules[layer], by_layer[layer], batch))
        self.roots: list[str] = list(dict.fromkeys(v.root for p in self.layers for v in p.views))
        from snnc.neurons import Neuron

        #: neuron nodes that are the network's neuron layers ``{name: neuron type}``, in module order
        self.neurons: dict[str, str] = {
            name: _neuron_type(graph[name].params)
            for name in sorted(
                (n for n, node in graph.nodes.items() if node.op == "neuron" and isinstance(modules.get(n), Neuron)),
                key=lambda n: order[n],
            )
        }
        self._index: dict[tuple[int, int], Tensor] = {}
        self._w: dict[tuple[str, bool], dict[str, Tensor]] = {}
        self._last_maps: dict[str, tuple[Tensor, Tensor | None, Tensor | None]] = {}
        self._last_values: object = None
        self._prog: _Program | None = None
        self._prog_key: object = None
        self._elements = {p.layer: int(np.prod(p.input_shape)) for p in self.layers}
        #: graph nodes whose value is 0/1 spikes (their count map is one channel sum)
        self._spiking_nodes = {
            n for n, node in graph.nodes.items() if node.op == "neuron" and _neuron_type(node.params) in SPIKING_TYPES
        }

    def specs(self) -> list[LayerSpec]:
        """The counted layers as :meth:`snnc.energy.meter.ActivityMeter.bind` takes them."""
        return [LayerSpec(p.layer, p.module, p.input_shape, p.output_shape) for p in self.layers]

    # ------------------------------------------------------------------ plan
    def nodes_of(self) -> dict[str, list[str]]:
        """``{torch layer: graph nodes computing it}`` (:func:`layer_nodes` of the plan's graph)."""
        return layer_nodes(self.graph)

    def needed(self, neurons: bool = False) -> list[str]:
        """Graph nodes whose values :meth:`measure` (and, with ``neurons``, :meth:`measure_neurons`) read."""
        return list(dict.fromkeys([*self.roots, *(self.neurons if neurons else [])]))

    def taps(self, layout: Sequence[tuple[str, str]], neurons: bool = False) -> list[str]:
        """Needed nodes whose value is neither a graph input nor in the state ``layout`` (export them as taps)."""
        have = set(layout)
        out = []
        for root in self.needed(neurons):
            node = self.graph[root]
            if node.op == "input" or (node.op == "delay" and (root, "d0") in have):
                continue
            if node.op == "neuron" and (root, "y") in have:
                continue
            out.append(root)
        return out

    def _trace(self, node_name: str) -> tuple[str, tuple[tuple[str, Any], ...]]:
        """Root and index operations (root first) of the value ``node_name``."""
        ops: list[tuple[str, Any]] = []
        name = node_name
        while self.graph[name].op in _INDEX_OPS:
            node = self.graph[name]
            src = self.graph[node.inputs[0]]
            if node.op == "resize":
                ops.append(("nearest", (src.shape[1:], node.shape[1:])))
            elif node.op == "cost_volume":
                ops.append(("cost_volume", int(node.params["disparities"])))
            else:
                ops.append(("flatten", None))
            name = node.inputs[0]
        return name, tuple(reversed(ops))

    def _layer_plan(self, layer: str, module: nn.Module, nodes: list[str], batch: int) -> LayerPlan:
        views: list[View] = []
        out_shape: tuple[int, ...] = ()
        for name in nodes:
            node = self.graph[name]
            if len(node.inputs) != 1:
                raise SnncError(f"graph node {name!r} of layer {layer!r} has {len(node.inputs)} inputs, expected 1")
            root, ops = self._trace(node.inputs[0])
            src_shape = self.graph[node.inputs[0]].shape
            if node.op == "conv":
                stride = tuple(int(s) for s in getattr(module, "stride", ()))
                sub = tuple(int(s) // t for s, t in zip(node.params["stride"], stride, strict=True))
                if any(k != 1 for k in sub):  # the lowering fused a nearest sub-sampling into the stride
                    dst = tuple(n // k for n, k in zip(src_shape[1:], sub, strict=True))
                    ops = (*ops, ("nearest", (src_shape[1:], dst)))
                out_shape = node.shape
            elif node.op in _VOLUME_LAYER_OPS:
                ops = (*ops, ("cost_volume", int(node.params["disparities"])))
                out_shape = node.shape
            elif node.op == "affine" and isinstance(module, nn.Linear):
                out_shape = (module.out_features,)
            else:
                raise SnncError(f"graph node {name!r} ({node.op}) names layer {layer!r}: cannot count its input")
            channels = self.graph[root].shape[0] * (2 if any(op == "cost_volume" for op, _ in ops) else 1)
            views.append(View(root, ops, channels))
        in_batch, in_spatial = self._view_geometry(views[0], batch)
        c_in = sum(v.channels for v in views)
        in_shape = (in_batch, c_in, *in_spatial) if not isinstance(module, nn.Linear) else (in_batch, c_in)
        if isinstance(module, nn.Linear):
            in_shape = (in_batch, int(module.in_features))
        return LayerPlan(layer, module, tuple(views), in_shape, (in_batch, *out_shape))

    def _node_batches(self, batch: int) -> dict[str, int]:
        """Batch of every node's value: the graph input's, halved by a cost volume (it splits the two views)."""
        out: dict[str, int] = {}
        for name in self.graph.order():
            node = self.graph[name]
            if node.op in ("input", "delay") or not node.inputs:
                out[name] = batch
                continue
            b = out[node.inputs[0]]
            out[name] = b // 2 if node.op in ("cost_volume", *_VOLUME_LAYER_OPS) else b
        return out

    def _view_geometry(self, view: View, batch: int) -> tuple[int, tuple[int, ...]]:
        batch = self._batch[view.root]
        spatial = self.graph[view.root].shape[1:]
        for op, arg in view.ops:
            if op == "nearest":
                spatial = tuple(arg[1])
            elif op == "cost_volume":
                batch //= 2
                spatial = (int(arg), *spatial)
            else:
                spatial = ()
        return batch, tuple(spatial)

    # ------------------------------------------------------------------ counting
    def _spiking(self, name: str) -> bool:
        """Whether graph node ``name`` is a neuron whose output is 0/1 spikes (its count map is its channel sum)."""
        return name in self._spiking_nodes

    def _maps(self, root: str, value: Tensor) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """Per-position counts summed over channels ``(N, 1, *S)``: nonzero, negative, non-ternary (None: none).

        float32 throughout (exact: a position's count is at most the root's channels); only these
        channel-summed maps are converted to float64 later, never the full values. Spikes given as uint8 or
        bool (0/1: OpenVINO's spike state) are summed as uint8 (at most 255 channels: exact), about 8x faster
        than their float32 sum and 20x faster than converting them to float32 first.
        """
        v = value
        if v.dim() == 2:  # (N, F): one position
            v = v.unsqueeze(-1)
        spiking = self._spiking(root)
        if spiking and v.dtype in (torch.uint8, torch.bool) and v.shape[1] <= 255:
            return v.view(torch.uint8).sum(dim=1, keepdim=True, dtype=torch.uint8).to(torch.float32), None, None
        if v.dtype != torch.float32:
            v = v.float()
        if spiking:
            return v.sum(dim=1, keepdim=True), None, None
        if v.device.type == "cpu" and v.shape[1] <= 255:
            # numpy's comparisons run 3-4x faster than PyTorch's CPU kernels here (the frame at 260 x 346: 4.4 ->
            # 1.3 ms); the same IEEE tests (NaN is nonzero and non-ternary, -0 is zero), then uint8 channel sums
            a = v.detach().numpy()
            nonzero_flags = a != 0
            flagged = nonzero_flags, a < 0, (np.abs(a) != 1) & nonzero_flags
            counts = [
                torch.from_numpy(f.view(np.uint8).sum(axis=1, keepdims=True, dtype=np.uint8).astype(np.float32))
                for f in flagged
            ]
            return counts[0], counts[1], counts[2]
        nonzero = v != 0
        flags = (nonzero, v < 0, nonzero & (v.abs() != 1))
        if v.shape[1] <= 255:  # a channel sum of flags fits a byte: summing them as uint8 is many times faster
            sums = [f.view(torch.uint8).sum(dim=1, keepdim=True, dtype=torch.uint8) for f in flags]
        else:
            sums = [f.sum(dim=1, keepdim=True) for f in flags]
        nz, neg, nt = (m.to(torch.float32) for m in sums)
        return nz, neg, nt

    def map_shape(self, root: str) -> tuple[int, ...]:
        """Shape of ``root``'s count maps, as :meth:`_maps` gives them: ``(N, 1, *S)`` (no positions: ``S = (1,)``)."""
        spatial = tuple(int(s) for s in self.graph[root].shape[1:]) or (1,)
        return (self._batch[root], 1, *spatial)

    def _nearest(self, m: Tensor, src: tuple[int, ...], dst: tuple[int, ...]) -> Tensor:
        for axis, (n, k) in enumerate(zip(src, dst, strict=True)):
            if n == k:
                continue
            key = (n, k)
            if key not in self._index:
                self._index[key] = _nearest_index(n, k)
            m = m.index_select(2 + axis, self._index[key])
        return m

    def _view_map(self, m: Tensor, ops: tuple[tuple[str, Any], ...]) -> Tensor:
        from snnc.models.stereo import cost_volume

        for op, arg in ops:
            if op == "nearest":
                m = self._nearest(m, tuple(arg[0]), tuple(arg[1]))
            elif op == "cost_volume":
                half = m.shape[0] // 2
                m = cost_volume(m[:half], m[half:], int(arg)).sum(dim=1, keepdim=True)
        return m

    def _value(self, name: str, values: Mapping[str, Tensor | Array], what: str) -> Tensor:
        if name not in values:
            raise SnncError(f"energy counting needs the {what} of graph node {name!r}, which the step did not give")
        value = values[name]
        return torch.from_numpy(value) if isinstance(value, np.ndarray) else value

    def _weights(self, plan: LayerPlan, shapes: Mapping[str, tuple[int, ...]], events: bool) -> dict[str, Tensor]:
        """Per root of ``plan``: the weight map ``W`` with ``count = sum(W * root map)`` (``events``: fan-out).

        Every count is a linear functional of the roots' per-position maps with integer weights
        (the views only select, repeat, mask and zero-pad), so ``W`` is its gradient: found once by
        autograd through the same view operations, then each step costs one dot product per root.
        """
        key = (plan.layer, events)
        cached = self._w.get(key)
        if cached is not None and all(tuple(cached[r].shape) == (int(np.prod(shapes[r])),) for r in cached):
            return cached
        leaves = {
            r: torch.zeros(shapes[r], dtype=torch.float64, requires_grad=True) for r in {v.root for v in plan.views}
        }
        with torch.enable_grad():
            mapped = [self._view_map(leaves[v.root], v.ops) for v in plan.views]
            if events:
                active = mapped[0]
                for m in mapped[1:]:
                    active = active + m
                total = self._events_of(plan, active)
            else:
                total = sum((m.sum() for m in mapped), torch.zeros((), dtype=torch.float64))
            grads = torch.autograd.grad(total, list(leaves.values()), allow_unused=True)
        out = {
            r: (g if g is not None else torch.zeros_like(leaves[r])).detach().reshape(-1)
            for r, g in zip(leaves, grads, strict=True)
        }
        self._w[key] = out
        return out

    def _program(
        self, shapes: Mapping[str, tuple[int, ...]], events: bool, totals: tuple[str, ...], device: torch.device
    ) -> _Program:
        """The per-step work of :meth:`count` for these root map shapes and options (built once, then cached).

        Per root, the weight maps of the layers reading it (``(layer, ops)``; ``(layer, events)`` with
        ``events``) and, for each spiking neuron in ``totals``, a ones row (its own spike count), stacked as
        one float64 matrix on ``device``; and the slot every element of the products adds to.
        """
        if device.type == "cuda" and device.index is None:  # the tensors' own spelling ("cuda:0")
            device = torch.device("cuda", torch.cuda.current_device())
        key = (events, totals, str(device), tuple((r, tuple(s)) for r, s in shapes.items()))
        if self._prog_key == key and self._prog is not None:
            return self._prog
        rows: dict[str, tuple[list[tuple[str, str]], list[Tensor]]] = {r: ([], []) for r in shapes}
        for plan in self.layers:
            for ev in (False, True) if events else (False,):
                for root, w in self._weights(plan, shapes, ev).items():
                    rows[root][0].append((plan.layer, "events" if ev else "ops"))
                    rows[root][1].append(w)
        for name in totals:
            rows[name][0].append((name, "total"))
            rows[name][1].append(torch.ones(int(np.prod(shapes[name])), dtype=torch.float64))
        slot: dict[tuple[str, str, int], int] = {}
        for plan in self.layers:
            for i in range(3):
                slot[(plan.layer, "ops", i)] = len(slot)
            if events:
                slot[(plan.layer, "events", 0)] = len(slot)
        for name in totals:
            slot[(name, "total", 0)] = len(slot)
        discard = len(slot)  # a non-spiking root's negative / non-ternary maps under event or total weights
        index: list[int] = []
        gather: list[int] = []
        roots: list[tuple[str, bool, Tensor]] = []
        offset = 0
        for root in self.roots:
            keys, ws = rows[root]
            if not keys:
                continue
            spiking = self._spiking(root)
            # layers reading a root the same way share one weight row (e.g. every plain reader: all ones)
            unique, inverse = torch.unique(torch.stack(ws), dim=0, return_inverse=True)
            for i in range(1 if spiking else 3):
                index.extend(slot.get((name, kind, i), discard) for name, kind in keys)
                gather.extend(offset + i * unique.shape[0] + j for j in inverse.tolist())
            offset += (1 if spiking else 3) * unique.shape[0]
            # every term w * map is a nonnegative integer and a map value is at most the root's channels, so
            # while the largest possible row total stays below 2**24 every float32 partial sum is an exact
            # integer, whatever the summation order: half the bytes and no conversion of the map
            channels = int(self.graph[root].shape[0]) if self.graph[root].shape else 1
            small = float(unique.sum(dim=1).max()) * channels < 2.0**24
            roots.append((root, spiking, unique.to(device, torch.float32 if small else torch.float64)))
        self._prog = _Program(
            roots=tuple(roots),
            index=torch.tensor(index, dtype=torch.long, device=device),
            gather=torch.tensor(gather, dtype=torch.long, device=device),
            slots=discard + 1,
            ops={
                p.layer: (slot[(p.layer, "ops", 0)], slot[(p.layer, "ops", 1)], slot[(p.layer, "ops", 2)])
                for p in self.layers
            },
            events={p.layer: slot[(p.layer, "events", 0)] for p in self.layers} if events else {},
            totals={name: slot[(name, "total", 0)] for name in totals},
        )
        self._prog_key = key
        self._w.clear()  # the program holds every weight map now (rebuilt by autograd if the options change)
        return self._prog

    def _totals(self, neurons: bool) -> tuple[str, ...]:
        """Spiking neuron layers whose spike count comes out of their root's matrix product (a ones row)."""
        roots = set(self.roots)
        return tuple(n for n in self.neurons if n in roots and self._spiking(n)) if neurons else ()

    def prepare(self, events: bool = False, neurons: bool = False, device: torch.device | str = "cpu") -> None:
        """Build the weight matrices :meth:`count` needs now (else its first call does): once per plan and options."""
        shapes = {r: self.map_shape(r) for r in self.roots}
        self._program(shapes, events, self._totals(neurons), torch.device(device))

    def count(
        self, values: Mapping[str, Tensor | Array], events: bool = False, neurons: bool = False
    ) -> tuple[dict[str, LayerInput], dict[str, NeuronOutput] | None]:
        """This step's :class:`LayerInput` per counted layer (and, with ``neurons``, the
        :class:`~snnc.energy.meter.NeuronOutput` per neuron layer) from the step's values, with **one**
        transfer to the host.

        Per root one channel sum (its count map, float32, on the values' device) and one float64 matrix
        product with the stacked weight maps of the layers reading it (a ones row gives a spiking neuron's
        own spike count); the products are added into their counts on the device and read back once.

        Args:
            values: every root's value this step (a neuron's spikes, the graph input, a tap), and with
                ``neurons`` every neuron layer's output.
            events: also count fan-out events (``count="events"``).
            neurons: also measure the neuron layers' outputs.
        """
        tensors = {root: self._value(root, values, "value") for root in self.roots}
        shapes = {r: _map_shape(t) for r, t in tensors.items()}
        device = next(iter(tensors.values())).device if tensors else torch.device("cpu")
        prog = self._program(shapes, events, self._totals(neurons), device)
        maps: dict[str, tuple[Tensor, Tensor | None, Tensor | None]] = {}
        parts: list[Tensor] = []
        with torch.no_grad():
            for root, spiking, weights in prog.roots:  # one matrix product per root: its maps x its layers' weights
                ms = maps[root] = self._maps(root, tensors[root])
                if spiking:
                    m = ms[0].view(-1)
                    parts.append(torch.mv(weights, m if m.dtype == weights.dtype else m.to(weights.dtype)))
                else:
                    stats = torch.cat([m.reshape(1, -1) for m in ms if m is not None]).to(weights.dtype)
                    parts.append((stats @ weights.T).reshape(-1))  # (stats, keys) row-major
        acc = torch.zeros(prog.slots, dtype=torch.float64, device=device)
        if parts:  # float32 and float64 products (exact integers) concatenated as float64
            acc.index_add_(0, prog.index, torch.cat(parts).to(torch.float64)[prog.gather])
        extra: list[Tensor] = []
        others: list[tuple[str, int, bool]] = []  # neuron layers without a ones row: (name, elements, spiking)
        if neurons:
            for name in self.neurons:
                if name in prog.totals:
                    continue
                t = self._value(name, values, "output").detach()
                if self._spiking(name):
                    extra.append(t.sum(dim=1).reshape(-1).to(torch.float64).sum().reshape(1))
                else:
                    extra.append(t.sum(dtype=torch.float64).reshape(1))
                    extra.append(torch.count_nonzero(t).to(torch.float64).reshape(1))
                others.append((name, t.numel(), self._spiking(name)))
        flat = (torch.cat([acc, *extra]) if extra else acc).tolist()  # the one host transfer of this step
        out: dict[str, LayerInput] = {}
        for plan in self.layers:
            nz, neg, nt = prog.ops[plan.layer]
            out[plan.layer] = LayerInput(
                nonzero=round(flat[nz]),
                elements=self._elements[plan.layer],
                negative=round(flat[neg]),
                non_ternary=round(flat[nt]),
                events=flat[prog.events[plan.layer]] if events else None,
            )
        self._last_maps, self._last_values = maps, values
        if not neurons:
            return out, None
        outputs: dict[str, NeuronOutput] = {}
        for name, k in prog.totals.items():
            outputs[name] = NeuronOutput(nonzero=round(flat[k]), elements=tensors[name].numel(), total=flat[k])
        k = prog.slots
        for name, elements, spiking in others:
            if spiking:
                outputs[name] = NeuronOutput(nonzero=round(flat[k]), elements=elements, total=flat[k])
                k += 1
            else:
                outputs[name] = NeuronOutput(nonzero=round(flat[k + 1]), elements=elements, total=flat[k])
                k += 2
        return out, {name: outputs[name] for name in self.neurons}

    def measure(self, values: Mapping[str, Tensor | Array], events: bool = False) -> dict[str, LayerInput]:
        """This step's :class:`LayerInput` per counted layer from the roots' values (``values[root]``)
        (:meth:`count` without the neuron outputs).

        Args:
            values: every root's value this step (a neuron's spikes, the graph input, a tap).
            events: also count fan-out events (``count="events"``).
        """
        return self.count(values, events)[0]

    def _events_of(self, plan: LayerPlan, active: Tensor) -> Tensor:
        """Fan-out events of the layer's input (whole batch), as :class:`OpsRecorder` counts them.

        The hooks convolve the active-input map with an all-ones kernel and sum the result; that
        sum is ``sum over input positions of active x coverage``, where ``coverage`` (static, the
        outer product of one vector per axis) counts the output positions whose receptive field
        holds the position.
        """
        module = plan.module
        if isinstance(module, nn.Linear):
            return active.sum() * module.out_features
        if not isinstance(module, (nn.Conv2d, nn.Conv3d)) or module.groups != 1:
            raise SnncError(f"{plan.layer}: fan-out events from spikes need an ungrouped Conv2d/Conv3d layer")
        per = active.sum(dim=0).reshape(active.shape[2:])
        return (per * _coverage(module, tuple(per.shape))).sum() * module.out_channels

    def measure_neurons(self, values: Mapping[str, Tensor | Array]) -> dict[str, NeuronOutput]:
        """This step's :class:`~snnc.energy.meter.NeuronOutput` per neuron layer (``values[node]``: its output).

        A spiking layer that is a root of a :meth:`measure` call on the same ``values`` reuses its count map.
        """
        out: dict[str, NeuronOutput] = {}
        reuse = self._last_maps if values is self._last_values else {}
        for name, kind in self.neurons.items():
            if name not in values:
                raise SnncError(
                    f"energy counting needs the output of neuron node {name!r}, which the step did not give"
                )
            value = values[name]
            t = (torch.from_numpy(value) if isinstance(value, np.ndarray) else value).detach()
            if kind in SPIKING_TYPES:
                cached = reuse.get(name)
                m = cached[0] if cached is not None else t.sum(dim=1)
                total = float(m.sum(dtype=torch.float64))
                nonzero = round(total)
            else:
                total = float(t.sum(dtype=torch.float64))
                nonzero = int(torch.count_nonzero(t))
            out[name] = NeuronOutput(nonzero=nonzero, elements=t.numel(), total=total)
        return out


def step_values(
    inputs: Mapping[str, Tensor | Array],
    layout: Sequence[tuple[str, str]],
    state_in: Sequence[Tensor | Array],
    state_out: Sequence[Tensor | Array],
    taps: Mapping[str, Tensor | Array] | None = None,
) -> dict[str, Tensor | Array]:
    """The values of one streaming step by graph node, from what the step gave.

    Graph inputs, every neuron's spikes (its ``y`` state output), every delay's output
    this step (its ``d0`` state **input**), and the tapped nodes; ``layout`` is the
    state's ``(node, field)`` list (:meth:`snnc.export.runtime.GraphModule.state_layout`:
    ``y`` is a neuron's, ``d<i>`` a delay's).
    """
    out: dict[str, Tensor | Array] = dict(inputs)
    for (node, field), before, after in zip(layout, state_in, state_out, strict=True):
        if field == "y":
            out[node] = after
        elif field == "d0":
            out[node] = before
    out.update(taps or {})
    return out
