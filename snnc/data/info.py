"""Summary statistics of an MVSEC recording (backs ``snnc data info``).

Everything is computed with bounded memory: event counts come from dataset
shapes and time range from the sorted-time index; depth statistics read one
depth frame at a time from at most ``max_depth_frames`` evenly spaced frames.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from snnc.data import layout
from snnc.data.disparity import depth_to_disparity
from snnc.data.mvsec import MVSECRecording


def _rate(count: float, duration: float) -> float:
    return float(count) / duration if duration > 0 and math.isfinite(duration) else math.nan


def summarize(
    recording: MVSECRecording,
    *,
    max_depth_frames: int = 200,
    fb: float = layout.FB_INDOOR_FLYING,
    scale: float = layout.DISPARITY_SCALE,
    disparity_bins: int = 64,
) -> dict[str, Any]:
    """JSON-serialisable summary of ``recording``.

    Keys: ``data_path``, ``gt_path``, ``sequence``, ``height``, ``width``,
    ``t_start``, ``t_end``, ``duration_s``, ``cameras`` (per camera ``events``,
    ``rate_hz`` in events/s, ``rectification``), and ``depth`` (None without gt;
    else ``frames``, ``rate_hz``, ``frames_sampled``, ``depth_min_m``,
    ``depth_max_m`` over finite positive depths, ``valid_fraction`` of pixels
    with finite positive depth,
    ``disparity_max`` and ``disparity_hist``: counts of rounded scaled
    disparity ``round(scale*fb/depth)`` in unit bins ``[0, disparity_bins)``
    plus ``overflow`` above them), ``rectification`` (one line: which maps) and
    ``checks`` (:meth:`snnc.data.sanity.DataCheck.to_dict`: per-camera and depth
    time ranges, their overlap, the events the maps drop, and the problems found).
    """
    t_start, t_end = recording.time_range()
    duration = t_end - t_start if math.isfinite(t_start) and math.isfinite(t_end) else math.nan
    cameras = {}
    for camera in layout.CAMERAS:
        n = recording.event_count(camera)
        cameras[camera] = {
            "events": n,
            "rate_hz": _rate(n, duration),
            "rectification": recording.rect_source(camera),
        }
    summary: dict[str, Any] = {
        "data_path": str(recording.data_path),
        "gt_path": None if recording.gt_path is None else str(recording.gt_path),
        "sequence": recording.sequence_name,
        "height": recording.height,
        "width": recording.width,
        "t_start": t_start,
        "t_end": t_end,
        "duration_s": duration,
        "cameras": cameras,
        "depth": _depth_summary(recording, max_depth_frames, fb, scale, disparity_bins),
        "rectification": recording.rectification_text(),
    }
    if recording.check is not None:
        summary["checks"] = recording.check.to_dict()
    return summary


def _depth_summary(
    recording: MVSECRecording, max_frames: int, fb: float, scale: float, bins: int
) -> dict[str, Any] | None:
    if not recording.has_gt:
        return None
    ts = recording.depth_ts
    n = len(ts)
    span = float(ts[-1] - ts[0]) if n >= 2 else math.nan
    out: dict[str, Any] = {"frames": n, "rate_hz": _rate(n - 1, span) if n >= 2 else math.nan}
    spread = np.linspace(0, n - 1, min(n, max(1, max_frames))).round().astype(np.int64)
    picks = np.unique(spread) if n else np.zeros(0, np.int64)
    zmin, zmax = math.inf, -math.inf
    valid_px = total_px = overflow = 0
    dmax = -math.inf
    hist = np.zeros(bins, dtype=np.int64)
    for k in picks:
        z = recording.depth(int(k))
        disp, valid = depth_to_disparity(z, fb=fb, scale=scale, rounding=True)
        pos = np.isfinite(z) & (z > 0)
        if pos.any():
            zmin, zmax = min(zmin, float(z[pos].min())), max(zmax, float(z[pos].max()))
        total_px += z.size
        valid_px += int(pos.sum())
        d = disp[valid].astype(np.int64)
        if d.size:
            dmax = max(dmax, float(d.max()))
        hist += np.bincount(d[d < bins], minlength=bins)[:bins]
        overflow += int(np.count_nonzero(d >= bins))
    out.update(
        frames_sampled=len(picks),
        depth_min_m=zmin if math.isfinite(zmin) else math.nan,
        depth_max_m=zmax if math.isfinite(zmax) else math.nan,
        valid_fraction=valid_px / total_px if total_px else math.nan,
        disparity_max=dmax if math.isfinite(dmax) else math.nan,
        disparity_hist={
            "bin_edges": list(range(bins + 1)),
            "counts": hist.tolist(),
            "overflow": overflow,
            "scale": scale,
        },
    )
    return out
