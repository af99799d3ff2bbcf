"""Stacking based on time (SBT): events -> ``(n_frames, H, W)`` int8 in {-1, 0, 1}.

For an end time ``t_end`` the window ``(t_end - window, t_end]`` is split into
``n_frames`` equal sub-windows; frame ``i`` covers
``(t_end - window + i*dt, t_end - window + (i+1)*dt]`` (frame 0 is the oldest).
Each event's raw pixel ``(x, y)`` is rectified through the camera maps,
``(x_map[y, x], y_map[y, x])``, rounded to the nearest pixel with halves going
away from zero (Python 2 ``round``, as used by the DDES MVSEC converter), and
dropped when it falls outside the ``height x width`` frame. A pixel's value is
the sign of the sum of the polarities of its events. Polarity is read by sign:
``p > 0`` is ON (+1), anything else OFF (-1), so {-1, 1} and {0, 1} encodings
both work.

:func:`encode_sbt` is fully vectorised: time-sorted input (what the reader
returns) is cut into frames by ``searchsorted`` on the ``n_frames + 1`` edges, the maps are
turned into a raw-pixel -> rectified-pixel lookup table (once per maps: cached,
checked by content), and all frames are accumulated by one ``np.add.at`` of
each event's polarity sign into its ``(frame, pixel)`` bin. :func:`encode_sbt_reference` is the literal
per-event loop used by tests and ``benchmarks/bench_sbt.py``.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from snnc.data import layout
from snnc.errors import SnncError

if TYPE_CHECKING:  # pragma: no cover
    from snnc.data.mvsec import MVSECRecording

PathLike = str | Path
RectMaps = tuple[np.ndarray, np.ndarray]

DEFAULT_WINDOW: float = 0.05
DEFAULT_N_FRAMES: int = 5


@dataclass(frozen=True)
class SbtCounts:
    """Events of one encoded window: read, off the (raw) sensor, dropped by the rectification maps."""

    events: int = 0
    off_sensor: int = 0
    rect_dropped: int = 0

    @property
    def kept(self) -> int:
        """Events that landed on a pixel of the frame."""
        return self.events - self.off_sensor - self.rect_dropped


def _check_args(
    window: float, n_frames: int, height: int, width: int, rect_maps: RectMaps | None, source: PathLike | None
) -> None:
    if not (math.isfinite(window) and window > 0):
        raise SnncError(f"SBT window must be a positive number of seconds, got {window!r}", source)
    if int(n_frames) != n_frames or n_frames < 1:
        raise SnncError(f"SBT n_frames must be a positive integer, got {n_frames!r}", source)
    if int(height) < 1 or int(width) < 1:
        raise SnncError(f"SBT frame size must be positive, got {height}x{width}", source)
    if rect_maps is not None:
        xmap, ymap = rect_maps
        if np.ndim(xmap) != 2 or np.shape(xmap) != np.shape(ymap):
            raise SnncError(
                f"rectification maps must be two 2-D arrays of one shape, got {np.shape(xmap)} and {np.shape(ymap)}",
                source,
            )


def _as_events(events: np.ndarray, source: PathLike | None) -> np.ndarray:
    ev = np.asarray(events)
    if ev.ndim != 2 or ev.shape[1] != 4:
        raise SnncError(f"events must be an (N, 4) array (x, y, t, p), got shape {ev.shape}", source)
    if ev.dtype.kind not in "iuf":
        raise SnncError(f"events must be numeric, got dtype {ev.dtype}", source)
    return ev


def frame_boundaries(t_end: float, window: float, n_frames: int) -> np.ndarray:
    """The ``n_frames + 1`` sub-window edges; the last is exactly ``t_end``."""
    t_start = t_end - window
    dt = window / n_frames
    edges = t_start + dt * np.arange(n_frames + 1, dtype=np.float64)
    edges[0], edges[-1] = t_start, t_end
    return edges


def _round_to_index(v: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Half-away-from-zero rounding of ``v`` as an index, and whether it lies in ``[0, limit)``.

    Uses exactly the float64 operations of the reference, ``floor(|v| + 0.5)``
    with the sign of ``v``: a negative value is kept only when it rounds to 0.
    NaN is never in range. Out-of-range entries get index 0 (safe to gather with).
    """
    a = np.abs(v, dtype=np.float64)
    a += 0.5
    ok = a < limit
    if np.any(v < 0):
        ok &= (v >= 0) | (a < 1.0)
    with np.errstate(invalid="ignore"):
        idx = a.astype(np.intp)
    idx *= ok
    return idx, ok


def encode_sbt(
    events: np.ndarray,
    t_end: float,
    *,
    window: float = DEFAULT_WINDOW,
    n_frames: int = DEFAULT_N_FRAMES,
    height: int = layout.HEIGHT,
    width: int = layout.WIDTH,
    rect_maps: RectMaps | None = None,
    source: PathLike | None = None,
) -> np.ndarray:
    """SBT of the events in ``(t_end - window, t_end]``: int8 ``(n_frames, height, width)``.

    ``events`` is (N, 4) ``x, y, t, p`` with raw pixel coordinates; it need not
    be sorted and may extend beyond the window. ``rect_maps`` is the camera's
    ``(x_map, y_map)`` indexed by raw ``[y, x]``, or None for identity. An empty
    window gives all zeros. NaN/inf anywhere in ``events`` raises SnncError
    (``source`` names the file in the message).
    """
    return encode_sbt_counted(
        events, t_end, window=window, n_frames=n_frames, height=height, width=width, rect_maps=rect_maps, source=source
    )[0]


def encode_sbt_counted(
    events: np.ndarray,
    t_end: float,
    *,
    window: float = DEFAULT_WINDOW,
    n_frames: int = DEFAULT_N_FRAMES,
    height: int = layout.HEIGHT,
    width: int = layout.WIDTH,
    rect_maps: RectMaps | None = None,
    source: PathLike | None = None,
) -> tuple[np.ndarray, SbtCounts]:
    """:func:`encode_sbt` and the :class:`SbtCounts` of the window (events read, off the sensor, dropped
    by the maps); "off the sensor" is a raw pixel outside the maps (or, without maps, the frame)."""
    _check_args(window, n_frames, height, width, rect_maps, source)
    ev = _as_events(events, source)
    n_frames, height, width = int(n_frames), int(height), int(width)
    out_size = n_frames * height * width
    if ev.dtype.kind == "f" and not np.isfinite(ev).all():
        row = int(np.flatnonzero(~np.isfinite(ev).all(axis=1))[0])
        raise SnncError(
            f"events contain NaN or inf in the window ending at t = {float(t_end):.6f} s (row {row} of that window)",
            source,
        )
    edges = frame_boundaries(float(t_end), float(window), n_frames)
    t = ev[:, layout.EV_T]
    x, y, p = ev[:, layout.EV_X], ev[:, layout.EV_Y], ev[:, layout.EV_P]
    if t.size < 2 or bool(np.all(t[1:] >= t[:-1])):
        # Sorted (the usual case): frame i is the row range [b_i, b_{i+1}) with
        # b_i = #events with t <= edges[i]; the window is one contiguous slice.
        bounds = np.searchsorted(t, edges, side="right")
        lo, hi = int(bounds[0]), int(bounds[-1])
        x, y, p = x[lo:hi], y[lo:hi], p[lo:hi]
        frame = np.repeat(np.arange(n_frames, dtype=np.intp), np.diff(bounds))
    else:
        # side='left': t in (edges[i], edges[i+1]] -> i + 1; outside the window -> 0 or n + 1.
        frame = np.searchsorted(edges, t, side="left")
        frame -= 1
        keep = frame.view(np.uintp) < n_frames  # 0 <= frame < n_frames in one comparison
        if not keep.all():
            sel = np.flatnonzero(keep)
            x, y, p, frame = x.take(sel), y.take(sel), p.take(sel), frame.take(sel)
    if frame.size == 0:
        return np.zeros((n_frames, height, width), dtype=np.int8), SbtCounts()
    # Rectified pixel (y * W + x) of every event, or ok False when it is dropped.
    if rect_maps is not None:
        mh, mw = np.shape(rect_maps[0])
        xi, ok = _round_to_index(x, mw)
        yi, oky = _round_to_index(y, mh)
        ok &= oky
        on_sensor = int(np.count_nonzero(ok))
        raw = yi * mw
        raw += xi  # 0 where the raw pixel is off the map: masked by ok
        pix = rect_lut(rect_maps, height, width).take(raw)
        ok &= pix >= 0
        kept = int(np.count_nonzero(ok))
    else:
        xr, ok = _round_to_index(x, width)
        yr, oky = _round_to_index(y, height)
        ok &= oky
        pix = yr * width
        pix += xr
        on_sensor = kept = int(np.count_nonzero(ok))
    counts = SbtCounts(int(frame.size), int(frame.size) - on_sensor, on_sensor - kept)
    # Bin = frame * H * W + pix (dropped events go to one extra bin); each event adds its polarity sign +-1
    # in order (np.add.at: exact integers), then the sign of each bin's sum. 4-8x faster than a histogram of
    # (bin, polarity) over every pixel and its difference, whose full-size temporaries cost more than the events.
    flat = frame * (height * width)
    flat += pix
    np.copyto(flat, out_size, where=~ok)
    wide = np.dtype(np.int32 if frame.size < 2**31 else np.int64)
    total: np.ndarray = np.zeros(out_size + 1, dtype=wide)
    np.add.at(total, flat, np.where(p > 0, 1, -1).astype(wide))
    total = total[:out_size]
    sign = (total > 0).view(np.int8) - (total < 0).view(np.int8)
    return sign.reshape(n_frames, height, width), counts


def rect_lut(rect_maps: RectMaps, height: int, width: int) -> np.ndarray:
    """Raw pixel ``y * mw + x`` -> rectified pixel ``yr * width + xr`` (intp), -1 if dropped.

    Rounds the maps with the same float64 rule as the per-event reference, once
    per map entry instead of once per event; remembered for the last few maps
    (:func:`_cached_lut`), so a stream builds each camera's table once. The
    result is read-only (shared between calls).
    """
    return _cached_lut(rect_maps, int(height), int(width))


#: (maps' ids, height, width) -> (the maps' dtypes, shapes and bytes the table was built from, the table)
_LUTS: dict[tuple[int, int, int, int], tuple[tuple[object, ...], bytes, bytes, np.ndarray]] = {}
_LUTS_KEPT = 4
_LUTS_LOCK = threading.Lock()


def _cached_lut(rect_maps: RectMaps, height: int, width: int) -> np.ndarray:
    """:func:`rect_lut` through a small cache keyed by the maps' identity and **checked by content**.

    An entry keeps the bytes (and dtype and shape) of the maps it was built from and is used only while the
    maps given have those very bytes, so maps changed in place, or new maps that reuse a freed array's id, get
    a new table (maps equal in value but not in bytes, e.g. another dtype, just build a new one). The check
    copies and compares the maps' bytes (about 0.1 ms at 260 x 346, against about 1-4 ms to build the table).
    """
    xmap = np.ascontiguousarray(rect_maps[0])
    ymap = np.ascontiguousarray(rect_maps[1])
    key = (id(rect_maps[0]), id(rect_maps[1]), height, width)
    form = (xmap.dtype.str, xmap.shape, ymap.dtype.str, ymap.shape)
    xb, yb = xmap.tobytes(), ymap.tobytes()
    with _LUTS_LOCK:
        hit = _LUTS.get(key)
    if hit is not None and hit[0] == form and hit[1] == xb and hit[2] == yb:
        return hit[3]
    xr, okx = _round_to_index(np.asarray(xmap, dtype=np.float64).ravel(), width)
    yr, oky = _round_to_index(np.asarray(ymap, dtype=np.float64).ravel(), height)
    lut = yr * width + xr
    lut[~(okx & oky)] = -1
    lut.setflags(write=False)
    with _LUTS_LOCK:
        _LUTS.pop(key, None)
        while len(_LUTS) >= _LUTS_KEPT:
            _LUTS.pop(next(iter(_LUTS)))
        _LUTS[key] = (form, xb, yb, lut)
    return lut


def _py_round_half_away(v: float) -> int:
    return int(math.copysign(math.floor(abs(v) + 0.5), v))


def encode_sbt_reference(
    events: np.ndarray,
    t_end: float,
    *,
    window: float = DEFAULT_WINDOW,
    n_frames: int = DEFAULT_N_FRAMES,
    height: int = layout.HEIGHT,
    width: int = layout.WIDTH,
    rect_maps: RectMaps | None = None,
    source: PathLike | None = None,
) -> np.ndarray:
    """Per-event loop implementation of :func:`encode_sbt` (same semantics, slow)."""
    _check_args(window, n_frames, height, width, rect_maps, source)
    ev = _as_events(events, source)
    n_frames, height, width = int(n_frames), int(height), int(width)
    edges = [float(e) for e in frame_boundaries(float(t_end), float(window), n_frames)]
    sums = np.zeros((n_frames, height, width), dtype=np.int64)
    xmap = ymap = None
    if rect_maps is not None:
        xmap = np.asarray(rect_maps[0], dtype=np.float64)
        ymap = np.asarray(rect_maps[1], dtype=np.float64)
    for row in range(ev.shape[0]):
        x, y, t, p = (float(v) for v in ev[row])
        if not (math.isfinite(x) and math.isfinite(y) and math.isfinite(t) and math.isfinite(p)):
            raise SnncError(
                f"events contain NaN or inf in the window ending at t = {float(t_end):.6f} s "
                f"(row {row} of that window)",
                source,
            )
    for row in range(ev.shape[0]):
        x, y, t, p = (float(v) for v in ev[row])
        if not (edges[0] < t <= edges[-1]):
            continue
        frame = 0
        while not (t <= edges[frame + 1]):
            frame += 1
        xr, yr = _py_round_half_away(x), _py_round_half_away(y)
        if xmap is not None and ymap is not None:
            if not (0 <= xr < xmap.shape[1] and 0 <= yr < xmap.shape[0]):
                continue
            mx, my = float(xmap[yr, xr]), float(ymap[yr, xr])
            if not (math.isfinite(mx) and math.isfinite(my)):
                continue
            xr, yr = _py_round_half_away(mx), _py_round_half_away(my)
        if not (0 <= xr < width and 0 <= yr < height):
            continue
        sums[frame, yr, xr] += 1 if p > 0 else -1
    return np.sign(sums).astype(np.int8)


def sbt_for_camera(
    recording: MVSECRecording,
    camera: str,
    t_end: float,
    *,
    window: float = DEFAULT_WINDOW,
    n_frames: int = DEFAULT_N_FRAMES,
) -> np.ndarray:
    """SBT of one camera of ``recording`` ending at ``t_end`` (rectified, sensor size)."""
    return sbt_for_camera_counted(recording, camera, t_end, window=window, n_frames=n_frames)[0]


def sbt_for_camera_counted(
    recording: MVSECRecording,
    camera: str,
    t_end: float,
    *,
    window: float = DEFAULT_WINDOW,
    n_frames: int = DEFAULT_N_FRAMES,
) -> tuple[np.ndarray, SbtCounts]:
    """:func:`sbt_for_camera` and the window's :class:`SbtCounts`."""
    events = recording.events_between(camera, t_end - window, t_end)
    return encode_sbt_counted(
        events,
        t_end,
        window=window,
        n_frames=n_frames,
        height=recording.height,
        width=recording.width,
        rect_maps=recording.rect_maps(camera),
        source=recording.data_path,
    )


def sbt_pair(
    recording: MVSECRecording,
    k: int,
    *,
    window: float = DEFAULT_WINDOW,
    n_frames: int = DEFAULT_N_FRAMES,
) -> tuple[np.ndarray, np.ndarray]:
    """(left, right) SBTs for depth frame ``k``: events in ``(depth_ts[k] - window, depth_ts[k]]``."""
    return sbt_pair_counted(recording, k, window=window, n_frames=n_frames)[0]


def sbt_pair_counted(
    recording: MVSECRecording,
    k: int,
    *,
    window: float = DEFAULT_WINDOW,
    n_frames: int = DEFAULT_N_FRAMES,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[SbtCounts, SbtCounts]]:
    """:func:`sbt_pair` and the (left, right) :class:`SbtCounts` of the two windows."""
    if not recording.has_gt:
        raise SnncError("recording has no ground-truth depth timestamps to index SBTs by", recording.data_path)
    ts = recording.depth_ts
    if not -len(ts) <= int(k) < len(ts):
        raise SnncError(f"depth index {k} out of range, the recording has {len(ts)} depth frames", recording.gt_path)
    t_end = float(ts[int(k)])
    left, cl = sbt_for_camera_counted(recording, "left", t_end, window=window, n_frames=n_frames)
    right, cr = sbt_for_camera_counted(recording, "right", t_end, window=window, n_frames=n_frames)
    return (left, right), (cl, cr)
