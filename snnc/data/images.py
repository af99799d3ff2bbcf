"""Image classification data: sklearn's ``digits`` or a folder of ``.npz`` files.

``digits``: :func:`sklearn.datasets.load_digits`, 1797 one-channel 8x8 images
with values 0..16, scaled to [0, 1]; a fixed stratified train/test split
(``test_fraction``, ``split_seed``).

A folder: every ``*.npz`` in it must hold ``x`` (N, C, H, W) and ``y`` (N,)
integer labels in 0..classes-1. Files whose name starts with ``train`` form
the training set and files starting with ``test`` the test set; if the
folder has no such pair, all files are concatenated and split like digits.
``uint8`` images are scaled by 1/255, other dtypes are used as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from snnc.errors import SnncError

__all__ = ["ImageSet", "digits_arrays", "load_image_set", "load_digits_set", "load_npz_folder", "stratified_split"]


@dataclass
class ImageSet:
    """Train and test images ``(N, C, H, W)`` float32 and labels ``(N,)`` int64."""

    name: str
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    num_classes: int

    @property
    def in_channels(self) -> int:
        """Image channels C."""
        return int(self.x_train.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W)."""
        return int(self.x_train.shape[2]), int(self.x_train.shape[3])


def stratified_split(y: np.ndarray, test_fraction: float, seed: int, source: str) -> tuple[np.ndarray, np.ndarray]:
    """``(train, test)`` index arrays of a stratified split (sklearn ``train_test_split`` order).

    The one split used by ``snnc train`` and by the searches that must keep its test part out.
    """
    from sklearn.model_selection import train_test_split

    try:
        train, test = train_test_split(np.arange(len(y)), test_size=test_fraction, random_state=seed, stratify=y)
    except ValueError as err:
        raise SnncError(f"cannot make a stratified train/test split: {err}", source) from None
    return train, test


def _split(x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int, source: str) -> tuple[np.ndarray, ...]:
    train, test = stratified_split(y, test_fraction, seed, source)
    return x[train], x[test], y[train], y[test]


def _make_set(name: str, xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, yte: np.ndarray) -> ImageSet:
    classes = int(max(ytr.max(initial=0), yte.max(initial=0))) + 1
    return ImageSet(
        name,
        torch.as_tensor(xtr, dtype=torch.float32),
        torch.as_tensor(ytr, dtype=torch.int64),
        torch.as_tensor(xte, dtype=torch.float32),
        torch.as_tensor(yte, dtype=torch.int64),
        classes,
    )


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """sklearn digits as ``(images float32 (1797, 1, 8, 8) in [0, 1], labels int64)``."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (digits.images.astype(np.float32) / 16.0)[:, None], digits.target.astype(np.int64)


def load_digits_set(test_fraction: float = 0.2, split_seed: int = 0) -> ImageSet:
    """sklearn digits as 1x8x8 images in [0, 1] with a stratified split."""
    x, y = digits_arrays()
    xtr, xte, ytr, yte = _split(x, y, test_fraction, split_seed, "digits")
    return _make_set("digits", xtr, ytr, xte, yte)


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as f:
            if "x" not in f or "y" not in f:
                raise SnncError(f"npz file must hold arrays 'x' (N, C, H, W) and 'y' (N,), has {sorted(f.files)}", path)
            x, y = f["x"], f["y"]
    except SnncError:
        raise
    except (OSError, ValueError) as err:
        raise SnncError(f"cannot read npz file: {err}", path) from None
    if x.ndim != 4 or x.dtype.kind not in "uif":
        raise SnncError(f"'x' must be a numeric (N, C, H, W) array, got {x.dtype} {x.shape}", path)
    if y.ndim != 1 or y.dtype.kind not in "ui" or y.shape[0] != x.shape[0]:
        raise SnncError(f"'y' must be (N,) integer labels with N = {x.shape[0]}, got {y.dtype} {y.shape}", path)
    if y.size and y.min() < 0:
        raise SnncError(f"labels must be >= 0, found {int(y.min())}", path)
    xf = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    if not np.isfinite(xf).all():
        raise SnncError("'x' contains NaN or inf", path)
    return xf, y.astype(np.int64)


def _concat(parts: list[tuple[Path, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    shape = parts[0][1].shape[1:]
    for path, x, _ in parts:
        if x.shape[1:] != shape:
            raise SnncError(f"images are {x.shape[1:]} but {parts[0][0].name} has {shape}", path)
    return np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts])


def load_npz_folder(folder: Path, test_fraction: float = 0.2, split_seed: int = 0) -> ImageSet:
    """Images from every ``*.npz`` in ``folder`` (see module docstring)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SnncError("data folder not found (expected 'digits' or a folder of .npz files)", folder)
    files = sorted(folder.glob("*.npz"))
    if not files:
        raise SnncError("no .npz files in the data folder", folder)
    parts = [(p, *_read_npz(p)) for p in files]
    train = [p for p in parts if p[0].name.startswith("train")]
    test = [p for p in parts if p[0].name.startswith("test")]
    if train and test:
        xtr, ytr = _concat(train)
        xte, yte = _concat(test)
        if xtr.shape[1:] != xte.shape[1:]:
            raise SnncError(f"train images are {xtr.shape[1:]} but test images are {xte.shape[1:]}", folder)
    else:
        x, y = _concat(parts)
        xtr, xte, ytr, yte = _split(x, y, test_fraction, split_seed, str(folder))
    return _make_set(folder.name, xtr, ytr, xte, yte)


def load_image_set(data: str, test_fraction: float = 0.2, split_seed: int = 0) -> ImageSet:
    """``'digits'`` or a folder of ``.npz`` files."""
    if data == "digits":
        return load_digits_set(test_fraction, split_seed)
    return load_npz_folder(Path(data), test_fraction, split_seed)
