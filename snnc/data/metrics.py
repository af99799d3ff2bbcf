"""MVSEC stereo metrics, per frame over valid pixels, then averaged over frames.

Following the DDES evaluation protocol (reused by SpikeDHS):

* predictions are *scaled* disparities (network units, ``scale * fB / depth``);
  metrics use the unscaled disparity ``pred / scale`` in pixels;
* the ground-truth disparity is ``round(scale * fB / depth) / scale`` by default
  (``round_gt=True``: the published numbers were computed against the rounded
  disparity PNGs of the DDES converter), or the exact ``fB / depth``;
* mean disparity error: mean ``|d_hat - d|`` in pixels;
* mean / median depth error: mean / median ``|fB/d_hat - fB/d|`` in metres;
* one-pixel accuracy (1PA): the fraction, in [0, 1], of valid pixels with
  ``|d_hat - d| <= 1`` on the *unscaled* disparity (1 real pixel, as DDES's
  ``compute_n_pixels_error(n=1)`` on disparity / 7). Papers print it in %:
  multiply by 100; 1PE = 100 - 1PA.

Predicted disparities below ``min_pred_disparity`` (default one scaled step,
``1 / scale`` px, i.e. depth ``scale * fB`` = 139.6 m) are clamped to it for the
depth conversion only, so ``d_hat <= 0`` never yields inf/NaN; the number of
clamped pixels is reported. A frame without valid pixels gives ``None`` and is
skipped; if no frame had a valid pixel the aggregate metrics are NaN and
``no_valid_frames`` is True (never a silent 0).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from snnc.data import layout
from snnc.data.disparity import depth_to_disparity
from snnc.errors import SnncError

#: Per-frame metrics that are averaged over frames.
METRIC_NAMES: tuple = ("mean_disparity_error", "mean_depth_error", "median_depth_error", "one_pixel_accuracy")

FrameMetrics = dict[str, float | int]


def frame_metrics(
    pred_disp: np.ndarray,
    gt_depth: np.ndarray,
    *,
    fb: float = layout.FB_INDOOR_FLYING,
    scale: float = layout.DISPARITY_SCALE,
    round_gt: bool = True,
    max_disparity: float | None = None,
    min_pred_disparity: float | None = None,
) -> FrameMetrics | None:
    """Metrics of one frame, or None when the frame has no valid ground-truth pixel.

    ``pred_disp``: predicted scaled disparity (H, W). ``gt_depth``: depth in metres
    (H, W), NaN/inf/<=0 where unknown. ``max_disparity`` (scaled units) marks
    ground truth above it invalid. Returns a dict with the four
    :data:`METRIC_NAMES` plus ``n_valid`` and ``n_clamped`` pixel counts.
    """
    pred = np.asarray(pred_disp, dtype=np.float64)
    gt = np.asarray(gt_depth)
    if pred.shape != gt.shape:
        raise SnncError(f"predicted disparity has shape {pred.shape} but ground-truth depth has {gt.shape}")
    gt_scaled, valid = depth_to_disparity(gt, fb=fb, scale=scale, rounding=round_gt, max_disparity=max_disparity)
    n_valid = int(valid.sum())
    if n_valid == 0:
        return None
    d_hat = pred[valid] / scale
    if not np.isfinite(d_hat).all():
        raise SnncError("predicted disparity contains NaN or inf at valid ground-truth pixels")
    d = gt_scaled[valid].astype(np.float64) / scale
    if not round_gt:
        # Exact fB / depth, not the float32-rounded copy.
        d = fb / np.asarray(gt, dtype=np.float64)[valid]
    disp_err = np.abs(d_hat - d)
    floor = (1.0 / scale) if min_pred_disparity is None else float(min_pred_disparity)
    if not floor > 0:
        raise SnncError(f"min_pred_disparity must be > 0, got {min_pred_disparity!r}")
    clamped = d_hat < floor
    depth_err = np.abs(fb / np.maximum(d_hat, floor) - fb / d)
    return {
        "mean_disparity_error": float(disp_err.mean()),
        "mean_depth_error": float(depth_err.mean()),
        "median_depth_error": float(np.median(depth_err)),
        "one_pixel_accuracy": float(np.count_nonzero(disp_err <= 1.0) / n_valid),
        "n_valid": n_valid,
        "n_clamped": int(clamped.sum()),
    }


class MetricAccumulator:
    """Streaming mean of per-frame metrics (constant memory)."""

    def __init__(self, **frame_kwargs: object) -> None:
        """``frame_kwargs`` (fb, scale, round_gt, ...) are passed to :func:`frame_metrics` by :meth:`update`."""
        self.frame_kwargs = frame_kwargs
        self._sums = dict.fromkeys(METRIC_NAMES, 0.0)
        self.frames_used = 0
        self.frames_skipped = 0
        self.n_valid = 0
        self.n_clamped = 0

    def add(self, frame: FrameMetrics | None) -> None:
        """Add one :func:`frame_metrics` result (None counts as a skipped frame)."""
        if frame is None:
            self.frames_skipped += 1
            return
        for name in METRIC_NAMES:
            self._sums[name] += float(frame[name])
        self.frames_used += 1
        self.n_valid += int(frame.get("n_valid", 0))
        self.n_clamped += int(frame.get("n_clamped", 0))

    def update(self, pred_disp: np.ndarray, gt_depth: np.ndarray) -> FrameMetrics | None:
        """Compute one frame's metrics, add them, and return them."""
        frame = frame_metrics(pred_disp, gt_depth, **self.frame_kwargs)  # type: ignore[arg-type]
        self.add(frame)
        return frame

    def result(self) -> dict[str, float | int | bool]:
        """Metrics averaged over used frames, with frame counts and the ``no_valid_frames`` flag."""
        used = self.frames_used
        out: dict[str, float | int | bool] = {
            name: (self._sums[name] / used if used else math.nan) for name in METRIC_NAMES
        }
        out.update(
            frames_used=used,
            frames_skipped=self.frames_skipped,
            frames_total=used + self.frames_skipped,
            n_valid_pixels=self.n_valid,
            n_clamped_pixels=self.n_clamped,
            no_valid_frames=used == 0,
        )
        return out


def aggregate(frames: Iterable[FrameMetrics | None]) -> dict[str, float | int | bool]:
    """Average a list of :func:`frame_metrics` results (None entries are skipped frames)."""
    acc = MetricAccumulator()
    for frame in frames:
        acc.add(frame)
    return acc.result()


def format_metrics(result: dict[str, float | int | bool]) -> list[str]:
    """Human-readable lines in the papers' units (cm, px, %)."""
    if result.get("no_valid_frames"):
        return [f"no frame had a valid ground-truth pixel ({result.get('frames_total', 0)} frames): metrics undefined"]
    return [
        f"mean depth error   {100.0 * float(result['mean_depth_error']):8.2f} cm",
        f"median depth error {100.0 * float(result['median_depth_error']):8.2f} cm",
        f"mean disp. error   {float(result['mean_disparity_error']):8.3f} px",
        f"1PA                {100.0 * float(result['one_pixel_accuracy']):8.2f} %",
        f"frames used        {result['frames_used']} of {result['frames_total']}",
    ]
