"""Lens distortion of the synthetic raw cameras and their rectification maps.

Real MVSEC ships, per camera, the rectified position of every raw pixel as
``x_map[y, x], y_map[y, x]``. The generator defines the raw cameras by a small
known radial distortion (:class:`~snnc.data.synth_config.LensSpec`), renders the
ideal rectified scene at each raw pixel's rectified position, and writes exactly
these positions as the maps, so rectifying events with the maps is exact.
"""

from __future__ import annotations

import numpy as np

from snnc.data.synth_config import LensSpec


def rectify_points(
    lens: LensSpec, x: np.ndarray, y: np.ndarray, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rectified positions (float64) of raw pixel positions ``x, y`` of a camera."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    cx = (width - 1) / 2.0 + lens.centre_offset_px[0]
    cy = (height - 1) / 2.0 + lens.centre_offset_px[1]
    radius = float(np.hypot((width - 1) / 2.0, (height - 1) / 2.0))
    dx = x - cx
    dy = y - cy
    gain = (lens.max_displacement_px / radius) * (dx * dx + dy * dy) / (radius * radius)
    return x + dx * gain + lens.shift_px[0], y + dy * gain + lens.shift_px[1]


def rectification_maps(lens: LensSpec, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """``(x_map, y_map)``, float32 (height, width): rectified position of each raw pixel."""
    ys, xs = np.mgrid[0:height, 0:width]
    xr, yr = rectify_points(lens, xs, ys, height, width)
    return xr.astype(np.float32), yr.astype(np.float32)
