"""Hybrid backend: the export partition plan, run piece by piece, with energy per part.

The plan is the export helper's partition (:mod:`snnc.export.partition`): the
folded network is lowered to the export graph and split into

* **front** — the largest NIR-expressible spiking part starting at the input
  (2-D convolutions with LIF/IF neurons; an HNS genotype's ReLU layers, ALIF
  neurons, 3-D convolutions, up-sampling and the cost volume are not NIR
  expressible and end it). This is the part a neuromorphic target takes; here
  it is executed from the NIR file by snnc's NIR runtime (torch, CPU);
* **rest** — everything after the cut, as a one-step ONNX graph in
  onnxruntime on the host (CPU), its state fed back every frame.

For the SpikeDHS-Stereo net the front is the feature net's stems and cells
up to the first nearest up-sampling; the up-sampler, the cost volume and
the whole 3-D matching net form the rest.

Energy is counted from each step's own values (:meth:`HybridBackend.activity_meter`):
the front's node values and the rest's spikes (its ``<node>.y`` state outputs),
mapped to the network's counted layers via the export Graph
(:class:`snnc.export.activity.ActivityPlan`), with no second torch pass. Energy
per part (:meth:`HybridBackend.energy_parts`) groups those layers by the piece
their graph nodes (``params["layer"]``) lie in: ACs/MACs by the papers' rule,
plus the energy the host would spend if it ran its part densely (every dense
op a MAC, which is what a CPU/GPU does with spikes).

**int8** (``fields``, ``--precision int8``, ``docs/INT8.md``): the same cut of the
**integer graph** (:func:`snnc.quant.int8_graph`, split by :func:`snnc.export.partition.split_graph`).
The front runs as the integer graph's front piece in snnc's integer graph runtime
(:class:`snnc.export.runtime.GraphModule`: Loihi's bit-accurate LIF, the integers Lava
computes; a NIR file carries only the float relaxation, exact for two steps after a
reset, so it is not what runs), the rest as the integer rest graph's one-step ONNX file
in onnxruntime (:func:`snnc.export.partition.write_rest_piece`), both driven by the one
:class:`~snnc.export.partition.PartitionedNet`. The input is quantised and the
integer cost resampled by the host head (:func:`snnc.quant.apply_head`) as on every
int8 backend, so the disparities equal the torch, onnx and lava int8 backends' bit for
bit. Energy is counted from the integer graph's own values, priced by the stream's
costs (``45nm-int8``).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from snnc.energy.costs import EnergyCosts
from snnc.energy.meter import ActivityMeter
from snnc.energy.report import EnergyReport, LayerEnergy
from snnc.errors import SnncError
from snnc.models.base import SpikingNet
from snnc.quant import QuantFields, apply_head, int8_graph, quantize_input
from snnc.runtime.base import Backend, energy_by_part

__all__ = ["HybridBackend"]


class HybridBackend(Backend):
    """Runs the partition manifest (front NIR + rest ONNX) frame by frame.

    Args:
        model: the folded network.
        device: must be CPU (the partition runner uses CPU torch and onnxruntime's CPU provider).
        threads: onnxruntime intra-op threads for the rest (0: 1 thread, the runner's default).
        manifest: keep the partition files here instead of a temporary folder (int8: only the
            rest's ONNX file, ``<stem>.rest.onnx``, is written beside it).
        fields: the int8 network's :class:`snnc.quant.QuantFields`: run the integer graph's
            pieces (module docstring); None: the fp32 partition.
    """

    name = "hybrid"

    def __init__(
        self,
        model: SpikingNet,
        device: torch.device,
        *,
        threads: int = 0,
        manifest: Path | None = None,
        fields: QuantFields | None = None,
    ) -> None:
        if torch.device(device).type != "cpu":
            raise SnncError(
                "--backend hybrid runs its front in snnc's NIR runtime and its rest in onnxruntime on "
                "the CPU; use --device cpu (or --backend torch/onnx for CUDA)"
            )
        self.model = model
        self.fields = fields
        self.device = torch.device("cpu")
        self._threads = threads or 1
        self._tmp: str | None = None
        self._manifest = Path(manifest) if manifest is not None else None
        self._net: Any = None
        self._shape: tuple[int, ...] | None = None
        self._state: Any = None
        self.front_nodes: set[str] = set()
        self.doc: dict[str, Any] = {}
        self.export_s = 0.0
        self._layer_part: dict[str, str] = {}
        self._meter: ActivityMeter | None = None
        self._plan: Any = None
        self._built_neurons: bool | None = None

    def activity_meter(self, *, costs: EnergyCosts, count: str, energy_model: str) -> ActivityMeter:
        """A meter fed from every step's values (front nodes, the rest's spikes): no reference pass."""
        self._meter = ActivityMeter(costs=costs, count=count, steps_per_frame=1.0, energy_model=energy_model)
        return self._meter

    def _build(self, shape: tuple[int, ...], x0: Tensor) -> None:
        import time

        from snnc.export.lower import lower
        from snnc.export.partition import PartitionedNet, split_graph, write_partition

        start = time.perf_counter()
        if self._manifest is None:
            self._tmp = tempfile.mkdtemp(prefix="snnc-stream-hybrid-")
            self._manifest = Path(self._tmp) / "partition.json"
        from snnc.export.activity import ActivityPlan, layer_nodes
        from snnc.export.lower import graph_inputs
        from snnc.export.runtime import GraphModule

        graph = lower(self.model, shape) if self.fields is None else int8_graph(self.model, shape, self.fields)
        split = split_graph(graph)
        front, rest, _, _ = split
        self.front_nodes = set(front.nodes)
        self._layer_part = {  # a layer is in the front when any of its graph nodes is
            layer: "front" if any(n in self.front_nodes for n in nodes) else "rest"
            for layer, nodes in layer_nodes(graph).items()
        }
        taps: list[str] = []
        self._plan = None
        if self._meter is not None:
            self._plan = ActivityPlan(graph, self.model, int(graph_inputs(str(graph.meta["family"]), x0)["x"].shape[0]))
            if rest is not None:
                rest_layout = GraphModule(rest).state_layout()
                needed = self._plan.taps(rest_layout, neurons=self._meter.neurons)
                taps = [t for t in needed if t not in self.front_nodes]
        if self.fields is None:
            self.doc = write_partition(graph, self._manifest, taps=taps)
            self._net = PartitionedNet(self._manifest, threads=self._threads)
        else:
            self._int8_meta = dict(graph.meta["int8"])
            self.doc, self._net = self._int8_pieces(graph, split, taps)
        self._shape = shape
        self._built_neurons = None if self._meter is None else self._meter.neurons
        self.export_s = time.perf_counter() - start

    def _int8_pieces(self, graph: Any, split: Any, taps: list[str]) -> tuple[dict[str, Any], Any]:
        """The integer graph's pieces: the front as a GraphModule, the rest written to ONNX (module docstring)."""
        from snnc.export.partition import PartitionedNet, partition_paths, write_rest_piece
        from snnc.export.runtime import GraphModule

        assert self._manifest is not None  # set by _build
        front, rest, cuts, _ = split
        pieces: list[dict[str, Any]] = [{"name": "front", "format": "integer graph", "nodes": len(front)}]
        rest_file = None
        if rest is not None:
            path = partition_paths(self._manifest)[1]
            pieces.append(write_rest_piece(graph, split, path, path.name, taps=taps))
            rest_file = (path, pieces[-1])
        doc = {"precision": "int8", "pieces": pieces, "cuts": list(cuts)}
        net = PartitionedNet.of_pieces(
            GraphModule(front).eval(), rest_file, str(graph.meta["family"]), threads=self._threads
        )
        return doc, net

    def _input(self, x: Tensor) -> Tensor:
        """The network's input: the frame (fp32), or its integer form (int8; SBT frames are unchanged)."""
        x = x.cpu()
        return x if self.fields is None else quantize_input(x.float(), self.fields)

    def _output(self, y: Tensor) -> Tensor:
        """The cost: the network's output (fp32), or the integer output through the host head (int8)."""
        return y if self.fields is None else apply_head(self._int8_meta, y)

    def reset(self, x0: Tensor) -> None:
        """Build the partition for ``x0``'s shape (once) and put both pieces at rest."""
        shape = tuple(int(s) for s in x0.shape)
        wanted = None if self._meter is None else self._meter.neurons
        stale = self._meter is not None and (self._plan is None or wanted != self._built_neurons)
        if self._net is None or shape != self._shape or stale:
            self._build(shape, x0)
        if self._meter is not None and self._plan is not None:
            self._meter.bind(self._plan.specs(), self._plan.neurons, batch=shape[0])
        self._state = self._net.init_state(self._input(x0))

    def step(self, x: Tensor) -> Tensor:
        """Front, then rest; returns the cost."""
        meter = self._meter
        x = self._input(x)
        if meter is None or self._plan is None:
            y, self._state = self._net.step(x, self._state)
            return self._output(y)
        y, self._state, values = self._net.step_values(x, self._state)
        inputs = self._plan.measure(values, events=meter.events)
        meter.record(inputs, self._plan.measure_neurons(values) if meter.neurons else None)
        return self._output(y)

    def part_of(self, layer: LayerEnergy) -> str:
        """``front`` or ``rest`` for a counted layer: where its graph nodes (``params["layer"]``) lie."""
        return self._layer_part.get(layer.name, "rest")

    def _pieces(self) -> dict[str, dict[str, Any]]:
        return {p["name"]: p for p in self.doc.get("pieces", [])}

    def placement(self) -> list[dict[str, Any]]:
        """Front on the (simulated) neuromorphic target, rest on the host."""
        pieces = self._pieces()
        int8 = self.fields is not None
        out = []
        if "front" in pieces:
            out.append(
                {
                    "part": "front",
                    "runs_on": "neuromorphic target (integer graph, Loihi bit-accurate LIF; simulated by snnc's "
                    "integer graph runtime on CPU)"
                    if int8
                    else "neuromorphic target (NIR graph; simulated by snnc's NIR runtime on CPU)",
                    "nodes": pieces["front"]["nodes"],
                }
            )
        if "rest" in pieces:
            out.append(
                {
                    "part": "rest",
                    "runs_on": "host CPU (onnxruntime, integer graph) + float head"
                    if int8
                    else "host CPU (onnxruntime)",
                    "nodes": pieces["rest"]["nodes"],
                    "cut_after": pieces["rest"]["reason"],
                }
            )
        return out

    def energy_parts(self, report: EnergyReport) -> list[dict[str, Any]]:
        """Per part: layers, dense ops, ACs, MACs, energy (papers' rule) and dense-host energy, per frame."""
        return energy_by_part(report, self.part_of, {p["part"]: p["runs_on"] for p in self.placement()})

    def close(self) -> None:
        """Remove the temporary partition files."""
        self._net = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
