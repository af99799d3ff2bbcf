"""Pictures of a recording: one depth frame's GT disparity, its left/right SBTs, the disparity histogram."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from snnc.data.disparity import depth_to_disparity
from snnc.data.mvsec import MVSECRecording
from snnc.data.sbt import sbt_pair
from snnc.errors import SnncError


def plot_recording(recording: MVSECRecording, summary: dict[str, Any], out_png: Path, frame: int | None = None) -> Path:
    """Write a PNG with, for depth frame ``frame`` (default: the middle one), the scaled GT
    disparity (titled with the frame's depth range), the left and right cameras' SBT (sum over
    the 5 sub-frames, red = ON, blue = OFF), and the recording's disparity histogram from
    ``summary`` (titled with the recording's depth range).

    Returns ``out_png``. Raises SnncError when the recording has no ground truth.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not recording.has_gt or recording.n_depth == 0:
        raise SnncError("recording has no ground-truth depth to plot", recording.data_path)
    k = recording.n_depth // 2 if frame is None else int(frame)
    depth = recording.depth(k)
    disp, valid = depth_to_disparity(depth)
    left, right = sbt_pair(recording, k)
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    shown = np.where(valid, disp, np.nan)
    im = axes[0, 0].imshow(shown, cmap="magma")
    finite = depth[np.isfinite(depth) & (depth > 0)]
    frame_range = f"depth {finite.min():.2f}-{finite.max():.2f} m" if finite.size else "no valid depth"
    axes[0, 0].set_title(f"GT disparity x7, depth frame {k} ({frame_range})")
    fig.colorbar(im, ax=axes[0, 0], fraction=0.046)
    for ax, sbt, name in ((axes[0, 1], left, "left"), (axes[1, 0], right, "right")):
        ax.imshow(sbt.astype(np.float32).sum(axis=0), cmap="bwr_r", vmin=-3, vmax=3)
        ax.set_title(f"{name} SBT (50 ms, sum of 5 frames), {int(np.count_nonzero(sbt))} active")
    for ax in axes.flat[:3]:
        ax.set_xticks([])
        ax.set_yticks([])
    hist = summary.get("depth", {}).get("disparity_hist")
    if hist:
        edges = np.asarray(hist["bin_edges"], dtype=float)
        axes[1, 1].bar(edges[:-1], hist["counts"], width=np.diff(edges), align="edge", color="tab:purple")
        axes[1, 1].set_xlabel("scaled disparity round(7 fB / depth)")
        axes[1, 1].set_ylabel("pixels")
        lo, hi = summary.get("depth", {}).get("depth_min_m"), summary.get("depth", {}).get("depth_max_m")
        span = f": depth {lo:.2f}-{hi:.2f} m" if isinstance(lo, float) and isinstance(hi, float) else ""
        axes[1, 1].set_title(f"disparity histogram of the recording{span}")
    fig.suptitle(str(recording.data_path.name))
    fig.tight_layout()
    out_png = Path(out_png)
    fig.savefig(out_png, dpi=80, format="png")
    plt.close(fig)
    return out_png
