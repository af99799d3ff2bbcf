"""The streaming engine: frames in, one network step per frame, disparity + energy + metrics out.

For each frame (:mod:`snnc.runtime.frames`): the SBT stacks go to the backend
(one step, state carried), the matching cost goes through the sub-pixel
estimator (:func:`snnc.models.stereo.estimate_disparity`), the disparity is
converted to **unscaled pixels** (``fB / depth``: the network's scaled units
divided by ``DISPARITY_SCALE`` = 7), energy comes from the one op-counting
pass (:class:`snnc.energy.meter.EnergyMeter`), and with ground truth the
per-frame metrics of :mod:`snnc.data.metrics` are computed.

Timing per frame: ``read_s`` (events from HDF5 + SBT encoding), ``infer_s``
(backend step + estimator, device synchronised), ``energy_s`` (closing the
frame's energy report: the counting from the step's own outputs, which the
backend defers to it (:meth:`snnc.energy.meter.ActivityMeter.defer`), or a
separate pass on the reference network for a backend that neither counts its
outputs nor runs hooks; hooks count inside the step). ``fps`` counts all three,
``infer_fps`` the backend alone.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from snnc.data import layout
from snnc.data.metrics import MetricAccumulator
from snnc.data.mvsec import MVSECRecording
from snnc.data.windows import WindowStats
from snnc.energy.costs import DEFAULT_COSTS, EnergyCosts
from snnc.energy.meter import ActivityMeter, EnergyMeter
from snnc.energy.report import EnergyReport
from snnc.errors import SnncError
from snnc.models.stereo import estimate_disparity
from snnc.runtime.base import Backend
from snnc.runtime.frames import Frame, iter_frames
from snnc.runtime.model import LoadedNetwork

__all__ = ["FrameResult", "StreamSummary", "StreamEngine", "check_stereo_network"]


@dataclass
class FrameResult:
    """Everything computed for one frame.

    Attributes:
        index, t: frame number and time (s).
        disparity: float32 ``(H, W)`` predicted disparity in unscaled pixels.
        events: events in the window per camera.
        ac, mac, energy_j: this frame's counts and energy (NaN when energy is off).
        metrics: :func:`snnc.data.metrics.frame_metrics` result (None: no gt / no valid pixel).
        gt_depth: the frame's depth image when there is ground truth.
        read_s, infer_s, energy_s: seconds (see module docstring).
        left_events: the left camera's input stack summed over its SBT bins (signed event counts).
    """

    index: int
    t: float
    disparity: np.ndarray
    events: tuple[int, int]
    ac: float
    mac: float
    energy_j: float
    metrics: dict[str, Any] | None
    gt_depth: np.ndarray | None
    gt_index: int | None
    read_s: float
    infer_s: float
    energy_s: float
    left_events: np.ndarray | None = None  # (H, W) left camera's SBT stack summed over its bins


@dataclass
class StreamSummary:
    """Totals over a stream (filled as frames pass)."""

    frames: int = 0
    read_s: float = 0.0
    infer_s: float = 0.0
    energy_s: float = 0.0
    ac: float = 0.0
    mac: float = 0.0
    energy_j: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)
    energy: EnergyReport | None = None

    @property
    def fps(self) -> float:
        """Frames per second of the whole pipeline: reading + encoding + inference + estimator + energy counting
        (``energy_s`` included: what a user waits for)."""
        s = self.read_s + self.infer_s + self.energy_s
        return self.frames / s if s > 0 else float("nan")

    @property
    def infer_fps(self) -> float:
        """Frames per second of the backend alone (network step + estimator)."""
        return self.frames / self.infer_s if self.infer_s > 0 else float("nan")

    def per_frame(self, value: float) -> float:
        """``value`` averaged over frames (NaN without frames)."""
        return value / self.frames if self.frames else float("nan")


def check_stereo_network(net: LoadedNetwork, n_frames: int) -> None:
    """Raise a one-line :class:`SnncError` if ``net`` cannot take SBT stacks of ``n_frames`` per camera."""
    from snnc.models.families import find

    fam = find(net.family)
    if fam is None or not fam.stereo_input:
        raise SnncError(
            f"{net.source}: a {net.family} network cannot stream stereo recordings "
            f"(snnc stream needs a spikedhs-stereo network)"
        )
    c = int(getattr(net.genotype, "in_channels", n_frames))
    if c != n_frames:
        raise SnncError(
            f"{net.source}: the network takes {c} SBT frames per camera (in_channels), but the "
            f"stream encodes {n_frames} (5 x 10 ms windows per the MVSEC SBT encoding)"
        )


class StreamEngine:
    """Runs a backend over a recording frame by frame (see module docstring).

    Reusable: every :meth:`run` starts from a new summary, energy meter and
    backend state (``backend.reset`` on its first frame), so two runs over the
    same frames give the same results.

    Args:
        net: the loaded reference network (its genotype gives ``disp_step``).
        backend: the backend that computes each frame.
        energy: count ops and energy per frame.
        costs, count, energy_model: energy counting (see :mod:`snnc.energy.report`, :mod:`snnc.energy.models`).
        window, n_frames: SBT encoding.
    """

    def __init__(
        self,
        net: LoadedNetwork,
        backend: Backend,
        *,
        energy: bool = True,
        costs: EnergyCosts = DEFAULT_COSTS,
        count: str = "rate",
        energy_model: str = "paper",
        window: float = 0.05,
        n_frames: int = 5,
    ) -> None:
        check_stereo_network(net, n_frames)
        self.net = net
        self.backend = backend
        self.window = window
        self.n_frames = n_frames
        self.disp_step = float(getattr(net.model, "disp_step", 2.0))
        self.count = count
        self.energy_model = energy_model
        self.summary = StreamSummary()
        self.window_stats: WindowStats | None = None  # empty windows / dropped events of the last run
        self._meter: EnergyMeter | ActivityMeter | None = None
        self._shadow = False
        self._meter_args: tuple[torch.nn.Module, EnergyCosts] | None = None
        if energy:
            target = backend.live_model if backend.live_model is not None else net.model
            self._shadow = backend.live_model is None
            self._meter_args = (target, costs)
            self._meter = self._new_meter()
            self._shadow = self._shadow and not isinstance(self._meter, ActivityMeter)
        self._shadow_state: tuple[torch.Tensor, ...] = ()

    def _new_meter(self) -> EnergyMeter | ActivityMeter | None:
        if self._meter_args is None:
            return None
        target, costs = self._meter_args
        own = self.backend.activity_meter(costs=costs, count=self.count, energy_model=self.energy_model)
        if own is not None:  # counted from the backend's own step outputs (its spikes): no second pass
            return own
        return EnergyMeter(target, costs=costs, count=self.count, steps_per_frame=1.0, energy_model=self.energy_model)

    @property
    def energy_mode(self) -> str:
        """``live`` (hooks on the running network), ``step outputs`` (the backend's spikes), ``reference pass``
        or ``off``."""
        if self._meter is None:
            return "off"
        if isinstance(self._meter, ActivityMeter):
            return "step outputs"
        return "reference pass" if self._shadow else "live"

    def _shadow_step(self, x: torch.Tensor) -> None:
        model = self.net.model
        with torch.no_grad():
            if not self._shadow_state:
                self._shadow_state = model.init_state(x)
            _, self._shadow_state = model.step(x, self._shadow_state)

    def _finish(
        self, frame: Frame, x: torch.Tensor, cost: torch.Tensor, read_s: float, infer_s: float, acc: MetricAccumulator
    ) -> FrameResult:
        """Estimator, energy and metrics of one frame whose cost is known."""
        t1 = time.perf_counter()
        disp = estimate_disparity(cost.float(), disp_step=self.disp_step)[0]
        self.backend.synchronize()
        scaled = disp.cpu().numpy()
        disparity = (scaled / layout.DISPARITY_SCALE).astype(np.float32)
        infer_s += time.perf_counter() - t1
        energy_s = 0.0
        ac = mac = energy_j = float("nan")
        meter = self._meter
        if meter is not None:
            t2 = time.perf_counter()
            if self._shadow:
                self._shadow_step(x)
            rep = meter.frame()
            ac, mac, energy_j = rep.ac, rep.mac, rep.energy_j
            energy_s = time.perf_counter() - t2
        metrics = acc.update(scaled, frame.gt_depth) if frame.gt_depth is not None else None
        s = self.summary
        s.frames += 1
        s.read_s += read_s
        s.infer_s += infer_s
        s.energy_s += energy_s
        if meter is not None:
            s.ac += ac
            s.mac += mac
            s.energy_j += energy_j
        return FrameResult(
            frame.index,
            frame.t,
            disparity,
            frame.events,
            ac,
            mac,
            energy_j,
            metrics,
            frame.gt_depth,
            frame.gt_index,
            read_s,
            infer_s,
            energy_s,
            x[0, 0].sum(dim=0).numpy().astype(np.float32),
        )

    def run(
        self,
        recording: MVSECRecording,
        times: np.ndarray,
        *,
        with_gt: bool,
        metric_kwargs: dict[str, Any] | None = None,
        stats: WindowStats | None = None,
    ) -> Iterator[FrameResult]:
        """Yield a :class:`FrameResult` per frame time, in order; :attr:`summary` is updated as frames pass.

        With a pipelined backend (``latency`` > 0) a frame's result comes once the
        backend has answered it; the last ones after the stream ends (``flush``).
        ``stats`` counts the windows (:attr:`window_stats`; a new one when None).
        """
        # each run starts afresh (the engine is reusable): new summary, meter and reference state
        self.summary = StreamSummary()
        self._meter = self._new_meter()
        self._shadow_state = ()
        acc = MetricAccumulator(**(metric_kwargs or {}))
        self.window_stats = stats if stats is not None else WindowStats(recording.data_path)
        frames = iter_frames(
            recording, times, with_gt=with_gt, window=self.window, n_frames=self.n_frames, stats=self.window_stats
        )
        pending: deque[tuple[Frame, torch.Tensor, float, float]] = deque()
        meter = self._meter
        if meter is not None:
            meter.__enter__()
        try:
            started = False
            while True:
                t0 = time.perf_counter()
                frame: Frame | None = next(frames, None)
                if frame is None:
                    break
                x = torch.from_numpy(frame.x).to(torch.float32).unsqueeze(0)
                read_s = time.perf_counter() - t0
                if not started:
                    self.backend.reset(x)
                    started = True
                t1 = time.perf_counter()
                cost = self.backend.step(x)
                pending.append((frame, x, read_s, time.perf_counter() - t1))
                if cost is not None:
                    f, xf, r_s, i_s = pending.popleft()
                    yield self._finish(f, xf, cost, r_s, i_s, acc)
            if pending:
                t1 = time.perf_counter()
                rest = self.backend.flush()
                flush_s = (time.perf_counter() - t1) / max(len(rest), 1)
                if len(rest) != len(pending):
                    raise RuntimeError(
                        f"backend {self.backend.name} returned {len(rest)} costs at the end for "
                        f"{len(pending)} frames in flight"
                    )
                for cost in rest:
                    f, xf, r_s, i_s = pending.popleft()
                    yield self._finish(f, xf, cost, r_s, i_s + flush_s, acc)
        finally:
            if meter is not None:
                meter.__exit__(None, None, None)
                if meter.frames:
                    self.summary.energy = meter.total()
            self.summary.metrics = acc.result() if with_gt else {}
