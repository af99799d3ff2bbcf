"""Frames of a recording for streaming: a clock, and SBT stacks encoded on the fly.

The clock is the ground-truth depth timestamps when the recording has a gt
file (so predictions line up with the depth images), else a fixed 20 Hz clock
over the event time range: ``t_k = t_first + window + k / 20``, ``t_k <= t_last``
(the first frame has a full 50 ms window behind it; a recording shorter than
one window gives a single frame at ``t_last``).

For each frame time ``t`` both cameras' events in ``(t - window, t]`` are read
with :meth:`~snnc.data.mvsec.MVSECRecording.events_between` (a bounded slice
of the HDF5 dataset, never the whole file) and encoded as an SBT stack
(:func:`snnc.data.sbt.encode_sbt`). Memory per frame is one window of events
plus one ``2 x n_frames x H x W`` stack, whatever the recording's length. A
window without events gives an all-zero stack (a valid frame); the windows are
counted by a :class:`~snnc.data.windows.WindowStats`, which stops a stream
with a run of empty windows (or one whose every window is empty) and counts
the events dropped off the sensor or by the rectification maps.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from snnc.data import layout
from snnc.data.mvsec import MVSECRecording
from snnc.data.sbt import DEFAULT_N_FRAMES, DEFAULT_WINDOW, encode_sbt_counted
from snnc.data.windows import WindowStats
from snnc.errors import SnncError

__all__ = ["STREAM_HZ", "Frame", "frame_times", "iter_frames"]

#: Frame rate of the clock used when there is no ground truth (MVSEC depth is ~20 Hz).
STREAM_HZ: float = 20.0


@dataclass
class Frame:
    """One streaming frame.

    Attributes:
        index: frame number in the stream (0-based).
        t: end of the event window, seconds.
        x: int8 ``(2, n_frames, H, W)`` SBT stacks, left then right camera.
        events: events in the window per camera ``(left, right)``.
        gt_depth: float32 ``(H, W)`` depth in metres (NaN unknown) when the clock is the gt clock.
        gt_index: index of that depth image in the gt file.
    """

    index: int
    t: float
    x: np.ndarray
    events: tuple[int, int]
    gt_depth: np.ndarray | None = None
    gt_index: int | None = None


def frame_times(
    recording: MVSECRecording,
    *,
    limit: int | None = None,
    hz: float = STREAM_HZ,
    window: float = DEFAULT_WINDOW,
    use_gt: bool = True,
) -> tuple[np.ndarray, str]:
    """Frame end times and the clock's name (``gt`` or ``20 Hz``), at most ``limit`` of them.

    Raises:
        SnncError: the recording has neither events nor depth timestamps, or a bad limit / rate.
    """
    if limit is not None and (isinstance(limit, bool) or int(limit) < 1):
        raise SnncError(f"--frames must be a positive integer, got {limit!r}", recording.data_path)
    if not (math.isfinite(hz) and hz > 0):
        raise SnncError(f"clock rate must be positive, got {hz!r}")
    if use_gt and recording.has_gt:
        ts = recording.depth_ts
        if ts.size == 0:
            raise SnncError("ground-truth file has no depth frames", recording.gt_path)
        return (ts if limit is None else ts[: int(limit)]), "gt"
    t_first, t_last = recording.time_range()
    if not (math.isfinite(t_first) and math.isfinite(t_last)):
        raise SnncError("recording has no events (and no ground truth): nothing to stream", recording.data_path)
    start = min(t_first + window, t_last)
    count = math.floor((t_last - start) * hz + 1e-9) + 1
    if limit is not None:
        count = min(count, int(limit))
    return start + np.arange(count, dtype=np.float64) / hz, f"{hz:g} Hz"


def iter_frames(
    recording: MVSECRecording,
    times: np.ndarray,
    *,
    with_gt: bool,
    window: float = DEFAULT_WINDOW,
    n_frames: int = DEFAULT_N_FRAMES,
    stats: WindowStats | None = None,
) -> Iterator[Frame]:
    """Yield one :class:`Frame` per time, reading and encoding each window on demand.

    ``with_gt``: ``times`` are the gt depth timestamps in order, so frame ``k``
    carries depth image ``k``. ``stats`` (a new one when None) counts the
    windows and raises SnncError on the empty-window rule (see
    :mod:`snnc.data.windows`), the all-empty check once the last frame is out.
    """
    h, w = recording.height, recording.width
    maps = {cam: recording.rect_maps(cam) for cam in layout.CAMERAS}
    if stats is None:
        stats = WindowStats(recording.data_path)
    for k, t in enumerate(times):
        t = float(t)
        x = np.empty((2, n_frames, h, w), dtype=np.int8)
        counts = []
        for c, cam in enumerate(layout.CAMERAS):
            ev = recording.events_between(cam, t - window, t)
            x[c], n = encode_sbt_counted(
                ev,
                t,
                window=window,
                n_frames=n_frames,
                height=h,
                width=w,
                rect_maps=maps[cam],
                source=recording.data_path,
            )
            counts.append(n)
        stats.add(t, counts)
        depth = recording.depth(k) if with_gt else None
        yield Frame(k, t, x, (counts[0].events, counts[1].events), depth, k if with_gt else None)
    stats.finish()
