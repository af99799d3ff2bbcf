"""Event-stereo training data from MVSEC-layout recordings (real or synthetic).

Inputs are SBT stacks (:func:`snnc.data.sbt.sbt_pair`: per depth frame and
camera, 5 frames of 10 ms, values in {-1, 0, 1}); targets are the scaled
disparities ``round(7 * fB / depth)`` of :func:`snnc.data.disparity.depth_to_disparity`.

Windows (the paper's burn-in scheme, methods.md §4): a training sample is
``burn_in + k`` consecutive stacks; the first ``burn_in`` only warm the
network's state up, the last ``k`` are labelled with their depth frames.
Every labelled frame must have ``burn_in`` frames before it in the recording.

Frame selection (``split``):

* ``1`` / ``3``: the standard indoor_flying splits of :mod:`snnc.data.splits`
  (train frames from the training sequences, test frames from the test
  sequence; pass the recordings as several ``--data``). ``auto`` picks split 1
  (or 3) when the recordings are named ``indoor_flying{1,2,3}`` and include
  the split's test sequence and a training sequence.
* ``tail``: in every recording the last ``test_fraction`` of the depth frames
  are held out for testing, the rest is training (synthetic recordings).

Test windows cover every labelled test frame exactly once (consecutive test
frames chopped into chunks of ``k``; burn-in stacks are taken from the frames
before, which are inputs only).

Optional ``crop`` (top, left, height, width in sensor pixels) and integer
``downscale`` f (SBT: sign of the sum over f x f blocks; depth: the block's
centre sample; disparities and ``fB`` scale by 1/f) make CPU training practical.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from snnc.data import layout
from snnc.data.disparity import depth_to_disparity
from snnc.data.mvsec import MVSECRecording
from snnc.data.sbt import sbt_pair_counted
from snnc.data.splits import SPLITS, TRAIN_FILTERS, split_indices
from snnc.data.windows import WindowStats
from snnc.errors import SnncError

__all__ = ["FrameTransform", "Window", "StereoBatch", "StereoData", "choose_split", "random_crop", "shift_disparity"]


@dataclass(frozen=True)
class FrameTransform:
    """Crop then block-downscale of sensor frames (see module docstring)."""

    top: int
    left: int
    height: int
    width: int
    factor: int

    @classmethod
    def make(
        cls, sensor: tuple[int, int], crop: Sequence[int] | None, factor: int, source: str | None = None
    ) -> FrameTransform:
        """Validate ``crop`` against the sensor size; trim it to a multiple of ``factor``."""
        h, w = sensor
        top, left, ch, cw = (0, 0, h, w) if crop is None else (int(v) for v in crop)
        if top + ch > h or left + cw > w:
            raise SnncError(f"--crop {top},{left},{ch},{cw} does not fit the {h}x{w} sensor", source)
        ch, cw = ch - ch % factor, cw - cw % factor
        if ch < 16 * factor or cw < 16 * factor:
            raise SnncError(f"crop/downscale leave {ch // factor}x{cw // factor} pixels; at least 16x16 needed", source)
        return cls(top, left, ch, cw, int(factor))

    @property
    def out_size(self) -> tuple[int, int]:
        """(h, w) after crop and downscale."""
        return self.height // self.factor, self.width // self.factor

    def sbt(self, stack: np.ndarray) -> np.ndarray:
        """int8 ``(n, H, W)`` -> int8 ``(n, h, w)``."""
        x = stack[:, self.top : self.top + self.height, self.left : self.left + self.width]
        f = self.factor
        if f == 1:
            return np.ascontiguousarray(x)
        n, h, w = x.shape
        blocks = x.reshape(n, h // f, f, w // f, f).astype(np.int16).sum(axis=(2, 4))
        return np.sign(blocks).astype(np.int8)

    def depth(self, depth: np.ndarray) -> np.ndarray:
        """float32 ``(H, W)`` -> ``(h, w)`` (centre sample of each block)."""
        x = depth[self.top : self.top + self.height, self.left : self.left + self.width]
        f = self.factor
        return np.ascontiguousarray(x[f // 2 :: f, f // 2 :: f], dtype=np.float32)


@dataclass(frozen=True)
class Window:
    """Labelled frames ``start .. start + length - 1`` of recording ``rec`` (burn-in before them)."""

    rec: int
    start: int
    length: int


@dataclass
class StereoBatch:
    """One batch: ``x (T, B, 2, n, h, w)``; labelled-step targets ``(L, B, h, w)``."""

    x: Tensor
    disparity: Tensor
    valid: Tensor
    depth: Tensor


def random_crop(batch: StereoBatch, size: Sequence[int], generator: torch.Generator) -> StereoBatch:
    """``batch`` cut to a random ``size = (h, w)`` window (the same for every sample, step and camera)."""
    h, w = int(size[0]), int(size[1])
    full_h, full_w = batch.x.shape[-2:]
    if h > full_h or w > full_w:
        raise SnncError(f"--augment-crop {h}x{w} is larger than the {full_h}x{full_w} input")
    top = int(torch.randint(0, full_h - h + 1, (1,), generator=generator))
    left = int(torch.randint(0, full_w - w + 1, (1,), generator=generator))
    rows, cols = slice(top, top + h), slice(left, left + w)
    return StereoBatch(
        x=batch.x[..., rows, cols].contiguous(),
        disparity=batch.disparity[..., rows, cols].contiguous(),
        valid=batch.valid[..., rows, cols].contiguous(),
        depth=batch.depth[..., rows, cols].contiguous(),
    )


def shift_disparity(batch: StereoBatch, s: int, scale: float, fb: float, max_disparity: float | None) -> StereoBatch:
    """Move the right camera's input by ``s`` pixels (content to the left for ``s > 0``): disparity + ``s``.

    For rectified stereo ``d = x_left - x_right``, so ``right'(x) = right(x + s)`` gives
    ``d' = d + s`` (``scale * s`` in scaled units). Columns shifted in are zero (no events);
    pixels whose new disparity is not in ``(0, max_disparity]`` become invalid; ``depth``
    follows the new disparity (``scale * fb / d'``).
    """
    if s == 0:
        return batch
    x = batch.x.clone()
    right = batch.x[:, :, 1]
    shifted = torch.zeros_like(right)
    if s > 0:
        shifted[..., :-s] = right[..., s:]
    else:
        shifted[..., -s:] = right[..., :s]
    x[:, :, 1] = shifted
    disparity = batch.disparity + scale * s
    valid = batch.valid & (disparity > 0)
    if max_disparity is not None:
        valid &= disparity <= max_disparity
    disparity = torch.where(valid, disparity, torch.zeros_like(disparity))
    depth = torch.where(valid, scale * fb / disparity.clamp(min=1e-6), torch.full_like(batch.depth, float("nan")))
    return StereoBatch(x=x, disparity=disparity, valid=valid, depth=depth)


def _runs(frames: Sequence[int]) -> list[tuple[int, int]]:
    """Maximal runs of consecutive integers as (first, last)."""
    out: list[tuple[int, int]] = []
    for f in sorted(set(frames)):
        if out and f == out[-1][1] + 1:
            out[-1] = (out[-1][0], f)
        else:
            out.append((f, f))
    return out


def choose_split(names: Sequence[str], requested: str) -> str:
    """Resolve ``auto`` to ``1``, ``3`` or ``tail`` from the recordings' sequence names."""
    if requested != "auto":
        return requested
    present = set(names)
    for split in (1, 3):
        test_seq, train_seqs = SPLITS[split]
        if test_seq in present and present & set(train_seqs):
            return str(split)
    return "tail"


class StereoData:
    """Recordings, the train/test frame selection, windows and an SBT cache.

    Args:
        paths: ``*_data.hdf5`` files (each with its ``*_gt.hdf5``).
        burn_in, steps: stacks per window (unlabelled, labelled).
        split: ``auto``, ``1``, ``3`` or ``tail``; test_fraction: for ``tail``.
        crop, downscale: see :class:`FrameTransform`.
        max_disparity: scaled disparity above which ground truth is ignored.
        fb: focal length x baseline at sensor resolution (default indoor_flying's).
        cache_gb: memory for cached SBT stacks and depth frames.
        progress: show a progress bar while encoding.
        rect_dir: folder of rectification map txt files (wins over embedded maps).
        max_window_events: most events one camera window may hold (``--max-window-events``).

    The frames encoded into the cache pass the empty-window rule of
    :mod:`snnc.data.windows` per recording; :meth:`describe` states the maps
    used and any empty windows.
    """

    def __init__(
        self,
        paths: Sequence[str],
        *,
        burn_in: int,
        steps: int,
        split: str = "auto",
        test_fraction: float = 0.2,
        crop: Sequence[int] | None = None,
        downscale: int = 1,
        max_disparity: float | None = None,
        fb: float | None = None,
        cache_gb: float = 2.0,
        progress: bool = True,
        rect_dir: str | None = None,
        max_window_events: int = layout.DEFAULT_MAX_WINDOW_EVENTS,
    ) -> None:
        self.burn_in, self.steps = int(burn_in), int(steps)
        self.recordings: list[MVSECRecording] = []
        self._stats: dict[int, WindowStats] | None = None
        self._window_notes: list[str] = []
        try:
            for p in paths:
                rec = MVSECRecording(p, rect_dir=rect_dir, max_window_events=max_window_events)
                self.recordings.append(rec)
                if not rec.has_gt:
                    raise SnncError("recording has no ground-truth depth (the *_gt.hdf5 file beside it)", p)
                if rec.n_depth <= self.burn_in:
                    raise SnncError(
                        f"recording has {rec.n_depth} depth frames; at least {self.burn_in + 1} "
                        f"needed for {self.burn_in} burn-in stacks",
                        p,
                    )
            sizes = {(r.height, r.width) for r in self.recordings}
            if len(sizes) != 1:
                raise SnncError(f"recordings differ in sensor size: {sorted(sizes)}", paths[0])
            self.transform = FrameTransform.make(sizes.pop(), crop, downscale, str(paths[0]))
            self.fb = (layout.FB_INDOOR_FLYING if fb is None else float(fb)) / downscale
            self.scale = layout.DISPARITY_SCALE
            self.max_disparity = max_disparity
            self.split = choose_split([r.sequence_name for r in self.recordings], split)
            train, test = self._select(test_fraction)
            self.train_windows = self._train_windows(train)
            self.test_windows = self._test_windows(test)
            self._train_frames = train
            if not self.train_windows:
                raise SnncError(
                    f"no training window of {self.burn_in} + {self.steps} stacks fits the training "
                    f"frames (use fewer --steps or a longer recording)",
                    paths[0],
                )
            if not self.test_windows:
                raise SnncError(
                    "no test frame with burn-in stacks before it (use a longer recording or a larger --test-fraction)",
                    paths[0],
                )
            self._cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
            self._cache_bytes = 0
            self._cache_limit = int(cache_gb * 2**30)
            self._fill_cache(progress)
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ selection
    def _select(self, test_fraction: float) -> tuple[list[list[int]], list[list[int]]]:
        """Labelled frame indices per recording: (train, test)."""
        n = len(self.recordings)
        train: list[list[int]] = [[] for _ in range(n)]
        test: list[list[int]] = [[] for _ in range(n)]
        if self.split == "tail":
            for i, rec in enumerate(self.recordings):
                n_test = max(1, round(rec.n_depth * test_fraction))
                cut = rec.n_depth - n_test
                train[i] = list(range(self.burn_in, cut))
                test[i] = list(range(max(cut, self.burn_in), rec.n_depth))
            return train, test
        split = int(self.split)
        test_seq, train_seqs = SPLITS[split]
        by_name = {rec.sequence_name: i for i, rec in enumerate(self.recordings)}
        if test_seq not in by_name or not set(train_seqs) & set(by_name):
            raise SnncError(
                f"split {split} needs {test_seq} (test) and at least one of {', '.join(train_seqs)} "
                f"(train) among the --data recordings; got {', '.join(sorted(by_name))}",
                self.recordings[0].data_path,
            )
        for part, target in (("train", train), ("test", test)):
            for seq, k in split_indices(split, part):
                idx = by_name.get(seq)
                if idx is not None and self.burn_in <= k < self.recordings[idx].n_depth:
                    target[idx].append(k)
        for seq in train_seqs:
            if seq in by_name and not train[by_name[seq]]:
                raise SnncError(
                    f"{seq} has {self.recordings[by_name[seq]].n_depth} depth frames, none in the "
                    f"split's training range {TRAIN_FILTERS[seq]}",
                    self.recordings[by_name[seq]].data_path,
                )
        return train, test

    def _train_windows(self, frames: list[list[int]]) -> list[Window]:
        out: list[Window] = []
        for rec, chosen in enumerate(frames):
            for first, last in _runs(chosen):
                out.extend(Window(rec, s, self.steps) for s in range(first, last - self.steps + 2))
        return out

    def _test_windows(self, frames: list[list[int]]) -> list[Window]:
        out = []
        for rec, chosen in enumerate(frames):
            for first, last in _runs(chosen):
                for s in range(first, last + 1, self.steps):
                    out.append(Window(rec, s, min(self.steps, last + 1 - s)))
        return out

    # ------------------------------------------------------------------ frames
    @property
    def frame_size(self) -> tuple[int, int]:
        """(h, w) of the network input."""
        return self.transform.out_size

    @property
    def test_frames(self) -> int:
        """Number of labelled test frames."""
        return sum(w.length for w in self.test_windows)

    def _needed(self) -> list[tuple[int, int]]:
        keys = set()
        for w in self.train_windows + self.test_windows:
            for k in range(w.start - self.burn_in, w.start + w.length):
                keys.add((w.rec, k))
        return sorted(keys)

    def _load(self, rec: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        recording = self.recordings[rec]
        (left, right), counts = sbt_pair_counted(recording, k)
        if self._stats is not None:
            self._stats[rec].add(float(recording.depth_ts[k]), counts)
        stacks = np.stack([self.transform.sbt(left), self.transform.sbt(right)])
        return stacks, self.transform.depth(recording.depth(k))

    def _fill_cache(self, progress: bool) -> None:
        keys = self._needed()
        self._stats = {i: WindowStats(r.data_path) for i, r in enumerate(self.recordings)}
        try:
            for key in tqdm(keys, desc="encoding SBT stacks", unit="frame", disable=not progress, leave=False):
                if self._cache_bytes >= self._cache_limit:
                    break
                self.frame(*key)
            for i, stats in self._stats.items():
                stats.finish()
                if stats.summary_line() and stats.partly_empty:
                    self._window_notes.append(f"{self.recordings[i].sequence_name}: {stats.summary_line()}")
        finally:
            self._stats = None

    def frame(self, rec: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(int8 stacks (2, n, h, w), float32 depth (h, w)) of depth frame ``k`` of recording ``rec``."""
        key = (rec, k)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        value = self._load(rec, k)
        size = value[0].nbytes + value[1].nbytes
        if self._cache_bytes + size <= self._cache_limit:
            self._cache[key] = value
            self._cache_bytes += size
        return value

    def disparity(self, depth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scaled ground-truth disparity and validity of a (transformed) depth frame."""
        return depth_to_disparity(depth, fb=self.fb, scale=self.scale, rounding=True, max_disparity=self.max_disparity)

    # ------------------------------------------------------------------ batches
    def batch(self, windows: Sequence[Window]) -> StereoBatch:
        """Stack windows of equal length into a :class:`StereoBatch`."""
        lengths = {w.length for w in windows}
        if len(lengths) != 1:
            raise ValueError("windows of one batch must have the same length")
        xs, disps, valids, depths = [], [], [], []
        for w in windows:
            frames = [self.frame(w.rec, k) for k in range(w.start - self.burn_in, w.start + w.length)]
            xs.append(np.stack([f[0] for f in frames]))
            labelled = [f[1] for f in frames[self.burn_in :]]
            dv = [self.disparity(d) for d in labelled]
            disps.append(np.stack([d[0] for d in dv]))
            valids.append(np.stack([d[1] for d in dv]))
            depths.append(np.stack(labelled))
        to = torch.from_numpy
        return StereoBatch(
            x=to(np.stack(xs, axis=1).astype(np.float32)),
            disparity=to(np.stack(disps, axis=1)),
            valid=to(np.stack(valids, axis=1)),
            depth=to(np.stack(depths, axis=1)),
        )

    def train_batches(
        self, batch_size: int, generator: torch.Generator, crop: Sequence[int] | None = None, shift: int = 0
    ) -> Iterator[StereoBatch]:
        """Shuffled training windows in batches (order from ``generator``; last partial batch kept).

        Augmentations (random values from ``generator``, one per batch):

        * ``crop = (h, w)``: the batch is cut to a random ``h x w`` window;
        * ``shift = S``: the right camera's stacks move by a random integer ``s`` in
          ``[-S, S]`` pixels, which adds ``s`` to every true disparity
          (:func:`shift_disparity`). The same texture then appears at several
          disparities, so only matching the two views predicts it.
        """
        order = torch.randperm(len(self.train_windows), generator=generator).tolist()
        for i in range(0, len(order), batch_size):
            batch = self.batch([self.train_windows[j] for j in order[i : i + batch_size]])
            if crop is not None:
                batch = random_crop(batch, crop, generator)
            if shift:
                s = int(torch.randint(-shift, shift + 1, (1,), generator=generator))
                batch = shift_disparity(batch, s, self.scale, self.fb, self.max_disparity)
            yield batch

    def num_train_batches(self, batch_size: int) -> int:
        """Batches per epoch."""
        return math.ceil(len(self.train_windows) / batch_size)

    def test_batches(self, batch_size: int) -> Iterator[StereoBatch]:
        """Test windows in order, grouped by length."""
        by_len: dict[int, list[Window]] = {}
        for w in self.test_windows:
            by_len.setdefault(w.length, []).append(w)
        for length in sorted(by_len, reverse=True):
            group = by_len[length]
            for i in range(0, len(group), batch_size):
                yield self.batch(group[i : i + batch_size])

    def median_train_disparity(self) -> float:
        """Median scaled ground-truth disparity over the valid pixels of all training frames."""
        counts = np.zeros(1, dtype=np.int64)
        for rec, frames in enumerate(self._train_frames):
            for k in frames:
                disp, valid = self.disparity(self.frame(rec, k)[1])
                values = disp[valid].astype(np.int64)
                if values.size:
                    add = np.bincount(values)
                    if add.size > counts.size:
                        counts = np.pad(counts, (0, add.size - counts.size))
                    counts[: add.size] += add
        total = int(counts.sum())
        if total == 0:
            raise SnncError("no valid ground-truth disparity in the training frames", self.recordings[0].data_path)
        cum = np.cumsum(counts)
        lo = int(np.searchsorted(cum, (total - 1) // 2, side="right"))
        hi = int(np.searchsorted(cum, total // 2, side="right"))
        return 0.5 * (lo + hi)

    def describe(self) -> str:
        """One line: split, frames, windows, input size."""
        h, w = self.frame_size
        n_train = sum(len(f) for f in self._train_frames)
        rect = " | ".join(sorted({r.rectification_text() for r in self.recordings}))
        notes = "".join(f"; {note}" for note in self._window_notes)
        return (
            f"split {self.split}: {n_train} train frames ({len(self.train_windows)} windows), "
            f"{self.test_frames} test frames; input {h}x{w}, {self.burn_in} burn-in + {self.steps} labelled; "
            f"rectification: {rect}{notes}"
        )

    def close(self) -> None:
        """Close every recording."""
        for rec in self.recordings:
            rec.close()
        self.recordings = []
