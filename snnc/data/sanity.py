"""Plausibility checks of a recording's content: clocks, units, coordinates, rectification, depth.

A structurally valid MVSEC file can still give silently wrong results: every
window empty, one camera lost, or depth off by a factor of 1000. These checks
run when a recording is opened (:class:`~snnc.data.mvsec.MVSECRecording`,
``sanity=True``, the default) at bounded cost (a sample of at most
``SAMPLE_BLOCKS x SAMPLE_BLOCK_ROWS`` events per camera and
``DEPTH_SAMPLE_FRAMES`` depth images), and each failure is one line naming the
file and the problem. ``snnc data info`` shows the measured values
(:meth:`DataCheck.to_dict`) before it reports the first problem.

Rules (thresholds are the module constants; see docs/STREAM_ENERGY.md):

* **time column**: its resolution at the largest timestamp must be at most
  ``MAX_TIME_RESOLUTION_S`` (float32 seconds at the ROS epoch have a 128 s step;
  integer columns have a 1-unit step, i.e. integer microseconds);
* **time units**: event times are seconds: ``|t| <= MAX_ABS_TIME_S`` and a span of
  at most ``MAX_SPAN_S``;
* **cameras**: both have events when one has; their first and last events
  differ by at most ``CAMERA_SKEW_S``;
* **coordinates**: at most ``MAX_OFF_SENSOR_FRACTION`` of the sampled events lie
  off the sensor (those are dropped and counted per window); NaN/inf is an error;
* **rectification**: the maps keep at least ``MIN_RECT_KEEP`` of the sensor's
  pixels and of the sampled on-sensor events;
* **depth clock**: median spacing in ``DEPTH_DT_RANGE_S`` seconds and at least
  ``MIN_DEPTH_IN_EVENTS`` of the depth timestamps have a window that overlaps
  both cameras' events;
* **depth units**: the median finite positive depth of the sampled frames lies
  in ``DEPTH_MEDIAN_RANGE_M`` metres (millimetres give thousands).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from snnc.data import layout
from snnc.data.sbt import DEFAULT_WINDOW, rect_lut
from snnc.errors import SnncError

if TYPE_CHECKING:  # pragma: no cover
    from snnc.data.mvsec import MVSECRecording

MAX_TIME_RESOLUTION_S: float = 1e-4
MAX_ABS_TIME_S: float = 1e11
MAX_SPAN_S: float = 6 * 3600.0
CAMERA_SKEW_S: float = 1.0
MAX_OFF_SENSOR_FRACTION: float = 0.01
MIN_RECT_KEEP: float = 0.5
DEPTH_DT_RANGE_S: tuple[float, float] = (1e-3, 10.0)
MIN_DEPTH_IN_EVENTS: float = 0.5
DEPTH_MEDIAN_RANGE_M: tuple[float, float] = (0.05, 200.0)
#: Event sample read per camera: all rows up to SAMPLE_BLOCKS * SAMPLE_BLOCK_ROWS, else evenly spaced blocks.
SAMPLE_BLOCKS: int = 16
SAMPLE_BLOCK_ROWS: int = 4096
DEPTH_SAMPLE_FRAMES: int = 5


@dataclass
class CameraCheck:
    """Measured values of one camera (times in seconds, counts of the event sample)."""

    events: int
    t_first: float
    t_last: float
    time_resolution_s: float
    sampled: int = 0
    off_sensor: int = 0
    rect_dropped: int = 0
    pixels_kept: float = 1.0

    @property
    def dropped_fraction(self) -> float:
        """Fraction of the sampled events that never reach the frame (off the sensor or mapped outside)."""
        return (self.off_sensor + self.rect_dropped) / self.sampled if self.sampled else 0.0


@dataclass
class DataCheck:
    """Result of :func:`inspect_recording`: values for ``data info`` and the problems found, in order."""

    cameras: dict[str, CameraCheck]
    cameras_overlap_s: float = math.nan
    depth_t_first: float = math.nan
    depth_t_last: float = math.nan
    depth_dt_median_s: float = math.nan
    depth_in_events: int = 0
    depth_frames: int = 0
    depth_median_m: float = math.nan
    problems: list[tuple[str, str]] = field(default_factory=list)

    def add(self, message: str, path: Path | None) -> None:
        """Record a problem (``message`` without the file name, ``path`` the file it is about)."""
        self.problems.append((message, str(path)))

    def raise_first(self) -> None:
        """Raise the first problem as a one-line SnncError (no-op when there is none)."""
        if self.problems:
            message, path = self.problems[0]
            raise SnncError(message, path)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly view for ``snnc data info``: time ranges and overlaps, rectification drops, problems."""
        cams = self.cameras
        depth = None if not self.depth_frames else [self.depth_t_first, self.depth_t_last]
        return {
            "time_ranges_s": {**{name: [c.t_first, c.t_last] for name, c in cams.items()}, "depth": depth},
            "cameras_overlap_s": self.cameras_overlap_s,
            "depth_frames_in_events": f"{self.depth_in_events} of {self.depth_frames}" if depth else None,
            "depth_dt_median_s": self.depth_dt_median_s,
            "depth_median_m": self.depth_median_m,
            "time_resolution_s": {name: c.time_resolution_s for name, c in cams.items()},
            "event_sample": {
                name: {
                    "sampled": c.sampled,
                    "off_sensor": c.off_sensor,
                    "rect_dropped": c.rect_dropped,
                    "dropped_fraction": c.dropped_fraction,
                    "map_pixels_kept": c.pixels_kept,
                }
                for name, c in cams.items()
            },
            "problems": [f"{path}: {message}" for message, path in self.problems] or "none",
        }


def time_resolution(dtype: np.dtype, t_abs_max: float) -> float:
    """Smallest step the time column can represent near ``t_abs_max`` (1 for integer columns)."""
    if dtype.kind in "iu":
        return 1.0
    return float(np.spacing(np.abs(np.asarray(t_abs_max, dtype=dtype))))


def _round_index(v: np.ndarray) -> np.ndarray:
    """Half-away-from-zero rounding (as the SBT encoder does), as float64."""
    return np.copysign(np.floor(np.abs(v) + 0.5), v)


def _check_camera(rec: MVSECRecording, camera: str, out: DataCheck) -> None:
    c = out.cameras[camera]
    key = layout.events_key(camera)
    path = rec.data_path
    if c.events == 0:
        return
    dtype = rec.event_dtype(camera)
    t_abs = max(abs(c.t_first), abs(c.t_last))
    if dtype.kind in "iu":
        out.add(
            f"{key} is {dtype}: integer timestamps (microseconds?) but MVSEC stores t as float64 "
            f"seconds; convert the file (t / 1e6 for microseconds)",
            path,
        )
        return
    span = c.t_last - c.t_first
    if t_abs > MAX_ABS_TIME_S or span > MAX_SPAN_S:
        out.add(
            f"{key}: timestamps {c.t_first:.6g} .. {c.t_last:.6g} (span {span:.3g}) are not seconds "
            f"(microseconds or nanoseconds?); MVSEC stores seconds",
            path,
        )
        return
    if c.time_resolution_s > MAX_TIME_RESOLUTION_S:
        out.add(
            f"{key} is {dtype}: near t = {t_abs:.6g} it resolves only {c.time_resolution_s:.3g} s, so "
            f"event timestamps collapse; MVSEC stores float64 seconds",
            path,
        )
        return
    ev = rec.sample_events(camera, SAMPLE_BLOCKS, SAMPLE_BLOCK_ROWS)
    xy = ev[:, [layout.EV_X, layout.EV_Y]]
    bad = np.flatnonzero(~np.isfinite(xy).all(axis=1))
    if bad.size:
        out.add(f"{key}: NaN or inf in the x/y columns ({bad.size} of {len(ev)} sampled events)", path)
        return
    maps = rec.rect_maps(camera)
    mh, mw = (rec.height, rec.width) if maps is None else np.shape(maps[0])
    xi, yi = _round_index(xy[:, 0]), _round_index(xy[:, 1])
    on = (xi >= 0) & (xi < mw) & (yi >= 0) & (yi < mh)
    c.sampled, c.off_sensor = len(ev), int(np.count_nonzero(~on))
    if c.sampled and c.off_sensor > MAX_OFF_SENSOR_FRACTION * c.sampled:
        out.add(
            f"{key}: {c.off_sensor} of {c.sampled} sampled events lie off the {mw}x{mh} sensor "
            f"(x in [{xy[:, 0].min():.6g}, {xy[:, 0].max():.6g}], y in [{xy[:, 1].min():.6g}, "
            f"{xy[:, 1].max():.6g}]); at most {MAX_OFF_SENSOR_FRACTION:.0%} may be",
            path,
        )
        return
    if maps is None:
        return
    lut = rect_lut(maps, rec.height, rec.width)
    c.pixels_kept = float(np.count_nonzero(lut >= 0)) / lut.size
    raw = (yi[on] * mw + xi[on]).astype(np.intp)
    c.rect_dropped = int(np.count_nonzero(lut[raw] < 0))
    kept_events = 1.0 - c.rect_dropped / max(1, int(on.sum()))
    source = rec.rect_source(camera)
    where = path if source == "embedded" else Path(source)
    if c.pixels_kept < MIN_RECT_KEEP or kept_events < MIN_RECT_KEEP:
        out.add(
            f"{camera} rectification maps keep {c.pixels_kept:.1%} of the sensor pixels and "
            f"{kept_events:.1%} of the sampled events inside the {rec.width}x{rec.height} frame "
            f"(NaN or out-of-range map values?); at least {MIN_RECT_KEEP:.0%} needed",
            where,
        )


def _check_cameras_agree(rec: MVSECRecording, out: DataCheck) -> None:
    left, right = (out.cameras[cam] for cam in layout.CAMERAS)
    if (left.events == 0) != (right.events == 0):
        empty, full = ("left", right) if left.events == 0 else ("right", left)
        out.add(f"the {empty} camera has no events but the other has {full.events}: stereo needs both", rec.data_path)
        return
    if left.events == 0:
        return
    out.cameras_overlap_s = min(left.t_last, right.t_last) - max(left.t_first, right.t_first)
    d_start, d_end = abs(left.t_first - right.t_first), abs(left.t_last - right.t_last)
    if max(d_start, d_end) > CAMERA_SKEW_S:
        out.add(
            f"the cameras' clocks disagree: left events span {left.t_first:.6f} .. {left.t_last:.6f} s, "
            f"right {right.t_first:.6f} .. {right.t_last:.6f} s (starts differ by {d_start:.3g} s, ends by "
            f"{d_end:.3g} s; at most {CAMERA_SKEW_S:g} s allowed): right camera offset in time?",
            rec.data_path,
        )


def _check_depth(rec: MVSECRecording, out: DataCheck, window: float) -> None:
    ts = rec.depth_ts
    n = len(ts)
    out.depth_frames = n
    if n == 0:
        return
    gt = rec.gt_path
    out.depth_t_first, out.depth_t_last = float(ts[0]), float(ts[-1])
    if max(abs(out.depth_t_first), abs(out.depth_t_last)) > MAX_ABS_TIME_S:
        out.add(
            f"{layout.DEPTH_TS_KEY}: timestamps {ts[0]:.6g} .. {ts[-1]:.6g} are not seconds (microseconds "
            f"or nanoseconds? other time units); MVSEC stores seconds",
            gt,
        )
        return
    if n >= 2:
        out.depth_dt_median_s = float(np.median(np.diff(ts)))
        lo, hi = DEPTH_DT_RANGE_S
        if not lo <= out.depth_dt_median_s <= hi:
            out.add(
                f"{layout.DEPTH_TS_KEY}: depth images are a median {out.depth_dt_median_s:.6g} apart; "
                f"expected {lo:g} .. {hi:g} seconds (MVSEC depth runs at 10-20 Hz): other time units?",
                gt,
            )
            return
    left, right = (out.cameras[cam] for cam in layout.CAMERAS)
    if left.events and right.events and not out.problems:
        first, last = max(left.t_first, right.t_first), min(left.t_last, right.t_last)
        inside = (ts > first) & (ts - window < last)
        out.depth_in_events = int(np.count_nonzero(inside))
        if out.depth_in_events < MIN_DEPTH_IN_EVENTS * n:
            out.add(
                f"depth clock does not overlap the events: depth timestamps {ts[0]:.6f} .. {ts[-1]:.6f} s, "
                f"events {first:.6f} .. {last:.6f} s; only {out.depth_in_events} of {n} depth frames have "
                f"events in their window (other clock or units?)",
                gt,
            )
            return
    picks = np.unique(np.linspace(0, n - 1, min(n, DEPTH_SAMPLE_FRAMES)).round().astype(np.int64))
    values = []
    for k in picks:
        z = rec.depth(int(k))
        values.append(z[np.isfinite(z) & (z > 0)])
    pos = np.concatenate(values) if values else np.zeros(0)
    if pos.size:
        out.depth_median_m = float(np.median(pos))
        lo, hi = DEPTH_MEDIAN_RANGE_M
        if not lo <= out.depth_median_m <= hi:
            hint = "millimetres? divide by 1000" if out.depth_median_m > hi else "other units?"
            out.add(
                f"{layout.DEPTH_KEY}: median depth {out.depth_median_m:.6g} is not plausible in metres "
                f"(expected {lo:g} .. {hi:g} m; {hint})",
                gt,
            )


def inspect_recording(rec: MVSECRecording, *, window: float = DEFAULT_WINDOW) -> DataCheck:
    """Run every check on an open recording; problems are collected, not raised."""
    cams = {}
    for cam in layout.CAMERAS:
        n = rec.event_count(cam)
        t0, t1 = rec.camera_time_range(cam)
        res = time_resolution(rec.event_dtype(cam), max(abs(t0), abs(t1))) if n else math.nan
        cams[cam] = CameraCheck(events=n, t_first=t0, t_last=t1, time_resolution_s=res)
    out = DataCheck(cameras=cams)
    for cam in layout.CAMERAS:
        _check_camera(rec, cam, out)
    if not out.problems:
        _check_cameras_agree(rec, out)
    if not out.problems and rec.has_gt:
        _check_depth(rec, out, window)
    return out
