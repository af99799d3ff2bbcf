"""Event stereo: SpikeDHS-Stereo on burn-in windows of SBT stacks.

Loss: the sub-pixel cross-entropy (:func:`snnc.models.stereo.subpixel_cross_entropy`,
Laplace target b = 2) on the labelled steps of each window. Prediction: the
sub-pixel estimator (:func:`snnc.models.stereo.estimate_disparity`, delta 2).
Metrics (:class:`snnc.data.metrics.MetricAccumulator`, per frame then
averaged): ``mean_disparity_error`` (px), ``mean_depth_error`` and
``median_depth_error`` (m), ``one_pixel_accuracy`` (fraction). The baseline
predicts, everywhere, the median ground-truth disparity of the training frames.
Ground truth above the largest representable disparity ``(D - 1) * disp_step``
is ignored in loss and metrics alike.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from snnc.data.metrics import MetricAccumulator
from snnc.errors import SnncError
from snnc.models.families import families_for, find
from snnc.models.stereo import estimate_disparity, subpixel_cross_entropy
from snnc.train.data_stereo import StereoBatch, StereoData
from snnc.train.task import Forward

__all__ = ["StereoTask"]


class StereoTask:
    """Event stereo (see module docstring)."""

    kind = "stereo"
    primary = "one_pixel_accuracy"
    higher_is_better = True

    def __init__(
        self,
        data: StereoData,
        disparities: int,
        disp_step: float,
        batch_size: int,
        device: torch.device,
        augment_crop: Sequence[int] | None = None,
        augment_shift: int = 0,
    ) -> None:
        self.data = data
        self.augment_shift = int(augment_shift)
        self.augment_crop = None if augment_crop is None else tuple(int(v) for v in augment_crop)
        if self.augment_crop is not None:
            h, w = data.frame_size
            if self.augment_crop[0] > h or self.augment_crop[1] > w:
                raise SnncError(
                    f"--augment-crop {self.augment_crop[0]}x{self.augment_crop[1]} is larger than the {h}x{w} input"
                )
        self.disparities = int(disparities)
        self.disp_step = float(disp_step)
        self.batch_size = int(batch_size)
        self.device = device

    # ------------------------------------------------------------------ model
    def model_overrides(self, family: str) -> dict[str, Any]:
        """SBT frames per stack, disparity bins, window length."""
        fam = find(family)
        if fam is None or fam.task != "stereo":
            raise SnncError(
                f"architecture family {family!r} is not a stereo network; use a "
                f"{' or '.join(families_for('stereo'))} genotype with event-stereo data"
            )
        n_frames = 5
        return {
            "in_channels": n_frames,
            "disparities": self.disparities,
            "time_steps": self.data.burn_in + self.data.steps,
        }

    @property
    def steps_per_prediction(self) -> int:
        """1: streaming stereo predicts at every step."""
        return 1

    # ------------------------------------------------------------------ training
    def num_train_batches(self) -> int:
        """Batches per epoch."""
        return self.data.num_train_batches(self.batch_size)

    def train_batches(self, generator: torch.Generator) -> Iterator[StereoBatch]:
        """Shuffled training windows (augmented with ``augment_crop`` / ``augment_shift``)."""
        return self.data.train_batches(self.batch_size, generator, self.augment_crop, self.augment_shift)

    def _cost(self, model: torch.nn.Module, batch: StereoBatch, forward: Forward | None) -> Tensor:
        cost = (forward or model)(batch.x.to(self.device))
        return cost[self.data.burn_in :]

    def loss(
        self, model: torch.nn.Module, batch: StereoBatch, forward: Forward | None = None
    ) -> tuple[Tensor, dict[str, float]]:
        """Sub-pixel cross-entropy over the labelled steps; stats ``loss_sum``, ``count``."""
        cost = self._cost(model, batch, forward)
        loss = subpixel_cross_entropy(
            cost, batch.disparity.to(self.device), batch.valid.to(self.device), b=2.0, disp_step=self.disp_step
        )
        n = float(batch.x.shape[1])
        return loss, {"loss_sum": float(loss.detach()) * n, "count": n}

    def train_metrics(self, sums: dict[str, float]) -> dict[str, float]:
        """``train_loss``."""
        return {"train_loss": sums.get("loss_sum", 0.0) / max(sums.get("count", 0.0), 1.0)}

    # ------------------------------------------------------------------ evaluation
    def _accumulator(self) -> MetricAccumulator:
        return MetricAccumulator(fb=self.data.fb, scale=self.data.scale, max_disparity=self.data.max_disparity)

    @staticmethod
    def _summary(acc: MetricAccumulator) -> dict[str, Any]:
        r = acc.result()
        keys = (
            "mean_disparity_error",
            "mean_depth_error",
            "median_depth_error",
            "one_pixel_accuracy",
            "frames_used",
            "n_valid_pixels",
        )
        return {k: r[k] for k in keys}

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module) -> dict[str, Any]:
        """Held-out metrics of the network and ``test_loss``."""
        was = model.training
        model.eval()
        acc = self._accumulator()
        loss_sum, count = 0.0, 0
        try:
            for batch in self.data.test_batches(self.batch_size):
                cost = self._cost(model, batch, None)
                valid = batch.valid.to(self.device)
                if bool(valid.any()):
                    loss = subpixel_cross_entropy(
                        cost, batch.disparity.to(self.device), valid, b=2.0, disp_step=self.disp_step
                    )
                    loss_sum += float(loss) * int(valid.sum())
                    count += int(valid.sum())
                pred = estimate_disparity(cost, delta=2, disp_step=self.disp_step).cpu().numpy()
                depth = batch.depth.numpy()
                for step in range(pred.shape[0]):
                    for b in range(pred.shape[1]):
                        acc.update(pred[step, b], depth[step, b])
        finally:
            model.train(was)
        out = self._summary(acc)
        out["test_loss"] = loss_sum / count if count else float("nan")
        return out

    def baseline(self) -> dict[str, Any] | None:
        """Constant predictor: the median training disparity at every pixel of every test frame."""
        median = self.data.median_train_disparity()
        acc = self._accumulator()
        for w in self.data.test_windows:
            for k in range(w.start, w.start + w.length):
                depth = self.data.frame(w.rec, k)[1]
                acc.update(np.full(depth.shape, median, dtype=np.float32), depth)
        out = self._summary(acc)
        out["predicted_disparity"] = median
        return out

    def example_input(self, train: bool = False) -> Tensor:
        """One window (batch of 1) as ``(T, 1, 2, 5, h, w)``."""
        window = (self.data.train_windows if train else self.data.test_windows)[0]
        return self.data.batch([window]).x.to(self.device)

    def describe(self) -> str:
        """One line about the data."""
        return f"event stereo, {self.data.describe()}, D = {self.disparities} bins x {self.disp_step:g}"

    def close(self) -> None:
        """Close the recordings."""
        self.data.close()
