"""``snnc stream --check-against BACKEND``: a second backend on the same frames, and how far the two agree.

:class:`CheckedBackend` runs the stream's backend and a reference backend (same
network, same precision) on every frame; the engine sees only the first. The
reference's cost for each answered frame goes through the engine's own estimator
(:func:`snnc.models.stereo.estimate_disparity`, same ``disp_step``, same scaling),
and :class:`Agreement` counts the pixels whose disparity differs (bit for bit,
and by more than 0.5 px) and the metrics of both against the ground truth, so
the report gives the 1PA difference. The reference's time counts in the
stream's inference time. Energy is the stream backend's alone: its own meter
(:meth:`CheckedBackend.activity_meter`) and, for a partitioned backend (hybrid,
lava), its energy per part (``energy_parts`` / ``part_of``).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
import torch
from torch import Tensor

from snnc.data import layout
from snnc.data.metrics import MetricAccumulator
from snnc.energy.costs import EnergyCosts
from snnc.energy.meter import ActivityMeter
from snnc.errors import SnncError
from snnc.models.stereo import estimate_disparity
from snnc.runtime.base import Backend

__all__ = ["CheckedBackend", "Agreement"]


class CheckedBackend(Backend):
    """The stream's backend, with a reference backend run alongside (module docstring)."""

    def __init__(self, primary: Backend, reference: Backend) -> None:
        if reference.latency != 0:
            raise SnncError(f"--check-against {reference.name}: the reference must answer every frame at once")
        self.primary, self.reference = primary, reference
        self.name = primary.name
        self.latency = primary.latency
        self.device = primary.device
        self.live_model = primary.live_model
        self._waiting: deque[Tensor] = deque()
        self._answered: deque[Tensor] = deque()

    def reset(self, x0: Tensor) -> None:
        """Reset both backends."""
        self.primary.reset(x0)
        self.reference.reset(x0)
        self._waiting.clear()
        self._answered.clear()

    def step(self, x: Tensor) -> Tensor | None:
        """Both backends on ``x``; the stream backend's cost (the reference's is kept for :meth:`take_reference`)."""
        cost = self.primary.step(x)
        ref = self.reference.step(x)
        assert ref is not None  # latency 0 (checked at construction)
        self._waiting.append(ref.detach().cpu())
        if cost is not None:
            self._answered.append(self._waiting.popleft())
        return cost

    def flush(self) -> list[Tensor]:
        """The stream backend's costs still in flight (their references become answered too)."""
        rest = self.primary.flush()
        self._answered.extend(self._waiting)
        self._waiting.clear()
        return rest

    def activity_meter(self, *, costs: EnergyCosts, count: str, energy_model: str) -> ActivityMeter | None:
        """The stream backend's own meter (the reference's ops are not counted)."""
        return self.primary.activity_meter(costs=costs, count=count, energy_model=energy_model)

    def __getattr__(self, name: str) -> Any:
        """A partitioned stream backend's ``energy_parts`` / ``part_of`` (AttributeError when it has none)."""
        if name in ("energy_parts", "part_of") and "primary" in self.__dict__:
            return getattr(self.__dict__["primary"], name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def take_reference(self) -> Tensor:
        """The reference cost of the oldest frame the stream backend has answered."""
        return self._answered.popleft()

    def placement(self) -> list[dict[str, Any]]:
        """The stream backend's placement (the reference is reported by :class:`Agreement`)."""
        return self.primary.placement()

    def synchronize(self) -> None:
        """Wait for both backends."""
        self.primary.synchronize()
        self.reference.synchronize()

    def close(self) -> None:
        """Close both backends."""
        try:
            self.primary.close()
        finally:
            self.reference.close()


class Agreement:
    """Pixels and metrics of the stream's disparities against the reference's (module docstring).

    Args:
        reference: the reference backend's name (reported).
        disp_step: the engine's estimator step.
    """

    def __init__(self, reference: str, disp_step: float, **metric_kwargs: Any) -> None:
        self.reference = reference
        self.disp_step = disp_step
        self.frames = 0
        self.pixels = 0
        self.differing = 0
        self.over_half_px = 0
        self.max_abs_px = 0.0
        self._acc = MetricAccumulator(**metric_kwargs)
        self._mine = MetricAccumulator(**metric_kwargs)

    def add(
        self,
        disparity: np.ndarray[Any, Any],
        reference_cost: Tensor,
        gt_depth: np.ndarray[Any, Any] | None,
        metrics: Any = None,
    ) -> None:
        """One frame: the stream's disparity (px) and metrics (the engine's), the reference backend's cost for it."""
        with torch.no_grad():
            scaled = estimate_disparity(reference_cost.float(), disp_step=self.disp_step)[0].cpu().numpy()
        ref = (scaled / layout.DISPARITY_SCALE).astype(np.float32)
        diff = np.abs(disparity.astype(np.float64) - ref.astype(np.float64))
        self.frames += 1
        self.pixels += int(diff.size)
        self.differing += int((diff != 0).sum())
        self.over_half_px += int((diff > 0.5).sum())
        self.max_abs_px = max(self.max_abs_px, float(diff.max()) if diff.size else 0.0)
        if gt_depth is not None:
            self._acc.update(scaled, gt_depth)
            self._mine.add(metrics)

    def result(self) -> dict[str, Any]:
        """``{reference, frames, pixels, pixels_differing, pixels_over_half_px, max_abs_px, one_pixel_accuracy...}``."""
        out: dict[str, Any] = {
            "reference": self.reference,
            "frames": self.frames,
            "pixels": self.pixels,
            "pixels_differing": self.differing,
            "fraction_differing": self.differing / self.pixels if self.pixels else float("nan"),
            "pixels_over_half_px": self.over_half_px,
            "max_abs_px": self.max_abs_px,
        }
        if self._acc.frames_used:
            ref, mine = self._acc.result(), self._mine.result()
            key = "one_pixel_accuracy"
            out["reference_one_pixel_accuracy"] = ref.get(key)
            out["one_pixel_accuracy"] = mine.get(key)
            out["one_pixel_accuracy_difference"] = float(mine[key]) - float(ref[key])
        return out
