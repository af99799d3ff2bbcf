"""Search data, losses and validation metrics: digits classification and MVSEC stereo.

Both tasks split their data into three disjoint parts: ``A`` (network weights),
``B`` (architecture parameters) and ``val`` (the per-epoch validation metric).
Batches are drawn in an order fixed by ``(seed, epoch, part)``, so a resumed
search sees exactly the batches an uninterrupted one would.

:class:`DigitsTask` (``--data digits``)
    scikit-learn's 8x8 digits (1797 images, 16 grey levels, scaled to [0, 1]),
    one channel, direct coding: the same image at each of ``time_steps``
    steps. The 20 % stratified test split of ``snnc train`` is left out
    entirely; of the remaining 1437 images a fixed permutation (seed 0,
    independent of the search seed) puts 20 % in ``val`` and the rest
    alternates between ``A`` and ``B`` (575 / 575 / 287). Loss:
    cross-entropy of the time-averaged logits, plus ``aux_weight`` times that
    of the auxiliary head (the paper's 0.4). Metric: validation accuracy (%).

:class:`StereoTask` (``--data REC_data.hdf5``, real or :mod:`snnc.data.synth`)
    The first ``max_frames`` depth frames of the recording, each with its
    left/right SBT stacks (:func:`snnc.data.sbt.sbt_pair`, 50 ms, 5 frames)
    and ``round(7 fB / depth)`` disparity. A sample is ``time_steps``
    consecutive frames (the first ``burn_in`` of them carry no loss, the paper's
    6 + 2 scaled down). The last ``val_fraction`` of the samples (in time) is
    ``val``; the others alternate between ``A`` and ``B``. Training crops are
    random (one position per batch), validation crops centred; a crop larger
    than the sensor is the whole sensor. Loss: sub-pixel cross-entropy
    (Laplace b = 2) over the labelled steps, pixels whose disparity exceeds the
    last cost bin ``(disparities - 1) * disp_step`` are ignored. Metric: mean
    disparity error in pixels (plus MDE and 1PA) on the last step of each
    validation sample, via :class:`snnc.data.metrics.MetricAccumulator`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from snnc.data.images import digits_arrays, stratified_split
from snnc.errors import SnncError

__all__ = ["SearchTask", "DigitsTask", "StereoTask", "digits_split", "part_order"]

Batch = tuple[Tensor, ...]


def part_order(n: int, seed: int, epoch: int, part: str) -> Tensor:
    """Permutation of ``range(n)`` fixed by ``(seed, epoch, part)``."""
    g = torch.Generator().manual_seed((seed * 1_000_003 + epoch * 101 + {"A": 1, "B": 2, "val": 3}[part]) % 2**63)
    return torch.randperm(n, generator=g)


class SearchTask(ABC):
    """Data, loss and metric of one search task."""

    #: name of the validation metric in the logs and whether larger is better.
    metric: str = ""
    higher_is_better: bool = True

    @abstractmethod
    def size(self, part: str) -> int:
        """Number of samples in ``part`` (``"A"``, ``"B"`` or ``"val"``)."""

    @abstractmethod
    def batches(self, part: str, batch_size: int, seed: int, epoch: int) -> Iterator[Batch]:
        """Batches of ``part`` in a fixed order (see module docstring)."""

    @abstractmethod
    def loss(self, model: nn.Module, batch: Batch) -> Tensor:
        """Scalar training loss of ``model`` on ``batch`` (model in train mode)."""

    @abstractmethod
    def evaluate(self, model: nn.Module, batch_size: int) -> dict[str, float]:
        """Validation metrics (``self.metric`` among them); puts the model in eval mode and back."""

    def n_batches(self, part: str, batch_size: int) -> int:
        """Batches per epoch of ``part``."""
        return -(-self.size(part) // batch_size)


# --------------------------------------------------------------------------- digits
def digits_split(labels: np.ndarray, val_fraction: float = 0.2, test_fraction: float = 0.2) -> dict[str, np.ndarray]:
    """Index arrays ``{"A", "B", "val", "test"}`` of the digits search split (see module docstring).

    ``test`` is exactly the hold-out of ``snnc train --data digits`` with its defaults
    (:func:`snnc.data.images.stratified_split`, seed 0); the search never touches it,
    so a retrained genotype's test accuracy is clean. The rest is permuted (seed 0):
    ``val_fraction`` of it is ``val``, the remainder alternates between ``A`` and ``B``.
    """
    train, test = stratified_split(labels, test_fraction, 0, "digits")
    train = train[np.random.default_rng(0).permutation(len(train))]
    n_val = round(len(train) * val_fraction)
    rest = train[n_val:]
    return {"A": rest[0::2], "B": rest[1::2], "val": train[:n_val], "test": np.sort(test)}


class DigitsTask(SearchTask):
    """Digits classification search task (see module docstring).

    Args:
        time_steps: direct-coding steps T.
        aux_weight: weight of the auxiliary head's loss (used if the model has one).
        device: where batches are put.
    """

    metric = "val_accuracy"
    higher_is_better = True

    def __init__(self, time_steps: int = 6, aux_weight: float = 0.4, device: str | torch.device = "cpu") -> None:
        if time_steps < 1:
            raise SnncError(f"--time-steps must be >= 1, got {time_steps}")
        images, labels = digits_arrays()
        self.device = torch.device(device)
        self.images = torch.from_numpy(images).to(self.device)
        self.labels = torch.from_numpy(labels).to(self.device)
        self.parts = {k: torch.from_numpy(v).to(self.device) for k, v in digits_split(labels).items() if k != "test"}
        self.time_steps = time_steps
        self.aux_weight = aux_weight

    def size(self, part: str) -> int:
        return int(self.parts[part].numel())

    def batches(self, part: str, batch_size: int, seed: int, epoch: int) -> Iterator[Batch]:
        idx = self.parts[part][part_order(self.size(part), seed, epoch, part).to(self.device)]
        for i in range(0, idx.numel(), batch_size):
            j = idx[i : i + batch_size]
            yield self.images[j], self.labels[j]

    def _logits(self, model: nn.Module, images: Tensor) -> Tensor:
        x_seq = images.unsqueeze(0).expand(self.time_steps, *images.shape)
        out = model(x_seq).mean(0)
        return out if out.dim() == 3 else out.unsqueeze(1)  # (B, heads, classes)

    def loss(self, model: nn.Module, batch: Batch) -> Tensor:
        images, labels = batch
        logits = self._logits(model, images)
        loss = F.cross_entropy(logits[:, 0], labels)
        if logits.shape[1] > 1 and self.aux_weight > 0:
            loss = loss + self.aux_weight * F.cross_entropy(logits[:, 1], labels)
        return loss

    @torch.no_grad()
    def evaluate(self, model: nn.Module, batch_size: int) -> dict[str, float]:
        was_training = model.training
        model.eval()
        correct, total, loss_sum = 0, 0, 0.0
        try:
            for images, labels in self.batches("val", max(batch_size, 128), 0, 0):
                logits = self._logits(model, images)[:, 0]
                correct += int((logits.argmax(1) == labels).sum())
                loss_sum += float(F.cross_entropy(logits, labels, reduction="sum"))
                total += labels.numel()
        finally:
            model.train(was_training)
        return {"val_accuracy": 100.0 * correct / total, "val_loss": loss_sum / total}


# --------------------------------------------------------------------------- stereo
def _parse_crop(crop: Sequence[int]) -> tuple[int, int]:
    if len(crop) != 2 or any(int(c) < 3 for c in crop):
        raise SnncError(f"--crop must be HxW with both sides >= 3, got {crop!r}")
    return int(crop[0]), int(crop[1])


class StereoTask(SearchTask):
    """MVSEC stereo search task (see module docstring).

    Args:
        data_path: a ``*_data.hdf5`` recording with ground truth beside it.
        crop: ``(height, width)`` of the training/validation crops.
        disparities: cost bins D; disp_step: scaled disparity per bin.
        time_steps: stacks per sample; burn_in: leading steps without loss.
        max_frames: use at most this many depth frames (memory: ~10 bytes/pixel/frame).
        val_fraction: share of the samples (the last ones) used for validation.
        device: where batches are put.
        progress: show a progress bar while encoding the SBT stacks.
    """

    metric = "mean_disparity_error"
    higher_is_better = False

    def __init__(
        self,
        data_path: str | Path,
        crop: Sequence[int] = (200, 280),
        disparities: int = 33,
        disp_step: float = 2.0,
        time_steps: int = 8,
        burn_in: int = 2,
        max_frames: int = 400,
        val_fraction: float = 0.2,
        device: str | torch.device = "cpu",
        progress: bool = False,
    ) -> None:
        from snnc.data.disparity import depth_to_disparity
        from snnc.data.mvsec import MVSECRecording
        from snnc.data.sbt import sbt_pair

        if not 0 <= burn_in < time_steps:
            raise SnncError(f"--burn-in must be in 0..time_steps-1 = {time_steps - 1}, got {burn_in}")
        if disparities < 2 or not disp_step > 0:
            raise SnncError(f"--disparities must be >= 2 and --disp-step > 0, got {disparities} and {disp_step}")
        if max_frames < time_steps + 2:
            raise SnncError(f"--max-frames must be >= time_steps + 2 = {time_steps + 2}, got {max_frames}")
        self.crop = _parse_crop(crop)
        self.disparities = disparities
        self.disp_step = float(disp_step)
        self.max_disparity = (disparities - 1) * self.disp_step
        self.time_steps = time_steps
        self.burn_in = burn_in
        self.device = torch.device(device)
        with MVSECRecording(data_path) as rec:
            if not rec.has_gt:
                raise SnncError("stereo search needs ground-truth depth (a *_gt.hdf5 beside the data file)", data_path)
            n = min(rec.n_depth, max_frames)
            if n < time_steps + 2:
                raise SnncError(
                    f"recording has {rec.n_depth} depth frames; the stereo search needs at least "
                    f"time_steps + 2 = {time_steps + 2}",
                    data_path,
                )
            from tqdm import tqdm

            sbt = np.zeros((n, 2, 5, rec.height, rec.width), dtype=np.int8)
            depth = np.zeros((n, rec.height, rec.width), dtype=np.float32)
            for k in tqdm(range(n), desc="SBT stacks", unit="frame", disable=not progress, leave=False):
                left, right = sbt_pair(rec, k)
                sbt[k, 0], sbt[k, 1] = left, right
                depth[k] = rec.depth(k)
        disp, valid = depth_to_disparity(depth, max_disparity=self.max_disparity)
        self.sbt = torch.from_numpy(sbt)
        self.depth = torch.from_numpy(depth)
        self.disp = torch.from_numpy(disp)
        self.valid = torch.from_numpy(valid)
        self.height, self.width = int(depth.shape[1]), int(depth.shape[2])
        ends = np.arange(time_steps - 1, n)
        n_val = max(1, round(len(ends) * val_fraction))
        train = ends[:-n_val]
        if len(train) < 2:
            raise SnncError(
                f"only {len(ends)} samples of {time_steps} frames; need at least {n_val + 2} "
                f"(use a longer recording or fewer --time-steps)",
                data_path,
            )
        self.parts = {"A": train[0::2], "B": train[1::2], "val": ends[-n_val:]}

    def size(self, part: str) -> int:
        return len(self.parts[part])

    def _window(self, part: str, rng: torch.Generator | None) -> tuple[slice, slice]:
        ch, cw = min(self.crop[0], self.height), min(self.crop[1], self.width)
        if rng is None:
            y0, x0 = (self.height - ch) // 2, (self.width - cw) // 2
        else:
            y0 = int(torch.randint(0, self.height - ch + 1, (1,), generator=rng))
            x0 = int(torch.randint(0, self.width - cw + 1, (1,), generator=rng))
        return slice(y0, y0 + ch), slice(x0, x0 + cw)

    def _batch(self, ends: np.ndarray, ys: slice, xs: slice) -> Batch:
        frames = torch.from_numpy(np.stack([np.arange(e - self.time_steps + 1, e + 1) for e in ends], 1))  # (T, B)
        x = self.sbt[frames][..., ys, xs].float()  # (T, B, 2, 5, h, w)
        gt = self.disp[frames][..., ys, xs]  # (T, B, h, w)
        valid = self.valid[frames][..., ys, xs]
        depth = self.depth[frames[-1]][..., ys, xs]  # (B, h, w)
        return tuple(t.to(self.device) for t in (x, gt, valid, depth))

    def batches(self, part: str, batch_size: int, seed: int, epoch: int) -> Iterator[Batch]:
        ends = self.parts[part][part_order(self.size(part), seed, epoch, part).numpy()]
        rng = None if part == "val" else torch.Generator().manual_seed(seed * 7919 + epoch * 31 + len(part))
        for i in range(0, len(ends), batch_size):
            ys, xs = self._window(part, rng)
            yield self._batch(ends[i : i + batch_size], ys, xs)

    def loss(self, model: nn.Module, batch: Batch) -> Tensor:
        from snnc.models.stereo import subpixel_cross_entropy

        x, gt, valid, _ = batch
        cost = model(x)  # (T, B, D, h, w)
        losses = [
            subpixel_cross_entropy(cost[t], gt[t], valid[t], b=2.0, disp_step=self.disp_step)
            for t in range(self.burn_in, self.time_steps)
        ]
        return torch.stack(losses).mean()

    @torch.no_grad()
    def evaluate(self, model: nn.Module, batch_size: int) -> dict[str, float]:
        from snnc.data.metrics import MetricAccumulator
        from snnc.models.stereo import estimate_disparity

        acc = MetricAccumulator(max_disparity=self.max_disparity)
        was_training = model.training
        model.eval()
        try:
            for x, _, _, depth in self.batches("val", batch_size, 0, 0):
                pred = estimate_disparity(model(x)[-1], disp_step=self.disp_step).cpu().numpy()
                for b in range(pred.shape[0]):
                    acc.update(pred[b], depth[b].cpu().numpy())
        finally:
            model.train(was_training)
        result = acc.result()
        return {k: float(v) for k, v in result.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
