"""Lava backend: the netx-expressible spiking layers simulated in Lava, the rest of the network on the CPU.

What runs where (SpikeDHS-Stereo):

* **Lava** (lava-dl netx network, ``Loihi2SimCfg(select_tag='fixed_pt')``, i.e.
  Loihi's fixed-point arithmetic simulated on the CPU): the longest chain of
  conv + LIF layers from the input that netx can express — netx takes plain
  chains only (:mod:`snnc.export.lava_writer`), and the stereo net's first
  spiking layer ``feature.stem0`` already feeds two consumers (``stem1`` and
  the first cell), so the chain is exactly ``feature.stem0`` (3x3 conv of the
  SBT stacks + LIF). Its input is *signed* events (SBT in {-1, 0, 1}) while
  Loihi inputs are binary spikes: the layer takes ON and OFF events as
  separate binary channels with weights ``[w, -w]`` (exact:
  ``conv_w(x) = conv_w(x+) + conv_-w(x-)``). The left and right images (the
  shared feature net's batch of two) are placed side by side with a zero gap
  as wide as the padding, which a stride-1 convolution keeps exactly apart.
* **CPU** (snnc's export-graph runtime, :class:`snnc.export.runtime.GraphModule`,
  torch): everything after that layer — ``stem1``, the feature cells, the
  up-sampler, the cost volume, the whole 3-D matching net (netx has no 3-D
  convolution) and the read-out.

Frames are streamed into the running Lava network with an ``Injector`` and
its spikes read back with an ``Extractor``, one Lava time step per frame, so
the layer's membrane is carried across frames inside Lava. Lava's synapse
delivers one step late, so the backend has a latency of one frame
(``latency = 1``); the last frame is flushed with one extra step.

**int8** (``fields``: the network's :class:`snnc.quant.QuantFields`, ``--precision int8``):
the **whole 2-D spiking feature net** runs in Lava instead, built from lava-nc
processes by :mod:`snnc.export.lava_procs` (a ``Conv`` per convolution, a
``LIF`` per neuron layer summing all its convolutions at one InPort, relays for
the up-sampling and the delay lines that keep paths of different lengths aligned
with the CPU's step); both cameras run as channel groups, the SBT frames enter
as graded spikes. The boundary is the feature net's last neuron layer
(``feature.last.neuron``): its spikes go to the host, where the cost volume and
the 3-D matching net run in snnc's integer graph runtime (torch) and the float
head (:func:`snnc.quant.apply_head`) resamples the integer cost, as on every
int8 backend. Lava's spikes are the CPU int8 run's bit for bit; the backend's
latency is the cut's Lava latency (8 frames for SpikeDHS-Stereo), flushed at
the end.

Energy at int8 (:meth:`LavaBackend.activity_meter`) is counted from the values this backend has, through
the integer graph's :class:`snnc.export.activity.ActivityPlan` (the counting of every int8 backend): the
**Lava part** from Lava's own spikes, every neuron layer the plan reads being tapped by one more
``Extractor`` (Lava emits layer ``n``'s spikes of frame ``t`` at Lava step ``t + L(n)``; they are kept until
frame ``t`` is answered), the input from the quantised frame, and the **host part** from the host
GraphModule's node values (:meth:`~snnc.export.runtime.GraphModule.step_nodes`). The counts therefore equal
the torch int8 backend's exactly; with energy off only the cut is read back. The fp32 path has no such
taps: its energy is counted by the engine's reference pass on the float network.

Differences from the float network (fp32 path, stated tolerance): weights, bias and
threshold are quantised to Loihi's 8-bit / 13-bit / 17-bit fixed point and the
leak to 12 bits (:func:`snnc.export.lava_writer.quantize_layer`), and at the
first step Lava's neuron integrates its bias once before the first frame
arrives. The layer's spikes therefore differ from torch's on a small fraction
of positions, and the difference propagates through the rest of the network.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from snnc.energy.costs import EnergyCosts
from snnc.energy.meter import ActivityMeter
from snnc.energy.report import EnergyReport, LayerEnergy
from snnc.errors import SnncError
from snnc.export.lava_env import import_lava
from snnc.models.base import SpikingNet
from snnc.runtime.base import Backend, energy_by_part

__all__ = ["LavaBackend", "netx_prefix", "layers_on"]


def layers_on(graph: Any, nodes: list[str]) -> frozenset[str]:
    """The counted torch layers (the Graph nodes' ``params["layer"]``) with a node among ``nodes``: a layer
    split along its input channels (several nodes) is on a part when any of its nodes is."""
    from snnc.export.activity import layer_nodes

    inside = set(nodes)
    return frozenset(layer for layer, names in layer_nodes(graph).items() if not inside.isdisjoint(names))


def netx_prefix(graph: Any) -> list[str]:
    """Names of the leading chain ``input -> (conv -> lif neuron)+`` that netx can express.

    The chain stops before a node that is read by several nodes or sums several
    inputs (a DAG), or that is not a plain 2-D conv / LIF-like neuron. Returns the
    nodes after the input (empty when not even one layer qualifies).
    """
    consumers = graph.consumers()
    name = graph.inputs[0]
    chain: list[str] = []
    while True:
        users = consumers[name]
        if len(users) != 1:
            break
        conv = graph[users[0]]
        if (
            conv.op != "conv"
            or len(conv.inputs) != 1
            or conv.params["weight"].ndim != 4
            or conv.params["groups"] != 1
            or any(d != 1 for d in conv.params["dilation"])
            or any(s != 1 for s in conv.params["stride"])
        ):
            break
        nxt = consumers[users[0]]
        if len(nxt) != 1:
            break
        neuron = graph[nxt[0]]
        spiking = neuron.op == "neuron" and neuron.params["spec"].type in ("lif", "if", "binary")
        if not spiking or len(neuron.inputs) != 1:
            break
        chain += [users[0], nxt[0]]
        name = nxt[0]
        if len(consumers[name]) != 1:
            break
    return chain


class LavaBackend(Backend):
    """Runs the netx prefix in Lava and the rest on the CPU (see module docstring).

    Args:
        model: the folded stereo network.
        device: must be CPU.
        threads: unused (Lava's simulator and the CPU rest use the process's threads).
        workdir: keep the netx file here instead of a temporary folder.
        fields: the int8 network's :class:`snnc.quant.QuantFields`: run the whole integer
            feature net in Lava processes (module docstring); None: the fp32 netx path.
    """

    name = "lava"
    latency = 1

    def __init__(
        self,
        model: SpikingNet,
        device: torch.device,
        *,
        threads: int = 0,
        workdir: Path | None = None,
        fields: Any = None,
    ) -> None:
        if torch.device(device).type != "cpu":
            raise SnncError(
                "--backend lava simulates Loihi on the CPU (Lava's fixed-point simulator); use --device cpu"
            )
        from snnc.models.families import find

        fam = find(getattr(model.genotype, "family", None))
        if fam is None or not fam.stereo_input:
            raise SnncError("--backend lava streams stereo networks only")
        import_lava()
        self.model = model
        self.device = torch.device("cpu")
        self._tmp: str | None = None
        self._workdir = Path(workdir) if workdir is not None else None
        self._shape: tuple[int, ...] | None = None
        self._lava: Any = None
        self.lava_nodes: list[str] = []
        self._lava_layers: frozenset[str] = frozenset()  # counted torch layers with a graph node in Lava
        self.export_s = 0.0
        self.quant: dict[str, Any] = {}
        self.fields = fields
        self._procnet: Any = None
        self.boundary: dict[str, Any] = {}
        self._meter: ActivityMeter | None = None
        self._plan: Any = None  # snnc.export.activity.ActivityPlan of the integer graph (int8, energy on)
        self._read: list[str] = []  # the Lava part's neuron layers read back (the cut, and energy's taps)
        self._taps: dict[int, dict[str, np.ndarray]] = {}  # frame -> {Lava layer: its spikes of that frame}
        self._frames_in: deque[Tensor] = deque()  # the quantised inputs of frames not answered yet (energy on)
        self._flushing = False
        self._built_neurons: bool | None = None  # the read-back built for: None (energy off), neuron rows or not

    def activity_meter(self, *, costs: EnergyCosts, count: str, energy_model: str) -> ActivityMeter | None:
        """int8: a meter fed from the values this backend has (module docstring: Lava's own spikes for the Lava
        part, the host GraphModule's node values for the rest); fp32: None (the engine's reference pass)."""
        if self.fields is None:
            return None
        self._meter = ActivityMeter(costs=costs, count=count, steps_per_frame=1.0, energy_model=energy_model)
        return self._meter

    # ------------------------------------------------------------------ building
    def _build(self, shape: tuple[int, ...]) -> None:
        import time

        from snnc.export.graph import Graph
        from snnc.export.lava_writer import write_netx
        from snnc.export.lower import lower
        from snnc.export.partition import copy_nodes
        from snnc.export.runtime import GraphModule

        start = time.perf_counter()
        if shape[0] != 1:
            raise SnncError(f"--backend lava streams one recording at a time (batch 1), got input {shape}")
        graph = lower(self.model, shape)
        chain = netx_prefix(graph)
        if not chain:
            raise SnncError(
                "no layer of this network can run in Lava: netx needs a chain of 2-D conv + LIF layers from the input"
            )
        self.lava_nodes = chain
        self._lava_layers = layers_on(graph, chain)
        cut = chain[-1]
        c_in, h, w = graph[graph.inputs[0]].shape
        self._pad = sum(int(graph[n].params["padding"][1]) for n in chain if graph[n].op == "conv")
        self._width = w
        wide = 2 * w + self._pad
        lg = Graph({})
        lg.add("x", "input", shape=(2 * c_in, h, wide))
        prev = "x"
        for i, name in enumerate(chain):
            node = graph[name]
            params = dict(node.params)
            if node.op == "conv" and i == 0:
                wgt = params["weight"]
                params["weight"] = np.concatenate([wgt, -wgt], axis=1)  # ON and OFF channels
            shp = (node.shape[0], h, wide) if node.op in ("conv", "neuron") else None
            prev = lg.add(name, node.op, [prev], shape=shp, **params)
        lg.add("y", "output", [prev])
        lg.check()
        if self._workdir is None:
            self._tmp = tempfile.mkdtemp(prefix="snnc-stream-lava-")
            self._workdir = Path(self._tmp)
        net_path = self._workdir / "lava_part.net"
        self.quant = write_netx(lg, net_path)
        rest = Graph(dict(graph.meta))
        rest.add(cut, "input", shape=graph[cut].shape)
        copy_nodes(rest, graph, [n for n in graph.nodes if n not in set(chain) and n not in graph.inputs])
        rest.check()
        self._rest = GraphModule(rest).eval()
        self._cut = cut
        self._cut_channels = graph[cut].shape[0]
        self._start_lava(net_path)
        self._shape = shape
        self.export_s = time.perf_counter() - start

    def _build_int8(self, shape: tuple[int, ...]) -> None:
        """The integer graph: its 2-D spiking part as Lava processes, the rest (integer) on the host."""
        import time

        from snnc.export.graph import Graph
        from snnc.export.lava_procs import LavaProcNet, lava_part
        from snnc.export.partition import copy_nodes
        from snnc.export.runtime import GraphModule
        from snnc.quant import int8_graph

        start = time.perf_counter()
        if shape[0] != 1:
            raise SnncError(f"--backend lava streams one recording at a time (batch 1), got input {shape}")
        graph = int8_graph(self.model, shape, self.fields)
        nodes, cut = lava_part(graph)
        self._stop_lava()
        self._read = self._read_back(graph, nodes, cut)
        self._procnet = LavaProcNet(graph, batch=2, read=self._read)
        self.lava_nodes = [n for n in nodes if n not in graph.inputs]
        self._lava_layers = layers_on(graph, self.lava_nodes)
        part = set(nodes)
        rest = Graph(dict(graph.meta))
        for c in cut:
            rest.add(c, "input", shape=graph[c].shape)
        copy_nodes(rest, graph, [n for n in graph.nodes if n not in part])
        rest.check()
        self._rest = GraphModule(rest).eval()
        self._cuts = cut
        self._int8_meta = graph.meta["int8"]
        lat = self._procnet.plan.latency
        self.latency = max(lat[c] for c in cut)
        self.boundary = {
            "cut": list(cut),
            "lava_latency_steps": {c: lat[c] for c in cut},
            "lava_processes": None,
            "relays": self._procnet.plan.relay_count(),
            "read_back": list(self._read),
        }
        self._shape = shape
        self._procnet.start()
        self.boundary["lava_processes"] = self._procnet.process_count
        self.export_s = time.perf_counter() - start

    def _read_back(self, graph: Any, nodes: list[str], cut: list[str]) -> list[str]:
        """The Lava part's neuron layers to read back: the cut, and with energy on every one the integer graph's
        :class:`~snnc.export.activity.ActivityPlan` reads (its roots; with neuron rows, every neuron layer).

        Raises:
            SnncError: a value the plan reads inside the Lava part is neither the input nor a neuron layer's spikes.
        """
        from snnc.export.activity import ActivityPlan

        meter = self._meter
        if meter is None:
            self._plan = None
            return list(cut)
        self._plan = ActivityPlan(graph, self.model, 2)
        part = set(nodes)
        taps = [n for n in self._plan.needed(meter.neurons) if n in part and n not in graph.inputs]
        odd = [n for n in taps if graph[n].op != "neuron"]
        if odd:
            raise SnncError(f"energy counting on Lava needs {odd[0]!r} ({graph[odd[0]].op}), which Lava cannot emit")
        return list(dict.fromkeys([*cut, *taps]))

    def _stale(self, shape: tuple[int, ...]) -> bool:
        """Whether the process network must be rebuilt: another frame size, or energy counting switched."""
        if self._procnet is None or shape != self._shape:
            return True
        return (None if self._meter is None else self._meter.neurons) != self._built_neurons

    def _reset_int8(self, x0: Tensor) -> None:
        shape = tuple(int(s) for s in x0.shape)
        if self._stale(shape):
            self._build_int8(shape)
            self._built_neurons = None if self._meter is None else self._meter.neurons
        else:
            self._procnet.start()  # a fresh runtime: every membrane, buffer and delay line at rest
        cut = {c: torch.zeros((2, *self._rest.graph[c].shape)) for c in self._cuts}
        self._rest_state = self._rest.init_state(cut)
        self._given = 0
        self._answered = 0
        self._taps = {}
        self._frames_in = deque()
        self._flushing = False
        meter, plan = self._meter, self._plan
        if meter is not None and plan is not None:
            meter.bind(plan.specs(), plan.neurons, batch=shape[0])
            plan.prepare(meter.events, meter.neurons, self.device)

    def _int8_step(self, x: Tensor | None) -> Tensor | None:
        """One Lava step (frame ``x`` or zeros); the head's cost of the frame it completes, if any."""
        from snnc.export.lower import graph_inputs
        from snnc.quant import apply_head, quantize_input

        counting = self._meter is not None and self._plan is not None
        frame = None
        if x is not None:
            xin = graph_inputs(self.model.genotype.family, quantize_input(x.cpu(), self.fields))["x"]
            frame = xin.numpy()
            self._given += 1
            if counting:
                self._frames_in.append(xin)
        spikes = self._procnet.step(frame)
        if counting:
            self._keep_taps(spikes)
        if self._procnet.steps <= self.latency:  # Lava's output answers no frame yet
            return None
        feed = {c: torch.from_numpy(spikes[c]) for c in self._cuts}
        with torch.no_grad():
            if not counting:
                y, self._rest_state = self._rest.step(feed, self._rest_state)
            else:
                values, self._rest_state = self._rest.step_nodes(feed, self._rest_state)
                y = values[self._rest.output_names[0]]
                self._count(values)
        self._answered += 1
        return apply_head(self._int8_meta, y)

    def _keep_taps(self, spikes: dict[str, np.ndarray]) -> None:
        """File this Lava step's spikes of every read layer under the frame they belong to (Lava step - latency)."""
        lat = self._procnet.plan.latency
        step = self._procnet.steps - 1
        for name, value in spikes.items():
            t = step - lat[name]
            if self._answered <= t < self._given:  # frames of the stream (not the flush's zero steps) yet unanswered
                self._taps.setdefault(t, {})[name] = value

    def _count(self, host: dict[str, Tensor]) -> None:
        """Count the frame being answered: its input, Lava's spikes of it and the host part's node values. During
        the flush (several frames in one call) counted now and queued per frame, else when the frame closes."""
        meter, plan = self._meter, self._plan
        assert meter is not None and plan is not None  # _int8_step counts only then
        values: dict[str, Any] = dict(host)
        values.update(self._taps.pop(self._answered, {}))
        values[plan.graph.inputs[0]] = self._frames_in.popleft()
        events, neurons = meter.events, meter.neurons
        if self._flushing:
            meter.queue(*plan.count(values, events, neurons))
        else:
            meter.defer(lambda: plan.count(values, events, neurons))

    def _start_lava(self, net_path: Path) -> None:
        from lava.lib.dl.netx import hdf5
        from lava.magma.core.run_configs import Loihi2SimCfg
        from lava.proc.io.extractor import Extractor, PyLoihiExtractorModel
        from lava.proc.io.injector import Injector, PyLoihiInjectorModel

        self._stop_lava()
        net = hdf5.Network(net_config=str(net_path))
        inj = Injector(shape=net.inp.shape)
        ext = Extractor(shape=net.out.shape)
        inj.out_port.connect(net.inp)
        net.out.connect(ext.in_port)
        cfg = Loihi2SimCfg(
            select_tag="fixed_pt",
            exception_proc_model_map={Injector: PyLoihiInjectorModel, Extractor: PyLoihiExtractorModel},
        )
        net.create_runtime(run_cfg=cfg)
        self._lava = (net, inj, ext)

    def _stop_lava(self) -> None:
        if self._lava is not None:
            net = self._lava[0]
            try:
                net.stop()
            finally:
                with contextlib.suppress(Exception):
                    net.net_config.f.close()
            self._lava = None

    # ------------------------------------------------------------------ stepping
    def reset(self, x0: Tensor) -> None:
        """Build the Lava part and the CPU rest for ``x0``'s shape; start Lava at rest."""
        if self.fields is not None:
            self._reset_int8(x0)
            return
        shape = tuple(int(s) for s in x0.shape)
        if self._lava is None or shape != self._shape:
            self._build(shape)
        else:
            assert self._workdir is not None  # set by the first _build
            self._start_lava(self._workdir / "lava_part.net")
        cut_shape = (2, self._cut_channels, shape[3], shape[4])
        self._rest_state = self._rest.init_state({self._cut: torch.zeros(cut_shape)})
        self._given = 0

    def _lava_step(self, x: Tensor | None) -> np.ndarray:
        """Inject one frame (None: zeros) and run one Lava step; the spikes it emits (C, H, 2W+pad)."""
        from lava.magma.core.run_conditions import RunSteps

        net, inj, ext = self._lava
        assert self._shape is not None  # reset() built the network first
        c_in = self._shape[2]
        h, w, pad = self._shape[3], self._width, self._pad
        frame = np.zeros((2 * c_in, h, 2 * w + pad), dtype=np.int32)
        if x is not None:
            sbt = x[0].numpy()  # (2 cameras, C, H, W)
            for cam, col in ((0, 0), (1, w + pad)):
                frame[:c_in, :, col : col + w] = sbt[cam] > 0
                frame[c_in:, :, col : col + w] = sbt[cam] < 0
        inj.send(frame.transpose(2, 1, 0))  # netx order (W, H, C)
        net.run(condition=RunSteps(num_steps=1))
        return np.asarray(ext.receive()).transpose(2, 1, 0)

    def _rest_step(self, spikes: np.ndarray) -> Tensor:
        """The CPU rest on one frame's Lava spikes: cost ``(1, D, H, W)``."""
        w, pad = self._width, self._pad
        both = np.stack([spikes[:, :, :w], spikes[:, :, w + pad : w + pad + w]]).astype(np.float32)
        with torch.no_grad():
            cost, self._rest_state = self._rest.step({self._cut: torch.from_numpy(both)}, self._rest_state)
        return cost

    def step(self, x: Tensor) -> Tensor | None:
        """Inject frame k; returns frame k-latency's cost (None while the pipeline fills)."""
        if self.fields is not None:
            return self._int8_step(x)
        spikes = self._lava_step(x.cpu())
        self._given += 1
        if self._given == 1:
            return None  # Lava's output at step 0 answers no frame (the synapse delivers one step late)
        return self._rest_step(spikes)

    def flush(self) -> list[Tensor]:
        """More Lava steps (zero input) for the frames still in the pipeline."""
        if self.fields is not None:
            out = []
            self._flushing = True
            try:
                while self._answered < self._given:
                    cost = self._int8_step(None)
                    if cost is not None:
                        out.append(cost)
            finally:
                self._flushing = False
            return out
        if self._given == 0:
            return []
        return [self._rest_step(self._lava_step(None))]

    # ------------------------------------------------------------------ reporting
    def part_of(self, layer: LayerEnergy) -> str:
        """``lava`` or ``cpu`` for a counted layer: where its graph nodes (``params["layer"]``) lie."""
        return "lava" if layer.name in self._lava_layers else "cpu"

    def placement(self) -> list[dict[str, Any]]:
        """The Lava part and the CPU rest, with the boundary between them."""
        if self.fields is not None:
            return self._placement_int8()
        layers = [n for n in self.lava_nodes if not n.endswith(".neuron")] if self.lava_nodes else []
        q = self.quant.get("layers", []) if self.quant else []
        return [
            {
                "part": "lava",
                "runs_on": "Lava (lava-dl netx, Loihi2SimCfg fixed_pt, simulated on CPU)",
                "layers": layers,
                "quantisation": [{k: v for k, v in d.items() if k != "name"} for d in q],
                "input": "SBT as binary ON/OFF channels, left|gap|right side by side",
            },
            {
                "part": "cpu",
                "runs_on": "CPU (snnc export-graph runtime, torch)",
                "detail": "everything after the Lava chain: feature cells, up-sampling, cost volume, "
                "3-D matching net (no 3-D conv in netx), read-out",
            },
        ]

    def _placement_int8(self) -> list[dict[str, Any]]:
        layers = [n for n in self.lava_nodes if self._procnet is not None and self._procnet.graph[n].op == "neuron"]
        return [
            {
                "part": "lava",
                "runs_on": "Lava processes (lava-nc Conv/LIF/Sparse, Loihi2SimCfg fixed_pt, simulated on CPU)",
                "layers": layers,
                "boundary": self.boundary,
                "input": "integer SBT frames as graded spikes; both cameras as channel groups",
            },
            {
                "part": "cpu",
                "runs_on": "CPU (snnc integer graph runtime, torch) + float head",
                "detail": "from the boundary's spikes: cost volume, 3-D matching net (integer), head resampling",
            },
        ]

    def energy_parts(self, report: EnergyReport) -> list[dict[str, Any]]:
        """Energy per frame of the Lava part and the CPU part (see :func:`energy_by_part`)."""
        return energy_by_part(report, self.part_of, {p["part"]: p["runs_on"] for p in self.placement()})

    def close(self) -> None:
        """Stop Lava and remove temporary files."""
        self._stop_lava()
        if self._procnet is not None:
            self._procnet.stop()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
