"""Sequential spiking nets -> lava-dl netx HDF5 (``lava.lib.dl.netx.hdf5.Network``), fixed point.

netx 0.6 builds ``input``, ``conv``, ``flatten`` and ``dense`` layers (pooling,
concatenation and any other layer type raise NotImplementedError there), one
after the other: a network exports only when its export graph is a **chain**
``x -> [pool]* conv|affine -> neuron -> ... -> y``. :func:`netx_layers` walks the
chain and refuses anything else, naming the first node that breaks it (a node
read by several nodes or summing several inputs — a DAG — or an operation netx
has no layer for).

Mapping (export graph -> netx layer):

* ``conv`` + neuron -> ``conv`` layer (weight (O, I, kh, kw) as written by slayer:
  netx flips the kernel and Lava's conv flips it back, i.e. PyTorch correlation);
* ``affine`` + neuron -> ``dense`` layer; a ``flatten`` before it -> ``flatten``
  (netx reorders its (x, y, c) neurons to (c, y, x), PyTorch's flatten order);
* ``avgpool`` (kernel = stride = k, no padding) is folded into the next layer:
  ``conv(avgpool_k(x))`` is the conv with kernel ``k K`` (each tap repeated
  k x k times, divided by k^2), stride ``k s``, padding ``k p``; before a dense
  layer each weight is spread over its k x k pooling window likewise (exact).

Neurons -> Loihi CUBA LIF (Lava ``LIF``, ``fixed_pt``): snnc's ``u <- beta u (1-y) + I``
is current decay ``iDecay = 4096`` (12-bit units: the current forgets
everything each step, so it equals this step's input) and voltage decay
``vDecay = round(4096 (1 - beta))``; hard reset to 0 is Loihi's own reset.

Fixed-point scale: each layer's real weights ``w``, bias ``b`` and threshold
``vth`` are multiplied by one scale ``s`` and rounded,
``w_q = round(s w)``, ``bias_q = round(s b)``, ``vThMant = round(s vth)``, with
``s`` as large as the 8-bit signed weights (|w_q| <= 127), Lava's 16-bit synaptic
input (worst-case positive or negative input sum <= 32767), the 13-bit bias
mantissa (|bias_q| <= 4095) and the 17-bit threshold allow, then lowered a
little so that ``s vth`` is a whole number (the threshold is exact). Inputs and outputs of every
layer are binary spikes, so the layers' scales are independent. Quantisation
of weights and thresholds (and the 12-bit decay) is where Lava may differ from
the float network; compare spike counts within a tolerance.

Input: binary spikes. A conv-first network takes frames in netx's (x, y, c) =
(W, H, C) order; a dense-first network takes the flattened (C*H*W,) vector.
Lava adds one time step of latency per layer.

File layout (``/layer/<i>``): ``0`` = ``input`` (``shape`` (C, H, W), no neuron),
then per layer ``type``, ``shape`` (C, H, W) or (N,), ``weight``, ``bias``, conv
``stride`` / ``padding`` / ``dilation`` (y, x order) / ``groups``, and ``neuron``
{``type`` 'CUBA', ``iDecay``, ``vDecay``, ``vThMant``, ``refDelay`` 1,
``gradedSpike`` False}. ``/snnc`` holds the float scales and layer names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from snnc.errors import SnncError
from snnc.export.graph import Graph
from snnc.neurons import leak_factor

__all__ = ["NetxLayer", "netx_layers", "quantize_layer", "write_netx", "LAVA_FORMAT"]

#: ``/snnc/format`` value of files written here.
LAVA_FORMAT = "snnc-netx/1"

_W_MAX, _SUM_MAX, _BIAS_MAX, _VTH_MAX = 127, 32767, 4095, 131071


@dataclass
class NetxLayer:
    """One netx layer (synapse + CUBA neuron) in float units, before quantisation.

    Attributes:
        kind: ``conv`` or ``dense``.
        name: the neuron node's name (the network's neuron layer).
        weight: float weight (conv (O, I, kh, kw); dense (O, I)); pooling folded in.
        bias: float bias per output channel / neuron, or None.
        shape: output shape (C, H, W) or (N,).
        beta: leak factor (``NeuronSpec.decay``; 1 for IF, 0 for binary).
        vth: threshold; flatten_before: a flatten precedes this dense layer.
        stride, padding: conv geometry (y, x).
    """

    kind: str
    name: str
    weight: NDArray[Any]
    bias: NDArray[Any] | None
    shape: tuple[int, ...]
    beta: float
    vth: float
    flatten_before: bool = False
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    quant: dict[str, Any] = field(default_factory=dict)


def _fold_pool_into_conv(
    w: NDArray[Any], stride: tuple[int, int], padding: tuple[int, int], k: int
) -> tuple[NDArray[Any], tuple[int, int], tuple[int, int]]:
    """``conv(avgpool_k(x))`` as one convolution of ``x`` (module docstring)."""
    big = np.repeat(np.repeat(w, k, axis=2), k, axis=3) / float(k * k)
    return big, (stride[0] * k, stride[1] * k), (padding[0] * k, padding[1] * k)


def _fold_pool_into_dense(w: NDArray[Any], pooled: tuple[int, int, int], k: int) -> NDArray[Any]:
    c, h, wd = pooled
    w4 = w.reshape(w.shape[0], c, h, wd)
    big = np.repeat(np.repeat(w4, k, axis=2), k, axis=3) / float(k * k)
    return big.reshape(w.shape[0], -1)


def netx_layers(graph: Graph) -> tuple[tuple[int, ...], list[NetxLayer], bool]:
    """Walk a chain graph into netx layers: ``(input shape, layers, input flattened)``.

    Raises:
        SnncError: the graph is not a chain of netx-expressible layers; the first
            offending node is named.
    """
    graph.check()
    consumers = graph.consumers()
    if len(graph.inputs) != 1:
        raise SnncError(f"Lava export needs one graph input, got {len(graph.inputs)}")
    name = graph.inputs[0]
    in_shape = graph[name].shape
    layers: list[NetxLayer] = []
    pools: list[tuple[int, tuple[int, ...]]] = []  # (k, shape before pooling)
    flat_pending = False
    input_flat = False
    synapse: dict[str, Any] | None = None
    hint = (
        "netx builds plain chains of conv / dense layers; export a sequential net (family 'sequential') "
        "or run this network through ONNX"
    )
    while True:
        users = consumers[name]
        if len(users) != 1:
            if graph[name].op == "output":
                break
            raise SnncError(
                f"cannot export to Lava: node {name!r} feeds {len(users)} nodes "
                f"({', '.join(sorted(set(users))[:3])}...): the network is not sequential; {hint}"
            )
        nxt = users[0]
        node = graph[nxt]
        if len(node.inputs) != 1:
            raise SnncError(
                f"cannot export to Lava: node {nxt!r} sums {len(node.inputs)} inputs "
                f"(a skip connection or merge): the network is not sequential; {hint}"
            )
        op = node.op
        if synapse is not None and op != "neuron":
            raise SnncError(
                f"cannot export to Lava: {synapse['node']!r} is followed by {nxt!r} ({op}), "
                f"not by a spiking neuron; {hint}"
            )
        if op == "avgpool":
            k = node.params["kernel"]
            if k[0] != k[1] or tuple(node.params["stride"]) != tuple(k) or any(node.params["padding"]):
                raise SnncError(f"cannot export to Lava: pooling {nxt!r} must have kernel = stride and no padding")
            src = graph[name].shape
            if src[1] % k[0] or src[2] % k[0]:
                raise SnncError(f"cannot export to Lava: pooling {nxt!r} does not divide its input {src}")
            pools.append((int(k[0]), src))
        elif op == "flatten":
            flat_pending = True
            input_flat = not layers  # nothing before it in Lava: the input itself is flat
        elif op == "conv":
            w = node.params["weight"]
            if w.ndim != 4 or node.params["groups"] != 1 or any(d != 1 for d in node.params["dilation"]):
                raise SnncError(f"cannot export to Lava: {nxt!r} is not a plain 2-D convolution")
            stride, padding = tuple(node.params["stride"]), tuple(node.params["padding"])
            for k, _ in reversed(pools):
                w, stride, padding = _fold_pool_into_conv(w, stride, padding, k)
            pools = []
            synapse = {
                "kind": "conv",
                "node": nxt,
                "weight": w,
                "bias": node.params["bias"],
                "stride": stride,
                "padding": padding,
                "flatten": False,
            }
        elif op == "affine":
            w = node.params["weight"]
            for k, before in reversed(pools):
                w = _fold_pool_into_dense(w, (before[0], before[1] // k, before[2] // k), k)
            pools = []
            synapse = {
                "kind": "dense",
                "node": nxt,
                "weight": w,
                "bias": node.params["bias"],
                "flatten": flat_pending and not input_flat,
            }
            flat_pending = False
        elif op == "neuron":
            spec = node.params["spec"]
            if synapse is None:
                raise SnncError(f"cannot export to Lava: neuron {nxt!r} has no conv/dense layer before it")
            if spec.type not in ("lif", "if", "binary"):
                raise SnncError(
                    f"cannot export to Lava: neuron {nxt!r} is {spec.type}; Loihi's CUBA neuron "
                    f"implements lif / if / binary"
                )
            beta = leak_factor(spec)
            gain = float(node.params.get("gain", 1.0))
            bias = synapse["bias"]
            layers.append(
                NetxLayer(
                    kind=synapse["kind"],
                    name=nxt,
                    weight=np.asarray(synapse["weight"], dtype=np.float64) * gain,
                    bias=None if bias is None else np.asarray(bias, dtype=np.float64) * gain,
                    shape=node.shape,
                    beta=float(beta),
                    vth=float(spec.vth),
                    flatten_before=synapse["flatten"],
                    stride=synapse.get("stride", (1, 1)),
                    padding=synapse.get("padding", (0, 0)),
                )
            )
            synapse = None
        elif op == "output":
            if pools or flat_pending:
                raise SnncError(f"cannot export to Lava: the output {nxt!r} is not a neuron layer's spikes")
        else:
            raise SnncError(f"cannot export to Lava: node {nxt!r} ({op}) has no netx layer; {hint}")
        name = nxt
    if not layers:
        raise SnncError("cannot export to Lava: the network has no conv/dense neuron layer")
    return in_shape, layers, input_flat


def quantize_layer(layer: NetxLayer) -> dict[str, Any]:
    """Fixed-point parameters of one layer (module docstring): scale, int weight / bias, vThMant, decays."""
    w = layer.weight
    per_out = w.reshape(w.shape[0], -1)
    limits = [_VTH_MAX / layer.vth]
    if np.abs(w).max() > 0:
        limits.append(_W_MAX / float(np.abs(w).max()))
    worst = max(float(np.clip(per_out, 0, None).sum(axis=1).max()), float(np.clip(-per_out, 0, None).sum(axis=1).max()))
    if worst > 0:
        limits.append(_SUM_MAX / worst)
    if layer.bias is not None and np.abs(layer.bias).max() > 0:
        limits.append(_BIAS_MAX / float(np.abs(layer.bias).max()))
    scale = min(limits)
    if layer.vth * scale >= 1.0:  # shrink slightly so that the threshold is an exact integer
        scale = float(np.floor(layer.vth * scale + 1e-9)) / layer.vth
    w_q = np.clip(np.rint(w * scale), -_W_MAX, _W_MAX).astype(np.int32)
    bias_q = (
        None if layer.bias is None else np.clip(np.rint(layer.bias * scale), -_BIAS_MAX, _BIAS_MAX).astype(np.int32)
    )
    vth_q = int(max(1, min(_VTH_MAX, round(layer.vth * scale))))
    return {
        "scale": float(scale),
        "weight": w_q,
        "bias": bias_q,
        "vThMant": vth_q,
        "iDecay": 4096,
        "vDecay": round(4096 * (1.0 - layer.beta)),
    }


def _ascii(group: Any, key: str, text: str) -> None:
    group.create_dataset(key, data=np.array([text.encode("ascii")], dtype=f"S{max(1, len(text))}"))


def write_netx(graph: Graph, path: Path) -> dict[str, Any]:
    """Write a chain graph as a netx HDF5 network; returns a summary (layers, scales, input layout).

    Raises:
        SnncError: not a sequential chain (see :func:`netx_layers`) or the file cannot be written.
    """
    from snnc.fileio import write_failure
    from snnc.h5write import H5Output

    in_shape, layers, input_flat = netx_layers(graph)
    summary: list[dict[str, Any]] = []
    try:
        with H5Output(path) as out:  # a full disk never leaves HDF5 half-open (it would crash at exit)
            f = out.file
            root = f.create_group("layer")
            idx = 0
            first = root.create_group(str(idx))
            _ascii(first, "type", "input")
            first.create_dataset("shape", data=np.array([int(np.prod(in_shape))] if input_flat else in_shape))
            for layer in layers:
                q = quantize_layer(layer)
                layer.quant = q
                if layer.flatten_before:
                    idx += 1
                    _ascii(root.create_group(str(idx)), "type", "flatten")
                idx += 1
                grp = root.create_group(str(idx))
                _ascii(grp, "type", layer.kind)
                grp.create_dataset("shape", data=np.array(layer.shape))
                grp.create_dataset("weight", data=q["weight"])
                if q["bias"] is not None:
                    grp.create_dataset("bias", data=q["bias"])
                if layer.kind == "conv":
                    grp.create_dataset("stride", data=np.array(layer.stride))
                    grp.create_dataset("padding", data=np.array(layer.padding))
                    grp.create_dataset("dilation", data=np.array([1, 1]))
                    grp.create_dataset("groups", data=1)
                neuron = grp.create_group("neuron")
                _ascii(neuron, "type", "CUBA")
                for key in ("iDecay", "vDecay", "vThMant"):
                    neuron.create_dataset(key, data=q[key])
                neuron.create_dataset("refDelay", data=1)
                neuron.create_dataset("gradedSpike", data=False)
                summary.append(
                    {
                        "name": layer.name,
                        "kind": layer.kind,
                        "shape": list(layer.shape),
                        "scale": q["scale"],
                        "vThMant": q["vThMant"],
                        "vDecay": q["vDecay"],
                        "weight_bits": 8,
                    }
                )
            meta = f.create_group("snnc")
            _ascii(meta, "format", LAVA_FORMAT)
            meta.create_dataset("summary", data=json.dumps(summary))
            meta.create_dataset("input_layout", data="flat (C*H*W,)" if input_flat else "(W, H, C) frames")
            meta.create_dataset("genotype", data=json.dumps(graph.meta.get("genotype")))
    except OSError as err:
        if write_failure(err, path) is not None:
            raise  # full / read-only disk: atomic_output names the output file
        raise SnncError(f"cannot write the netx file: {err}", path) from None
    return {"input_shape": list(in_shape), "input_flat": input_flat, "layers": summary}
