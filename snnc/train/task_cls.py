"""Image classification with direct coding: the image is the input at each of T steps.

Loss: cross-entropy of the mean logits over T (the prediction), as in the
SpikeDHS retraining. Metric: ``test_accuracy`` (a fraction in [0, 1]).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from snnc.data.images import ImageSet
from snnc.errors import SnncError
from snnc.models.families import families_for, find
from snnc.train.task import Forward

__all__ = ["ClassificationTask"]


class ClassificationTask:
    """Direct-coded image classification (see module docstring)."""

    kind = "classification"
    primary = "test_accuracy"
    higher_is_better = True

    def __init__(
        self, data: ImageSet, time_steps: int, batch_size: int, eval_batch_size: int, device: torch.device
    ) -> None:
        self.data = data
        self.time_steps = int(time_steps)
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size)
        self.device = device

    # ------------------------------------------------------------------ model
    def model_overrides(self, family: str) -> dict[str, Any]:
        """The family's ``data_fields`` (:mod:`snnc.models.families`) from the data: ``in_channels``,
        ``num_classes``, T, and ``image_size`` for a network built for one square size (SNASNet)."""
        d = self.data
        fam = find(family)
        if fam is None or fam.task != "classification" or not fam.data_fields:
            raise SnncError(
                f"architecture family {family!r} is not a classifier; use a "
                f"{' or '.join(families_for('classification'))} genotype with classification data"
            )
        values: dict[str, Any] = {"in_channels": d.in_channels, "num_classes": d.num_classes}
        values["time_steps"] = self.time_steps
        if "image_size" in fam.data_fields:
            h, w = d.image_size
            if h != w:
                raise SnncError(f"{family} needs square images, the data has {h}x{w}")
            values["image_size"] = h
        return {name: values[name] for name in fam.data_fields}

    @property
    def steps_per_prediction(self) -> int:
        """T: the whole sequence makes one prediction."""
        return self.time_steps

    def _sequence(self, x: Tensor) -> Tensor:
        x = x.to(self.device)
        return x.unsqueeze(0).expand(self.time_steps, *x.shape)

    # ------------------------------------------------------------------ training
    def num_train_batches(self) -> int:
        """Batches per epoch (a last batch of one image is dropped: BatchNorm needs two)."""
        n = int(self.data.x_train.shape[0])
        full, rest = divmod(n, self.batch_size)
        return full + (1 if rest >= 2 else 0)

    def train_batches(self, generator: torch.Generator) -> Iterator[tuple[Tensor, Tensor]]:
        """Shuffled ``(images, labels)`` batches."""
        order = torch.randperm(int(self.data.x_train.shape[0]), generator=generator)
        for i in range(self.num_train_batches()):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            yield self.data.x_train[idx], self.data.y_train[idx]

    def loss(
        self, model: torch.nn.Module, batch: tuple[Tensor, Tensor], forward: Forward | None = None
    ) -> tuple[Tensor, dict[str, float]]:
        """Cross-entropy of the mean logits; stats ``loss_sum``, ``correct``, ``count``."""
        x, y = batch
        y = y.to(self.device)
        logits = (forward or model)(self._sequence(x)).mean(0)
        loss = F.cross_entropy(logits, y)
        n = int(y.shape[0])
        return loss, {
            "loss_sum": float(loss.detach()) * n,
            "correct": float((logits.argmax(1) == y).sum()),
            "count": float(n),
        }

    def train_metrics(self, sums: dict[str, float]) -> dict[str, float]:
        """``train_loss`` and ``train_accuracy``."""
        n = max(sums.get("count", 0.0), 1.0)
        return {"train_loss": sums.get("loss_sum", 0.0) / n, "train_accuracy": sums.get("correct", 0.0) / n}

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def predict_logits(self, model: torch.nn.Module, x: Tensor) -> Tensor:
        """Mean logits ``(N, classes)`` of images ``x`` (eval mode, batched)."""
        was = model.training
        model.eval()
        try:
            out = [
                model(self._sequence(x[i : i + self.eval_batch_size])).mean(0).cpu()
                for i in range(0, int(x.shape[0]), self.eval_batch_size)
            ]
        finally:
            model.train(was)
        return torch.cat(out)

    def evaluate(self, model: torch.nn.Module) -> dict[str, Any]:
        """``test_accuracy`` (fraction) and ``test_loss`` on the test set."""
        logits = self.predict_logits(model, self.data.x_test)
        y = self.data.y_test
        return {
            "test_accuracy": float((logits.argmax(1) == y).float().mean()),
            "test_loss": float(F.cross_entropy(logits, y)),
        }

    def baseline(self) -> dict[str, Any] | None:
        """None: classification has no baseline predictor in the metrics."""
        return None

    def example_input(self, train: bool = False) -> Tensor:
        """Up to 64 images as a T-step sequence."""
        x = self.data.x_train if train else self.data.x_test
        return self._sequence(x[:64])

    def describe(self) -> str:
        """One line about the data."""
        d = self.data
        h, w = d.image_size
        return (
            f"{d.name}: {d.x_train.shape[0]} train / {d.x_test.shape[0]} test images, {d.in_channels}x{h}x{w}, "
            f"{d.num_classes} classes, direct coding over T = {self.time_steps}"
        )

    def close(self) -> None:
        """Nothing to release."""
