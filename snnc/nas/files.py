"""Atomic file writes for search outputs (genotype, logs, plots, resumable state)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from snnc.errors import SnncError
from snnc.fileio import atomic_output, write_text_atomic

__all__ = ["atomic_output", "write_text_atomic", "save_torch_atomic", "load_torch"]


def save_torch_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` to ``path`` atomically (a crash leaves the previous file intact)."""
    with atomic_output(path) as tmp:
        torch.save(obj, tmp)


def load_torch(path: Path) -> Any:
    """``torch.load`` a search state on the CPU; unreadable files raise :class:`SnncError`."""
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - any unpickling problem is a bad file for the user
        raise SnncError(f"cannot read search state ({type(err).__name__}: {err})", path) from None
