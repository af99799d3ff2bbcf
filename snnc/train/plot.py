"""The learning-curve figure of a run (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from snnc.fileio import atomic_output

__all__ = ["plot_learning_curve"]

_LABELS = {
    "test_accuracy": "test accuracy",
    "one_pixel_accuracy": "1PA (test)",
    "mean_disparity_error": "mean disparity error [px] (test)",
}


def plot_learning_curve(
    history: Sequence[dict[str, Any]],
    path: Path,
    primary: str,
    baseline: dict[str, Any] | None = None,
    title: str = "",
) -> None:
    """Loss (train, test) and the task's metrics per epoch; baseline values as dashed lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [primary] + (["mean_disparity_error"] if primary == "one_pixel_accuracy" else [])
    fig, axes = plt.subplots(1, 1 + len(metrics), figsize=(4.2 * (1 + len(metrics)), 3.4))
    epochs = [r["epoch"] for r in history]
    ax = axes[0]
    ax.plot(epochs, [r.get("train_loss") for r in history], "o-", label="train loss")
    test = [(r["epoch"], r["test_loss"]) for r in history if r.get("test_loss") is not None]
    if test:
        ax.plot(*zip(*test, strict=False), "s-", label="test loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    for ax, name in zip(axes[1:], metrics, strict=False):
        points = [(r["epoch"], r[name]) for r in history if r.get(name) is not None]
        if points:
            ax.plot(*zip(*points, strict=False), "o-", label="network")
        if name == "test_accuracy":
            train = [(r["epoch"], r["train_accuracy"]) for r in history if r.get("train_accuracy") is not None]
            if train:
                ax.plot(*zip(*train, strict=False), "^--", label="train accuracy")
        if baseline and baseline.get(name) is not None:
            ax.axhline(baseline[name], color="gray", linestyle="--", label="constant-median baseline")
        ax.set_xlabel("epoch")
        ax.set_ylabel(_LABELS.get(name, name))
        ax.legend()
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    try:
        with atomic_output(path) as tmp:  # a full or read-only disk: one SnncError naming the PNG
            fig.savefig(tmp, dpi=100, format="png")
    finally:
        plt.close(fig)
