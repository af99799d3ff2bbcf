"""OpenVINO backend: the same one-step streaming ONNX file as the onnx backend, compiled by OpenVINO for the CPU.

At start the folded network is exported once for the stream's frame shape
with :func:`snnc.export.onnx_writer.export_stream` (the very file
``--backend onnx`` runs) into a temporary folder (or ``onnx_path`` to keep
it), read by OpenVINO and compiled for its CPU plugin at fp32
(``INFERENCE_PRECISION_HINT`` f32: on CPUs with bf16/AMX units OpenVINO's
default would otherwise run in bf16 and change spike decisions). Every frame
runs one inference and feeds the state outputs back as the state inputs,
exactly as :mod:`snnc.runtime.onnx_backend` does (whose lowering, file and energy
counting from the step outputs this backend shares); the state names and shapes
come from the file's metadata (``snnc.state_names``, ``snnc.state_shapes``),
never from assumptions about the network.

The state (about 200 MB at 260 x 346 for the SpikeDHS-Stereo preset) never
leaves OpenVINO: the compiled model is made stateful (OpenVINO's ``MakeStateful``
pass turns each ``state_in_k`` / ``state_out_k`` pair into one variable, read and
assigned inside the plugin in its own memory layout), so no state is copied in or
out and no layout is converted at the graph's boundary (feeding the outputs back
as inputs, even shared with ``set_tensor``, copied and reordered them: the int8
step took 1.2-1.35x as long). What the host needs each step stays an output: every
neuron's spikes (its ``y`` state, ``spikes.<k>``) and every delay's ``d0`` state
input (``before.<k>``), which energy counting reads; :attr:`OpenVinoBackend.state`
reads the full state back from the variables, on demand. The spelling of the file
is OpenVINO's (``export_stream(target="openvino")``: flat Gather resampling, uint8
integer spikes; ``docs/EXPORT.md``).

**int8** (``--precision int8``, :class:`Int8OpenVinoBackend`): the integer graph of the int8 onnx
backend, written by the same writer with ``qdq=True``: every convolution whose input is spikes
reads them through QuantizeLinear/DequantizeLinear (uint8, scale 1, zero point 0) and its int8
weights through DequantizeLinear (int8, scale 1), which OpenVINO's low-precision transformations
turn into int8 (VNNI) convolutions accumulating in int32. That is exact: spikes are 0/1, weights
int8, and every partial sum is bounded by the layer's worst-case synaptic input, which the export
refuses above ``2**17 - 1`` (``docs/INT8.md``), so the int32 sums and their float32 conversion
are the integers every other backend computes.

OpenVINO is an optional package (``pip install -c constraints.txt
'snnc[openvino]'``; ``tools/install.sh`` installs it): without it the backend
refuses in one line.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from snnc.errors import SnncError
from snnc.export.ort_options import runtime_threads
from snnc.models.base import SpikingNet
from snnc.runtime.int8_backend import Int8OnnxBackend
from snnc.runtime.onnx_backend import OnnxBackend

__all__ = ["Int8OpenVinoBackend", "OpenVinoBackend", "make_stateful", "openvino_config", "require_openvino"]

#: The pip requirement named when OpenVINO is missing (the extra that installs the pinned release).
INSTALL_HINT = "pip install -c constraints.txt 'snnc[openvino]' (tools/install.sh installs it)"


def require_openvino() -> Any:
    """The ``openvino`` module.

    Raises:
        SnncError: the package is not installed (one line naming it and how to install it).
    """
    try:
        import openvino
    except ImportError:
        raise SnncError(
            f"--backend openvino needs the openvino package, which is not installed: {INSTALL_HINT}"
        ) from None
    return openvino


def openvino_config(threads: int) -> dict[str, Any]:
    """CPU-plugin properties: fp32 inference, latency mode (one stream), ``threads`` threads (0: torch's count).

    fp32 is explicit because the plugin's default precision is bf16 on CPUs that have bf16/AMX units,
    which would change spike decisions against onnxruntime and torch.
    """
    return {
        "INFERENCE_PRECISION_HINT": "f32",
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_NUM_THREADS": runtime_threads(threads),
    }


def make_stateful(ov: Any, model: Any, state_in: list[str], after: list[str | None], before: list[str | None]) -> Any:
    """``model`` with each ``state_in_k`` / ``state_out_k`` pair made one OpenVINO variable (``MakeStateful``).

    The state entries the host reads each step stay outputs, added before the pass: ``after[k]`` names an
    output of ``state_out_k``'s value (a neuron's spikes), ``before[k]`` one of ``state_in_k``'s (a delay's
    output this step); None adds nothing.
    """
    import openvino.opset13 as ops
    import openvino.passes

    outputs = {o.get_any_name(): o for o in model.outputs}
    params = {p.get_friendly_name(): p for p in model.get_parameters()}
    extra = []
    for k, name_in in enumerate(state_in):
        name_out = name_in.replace("state_in_", "state_out_", 1)
        for name, source in ((after[k], outputs[name_out].get_node().input_value(0)), (before[k], params[name_in])):
            if name is not None:
                result = ops.result(source)
                result.output(0).get_tensor().set_names({name})
                extra.append(result)
    model.add_results(extra)
    pairs = {name: name.replace("state_in_", "state_out_", 1) for name in state_in}
    manager = openvino.passes.Manager()
    manager.register_pass(openvino.passes.MakeStateful(pairs))
    manager.run_passes(model)
    return model


def _file_metadata(path: Path) -> dict[str, str]:
    """The ONNX file's metadata properties (read with the ``onnx`` package; weights not loaded)."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in proto.metadata_props}


class OpenVinoBackend(OnnxBackend):
    """The one-step ONNX graph in OpenVINO on the CPU, state fed back each frame.

    Everything but the runtime is :class:`~snnc.runtime.onnx_backend.OnnxBackend`'s: the Graph
    lowering, the file (with the taps energy counting needs) and the energy counted from each step's
    outputs (:meth:`~snnc.runtime.onnx_backend.OnnxBackend.activity_meter`, no reference pass).

    Args:
        model: the folded reference network (exported on :meth:`reset`).
        device: must be ``cpu`` (OpenVINO's CPU plugin; a CUDA device is refused).
        threads: OpenVINO ``INFERENCE_NUM_THREADS`` (0: as many as torch uses, see
            :func:`~snnc.export.ort_options.runtime_threads`).
        onnx_path: where to write the graph (default: a temporary folder removed on :meth:`close`).

    Raises:
        SnncError: openvino is not installed, or a non-CPU device was asked for.
    """

    name = "openvino"
    #: write the spike-fed integer convolutions as Q/DQ integer convolutions (int8 graphs; ``export_stream(qdq=)``)
    qdq = False

    def __init__(
        self, model: SpikingNet, device: torch.device, *, threads: int = 0, onnx_path: Path | None = None
    ) -> None:
        if torch.device(device).type != "cpu":
            raise SnncError(
                f"--backend openvino runs on the CPU (OpenVINO's CPU plugin), not --device {device}; "
                "use --backend torch or onnx for CUDA"
            )
        self._ov = require_openvino()
        super().__init__(model, torch.device("cpu"), threads=int(threads), onnx_path=onnx_path)
        self._request: Any = None
        self._outputs: list[str] = []
        self._state_out: list[str] = []
        #: per state entry k, the output holding it after / before a step (``spikes.<k>``, ``before.<k>``) or None
        self._after: list[str | None] = []
        self._before: list[str | None] = []
        self._variables: list[str] = []
        self._full_state: list[np.ndarray] | None = None
        #: state names (the file's ``snnc.state_names``): entry k names ``state_in_k`` / ``state_out_k``
        self.state_names: list[str] = []
        #: the convolutions written as integer (Q/DQ) convolutions (the file's ``snnc.qdq_convs``)
        self.qdq_convs: list[str] = []

    def _export(self, shape: tuple[int, ...], taps: list[str]) -> None:
        from snnc.export.onnx_writer import check_format, export_stream

        if self._path is None:
            self._tmp = tempfile.mkdtemp(prefix="snnc-stream-openvino-")
            self._path = Path(self._tmp) / "stream.onnx"
        start = time.perf_counter()
        info = export_stream(
            self.model, shape, self._path, taps=taps, graph=self._graph, qdq=self.qdq, target="openvino"
        )
        meta = _file_metadata(self._path)
        check_format(meta, self._path)
        self.qdq_convs = list(json.loads(meta.get("snnc.qdq_convs", "[]")))
        core = self._ov.Core()
        layout = list(info["state_layout"])
        self._after = [f"spikes.{k}" if field == "y" else None for k, (_, field) in enumerate(layout)]
        self._before = [f"before.{k}" if field == "d0" else None for k, (_, field) in enumerate(layout)]
        try:
            model = make_stateful(
                self._ov, core.read_model(str(self._path)), info["inputs"][1:], self._after, self._before
            )
            compiled = core.compile_model(model, "CPU", openvino_config(self._threads))
        except RuntimeError as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise SnncError(f"OpenVINO cannot compile the streaming graph: {first}", self._path) from None
        self._session = compiled  # what OnnxBackend.reset checks for "exported"
        self._input_x = info["inputs"][0]
        self._state_in = list(info["inputs"][1:])
        self._outputs = list(info["outputs"])
        self._n_values = len(self._outputs) - len(self._state_in)
        self._state_out = self._outputs[self._n_values :]
        self.state_names = list(json.loads(meta["snnc.state_names"]))
        self._state_shapes = [tuple(int(d) for d in s) for s in json.loads(meta["snnc.state_shapes"])]
        self._request = compiled.create_infer_request()
        by_name = {v.name: v for v in self._request.query_state()}
        # MakeStateful names each variable after its pair (parameter name + result name)
        self._variables = [f"{a}{b}" for a, b in zip(self._state_in, self._state_out, strict=True)]
        missing = [v for v in self._variables if v not in by_name]
        if missing:
            raise SnncError(f"OpenVINO's stateful model lacks the state variables {missing[:3]}", self._path)
        self.export_s += time.perf_counter() - start
        self._taps = list(taps)
        self._shape = shape

    def reset(self, x0: Tensor) -> None:
        """Export and compile for ``x0``'s shape (once; again when energy counting needs other taps), zero the state."""
        super().reset(x0)
        self._request.reset_state()  # every variable back to its initial value: zeros
        self._state = [np.zeros(s, dtype=np.float32) for s in self._state_shapes]
        self._full_state = None

    def step(self, x: Tensor) -> Tensor:
        """One inference, the state kept in OpenVINO's variables; energy counted from the spike outputs."""
        x = x.detach().cpu()
        if self._meter is not None:
            self._meter.flush()  # a deferred count reads the last step's outputs, which this inference overwrites
        request = self._request
        request.infer({self._input_x: np.ascontiguousarray(x.numpy(), dtype=np.float32)}, share_inputs=True)
        out = [request.get_tensor(name).data for name in self._outputs[: self._n_values]]
        # the state entries the host reads: spikes after the step, delays' outputs (their state before it)
        after: list[Any] = [request.get_tensor(n).data if n is not None else None for n in self._after]
        before: list[Any] = [request.get_tensor(n).data if n is not None else None for n in self._before]
        self._state = before  # what _count_step reads as the state before the step
        self._count_step(x, out, after)
        self._full_state = None
        return torch.from_numpy(out[0].copy())

    @property
    def state(self) -> list[np.ndarray]:
        """The state after the last step (entry k is :attr:`state_names` [k]; spikes are the ``*.y`` entries),
        read back from OpenVINO's variables (copies, made once per step when asked for)."""
        if self._full_state is None:
            by_name = {v.name: v for v in self._request.query_state()}
            self._full_state = [np.array(by_name[v].state.data, copy=True) for v in self._variables]
        return self._full_state

    def placement(self) -> list[dict[str, Any]]:
        """The whole network as one OpenVINO-compiled ONNX graph."""
        threads = self._threads or "default"
        version = self._ov.__version__.split("-")[0]
        precision = f"int8, {len(self.qdq_convs)} int8 convolutions" if self.qdq else "fp32"
        return [
            {
                "part": "network",
                "runs_on": f"OpenVINO {version} (CPU plugin, {precision}, threads {threads})",
                "detail": f"one-step graph {self._path.name if self._path else '(not exported yet)'}, "
                f"{len(self._state_in) if self._session is not None else '?'} state tensors held in OpenVINO",
            }
        ]

    def close(self) -> None:
        """Drop the compiled model and the temporary folder."""
        self._request = None
        self._full_state = None
        super().close()


class Int8OpenVinoBackend(Int8OnnxBackend, OpenVinoBackend):
    """The integer graph (``--precision int8``) in OpenVINO, its spike-fed convolutions in int8 (module docstring).

    :class:`~snnc.runtime.int8_backend.Int8OnnxBackend`'s integer graph, host input quantisation and head,
    :class:`OpenVinoBackend`'s runtime (stateful, energy from the step outputs), the file written
    with ``qdq=True``. Same integers as ``--backend torch|onnx --precision int8``, bit for bit.

    Args:
        model: the folded reference network.
        device: must be ``cpu``.
        fields: the network's int8 fields (:class:`snnc.quant.QuantFields`).
        threads: OpenVINO ``INFERENCE_NUM_THREADS`` (0: as many as torch uses).
        onnx_path: where to write the graph (default: a temporary folder removed on :meth:`close`).
    """

    name = "openvino"
    qdq = True
