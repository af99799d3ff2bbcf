"""Shared helpers for the training tests: tiny genotypes, a small digits subset, configs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from snnc.train.config import TrainConfig

#: The published 3-node SpikeDHS cell on a short path (2 cells, one reduction): fast at 8x8.
TINY_CELL = {
    "nodes": 3,
    "dims": 2,
    "edges": [[1, "snn_b3"], [0, "snn_b3"], [3, "snn_b5"], [2, "snn_b3"], [7, "snn_b3"], [8, "snn_b3"]],
}


def tiny_genotype(path: Path, filter_multiplier: int = 4, cells: tuple[int, ...] = (0, 1)) -> Path:
    """Write a small SpikeDHS-CLA genotype JSON and return its path."""
    path.write_text(
        json.dumps(
            {"family": "spikedhs-cla", "cell": TINY_CELL, "path": list(cells), "filter_multiplier": filter_multiplier}
        )
    )
    return path


def digits_subset(folder: Path, n_train: int = 300, n_test: int = 100) -> Path:
    """A folder with train.npz / test.npz holding a digits subset (uint8 images, scaled by the loader)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.round(d.images * (255 / 16)).astype(np.uint8)[:, None]
    y = d.target.astype(np.int64)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "train.npz", x=x[:n_train], y=y[:n_train])
    np.savez(folder / "test.npz", x=x[n_train : n_train + n_test], y=y[n_train : n_train + n_test])
    return folder


def config(arch: Path, data: Any, out: Path, **kw: Any) -> TrainConfig:
    """A quiet single-thread config for tests."""
    base: dict[str, Any] = {
        "arch": str(arch),
        "data": [str(data)],
        "out": str(out),
        "epochs": 1,
        "steps": 2,
        "batch_size": 50,
        "lr": 0.1,
        "threads": 1,
        "quiet": True,
    }
    base.update(kw)
    return TrainConfig(**base)


def load(path: Path) -> dict[str, Any]:
    """Read a checkpoint the one safe way (weights-only), as every snnc command does."""
    from snnc.checkpoint import read_checkpoint

    return read_checkpoint(path)


def quiet_log(_: str) -> None:
    """Swallow progress lines."""
