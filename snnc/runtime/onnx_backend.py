"""ONNX backend: the export helper's one-step streaming graph in onnxruntime, state fed back each frame.

At start the folded network is exported once for the stream's frame shape
with :func:`snnc.export.onnx_writer.export_stream` (inputs ``x``,
``state_in_k``; outputs ``y`` = matching cost, ``state_out_k``) into a
temporary folder (or ``onnx_path`` to keep it). Every frame runs the session
once and feeds ``state_out_k`` back as ``state_in_k``.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from snnc.errors import SnncError
from snnc.models.base import SpikingNet
from snnc.runtime.base import Backend

__all__ = ["OnnxBackend"]


class OnnxBackend(Backend):
    """onnxruntime on CPU (or CUDA when ``device`` is cuda and the CUDA provider is installed).

    Args:
        model: the folded reference network (exported on :meth:`reset`).
        device: ``cpu`` or ``cuda``.
        threads: intra-op threads (0: onnxruntime default).
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

    def _export(self, shape: tuple[int, ...]) -> None:
        import time

        import onnxruntime as ort

        from snnc.export.onnx_writer import export_stream
        from snnc.export.ort_options import session_options

        if self._path is None:
            self._tmp = tempfile.mkdtemp(prefix="snnc-stream-onnx-")
            self._path = Path(self._tmp) / "stream.onnx"
        start = time.perf_counter()
        info = export_stream(self.model, shape, self._path, graph=self._graph(shape))
        self._session = ort.InferenceSession(str(self._path), session_options(self._threads), providers=self._providers)
        self.export_s = time.perf_counter() - start
        self._state_in = [n for n in info["inputs"] if n != "x"]
        meta = self._session.get_modelmeta().custom_metadata_map
        import json

        self._state_shapes = [tuple(s) for s in json.loads(meta["snnc.state_shapes"])]
        self._shape = shape

    def _graph(self, shape: tuple[int, ...]) -> Any:
        """The export Graph to trace for ``shape``; None: the folded network's own (int8 backends override it)."""
        return None

    def reset(self, x0: Tensor) -> None:
        """Export for ``x0``'s shape (once) and zero the state."""
        shape = tuple(int(s) for s in x0.shape)
        if self._session is None or shape != self._shape:
            self._export(shape)
        self._state = [np.zeros(s, dtype=np.float32) for s in self._state_shapes]

    def step(self, x: Tensor) -> Tensor:
        """Run the one-step graph; feed the state outputs back."""
        feed = {"x": x.detach().cpu().numpy().astype(np.float32, copy=False)}
        feed.update(zip(self._state_in, self._state, strict=False))
        out = self._session.run(None, feed)
        self._state = out[1:]
        return torch.from_numpy(out[0])

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
