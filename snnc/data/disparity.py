"""Depth <-> disparity for MVSEC stereo: ``d = scale * fB / depth``.

Learning-based stereo on MVSEC trains on ``round(7 * fB / depth)`` (DDES,
SpikeDHS). Rounding uses ``np.round`` (halves to even), exactly like the DDES
converter that produced the published ground truth.
"""

from __future__ import annotations

import numpy as np

from snnc.data import layout
from snnc.errors import SnncError


def depth_to_disparity(
    depth: np.ndarray,
    fb: float = layout.FB_INDOOR_FLYING,
    scale: float = layout.DISPARITY_SCALE,
    rounding: bool = True,
    max_disparity: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Scaled disparity ``scale * fb / depth`` and its validity mask.

    A pixel is valid when its depth is finite and > 0; NaN, +-inf and
    non-positive depths are invalid. With ``rounding`` the disparity is rounded
    to an integer, and a pixel whose rounded disparity is 0 (depth beyond
    ``2 * scale * fb``) is invalid as well, since no depth can be recovered from
    it. With ``max_disparity`` (in the same scaled units) pixels whose disparity
    exceeds it are invalid. Invalid pixels hold disparity 0.
    Returns ``(disparity float32, valid bool)`` of ``depth``'s shape.
    """
    if not (np.isfinite(fb) and fb > 0 and np.isfinite(scale) and scale > 0):
        raise SnncError(f"fb and scale must be positive, got fb={fb!r}, scale={scale!r}")
    z = np.asarray(depth, dtype=np.float64)
    valid = np.isfinite(z) & (z > 0)
    disp = np.zeros(z.shape, dtype=np.float64)
    np.divide(scale * fb, z, out=disp, where=valid)
    if rounding:
        disp = np.round(disp)
        valid &= disp > 0
    if max_disparity is not None:
        valid &= disp <= max_disparity
    disp[~valid] = 0.0
    return disp.astype(np.float32), valid


def disparity_to_depth(
    disparity: np.ndarray,
    fb: float = layout.FB_INDOOR_FLYING,
    scale: float = layout.DISPARITY_SCALE,
) -> np.ndarray:
    """Depth ``scale * fb / d`` in metres from a scaled disparity; inf where ``d <= 0``."""
    d = np.asarray(disparity, dtype=np.float64)
    out = np.full(d.shape, np.inf, dtype=np.float64)
    np.divide(scale * fb, d, out=out, where=d > 0)
    return out
