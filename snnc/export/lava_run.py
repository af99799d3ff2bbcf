"""Run a netx HDF5 network: in Lava, in an exact fixed-point model, and its float counterpart.

Timing (Lava's pipeline): every layer's synapse delivers at step ``k`` what it
received at step ``k - 1`` (zeros at step 0), so layer ``i`` answers input step
``t`` at step ``t + i + 1``, and during the first ``i + 1`` steps its neurons
integrate only their bias. All three runners below use that timing and run
``T + layers`` steps for ``T`` input steps (zeros after the input):

* :func:`simulate_netx` — Lava itself: ``RingBuffer`` source ->
  ``lava.lib.dl.netx.hdf5.Network`` -> a ``RingBuffer`` sink per layer,
  ``Loihi2SimCfg(select_tag='fixed_pt')``;
* :func:`simulate_fixed_point` — the same integer arithmetic (Loihi CUBA LIF:
  ``v <- sign(v (4096 - vDecay)) * (|v (4096 - vDecay)| >> 12) + 64 (a + bias)``,
  spike when ``v > 64 vThMant``, reset to 0) read from the file, in torch; it
  matches Lava bit for bit and needs no Lava process;
* :func:`lava_timing_graph` — the float export graph with one step of delay in
  front of every synapse: what the float network computes with Lava's timing,
  the reference for the quantisation error.

Spikes are in PyTorch layout: ``(steps, C, H, W)`` or ``(steps, N)``, batch-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray

from snnc.errors import SnncError
from snnc.export.graph import Graph
from snnc.export.lava_env import import_lava

__all__ = ["simulate_netx", "simulate_fixed_point", "lava_timing_graph", "check_binary"]


def check_binary(spikes: NDArray[Any]) -> NDArray[Any]:
    """The input as an array; SnncError unless it holds only 0 and 1."""
    spikes = np.asarray(spikes)
    if not np.isin(spikes, (0, 1)).all():
        raise SnncError("Lava input must be binary spikes (0/1)")
    return spikes


def simulate_netx(path: str | Path, spikes: NDArray[Any]) -> list[NDArray[Any]]:
    """Run the netx network in ``path`` in Lava on ``spikes``; every layer's spikes, ``T + layers`` steps.

    Args:
        path: a netx HDF5 file (e.g. from :func:`snnc.export.lava_writer.write_netx`).
        spikes: binary input ``(T, C, H, W)`` (conv-first network) or ``(T, N)`` (flat input).

    Raises:
        SnncError: the spikes are not binary or do not fit the network's input.
    """
    import_lava()
    from lava.lib.dl.netx import hdf5
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    spikes = check_binary(spikes)
    net = hdf5.Network(net_config=str(path))
    steps = spikes.shape[0]
    total = steps + len(net.layers)
    frames = spikes.reshape(steps, -1) if spikes.ndim == 2 else spikes.transpose(0, 3, 2, 1)  # (T, W, H, C)
    want = tuple(net.inp.shape)
    if tuple(frames.shape[1:]) != want:
        raise SnncError(
            f"input of shape {tuple(spikes.shape[1:])} does not fit the network's input {want} (netx order)", path
        )
    data = np.zeros((*want, total), dtype=np.int32)
    data[..., :steps] = np.moveaxis(frames, 0, -1)
    source = Source(data=data)
    source.s_out.connect(net.inp)
    sinks = []
    for layer in net.layers:
        sink = Sink(shape=layer.out.shape, buffer=total)
        layer.out.connect(sink.a_in)
        sinks.append(sink)
    try:
        net.run(condition=RunSteps(num_steps=total), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        outs = [np.asarray(s.data.get()) for s in sinks]
    finally:
        net.stop()
        net.net_config.f.close()  # netx keeps the HDF5 file open
    return [
        out.transpose(3, 2, 1, 0).astype(np.float32) if out.ndim == 4 else np.moveaxis(out, -1, 0).astype(np.float32)
        for out in outs
    ]


def _text(ds: Any) -> str:  # an h5py dataset
    value = ds[()]
    if isinstance(value, np.ndarray) and value.shape:
        value = value[0]
    return value.decode("ascii") if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class _FixedPointLayer:
    """One conv or dense layer of a netx file, as :func:`simulate_fixed_point` runs it."""

    kind: str
    weight: torch.Tensor
    bias: torch.Tensor | None
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    v_decay: int
    vth: int


def simulate_fixed_point(path: str | Path, spikes: NDArray[Any]) -> list[NDArray[Any]]:
    """Bit-exact model of Lava's fixed-point run of a netx file written by snnc (module docstring).

    Supports the layer types snnc writes (input, conv, flatten, dense with CUBA
    neurons, current decay 4096); same input and output conventions as
    :func:`simulate_netx`.
    """
    import h5py

    spikes = check_binary(spikes)
    steps = spikes.shape[0]
    with h5py.File(path, "r") as f:
        group = f["layer"]
        layers = [group[str(i)] for i in range(len(group))]
        specs = []
        for layer in layers[1:]:
            kind = _text(layer["type"])
            if kind == "flatten":
                continue
            neuron = layer["neuron"]
            if int(neuron["iDecay"][()]) != 4096:
                raise SnncError("simulate_fixed_point models current decay 4096 only", path)
            conv = kind == "conv"
            specs.append(
                _FixedPointLayer(
                    kind=kind,
                    weight=torch.from_numpy(layer["weight"][()].astype(np.float64)),
                    bias=torch.from_numpy(layer["bias"][()].astype(np.float64)) if "bias" in layer else None,
                    stride=tuple(int(s) for s in np.atleast_1d(layer["stride"][()])) if conv else (),
                    padding=tuple(int(s) for s in np.atleast_1d(layer["padding"][()])) if conv else (),
                    v_decay=int(neuron["vDecay"][()]),
                    vth=int(neuron["vThMant"][()]),
                )
            )
    total = steps + len(specs)
    s = torch.zeros((total, *spikes.shape[1:]), dtype=torch.float64)
    s[:steps] = torch.from_numpy(spikes.astype(np.float64))
    outs = []
    for spec in specs:
        s = torch.cat([torch.zeros_like(s[:1]), s[:-1]])  # the synapse's one-step latency
        bias: torch.Tensor | float
        if spec.kind == "conv":
            a = F.conv2d(s, spec.weight, None, spec.stride, spec.padding)
            bias = 0.0 if spec.bias is None else spec.bias.view(-1, 1, 1)
        else:
            a = F.linear(s.reshape(total, -1), spec.weight)
            bias = 0.0 if spec.bias is None else spec.bias
        v = torch.zeros_like(a[0])
        res = []
        keep = 4096 - spec.v_decay
        for t in range(total):
            decayed = v * keep
            decayed = torch.sign(decayed) * torch.div(decayed.abs(), 4096, rounding_mode="floor")
            v = torch.clamp(decayed + 64 * (a[t] + bias), -(2**23) + 1, 2**23 - 1)
            spike = (v > 64 * spec.vth).to(torch.float64)
            v = v * (1 - spike)
            res.append(spike)
        s = torch.stack(res)
        outs.append(s.numpy().astype(np.float32))
    return outs


def lava_timing_graph(graph: Graph) -> Graph:
    """Copy of a chain export graph with a one-step ``delay`` before every synapse (Lava's latency)."""
    out = Graph(dict(graph.meta))
    for name in graph.order():
        node = graph[name]
        inputs = list(node.inputs)
        if node.op in ("conv", "affine"):
            src_shape = graph[inputs[0]].shape
            inputs = [out.add(f"{name}.latency", "delay", inputs, shape=src_shape, steps=1)]
        out.add(name, node.op, inputs, shape=node.shape, **node.params)
    out.check()
    return out
