"""Tiny MVSEC-layout file writers for the data-layer tests (plain h5py, no snnc.data.synth)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from snnc.data import layout

T0 = 1.5e9  # realistic ROS-epoch seconds


def random_events(
    rng: np.random.Generator,
    n: int,
    *,
    t0: float = T0,
    duration: float = 1.0,
    height: int = layout.HEIGHT,
    width: int = layout.WIDTH,
    ticks: int = 0,
) -> np.ndarray:
    """Sorted (n, 4) float64 events; with ``ticks`` > 0, times are on a grid (many duplicates)."""
    if ticks:
        t = t0 + np.sort(rng.integers(0, ticks, n)) * (duration / ticks)
    else:
        t = t0 + np.sort(rng.random(n)) * duration
    x = rng.integers(0, width, n).astype(np.float64)
    y = rng.integers(0, height, n).astype(np.float64)
    p = rng.choice([-1.0, 1.0], n)
    return np.stack([x, y, t, p], axis=1)


def write_data(
    path: Path,
    events: dict[str, np.ndarray | None],
    *,
    image_shape: tuple[int, int] | None = None,
    rect_maps: dict[str, dict[str, np.ndarray]] | None = None,
) -> Path:
    """Write a ``*_data.hdf5``; ``events[camera] = None`` omits that camera's events."""
    with h5py.File(path, "w") as f:
        for camera, ev in events.items():
            if ev is not None:
                f.create_dataset(layout.events_key(camera), data=ev)
            if image_shape is not None:
                f.create_dataset(layout.image_key(camera), data=np.zeros((2, *tuple(image_shape)), np.uint8))
        for camera, maps in (rect_maps or {}).items():
            for axis, table in maps.items():
                f.create_dataset(layout.rect_map_key(camera, axis), data=table)
    return path


def write_gt(path: Path, depth: np.ndarray | None, ts: np.ndarray | None) -> Path:
    """Write a ``*_gt.hdf5`` with the given depth stack and timestamps (None omits one)."""
    with h5py.File(path, "w") as f:
        f.create_group("davis/left")
        if depth is not None:
            f.create_dataset(layout.DEPTH_KEY, data=depth)
        if ts is not None:
            f.create_dataset(layout.DEPTH_TS_KEY, data=ts)
    return path


def write_recording(
    tmp: Path,
    name: str = "seq1",
    *,
    n: int = 2000,
    n_depth: int = 10,
    height: int = layout.HEIGHT,
    width: int = layout.WIDTH,
    seed: int = 0,
    duration: float = 1.0,
    gt: bool = True,
    rect_maps: dict[str, dict[str, np.ndarray]] | None = None,
) -> Path:
    """A consistent small recording; returns the data path."""
    rng = np.random.default_rng(seed)
    events = {cam: random_events(rng, n, duration=duration, height=height, width=width) for cam in layout.CAMERAS}
    data = write_data(tmp / f"{name}_data.hdf5", events, image_shape=(height, width), rect_maps=rect_maps)
    if gt:
        depth = rng.uniform(0.5, 10.0, (n_depth, height, width)).astype(np.float32)
        depth[:, :3, :] = np.nan
        ts = T0 + np.linspace(0.1, duration, n_depth)
        write_gt(tmp / f"{name}_gt.hdf5", depth, ts)
    return data
