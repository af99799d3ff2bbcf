"""Energy of a NIR file on real data (``snnc energy x.nir --data ...``), from the one counting pass.

A NIR file runs in snnc's export-graph runtime (:class:`~snnc.export.runtime.GraphModule`),
whose convolutions are functional calls that :class:`~snnc.energy.ops.OpsRecorder` cannot
hook. :class:`GraphLayers` gives the graph's synaptic layers a module form: one
``nn.Conv2d`` / ``nn.Conv3d`` / ``nn.Linear`` per ``conv`` / ``affine`` node (the node's own
weights) and one :class:`~snnc.neurons.Neuron` per neuron node, named by the node
(``stem.conv`` is the module ``stem.conv``). :meth:`GraphLayers.replay` calls each layer,
in graph order, on the very input the runtime gave that node in the step just run (the
sum of its input nodes' values), and each neuron module on its input current with its own
state; every neuron's replayed spikes must equal the runtime's, so the counted pass is the
run. The :class:`~snnc.energy.meter.EnergyMeter` hooks these modules exactly as it hooks a
torch network, so ACs/MACs, rates and energy follow the same rules as for checkpoints.

* :func:`measure_nir_images`: classification images, each presented for ``T`` steps from
  rest (direct coding), counts per image (as :func:`snnc.runtime.measure.measure_images`);
* :func:`measure_nir_stereo`: an MVSEC recording streamed frame by frame, one step each,
  state carried (as :func:`snnc.runtime.measure.measure_stereo`); the graph input is the
  frame's SBT stacks in the file's input layout (``snnc.input_layout``: both cameras in the
  batch for a stereo front written by ``snnc export --partition``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from snnc.energy.costs import DEFAULT_COSTS, EnergyCosts
from snnc.energy.meter import EnergyMeter
from snnc.energy.report import EnergyReport
from snnc.errors import SnncError
from snnc.export.graph import Graph
from snnc.neurons import Neuron

if TYPE_CHECKING:  # pragma: no cover
    from snnc.data.mvsec import MVSECRecording
    from snnc.data.windows import WindowStats
    from snnc.export.nir_model import NirModel

__all__ = ["GraphLayers", "NirNetworkInfo", "nir_time_steps", "measure_nir_images", "measure_nir_stereo"]


def _attach(root: nn.Module, name: str, module: nn.Module) -> None:
    """Put ``module`` at dotted path ``name`` under ``root`` (containers made as needed)."""
    parts = name.split(".")
    parent = root
    for part in parts[:-1]:
        child = parent._modules.get(part)
        if child is None:
            child = nn.Module()
            parent.add_module(part, child)
        parent = child
    made = parent._modules.get(parts[-1])
    if made is not None:  # a container made for a longer name: keep its children
        for key, sub in made._modules.items():
            module.add_module(key, sub)
    parent.add_module(parts[-1], module)


def _layer(node: Any) -> nn.Module:
    """The ``nn`` module computing a ``conv`` / ``affine`` node with its own weights."""
    p = node.params
    w = torch.as_tensor(p["weight"], dtype=torch.float32)
    bias = p.get("bias")
    module: nn.Module
    if node.op == "affine":
        module = nn.Linear(w.shape[1], w.shape[0], bias=bias is not None)
    else:
        cls: Any = nn.Conv2d if w.dim() == 4 else nn.Conv3d
        module = cls(
            w.shape[1] * int(p["groups"]),
            w.shape[0],
            tuple(w.shape[2:]),
            stride=tuple(p["stride"]),
            padding=tuple(p["padding"]),
            dilation=tuple(p["dilation"]),
            groups=int(p["groups"]),
            bias=bias is not None,
        )
    with torch.no_grad():
        module.get_parameter("weight").copy_(w)
        if bias is not None:
            module.get_parameter("bias").copy_(torch.as_tensor(bias, dtype=torch.float32))
    return module.requires_grad_(False)


class GraphLayers(nn.Module):
    """The synaptic and neuron layers of an export graph as modules, for counting (module docstring).

    Args:
        graph: the graph the runtime runs.
    """

    def __init__(self, graph: Graph) -> None:
        super().__init__()
        self.graph = graph
        self._names: list[str] = []
        for name in graph.order():
            node = graph[name]
            if node.op in ("conv", "affine"):
                _attach(self, name, _layer(node))
            elif node.op == "neuron":
                _attach(self, name, Neuron(node.params["spec"]))
            else:
                continue
            self._names.append(name)
        self._modules_by_node = dict(self.named_modules())
        self._states: dict[str, Any] = {}

    def reset(self) -> None:
        """Neuron states back to rest (before a new sequence)."""
        self._states = {}

    def replay(self, values: dict[str, Tensor]) -> None:
        """Run every layer on the inputs the runtime gave it in the step whose node ``values`` these are.

        Raises:
            SnncError: a replayed neuron spiked differently from the runtime (an internal error).
        """
        graph = self.graph
        with torch.no_grad():
            for name in self._names:
                node = graph[name]
                x = values[node.inputs[0]]
                for src in node.inputs[1:]:
                    x = x + values[src]
                module = self._modules_by_node[name]
                if node.op != "neuron":
                    module(x)
                    continue
                gain = float(node.params.get("gain", 1.0))
                y, self._states[name] = module(x if gain == 1.0 else x * gain, self._states.get(name))
                if not torch.equal(y, values[name]):
                    raise SnncError(f"internal: counting replay of neuron {name!r} differs from the NIR run")


class NirNetworkInfo:
    """What ``snnc energy`` prints about a NIR model (``describe``, ``trained``, ``family``)."""

    def __init__(self, nm: NirModel) -> None:
        self.nm = nm
        self.trained = True  # the file holds whatever weights it was written with
        family = nm.graph.meta.get("family")
        self.family = f"{family} (NIR)" if family else "NIR graph"

    def describe(self) -> str:
        """``'NIR file x.nir (snnc spikedhs-cla, dt = 0.0001 s, 12 nodes)'``."""
        writer = f"snnc {self.nm.graph.meta.get('family')}" if self.nm.writer == "snnc" else "another library's"
        return f"NIR file {self.nm.path.name} ({writer}, dt = {self.nm.dt:g} s, {len(self.nm.graph)} nodes)"


def nir_time_steps(nm: NirModel, steps: int | None) -> int:
    """Time steps per image: ``steps``, else the genotype recorded in the file (snnc's own NIR).

    Raises:
        SnncError: neither is known (another library's NIR file and no ``--steps``).
    """
    if steps is not None:
        return int(steps)
    genotype = nm.graph.meta.get("genotype")
    value = genotype.get("time_steps") if isinstance(genotype, dict) else None
    if isinstance(value, int) and value > 0:
        return value
    raise SnncError("NIR file records no time steps per image (no snnc.genotype metadata): pass --steps T", nm.path)


def _meter(layers: GraphLayers, costs: EnergyCosts, count: str, steps: float) -> EnergyMeter:
    return EnergyMeter(layers, costs=costs, count=count, steps_per_frame=steps, neurons=True)


def measure_nir_images(
    nm: NirModel,
    images: Tensor,
    steps: int,
    *,
    costs: EnergyCosts = DEFAULT_COSTS,
    count: str = "rate",
    batch_size: int = 100,
) -> EnergyReport:
    """Energy per image of a NIR classifier, each image presented for ``steps`` steps from rest.

    ``images`` is ``(N, C, H, W)``; N is cut to a multiple of the batch size (at least one batch).

    Raises:
        SnncError: no images, or images that do not fit the graph's input.
    """
    n = images.shape[0]
    if n == 0:
        raise SnncError("no images to measure on")
    want = tuple(nm.input_shape[1:])
    if tuple(images.shape[1:]) != want:
        raise SnncError(f"images shaped {tuple(images.shape[1:])} do not fit the NIR graph's input {want}", nm.path)
    bs = min(batch_size, n)
    layers = GraphLayers(nm.graph)
    meter = _meter(layers, costs, count, float(steps))
    gm = nm.module
    with meter, torch.no_grad():
        for b in range(max(n // bs, 1)):
            x = images[b * bs : (b + 1) * bs].to(torch.float32)
            state = gm.init_state(x)
            layers.reset()
            for _ in range(steps):
                values, state = gm.step_nodes(x, state)
                layers.replay(values)
            meter.frame()
    return meter.total()


def measure_nir_stereo(
    nm: NirModel,
    rec: MVSECRecording,
    *,
    frames: int | None = 20,
    costs: EnergyCosts = DEFAULT_COSTS,
    count: str = "rate",
    stats: WindowStats | None = None,
) -> EnergyReport:
    """Energy per frame of a NIR graph fed an open recording's SBT stacks, one step per frame, state carried.

    Raises:
        SnncError: the graph does not take this recording's frames (layout or shape).
    """
    from snnc.export.lower import graph_inputs
    from snnc.models.families import find
    from snnc.runtime.frames import frame_times, iter_frames

    layout = str(nm.graph.meta.get("input_layout") or "")
    family = str(nm.graph.meta.get("family") or "")
    fam = find(family)
    if fam is None or not fam.stereo_input:
        raise SnncError(
            f"NIR file is not a stereo network or stereo front (input layout {layout or 'unknown'!r}); "
            f"stream recordings through a file written by snnc export from a spikedhs-stereo network",
            nm.path,
        )
    times, _clock = frame_times(rec, limit=frames)
    layers = GraphLayers(nm.graph)
    meter = _meter(layers, costs, count, 1.0)
    gm = nm.module
    state: Any = None
    with meter, torch.no_grad():
        for frame in iter_frames(rec, times, with_gt=False, stats=stats):
            x = graph_inputs(family, torch.from_numpy(frame.x).to(torch.float32).unsqueeze(0))["x"]
            if state is None:
                if tuple(x.shape[1:]) != tuple(nm.input_shape[1:]):
                    raise SnncError(
                        f"the recording's frames give graph inputs {tuple(x.shape[1:])}, but the NIR graph "
                        f"takes {tuple(nm.input_shape[1:])} (export it with the recording's --input-shape)",
                        nm.path,
                    )
                state = gm.init_state(x)
            values, state = gm.step_nodes(x, state)
            layers.replay(values)
            meter.frame()
    return meter.total()
