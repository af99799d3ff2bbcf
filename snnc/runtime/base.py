"""The backend interface of the streaming engine: one network step per frame, state kept inside.

A backend runs the whole stereo network for one frame: ``step(x)`` takes the
frame's SBT stacks ``(1, 2, C, H, W)`` float32 and returns the matching cost
``(1, D, H, W)`` (lower = better) as a CPU or device tensor, carrying the
network state from one call to the next (``reset`` returns it to rest).
``placement()`` says what runs where, for the report.

A backend with ``latency = n`` answers a frame ``n`` frames later (a
pipelined target such as Lava, whose every layer adds one time step): its
``step`` returns ``None`` until the pipeline is full and then the cost of the
frame given ``n`` calls earlier; ``flush()`` returns the costs still in flight
at the end of the stream.

``live_model`` is the torch module whose synaptic layers actually compute the
frame, when there is one (the torch backend): the energy meter hooks it
directly. Other backends leave it ``None`` and the engine counts ops on the
reference torch network fed the same frames (a separate pass, not timed as
inference), unless they count from their own step outputs: :meth:`Backend.activity_meter`
returns an :class:`~snnc.energy.meter.ActivityMeter` the backend feeds from every step's
spikes (the onnx and hybrid backends), so no second pass runs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from snnc.energy.costs import EnergyCosts
from snnc.energy.meter import ActivityMeter
from snnc.energy.report import EnergyReport, LayerEnergy

__all__ = ["Backend", "BACKENDS", "energy_by_part"]

#: Backend names accepted by ``snnc stream --backend``.
BACKENDS: tuple[str, ...] = ("torch", "onnx", "openvino", "lava", "hybrid")


class Backend(ABC):
    """One way of running the network frame by frame (see module docstring)."""

    name: str = "?"
    live_model: nn.Module | None = None
    device: torch.device = torch.device("cpu")
    latency: int = 0

    @abstractmethod
    def reset(self, x0: Tensor) -> None:
        """Put the network state at rest for frames shaped like ``x0``."""

    @abstractmethod
    def step(self, x: Tensor) -> Tensor | None:
        """One frame: SBT ``(1, 2, C, H, W)`` -> cost ``(1, D, H, W)`` (of ``latency`` frames ago, or None)."""

    def flush(self) -> list[Tensor]:
        """Costs of the frames still in the pipeline at the end of the stream (oldest first)."""
        return []

    @abstractmethod
    def placement(self) -> list[dict[str, Any]]:
        """What runs where: ``[{"part", "runs_on", "layers"/"detail"...}, ...]``."""

    def activity_meter(self, *, costs: EnergyCosts, count: str, energy_model: str) -> ActivityMeter | None:
        """A meter this backend feeds from its own steps' outputs (None: hook ``live_model`` or a reference pass).

        Called by the engine at the start of each run, before :meth:`reset`.
        """
        return None

    def synchronize(self) -> None:
        """Wait for queued device work (for timing)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def close(self) -> None:  # noqa: B027 (a no-op default: a backend holding no resources need not override it)
        """Release resources (temporary files, sessions)."""


def energy_by_part(
    report: EnergyReport, part_of: Callable[[LayerEnergy], str], runs_on: dict[str, str]
) -> list[dict[str, Any]]:
    """Per part of a partitioned network: layers, dense ops, ACs, MACs and energy per frame (papers' rule),
    plus ``dense_energy_j``: the energy if the part ran densely (every dense op a MAC, as a CPU/GPU does)."""
    parts = report.by_part(part_of)
    return [
        {
            "part": name,
            "runs_on": runs_on.get(name, "?"),
            **parts[name],
            "dense_energy_j": parts[name]["dense_ops"] * report.costs.mac_j,
        }
        for name in runs_on
        if name in parts
    ]
