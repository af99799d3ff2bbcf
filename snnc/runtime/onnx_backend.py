"""ONNX backend: the export helper's one-step streaming graph in onnxruntime, state fed back each frame.

At start the folded network is lowered to its export Graph and written once
for the stream's frame shape with :func:`snnc.export.onnx_writer.export_stream`
(inputs ``x``, ``state_in_k``; outputs ``y`` = matching cost, ``state_out_k``)
into a temporary folder (or ``onnx_path`` to keep it). Every frame runs the
session once and feeds ``state_out_k`` back as ``state_in_k``.

Energy is counted from what each step already returns (:meth:`OnnxBackend.activity_meter`):
every spiking layer's output is its ``<node>.y`` state output, so the per-layer
counts come from those arrays and the frame (:class:`snnc.export.activity.ActivityPlan`),
with no second torch pass; per step one channel sum per layer's spikes and one
matrix product per layer, read back once (:meth:`snnc.export.activity.ActivityPlan.count`),
run when the engine closes the frame. Values the state lacks (ReLU / binary neuron
outputs) are exported as extra outputs ``tap.<node>``.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from snnc.energy.costs import EnergyCosts
from snnc.energy.meter import ActivityMeter
from snnc.errors import SnncError
from snnc.models.base import SpikingNet
from snnc.runtime.base import Backend

__all__ = ["OnnxBackend"]


class OnnxBackend(Backend):
    """onnxruntime on CPU (or CUDA when ``device`` is cuda and the CUDA provider is installed).

    Args:
        model: the folded reference network (exported on :meth:`reset`).
        device: ``cpu`` or ``cuda``.
        threads: intra-op threads (0: as many as torch uses, :func:`~snnc.export.ort_options.runtime_threads`).
        onnx_path: where to write the graph (default: a temporary folder removed on :meth:`close`).
    """

    name = "onnx"

    def __init__(
        self, model: SpikingNet, device: torch.device, *, threads: int = 0, onnx_path: Path | None = None
    ) -> None:
        import onnxruntime as ort

        self.model = model
        self.device = torch.device("cpu")  # results come back as host arrays
        providers = ["CPUExecutionProvider"]
        if torch.device(device).type == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise SnncError(
                    "--backend onnx --device cuda needs onnxruntime with the CUDA execution provider "
                    f"(installed providers: {', '.join(ort.get_available_providers())})"
                )
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        self._providers = providers
        self._threads = threads
        self._tmp: str | None = None
        self._path = Path(onnx_path) if onnx_path is not None else None
        self._session: Any = None
        self._shape: tuple[int, ...] | None = None
        self._state: list[np.ndarray] = []
        self.export_s = 0.0
        self._graph: Any = None
        self._family = ""
        self._layout: list[tuple[str, str]] = []
        self._taps: list[str] = []
        self._plan: Any = None
        self._meter: ActivityMeter | None = None
        self._delays: list[str] = []

    def activity_meter(self, *, costs: EnergyCosts, count: str, energy_model: str) -> ActivityMeter:
        """A meter fed from every step's state outputs (the spikes) and the frame: no reference pass."""
        self._meter = ActivityMeter(costs=costs, count=count, steps_per_frame=1.0, energy_model=energy_model)
        return self._meter

    def _export(self, shape: tuple[int, ...], taps: list[str]) -> None:
        import json
        import time

        import onnxruntime as ort

        from snnc.export.onnx_writer import check_format, export_stream
        from snnc.export.ort_options import session_options

        if self._path is None:
            self._tmp = tempfile.mkdtemp(prefix="snnc-stream-onnx-")
            self._path = Path(self._tmp) / "stream.onnx"
        start = time.perf_counter()
        info = export_stream(self.model, shape, self._path, taps=taps, graph=self._graph)
        self._session = ort.InferenceSession(str(self._path), session_options(self._threads), providers=self._providers)
        self.export_s += time.perf_counter() - start
        meta = self._session.get_modelmeta().custom_metadata_map
        check_format(meta, self._path)
        self._state_in = [n for n in info["inputs"] if n != "x"]
        self._n_values = len(info["outputs"]) - len(self._state_in)
        self._state_shapes = [tuple(s) for s in json.loads(meta["snnc.state_shapes"])]
        self._taps = list(taps)
        self._shape = shape

    def _lower(self, shape: tuple[int, ...]) -> Any:
        """The export Graph to trace for ``shape``: the folded network's (int8 backends override it)."""
        from snnc.export.lower import lower

        return lower(self.model.eval(), shape)

    def reset(self, x0: Tensor) -> None:
        """Export for ``x0``'s shape (once; again when energy counting needs other taps) and zero the state."""
        import time

        from snnc.export.activity import ActivityPlan
        from snnc.export.lower import graph_inputs
        from snnc.export.runtime import GraphModule

        shape = tuple(int(s) for s in x0.shape)
        if self._graph is None or shape != self._shape:
            start = time.perf_counter()
            self._graph = self._lower(shape)
            self._family = str(self._graph.meta["family"])
            self._layout = GraphModule(self._graph).state_layout()
            self._plan = None
            self._session = None
            self.export_s = time.perf_counter() - start
        taps: list[str] = []
        meter = self._meter
        if meter is not None:
            if self._plan is None:
                batch = int(graph_inputs(self._family, x0)["x"].shape[0])
                self._plan = ActivityPlan(self._graph, self.model, batch)
            taps = self._plan.taps(self._layout, neurons=meter.neurons)
            meter.bind(self._plan.specs(), self._plan.neurons, batch=shape[0])
            self._plan.prepare(meter.events, meter.neurons)
            self._delays = [r for r in self._plan.roots if self._graph[r].op == "delay"]
        if self._session is None or taps != self._taps:
            self._export(shape, taps)
        self._state = [np.zeros(s, dtype=np.float32) for s in self._state_shapes]

    def step(self, x: Tensor) -> Tensor:
        """Run the one-step graph; feed the state outputs back (and count this step's energy from them)."""
        x = x.detach().cpu()
        feed = {"x": x.numpy().astype(np.float32, copy=False)}
        feed.update(zip(self._state_in, self._state, strict=False))
        out = self._session.run(None, feed)
        new_state = out[self._n_values :]
        self._count_step(x, out, new_state)
        self._state = new_state
        return torch.from_numpy(out[0])

    def _count_step(self, x: Tensor, out: list[np.ndarray], new_state: list[np.ndarray]) -> None:
        """Hand the meter (if any) this step's counting: the frame ``x``, the graph's outputs ``out`` (``y``, taps,
        state) and the state before (``self._state``) and after (``new_state``) the step. Deferred
        (:meth:`~snnc.energy.meter.ActivityMeter.defer`): it runs when the engine closes the frame, or at the
        next step, before outputs are reused (the openvino backend, which runs the same file, reuses each
        output tensor every second step)."""
        meter = self._meter
        if meter is not None and self._plan is not None:
            from snnc.export.activity import step_values
            from snnc.export.lower import graph_inputs

            taps = dict(zip(self._taps, out[1 : self._n_values], strict=True))
            values = step_values(graph_inputs(self._family, x), self._layout, self._state, new_state, taps)
            for node in self._delays:  # a delay's value is this step's state input, which the next step may reuse
                values[node] = np.array(values[node], copy=True)
            plan, events, neurons = self._plan, meter.events, meter.neurons
            meter.defer(lambda: plan.count(values, events, neurons))

    def placement(self) -> list[dict[str, Any]]:
        """The whole network as one ONNX graph."""
        return [
            {
                "part": "network",
                "runs_on": f"onnxruntime ({self._providers[0]})",
                "detail": f"one-step graph {self._path.name if self._path else '(not exported yet)'}, "
                f"{len(self._state_in) if self._session else '?'} state tensors fed back",
            }
        ]

    def close(self) -> None:
        """Drop the session and the temporary folder."""
        self._session = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
