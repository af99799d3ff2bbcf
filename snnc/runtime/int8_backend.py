"""int8 streaming backends (``snnc stream --precision int8``): the integer graph in torch or onnxruntime.

Both run the same integer export graph (:func:`snnc.quant.int8_graph`) of the
folded network and its quantisation fields, step by step with the state carried:

* ``torch``: :class:`snnc.export.runtime.GraphModule` eagerly (float32 tensors
  holding integers, ``docs/INT8.md``);
* ``onnx``: the graph traced to the one-step ONNX file
  (:func:`snnc.export.onnx_writer.export_stream` with ``graph=``) in onnxruntime,
  state fed back each frame (:class:`snnc.runtime.onnx_backend.OnnxBackend`).

The input is quantised on the host (:func:`snnc.quant.quantize_input`; SBT frames
are unchanged) and the integer output goes through the one host head
(:func:`snnc.quant.apply_head`: output scale, trilinear resize), so equal
integers give equal disparities bit for bit. Energy is counted from what each
integer step computes (the integer spikes and the quantised input, through the
integer graph's :class:`snnc.export.activity.ActivityPlan`, priced at the int8
costs): torch from :meth:`GraphModule.step_nodes`' values, onnx from its state
outputs, so both report the same numbers (``docs/INT8.md``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from snnc.energy.costs import EnergyCosts
from snnc.energy.meter import ActivityMeter
from snnc.export.lower import graph_inputs
from snnc.models.base import SpikingNet
from snnc.quant import QuantFields, apply_head, int8_graph, quantize_input
from snnc.runtime.base import Backend
from snnc.runtime.onnx_backend import OnnxBackend

__all__ = ["Int8TorchBackend", "Int8OnnxBackend", "make_precision_backend"]


class Int8TorchBackend(Backend):
    """The integer graph in torch (see module docstring).

    ``neurons``: its meter records every neuron layer's spikes under the ``paper`` model too (the firing rates
    ``snnc energy`` reports; :class:`~snnc.energy.meter.ActivityMeter`'s ``neurons``).
    """

    name = "torch"

    def __init__(self, model: SpikingNet, device: torch.device, *, fields: QuantFields, neurons: bool = False) -> None:
        self.model = model
        self.fields = fields
        self.neurons = neurons
        self.device = torch.device(device)
        self._gm: Any = None
        self._shape: tuple[int, ...] | None = None
        self._state: tuple[Tensor, ...] = ()
        self._meter: ActivityMeter | None = None
        self._plan: Any = None  # snnc.export.activity.ActivityPlan of the integer graph

    def activity_meter(self, *, costs: EnergyCosts, count: str, energy_model: str) -> ActivityMeter:
        """A meter fed from every step's own node values (the integer spikes and input): no reference pass."""
        self._meter = ActivityMeter(
            costs=costs, count=count, steps_per_frame=1.0, energy_model=energy_model, neurons=self.neurons
        )
        self._plan = None
        return self._meter

    def reset(self, x0: Tensor) -> None:
        """Build the integer graph for ``x0``'s shape (once) and zero the state (and bind the meter, if any)."""
        from snnc.export.activity import ActivityPlan
        from snnc.export.runtime import GraphModule

        shape = tuple(int(s) for s in x0.shape)
        if self._gm is None or shape != self._shape:
            self._gm = GraphModule(int8_graph(self.model, shape, self.fields)).to(self.device).eval()
            self._shape = shape
            self._plan = None
        inputs = self._inputs(x0)
        meter = self._meter
        if meter is not None:
            if self._plan is None:
                self._plan = ActivityPlan(self._gm.graph, self.model, int(inputs["x"].shape[0]))
            meter.bind(self._plan.specs(), self._plan.neurons, batch=shape[0])
            self._plan.prepare(meter.events, meter.neurons, self.device)
        with torch.no_grad():
            self._state = self._gm.init_state(inputs)

    def _inputs(self, x: Tensor) -> dict[str, Tensor]:
        return graph_inputs(self.model.genotype.family, quantize_input(x.to(self.device, torch.float32), self.fields))

    def step(self, x: Tensor) -> Tensor:
        """One integer step; the cost through the host head."""
        with torch.no_grad():
            meter, plan = self._meter, self._plan
            if meter is None or plan is None:
                y, self._state = self._gm.step(self._inputs(x), self._state)
            else:  # every node's value of this step: the counted roots among them, counted when the frame closes
                values, self._state = self._gm.step_nodes(self._inputs(x), self._state)
                y = values[self._gm.output_names[0]]
                events, neurons = meter.events, meter.neurons
                meter.defer(lambda: plan.count(values, events, neurons))
            return apply_head(self._gm.graph.meta["int8"], y)

    def placement(self) -> list[dict[str, Any]]:
        """Everything in one torch integer graph."""
        nodes = len(self._gm.graph) if self._gm is not None else "?"
        return [{"part": "network", "runs_on": f"torch int8 graph ({self.device})", "detail": f"{nodes} nodes"}]


class Int8OnnxBackend(OnnxBackend):
    """The integer graph traced to ONNX, in onnxruntime (see module docstring)."""

    def __init__(
        self,
        model: SpikingNet,
        device: torch.device,
        *,
        fields: QuantFields,
        threads: int = 0,
        onnx_path: Path | None = None,
    ) -> None:
        super().__init__(model, device, threads=threads, onnx_path=onnx_path)
        self.fields = fields
        self._int8_meta: dict[str, Any] = {}

    def _lower(self, shape: tuple[int, ...]) -> Any:
        """The integer graph for ``shape`` (traced by the parent's export)."""
        graph = int8_graph(self.model, shape, self.fields)
        self._int8_meta = dict(graph.meta["int8"])
        return graph

    _graph = _lower  # the same hook under its earlier name (an instance attribute of that name shadows it)

    def step(self, x: Tensor) -> Tensor:
        """One integer step in onnxruntime; the cost through the host head."""
        return apply_head(self._int8_meta, super().step(quantize_input(x.float(), self.fields)))


def make_precision_backend(
    name: str, net: Any, device: torch.device, fields: QuantFields | None, options: dict[str, Any]
) -> Backend:
    """The backend ``name`` at the stream's precision: fp32 (``fields`` None) as :func:`snnc.runtime.make_backend`,
    int8 on torch, onnx (this module), openvino (:class:`snnc.runtime.openvino_backend.Int8OpenVinoBackend`),
    lava or hybrid (:class:`snnc.runtime.lava_backend.LavaBackend`, :class:`snnc.runtime.hybrid_backend.HybridBackend`
    with ``fields``).

    Raises:
        SnncError: int8 with another backend, or with --dtype / --cuda-graph.
    """
    from snnc.errors import SnncError
    from snnc.runtime import make_backend

    if fields is None:
        return make_backend(name, net, device, **options)
    if options.get("dtype", "fp32") != "fp32" or options.get("cuda_graph"):
        raise SnncError("--precision int8 computes in exact integers: --dtype and --cuda-graph do not apply")
    threads = int(options.get("threads", 0))
    if name == "torch":
        return Int8TorchBackend(net.model, device, fields=fields)
    if name == "onnx":
        return Int8OnnxBackend(net.model, device, fields=fields, threads=threads)
    if name == "openvino":  # the same integer graph, its spike-fed convolutions as OpenVINO int8 convolutions
        from snnc.runtime.openvino_backend import Int8OpenVinoBackend

        return Int8OpenVinoBackend(net.model, device, fields=fields, threads=threads)
    if name == "lava":
        return make_backend("lava", net, device, fields=fields, threads=threads)
    if name == "hybrid":  # the integer graph's front (integer runtime) and rest (onnxruntime)
        return make_backend("hybrid", net, device, fields=fields, threads=threads)
    raise SnncError(f"--precision int8 runs on --backend torch, onnx, openvino, lava or hybrid (not {name})")
