"""Per-frame energy of a stream, from the one counting pass.

:class:`EnergyMeter` keeps an :class:`~snnc.energy.ops.OpsRecorder` attached to
a torch network while frames are processed; after each frame,
:meth:`EnergyMeter.frame` returns that frame's :class:`~snnc.energy.report.EnergyReport`
(the difference of two snapshots of the same pass) and :meth:`EnergyMeter.total`
the report over every frame so far. Nothing is counted twice: per-frame and
total numbers come from the same hooks.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from torch import nn

from snnc.energy.costs import DEFAULT_COSTS, EnergyCosts
from snnc.energy.models import check_energy_model
from snnc.energy.ops import OpsRecorder, OpsReport
from snnc.energy.report import EnergyReport, energy_report

__all__ = ["EnergyMeter"]


class EnergyMeter:
    """Counts ops of ``model`` while active (context manager) and reports energy per frame.

    Args:
        model: the torch network that processes the frames.
        costs: per-op energies.
        count: ``rate`` or ``events`` (records fan-out events too).
        steps_per_frame: time steps per frame (1 for stereo streaming).
        neurons: also record each neuron layer's firing rate.
        mac_layers: layer names forced to count as real-valued input.
        energy_model: ``paper``, ``memory`` or ``lemaire`` (:mod:`snnc.energy.models`);
            ``memory`` records fan-out events (its weight reads), and every model other than
            ``paper`` records the neuron layers (their updates and state traffic).
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        costs: EnergyCosts = DEFAULT_COSTS,
        count: str = "rate",
        steps_per_frame: float = 1.0,
        neurons: bool = False,
        mac_layers: Iterable[str] = (),
        energy_model: str = "paper",
    ) -> None:
        self.energy_model = check_energy_model(energy_model)
        self.model = model
        self.costs = costs
        self.count = count
        self.steps_per_frame = steps_per_frame
        self.mac_layers = tuple(mac_layers)
        self.frames = 0
        events = count == "events" or energy_model == "memory"
        self._recorder = OpsRecorder(
            model, fanout="input" if events else None, neurons=neurons or energy_model != "paper"
        )
        self._last: OpsReport | None = None
        self._active = False

    def __enter__(self) -> EnergyMeter:
        self._recorder.__enter__()
        self._active = True
        return self

    def __exit__(self, *exc: Any) -> None:
        self._recorder.__exit__(*exc)
        self._active = False

    def _report(self, ops: OpsReport, frames: int) -> EnergyReport:
        return energy_report(
            ops,
            frames=frames,
            steps_per_frame=self.steps_per_frame,
            costs=self.costs,
            count=self.count,
            mac_layers=self.mac_layers,
            energy_model=self.energy_model,
        )

    def frame(self) -> EnergyReport:
        """Close the current frame: the report of everything counted since the previous call."""
        now = self._recorder.snapshot()
        delta = now.minus(self._last)
        self._last = now
        self.frames += 1
        return self._report(delta, 1)

    def ops(self) -> OpsReport:
        """The raw counting pass so far (every frame)."""
        return self._recorder.snapshot()

    def total(self) -> EnergyReport:
        """Report per frame averaged over every closed frame (at least one frame is assumed)."""
        return self._report(self._recorder.snapshot(), max(self.frames, 1))
