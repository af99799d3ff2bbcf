"""Speed of the synthetic MVSEC generator at full DAVIS resolution.

Run: .venv/bin/python benchmarks/synth_speed.py [frames]
Prints wall time, events per camera, event rate and output sizes.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from snnc.data import layout
from snnc.data.synth import synthesize


def main() -> None:
    frames = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        data_path, gt_path = synthesize(Path(tmp) / "bench_data.hdf5", frames=frames, progress=False)
        elapsed = time.perf_counter() - start
        with h5py.File(data_path, "r") as f, h5py.File(gt_path, "r") as g:
            depth = g[layout.DEPTH_KEY][()]
            ts = g[layout.DEPTH_TS_KEY][()]
            print(
                f"frames={frames} size={layout.HEIGHT}x{layout.WIDTH}: {elapsed:.2f} s "
                f"({elapsed / frames * 1000:.0f} ms per depth frame)"
            )
            for cam in layout.CAMERAS:
                ev = f[layout.events_key(cam)]
                span = ev[-1, layout.EV_T] - ev[0, layout.EV_T]
                t = ev[:, layout.EV_T]
                per_window = np.diff(np.searchsorted(t, np.stack([ts - 0.05, ts]), side="right"), axis=0)
                print(
                    f"  {cam}: {ev.shape[0]} events, {ev.shape[0] / span / 1e3:.0f} k events/s, "
                    f"{per_window.mean():.0f} events per 50 ms depth window"
                )
            finite = np.isfinite(depth)
            print(f"  depth: {finite.mean() * 100:.0f} % valid, {np.nanmin(depth):.2f}..{np.nanmax(depth):.2f} m")
            print(
                f"  files: data {data_path.stat().st_size / 2**20:.1f} MiB, gt {gt_path.stat().st_size / 2**20:.1f} MiB"
            )


if __name__ == "__main__":
    main()
