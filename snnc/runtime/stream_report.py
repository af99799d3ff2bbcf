"""What ``snnc stream`` reports about a run: the root attributes of ``results.h5`` and the summary object.

:func:`result_attrs` gives the attributes stored when the results file is opened
(see :mod:`snnc.runtime.results`); :func:`stream_summary` the overall numbers once
the engine has run, printed by ``snnc stream --json`` and stored as the file's
``summary`` attribute. Both read the run from the :class:`StreamEngine` (network,
backend, energy settings, totals) and the :class:`StreamSetup` the command
resolved; the CLI only prints them. Non-finite numbers stay ``nan`` here (pass the
summary through :func:`snnc.fileio.json_safe` to write JSON).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from snnc.data import layout
from snnc.data.metrics import METRIC_NAMES
from snnc.data.mvsec import MVSECRecording
from snnc.energy.costs import EnergyCosts
from snnc.runtime.engine import StreamEngine
from snnc.runtime.results import DISPARITY_UNITS

__all__ = ["StreamSetup", "result_attrs", "stream_summary"]


@dataclass(frozen=True)
class StreamSetup:
    """What a stream was asked to run, as the command resolved it.

    Attributes:
        data_file: the recording's data file, as the user named it.
        backend: the backend's name (``--backend``; ``hybrid`` for a partition manifest).
        device: where torch runs (``str`` of the resolved device).
        clock: the frame clock of :func:`snnc.runtime.frames.frame_times` (``gt`` or ``20 Hz``).
        costs: the energy-per-op table the engine prices ops with.
        precision: ``fp32`` or ``int8``.
        out_file: the results file, if one is written.
    """

    data_file: Path
    backend: str
    device: str
    clock: str
    costs: EnergyCosts
    precision: str = "fp32"
    out_file: Path | None = None

    @property
    def with_gt(self) -> bool:
        """Whether frames follow the ground-truth depth timestamps (and so carry metrics)."""
        return self.clock == "gt"


def result_attrs(engine: StreamEngine, setup: StreamSetup, recording: MVSECRecording) -> dict[str, Any]:
    """Root attributes of ``results.h5``: units, model, backend, device, clock, files, geometry, energy settings."""
    return {
        "disparity_units": DISPARITY_UNITS,
        "model": engine.net.describe(),
        "backend": setup.backend,
        "device": setup.device,
        "clock": setup.clock,
        "data_file": str(setup.data_file),
        "gt_file": str(recording.gt_path) if recording.gt_path else "",
        "fb": layout.FB_INDOOR_FLYING,
        "disparity_scale": layout.DISPARITY_SCALE,
        "energy_costs": setup.costs.to_dict(),
        "energy_count": engine.count if engine.energy_mode != "off" else "off",
        "energy_model": engine.energy_model,
        "precision": setup.precision,
    }


def stream_summary(
    engine: StreamEngine,
    setup: StreamSetup,
    recording: MVSECRecording,
    times: np.ndarray[Any, Any],
    *,
    wall_s: float,
    check: dict[str, Any] | None = None,
    video: tuple[Path, int] | None = None,
) -> dict[str, Any]:
    """The overall numbers of the engine's last run over ``times`` of ``recording``.

    Args:
        engine: the engine, after :meth:`StreamEngine.run` has been consumed.
        setup: what was run.
        recording: the recording streamed (its ground-truth file, rectification and window statistics).
        times: the frame times streamed.
        wall_s: seconds the whole command took so far.
        check: :meth:`snnc.runtime.check.Agreement.result` with ``--check-against``.
        video: the video written and its frame count.

    Returns:
        ``frames``, ``fps``/``infer_fps``, per-frame energy/AC/MAC (None with energy off), the metrics (None
        without ground truth), what ran where, timings and settings; with energy on also ``spike_input_rate``,
        ``silent``, ``ann_energy_j_per_frame`` and, for a partitioned backend, ``energy_parts``; then
        ``precision``, ``check``, ``gt_file``, ``rectification``, ``windows`` and ``windows_note``, and
        ``video``/``video_frames`` when a video was written. Keys always in this order.
    """
    s = engine.summary
    energy = engine.energy_mode != "off"
    with_gt = setup.with_gt
    out: dict[str, Any] = {
        "frames": s.frames,
        "fps": s.fps,
        "infer_fps": s.infer_fps,
        "energy_j_per_frame": s.per_frame(s.energy_j) if energy else None,
        "ac_per_frame": s.per_frame(s.ac) if energy else None,
        "mac_per_frame": s.per_frame(s.mac) if energy else None,
        **{name: (s.metrics.get(name) if with_gt else None) for name in METRIC_NAMES},
        "frames_with_gt": s.metrics.get("frames_used") if with_gt else 0,
        "backend": setup.backend,
        "device": setup.device,
        "model": engine.net.describe(),
        "trained": engine.net.trained,
        "clock": setup.clock,
        "t_first": float(times[0]) if len(times) else None,
        "t_last": float(times[-1]) if len(times) else None,
        "energy_count": engine.energy_mode,
        "ac_count": engine.count if energy else None,
        "energy_model": engine.energy_model,
        "energy_costs": setup.costs.name,
        "read_s": s.read_s,
        "infer_s": s.infer_s,
        "energy_s": s.energy_s,
        "wall_s": wall_s,
        "placement": engine.backend.placement(),
        "out": str(setup.out_file) if setup.out_file else None,
    }
    if s.energy is not None:
        out["spike_input_rate"] = s.energy.spike_input_rate
        out["silent"] = s.energy.silent
        out["ann_energy_j_per_frame"] = s.energy.ann_energy_j
        parts: Callable[..., list[dict[str, Any]]] | None = getattr(engine.backend, "energy_parts", None)
        if callable(parts):  # a partitioned backend (hybrid, lava): energy per part
            out["energy_parts"] = parts(s.energy)
    stats = engine.window_stats
    out.update(
        precision=setup.precision,
        check=check,
        gt_file=str(recording.gt_path) if recording.gt_path else None,
        rectification=recording.rectification_line(),
        windows=stats.to_dict() if stats else None,
        windows_note=stats.summary_line() if stats else "",
    )
    if video is not None:
        out.update(video=str(video[0]), video_frames=video[1])
    return out
