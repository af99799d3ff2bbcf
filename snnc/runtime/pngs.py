"""PNG of one streamed frame: predicted disparity next to ground truth (and the error) on one colour scale."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from snnc.data import layout
from snnc.fileio import atomic_output

__all__ = ["save_frame_png"]


def save_frame_png(
    path: Path,
    disparity: np.ndarray,
    gt_depth: np.ndarray | None,
    *,
    title: str,
    fb: float = layout.FB_INDOOR_FLYING,
    vmax: float | None = None,
) -> None:
    """Write ``path``: predicted disparity (px), and with ``gt_depth`` the GT disparity ``fB/depth`` and |error|.

    Pixels without ground truth are blank in the GT and error panels. The PNG is
    written atomically (:func:`snnc.fileio.atomic_output`).

    Raises:
        SnncError: the file cannot be written (full or read-only disk), naming ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("predicted disparity (px)", disparity, "magma")]
    if gt_depth is not None:
        gt = np.full(gt_depth.shape, np.nan, dtype=np.float32)
        ok = np.isfinite(gt_depth) & (gt_depth > 0)
        gt[ok] = fb / gt_depth[ok]
        panels.append(("ground-truth disparity (px)", gt, "magma"))
        panels.append(("|error| (px)", np.abs(disparity - gt), "viridis"))
    top = (
        vmax
        if vmax is not None
        else float(np.nanmax([np.nanmax(p[1]) if np.isfinite(p[1]).any() else 0.0 for p in panels[:2]] + [1e-3]))
    )
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, (name, img, cmap) in zip(axes[0], panels, strict=False):
        im = ax.imshow(img, cmap=cmap, vmin=0, vmax=top if cmap == "magma" else None)
        ax.set_title(name, fontsize=9)
        ax.axis("off")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    try:
        with atomic_output(path) as tmp:
            fig.savefig(str(tmp), dpi=90, format="png")
    finally:
        plt.close(fig)
