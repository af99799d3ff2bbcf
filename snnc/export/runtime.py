"""Run an export graph (:mod:`snnc.export.graph`) as a torch module, one step at a time.

:class:`GraphModule` is what the NIR importer returns and what the ONNX writer
exports for the non-NIR part of a partitioned network. Its API mirrors
:class:`snnc.models.base.SpikingNet` (explicit state, pure steps)::

    gm = GraphModule(graph)
    state = gm.init_state(x_t)               # flat tuple of zeros
    y_t, state = gm.step(x_t, state)         # one input, one output
    outs, state = gm.step_all({"x": x_t}, state)   # several inputs / outputs by name
    y_seq = gm(x_seq)                        # (T, B, ...) loop of step()

State layout: the stateful nodes in graph order; a neuron node contributes its
:mod:`snnc.neurons` state (``<node>.u``, ``<node>.y`` for LIF/IF; ``.a`` too for
ALIF; nothing for ReLU), a delay node of ``steps`` n contributes ``<node>.d0``
(the value it outputs now) .. ``<node>.d<n-1>`` (:meth:`GraphModule.state_names`).
Delay nodes take the batch size of the first graph input.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from snnc.errors import SnncError
from snnc.export.graph import Graph
from snnc.neurons import NeuronSpec, init_state, neuron_step, state_fields
from snnc.neurons.integer import int_init_state, int_neuron_step, int_state_fields

__all__ = ["TARGETS", "GraphModule"]

FlatState = tuple[Tensor, ...]


def _neuron_fields(params: dict[str, Any]) -> tuple[str, ...]:
    """State names of a neuron node: its integer neuron's (``v``, ``y``) or its NeuronSpec's."""
    return int_state_fields(params["int"]) if "int" in params else state_fields(params["spec"])


class GraphModule(nn.Module):
    """Executes a :class:`~snnc.export.graph.Graph` (see module docstring).

    Args:
        graph: a checked export graph; its arrays become buffers of ``dtype``.
        dtype: floating dtype of the weights (``.to(...)`` converts later).
        qdq: integer graphs (``snnc.quant``): mark every integer convolution fed by spikes as an integer
            convolution, spikes through ``fake_quantize`` uint8 and weights through ``fake_quantize`` int8,
            both scale 1 and zero point 0 (:meth:`qdq_convs`). Both are the identity on the values the graph
            holds (0/1 spikes, int8 weights), so every result is unchanged; traced to ONNX they become
            QuantizeLinear/DequantizeLinear pairs, which OpenVINO runs as int8 (VNNI) convolutions.
        target: the runtime the traced graph is spelled for (:data:`TARGETS`; the values are the same):
            ``onnxruntime`` (default) or ``openvino``: every nearest resampling as one flat Gather
            (:meth:`_nearest_plan`), and integer neurons' spikes in uint8 (their ``y`` state too; resampled and
            concatenated as uint8, read by a Q/DQ convolution through Cast -> QuantizeLinear, which OpenVINO
            folds: the u8 convolution reads the spikes as they are).
    """

    def __init__(
        self, graph: Graph, dtype: torch.dtype = torch.float32, *, qdq: bool = False, target: str = "onnxruntime"
    ) -> None:
        super().__init__()
        graph.check()
        if target not in TARGETS:
            raise SnncError(f"GraphModule target must be one of {', '.join(TARGETS)}, got {target!r}")
        self.graph = graph
        self.qdq = bool(qdq)
        self.target = target
        #: integer neurons' spikes (and their resamplings / concatenations) held as uint8 (target openvino)
        self._u8_spikes = target == "openvino"
        self._order = graph.order()
        self._buffers_of: dict[str, dict[str, str]] = {}
        for i, (name, node) in enumerate(graph.nodes.items()):
            names = {}
            for key, value in node.params.items():
                if isinstance(value, np.ndarray):
                    buf = f"n{i}_{key}"
                    self.register_buffer(buf, torch.as_tensor(np.ascontiguousarray(value), dtype=dtype))
                    names[key] = buf
            self._buffers_of[name] = names
        self._stateful = [n for n, node in graph.nodes.items() if node.op in ("neuron", "delay")]
        self._shape_cache: dict[tuple[Any, ...], FlatState] = {}
        self._nearest: dict[str, list[tuple[int, str, Any]]] = {}
        for i, (name, node) in enumerate(graph.nodes.items()):
            if node.op == "resize":
                src = graph[node.inputs[0]].shape[1:]
                self._nearest[name] = self._nearest_plan(i, src, node.shape[1:], _spike_valued(graph, node.inputs[0]))
        self._upsampled = _upsampled_convs(graph)
        self._qdq_convs = _spike_fed_convs(graph) if self.qdq else set()
        #: the values those convolutions read (Q/DQ placed right before them, whatever spells a resize; an
        #: up-sampled conv reads its resize's source)
        self._qdq_inputs = {self._upsampled.get(n, graph.nodes[n].inputs[0]) for n in self._qdq_convs}

    # ------------------------------------------------------------------ names and state
    @property
    def input_names(self) -> list[str]:
        """Graph input names, in order (keys of :meth:`step_all`'s inputs)."""
        return self.graph.inputs

    @property
    def output_names(self) -> list[str]:
        """Graph output names, in order."""
        return self.graph.outputs

    def neuron_nodes(self) -> list[str]:
        """Names of the neuron nodes (the network's neuron layer names where lowered from snnc)."""
        return [n for n, node in self.graph.nodes.items() if node.op == "neuron"]

    def _state_len(self, name: str) -> int:
        node = self.graph.nodes[name]
        return int(node.params["steps"]) if node.op == "delay" else len(_neuron_fields(node.params))

    def state_layout(self) -> list[tuple[str, str]]:
        """``(node, field)`` of every tensor of the flat state, in order: a neuron's ``u``/``y``/``a``, a delay's
        ``d0``.. (``d0`` is what the delay outputs at the step that reads this state)."""
        layout: list[tuple[str, str]] = []
        for name in self._stateful:
            node = self.graph.nodes[name]
            if node.op == "delay":
                layout += [(name, f"d{i}") for i in range(int(node.params["steps"]))]
            else:
                layout += [(name, s) for s in _neuron_fields(node.params)]
        return layout

    def qdq_convs(self) -> list[str]:
        """The integer convolution nodes traced as integer (QDQ) convolutions (empty unless ``qdq``), graph order."""
        return [n for n in self.graph.nodes if n in self._qdq_convs]

    def state_names(self) -> list[str]:
        """Name of every tensor of the flat state, in order: ``<node>.<field>`` of :meth:`state_layout`."""
        return [f"{node}.{field}" for node, field in self.state_layout()]

    def _inputs_dict(self, x: Any) -> dict[str, Tensor]:
        if isinstance(x, Mapping):
            missing = [n for n in self.input_names if n not in x]
            if missing:
                raise SnncError(f"graph inputs missing: {', '.join(missing)} (inputs: {', '.join(self.input_names)})")
            return {n: x[n] for n in self.input_names}
        if len(self.input_names) != 1:
            raise SnncError(
                f"graph has {len(self.input_names)} inputs ({', '.join(self.input_names)}): pass a dict of tensors"
            )
        return {self.input_names[0]: x}

    def init_state(self, x: Any) -> FlatState:
        """Resting state (zeros) for one step's input(s) ``x`` (a tensor or a dict by input name)."""
        inputs = self._inputs_dict(x)
        key = tuple((n, tuple(t.shape), t.dtype, t.device) for n, t in inputs.items())
        if key not in self._shape_cache:
            with torch.no_grad():
                _, state = self._evaluate({n: torch.zeros_like(t) for n, t in inputs.items()}, None)
            self._shape_cache[key] = tuple(torch.zeros_like(s) for s in state)
        return tuple(torch.zeros_like(s) for s in self._shape_cache[key])

    def split_state(self, state: FlatState) -> dict[str, tuple[Tensor, ...]]:
        """``{stateful node: its tensors}``; SnncError on a wrong-sized state."""
        sizes = [self._state_len(n) for n in self._stateful]
        if len(state) != sum(sizes):
            raise SnncError(f"graph state has {len(state)} tensors, expected {sum(sizes)} (use init_state)")
        out, i = {}, 0
        for name, size in zip(self._stateful, sizes, strict=False):
            out[name] = tuple(state[i : i + size])
            i += size
        return out

    # ------------------------------------------------------------------ stepping
    def step_nodes(self, x: Any, state: FlatState | None) -> tuple[dict[str, Tensor], FlatState]:
        """One step returning the value of **every** node (``state=None``: resting state)."""
        return self._evaluate(self._inputs_dict(x), state)

    def step_all(self, x: Any, state: FlatState) -> tuple[dict[str, Tensor], FlatState]:
        """One step: ``({output name: tensor}, new state)``."""
        values, new_state = self._evaluate(self._inputs_dict(x), state)
        return {n: values[n] for n in self.output_names}, new_state

    def step(self, x: Any, state: FlatState) -> tuple[Tensor, FlatState]:
        """One step of a single-output graph: ``(output, new state)``."""
        if len(self.output_names) != 1:
            raise SnncError(f"graph has {len(self.output_names)} outputs: use step_all")
        outs, new_state = self.step_all(x, state)
        return outs[self.output_names[0]], new_state

    def run(self, x_seq: Tensor, state: FlatState | None = None) -> tuple[Tensor, FlatState]:
        """Steps over the leading time axis of a single-input, single-output graph."""
        if state is None:
            state = self.init_state(x_seq[0])
        ys = []
        for t in range(x_seq.shape[0]):
            y, state = self.step(x_seq[t], state)
            ys.append(y)
        return torch.stack(ys), state

    def forward(self, x_seq: Tensor, state: FlatState | None = None) -> Tensor:
        """Fixed window: ``(T, B, ...) -> (T, B, ...)``, a loop of :meth:`step`."""
        return self.run(x_seq, state)[0]

    # ------------------------------------------------------------------ evaluation
    def _param(self, name: str, key: str) -> Tensor:
        value: Tensor = getattr(self, self._buffers_of[name][key])
        return value

    def _quant(self, name: str) -> Callable[[Tensor], Tensor] | None:
        """The weight hook of a conv node: int8 Q/DQ (the identity on its int8 weights) for a :meth:`qdq_convs`
        node, applied to each weight arrangement right before its convolution or product (OpenVINO folds a
        Q/DQ followed by a transpose to float), else None."""
        return _int8_weights if name in self._qdq_convs else None

    def _evaluate(self, inputs: dict[str, Tensor], state: FlatState | None) -> tuple[dict[str, Tensor], FlatState]:
        graph = self.graph
        states = self.split_state(tuple(state)) if state is not None else None
        first = next(iter(inputs.values()))
        values: dict[str, Tensor] = {}
        spikes8: dict[str, Tensor] = {}  # uint8 spikes by node (target openvino); values holds their float copy
        new_states: dict[str, tuple[Tensor, ...]] = {}
        for name in self._order:
            node = graph.nodes[name]
            if node.op == "input":
                values[name] = inputs[name]
                continue
            if node.op == "delay":
                buf = (
                    states[name]
                    if states is not None
                    else tuple(first.new_zeros((first.shape[0], *node.shape)) for _ in range(int(node.params["steps"])))
                )
                new_states[name] = buf
                values[name] = buf[0]
                continue
            if node.op == "concat":
                if node.inputs and all(s in spikes8 for s in node.inputs):
                    spikes8[name] = torch.cat([spikes8[s] for s in node.inputs], dim=1)
                    values[name] = spikes8[name].to(values[node.inputs[0]].dtype)
                else:
                    values[name] = torch.cat([values[s] for s in node.inputs], dim=1)
                if name in self._qdq_inputs:
                    values[name] = _fake_quant(values[name], 0, 255)
                continue
            x = values[node.inputs[0]]
            for src in node.inputs[1:]:
                x = x + values[src]
            if node.op == "neuron":
                spec: NeuronSpec = node.params["spec"]
                gain = float(node.params.get("gain", 1.0))
                current = x if gain == 1.0 else x * gain
                if "int" in node.params:  # integer neuron (snnc.neurons.integer); gain is its float relaxation's
                    st = states[name] if states is not None else int_init_state(node.params["int"], x)
                    spike_dtype = torch.uint8 if self._u8_spikes else None
                    y, new_states[name] = int_neuron_step(node.params["int"], x, st, spike_dtype=spike_dtype)
                    if y.dtype == torch.uint8:
                        spikes8[name], y = y, y.to(x.dtype)
                else:
                    st = states[name] if states is not None else init_state(spec, current)
                    y, new_states[name] = neuron_step(spec, current, st)
                values[name] = y
            elif node.op == "resize" and node.inputs[0] in spikes8:  # uint8 spikes resampled as uint8
                spikes8[name] = self._resize(name, spikes8[node.inputs[0]])
                values[name] = spikes8[name].to(x.dtype)
            elif name in self._upsampled:  # its input is a nearest x2 up-sampling: read the source itself
                out = self._upsampled_conv(name, values[self._upsampled[name]])
                values[name] = torch.round(out) if node.params.get("integer") else out
            else:
                out = self._apply_op(name, node.op, node.params, x)
                # integer graph (snnc.quant): synaptic sums rounded, exact for any conv algorithm
                values[name] = torch.round(out) if node.params.get("integer") else out
            if name in self._qdq_inputs:  # spikes read by integer convolutions: uint8 Q/DQ (identity on 0/1)
                values[name] = _fake_quant(values[name], 0, 255)
        for name in self._stateful:  # delays take this step's input sums last
            node = graph.nodes[name]
            if node.op == "delay":
                total = values[node.inputs[0]]
                for src in node.inputs[1:]:
                    total = total + values[src]
                new_states[name] = (*tuple(new_states[name][1:]), total)
        flat: list[Tensor] = []
        for name in self._stateful:
            flat.extend(new_states[name])
        return values, tuple(flat)

    def _nearest_plan(
        self, i: int, src: tuple[int, ...], dst: tuple[int, ...], spikes: bool
    ) -> list[tuple[int, str, Any]]:
        """The steps of nearest resampling from ``src`` to ``dst``: ``(axis, kind, arg)`` in the order they run.

        The source indices are torch's own (``F.interpolate`` of an index ramp), so the result is exactly
        ``F.interpolate(x, size=dst, mode="nearest")``. Each resampled axis is one step, spelled as cheaply
        as onnxruntime and OpenVINO run it (measured by ``benchmarks/bench_resize.py``): ``every k`` (a
        strided Slice) or ``index`` (a Gather of whole rows; any other index pattern, e.g. x2 up-sampling
        or an odd 2m-1 size). The innermost axis of a spike-valued input (0/1, :func:`_spike_valued`) is
        ``select``: a MatMul by a 0/1 matrix with one 1 per column, exact on 0/1 values (each output is
        one product by 1 plus products by 0), where a Gather or Expand of single elements is 5-10x slower
        in onnxruntime. Shrinking axes run first, then the MatMul, then growing axes from the innermost out.

        Target ``openvino``: one ``flat`` step, a Gather of single elements over the spatial axes flattened
        (the flat indices of the same per-axis indices), which OpenVINO's CPU plugin runs 2-4x faster than
        the per-axis steps (its Gather of rows is a reference kernel; ``benchmarks/bench_resize.py``).
        """
        if self.target == "openvino" and tuple(src) != tuple(dst):
            grids = torch.meshgrid(*[_nearest_index(n, m) for n, m in zip(src, dst, strict=True)], indexing="ij")
            flat = torch.zeros_like(grids[0])
            for g, n in zip(grids, src, strict=True):
                flat = flat * n + g
            buf = f"n{i}_flat"
            self.register_buffer(buf, flat.reshape(-1), persistent=False)
            return [(-1, "flat", (buf, tuple(int(m) for m in dst)))]
        steps: list[tuple[int, str, Any]] = []
        last = len(src) - 1
        for axis, (n, m) in enumerate(zip(src, dst, strict=True)):
            idx = _nearest_index(n, m)
            if n == m and torch.equal(idx, torch.arange(n)):
                continue
            if axis == last and spikes and n * m <= _SELECT_MAX:
                buf = f"n{i}_select{axis}"
                sel = torch.zeros(n, m)
                sel[idx, torch.arange(m)] = 1.0
                self.register_buffer(buf, sel, persistent=False)
                steps.append((axis, "select", buf))
            elif n % m == 0 and torch.equal(idx, torch.arange(0, n, n // m)):
                steps.append((axis, "every", n // m))
            else:
                buf = f"n{i}_nearest{axis}"
                self.register_buffer(buf, idx, persistent=False)
                steps.append((axis, "index", buf))
        # shrinking axes first, the MatMul on the fewest rows, then growing axes, each group innermost first
        return sorted(steps, key=lambda s: (1 if s[1] == "select" else 2 * (dst[s[0]] > src[s[0]]), -s[0]))

    def _resize(self, name: str, x: Tensor) -> Tensor:
        """Nearest resampling of node ``name`` by its steps (:meth:`_nearest_plan`)."""
        for axis, kind, arg in self._nearest[name]:
            dim = 2 + axis
            if kind == "flat":
                buf, dst = arg
                return x.flatten(2).index_select(2, getattr(self, buf)).reshape(*x.shape[:2], *dst)
            if kind == "every":
                x = x[(slice(None),) * dim + (slice(None, None, int(arg)),)]
            elif kind == "select":
                x = torch.matmul(x, getattr(self, arg))
            else:
                x = x.index_select(dim, getattr(self, arg))
        return x

    def _upsampled_conv(self, name: str, source: Tensor) -> Tensor:
        """Conv node ``name`` of :func:`_upsampled_convs` on its resize's ``source``: :func:`upsampled_conv3d`."""
        from snnc.models.stereo import upsampled_conv3d

        b = self._param(name, "bias") if "bias" in self._buffers_of[name] else None
        w = self._param(name, "weight")
        return upsampled_conv3d(source, w, b, self.graph.nodes[name].shape[1:], self._quant(name))

    def _apply_op(self, name: str, op: str, p: dict[str, Any], x: Tensor) -> Tensor:
        if op in ("output", "sum"):
            return x
        if op == "conv":
            w = self._param(name, "weight")
            b = self._param(name, "bias") if "bias" in self._buffers_of[name] else None
            quant = self._quant(name)
            if _narrow_3d(w, p):  # e.g. the stereo cost layer 24 -> 1: a GEMM over the taps, then shifted sums
                from snnc.models.stereo import narrow_conv3d

                return narrow_conv3d(x, w, b, quant)
            conv = F.conv2d if w.dim() == 4 else F.conv3d
            w = w if quant is None else quant(w)
            return conv(x, w, b, tuple(p["stride"]), tuple(p["padding"]), tuple(p["dilation"]), int(p["groups"]))
        if op == "affine":
            b = self._param(name, "bias") if "bias" in self._buffers_of[name] else None
            return F.linear(x, self._param(name, "weight"), b)
        if op == "avgpool":
            return F.avg_pool2d(x, tuple(p["kernel"]), tuple(p["stride"]), tuple(p["padding"]))
        if op == "sumpool":
            k = tuple(p["kernel"])
            # average times the window: torch.onnx drops divisor_override (ONNX AveragePool has none)
            return F.avg_pool2d(x, k, tuple(p["stride"]), tuple(p["padding"])) * float(k[0] * k[1])
        if op == "flatten":
            end = int(p["end_dim"])
            return x.flatten(int(p["start_dim"]) + 1, end + 1 if end >= 0 else -1)
        if op == "scale":
            return x * self._param(name, "scale")
        if op == "resize":
            return self._resize(name, x)
        if op == "interp":
            return F.interpolate(x, size=tuple(p["size"]), mode=str(p["mode"]), align_corners=False)
        if op == "cost_volume":
            from snnc.models.stereo import cost_volume

            half = x.shape[0] // 2
            return cost_volume(x[:half], x[half:], int(p["disparities"]))
        if op == "cost_conv":
            from snnc.models.stereo import cost_conv

            half = x.shape[0] // 2
            b = self._param(name, "bias") if "bias" in self._buffers_of[name] else None
            w = self._param(name, "weight")
            return cost_conv(x[:half], x[half:], w, b, int(p["disparities"]), self._quant(name))
        if op == "select":
            if x.shape[1] == 1:  # one channel (the stereo cost): a view, traced as Squeeze instead of a Gather copy
                return x.squeeze(1)
            return x[:, int(p["index"])]
        raise SnncError(f"graph node {name!r}: cannot execute operation {op!r}")


#: The runtimes :class:`GraphModule` spells a traced graph for (``target``): the same values, different ops.
TARGETS: tuple[str, ...] = ("onnxruntime", "openvino")

#: Largest weight magnitude a Q/DQ int8 weight holds exactly (snnc's int8 weights are symmetric, in +-127).
W_INT8_MAX = 127


def _fake_quant(x: Tensor, lo: int, hi: int) -> Tensor:
    """``fake_quantize_per_tensor_affine`` at scale 1, zero point 0 over ``[lo, hi]``: the identity on integers
    in range; traced to ONNX as QuantizeLinear -> DequantizeLinear (uint8 for ``lo = 0``, else int8)."""
    return torch.fake_quantize_per_tensor_affine(x, 1.0, 0, lo, hi)


def _int8_weights(w: Tensor) -> Tensor:
    """int8 Q/DQ of a weight arrangement (:func:`_fake_quant` over ``[-128, 127]``) whose values are int8; one
    that leaves that range (the cost_conv rewrite's kernels summed over taps) stays float. The weights are
    constants, so the test reads their values, also while tracing (the branch is fixed in the file)."""
    if bool(torch.all(w.abs() <= W_INT8_MAX)):
        return _fake_quant(w, -128, 127)
    return w


def _spike_fed_convs(graph: Graph) -> set[str]:
    """The integer convolutions (``conv`` / ``cost_conv`` with ``integer``: int8 weights, rounded output) whose
    one input is spikes: the 0/1 outputs of integer neurons, their nearest resamplings and concatenations.
    Other integer inputs (the first layer's signed ``x_int``, sum pools) keep float convolutions."""
    spikes: set[str] = set()
    convs: set[str] = set()
    for name in graph.order():
        node = graph.nodes[name]
        fed = bool(node.inputs) and all(s in spikes for s in node.inputs)
        if (node.op == "neuron" and "int" in node.params) or (node.op in ("resize", "concat") and fed):
            spikes.add(name)
        elif node.op in ("conv", "cost_conv") and node.params.get("integer") and fed and len(node.inputs) == 1:
            convs.add(name)
    return convs


#: Largest ``src x dst`` size of a ``select`` step's 0/1 matrix (its MatMul costs that per row).
_SELECT_MAX = 1 << 16


def _nearest_index(n: int, m: int) -> Tensor:
    """The source index of each of ``m`` outputs of torch's nearest resampling of ``n`` elements (int64)."""
    ramp = torch.arange(n, dtype=torch.float64).reshape(1, 1, n)
    return F.interpolate(ramp, size=m, mode="nearest").reshape(m).round().long()


def _spike_valued(graph: Graph, name: str) -> bool:
    """Whether node ``name`` holds only 0/1 values: spiking neurons' outputs and nearest resamplings of them."""
    node = graph.nodes[name]
    while node.op == "resize":
        node = graph.nodes[node.inputs[0]]
    if node.op != "neuron":
        return False
    spec = node.params.get("spec")
    return "int" in node.params or getattr(spec, "type", "relu") != "relu"


def _upsampled_convs(graph: Graph) -> dict[str, str]:
    """``{conv node: the source its input resize up-samples}`` for narrow 3x3x3 convolutions (:func:`_narrow_3d`)
    with one output channel whose one input is torch's nearest x2 up-sampling on every spatial axis (size ``2m``
    or ``2m - 1``).

    They run as :func:`snnc.models.stereo.upsampled_conv3d` on the resize's source (the stereo cost layer
    after the last up layer, as the torch network runs it): 1/8 of the positions, and the up-sampled map
    is never built (unused in a traced graph, so not in the ONNX file). In an integer graph the sums it
    regroups are integers below ``2**24`` (the layer's bound), so the result is the literal convolution's
    exactly (then rounded like every integer node)."""
    out: dict[str, str] = {}
    for name, node in graph.nodes.items():
        if node.op != "conv" or len(node.inputs) != 1:
            continue
        up = graph.nodes[node.inputs[0]]
        w = node.params.get("weight")
        if up.op != "resize" or w is None or w.ndim != 5 or w.shape[-1] != 3:
            continue
        src, dst = graph[up.inputs[0]].shape[1:], up.shape[1:]
        twice = all(
            n in (2 * m - 1, 2 * m) and torch.equal(_nearest_index(m, n), torch.arange(m).repeat_interleave(2)[:n])
            for m, n in zip(src, dst, strict=True)
        )
        # one output channel only (the cost layer, :func:`_narrow_3d`): each fold traces to ~570 ONNX nodes
        # (8 output parities summed one kernel axis at a time), too many for every layer of a small test net
        if twice and _narrow_3d(torch.as_tensor(w), node.params):
            out[name] = up.inputs[0]
    return out


def _narrow_3d(w: Tensor, p: dict[str, Any]) -> bool:
    """A 3-D 'same' stride-1 convolution with one output channel (run as :func:`narrow_conv3d`).

    The stereo cost layer (24 -> 1) is the only such layer of the shipped nets. Each narrow form traces to
    ``3k`` slices and sums (a 1-output direct convolution is slow, a tap GEMM is not, at any width); allowing
    2-4 outputs turned every layer of small test nets (multiplier 2) into one (then ``k**3`` slices each:
    15k ONNX nodes and 16 s per stereo export against 2.8k nodes and 3 s).
    """
    k = w.shape[-1]
    return bool(
        w.dim() == 5
        and w.shape[0] == 1
        and k % 2 == 1
        and tuple(w.shape[2:]) == (k, k, k)
        and tuple(p["stride"]) == (1, 1, 1)
        and tuple(p["dilation"]) == (1, 1, 1)
        and tuple(p["padding"]) == (k // 2,) * 3
        and int(p["groups"]) == 1
    )
