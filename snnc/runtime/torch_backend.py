"""Torch eager backend: ``model.step`` on CPU or CUDA with the explicit state carried across frames."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from snnc.models.base import SpikingNet
from snnc.runtime.base import Backend

__all__ = ["TorchBackend"]


class TorchBackend(Backend):
    """Runs the folded network eagerly; ``live_model`` is the network itself (energy hooks attach to it)."""

    name = "torch"

    def __init__(self, model: SpikingNet, device: torch.device) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.live_model = self.model
        self._state: tuple[Tensor, ...] = ()

    def reset(self, x0: Tensor) -> None:
        """Zero state for frames shaped like ``x0``."""
        with torch.no_grad():
            self._state = self.model.init_state(x0.to(self.device))

    def step(self, x: Tensor) -> Tensor:
        """One network step on the device; returns the cost on the device."""
        with torch.no_grad():
            cost, self._state = self.model.step(x.to(self.device, non_blocking=True), self._state)
        return cost

    def placement(self) -> list[dict[str, Any]]:
        """Everything on one torch device."""
        layers = sum(
            1 for m in self.model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.Linear))
        )
        return [{"part": "network", "runs_on": f"torch eager ({self.device})", "synaptic_layers": layers}]
