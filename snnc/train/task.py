"""What a training task provides to the generic loop in :mod:`snnc.train.trainer`.

A task owns its data and knows how to turn a batch into a loss, how to
evaluate a network on held-out data and which genotype fields the data fixes
(input channels, classes, disparity bins, time steps).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

import torch
from torch import Tensor

__all__ = ["Task", "Forward"]

#: ``x_seq -> outputs``: the network's forward, or a re-parametrised call of it (DGS).
Forward = Callable[[Tensor], Tensor]


class Task(Protocol):
    """Interface of :class:`~snnc.train.task_cls.ClassificationTask` and :class:`~snnc.train.task_stereo.StereoTask`."""

    kind: str
    #: Name of the metric plotted and printed per epoch, and whether higher is better.
    primary: str
    higher_is_better: bool

    def model_overrides(self, family: str) -> dict[str, Any]:
        """Genotype fields the data determines (channels, classes, T, ...)."""

    def num_train_batches(self) -> int:
        """Training batches per epoch."""

    def train_batches(self, generator: torch.Generator) -> Iterator[Any]:
        """One epoch of training batches in the order given by ``generator``."""

    def loss(
        self, model: torch.nn.Module, batch: Any, forward: Forward | None = None
    ) -> tuple[Tensor, dict[str, float]]:
        """Training loss of ``batch`` and summable statistics (``forward`` defaults to ``model``)."""

    def train_metrics(self, sums: dict[str, float]) -> dict[str, float]:
        """Epoch metrics from the summed per-batch statistics."""

    def evaluate(self, model: torch.nn.Module) -> dict[str, Any]:
        """Held-out metrics of ``model`` (eval mode, no gradients)."""

    def baseline(self) -> dict[str, Any] | None:
        """Metrics of a trivial predictor on the same held-out data, if the task defines one."""

    def example_input(self, train: bool = False) -> Tensor:
        """A small input sequence ``(T, B, ...)`` on the task's device (fold check, op counting)."""

    @property
    def steps_per_prediction(self) -> int:
        """Time steps a network runs per prediction (T for direct coding, 1 for streaming stereo)."""

    def describe(self) -> str:
        """One line about the data."""

    def close(self) -> None:
        """Release files."""
