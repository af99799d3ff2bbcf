"""Streaming inference: frames of a recording through a backend, one network step per frame.

* :mod:`.frames` — frame clock and on-the-fly SBT encoding (bounded memory);
* :mod:`.model` — load a preset / genotype / checkpoint as a folded network;
* :mod:`.base` and one module per backend: :mod:`.torch_backend`,
  :mod:`.onnx_backend`, :mod:`.openvino_backend`, :mod:`.lava_backend`, :mod:`.hybrid_backend`;
* :mod:`.engine` — the loop (estimator, energy per frame, metrics);
* :mod:`.results` / :mod:`.pngs` — ``results.h5`` and per-frame pictures.
"""

from __future__ import annotations

from typing import Any

import torch

from snnc.errors import SnncError
from snnc.runtime.base import BACKENDS, Backend
from snnc.runtime.model import LoadedNetwork

__all__ = ["BACKENDS", "Backend", "make_backend"]


def make_backend(name: str, net: LoadedNetwork, device: torch.device, **options: Any) -> Backend:
    """The backend called ``name`` for ``net`` (options go to its constructor).

    Raises:
        SnncError: unknown backend name, or the backend cannot run this network / device.
    """
    if name == "torch":
        from snnc.runtime.torch_backend import TorchBackend

        return TorchBackend(net.model, device, **options)
    if name == "onnx":
        from snnc.runtime.onnx_backend import OnnxBackend

        return OnnxBackend(net.model, device, **options)
    if name == "openvino":
        from snnc.runtime.openvino_backend import OpenVinoBackend

        return OpenVinoBackend(net.model, device, **options)
    if name == "lava":
        from snnc.runtime.lava_backend import LavaBackend

        return LavaBackend(net.model, device, **options)
    if name == "hybrid":
        from snnc.runtime.hybrid_backend import HybridBackend

        return HybridBackend(net.model, device, **options)
    raise SnncError(f"unknown backend {name!r} (expected one of {', '.join(BACKENDS)})")
