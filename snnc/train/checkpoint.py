"""The files of a training run in the one checkpoint format (:mod:`snnc.checkpoint`).

``run_dir/checkpoint.pt`` (written after every epoch, kind ``training``) and
``run_dir/folded.pt`` (written at the end, kind ``network``) hold at least:

* ``genotype``: the genotype as a dict (``snnc.models.genotype.genotype_from_dict``),
  including every training override and the searched neuron parameters
  (DGS ``b``, TPS ``decay``, HNS ``relu`` layers in ``neuron_layers``);
* ``model``: the network's ``state_dict`` (for ``folded.pt`` the BN-folded
  network's: convs with bias, no BatchNorm);
* ``config``: the :class:`~snnc.train.config.TrainConfig` dict;
* ``epoch``: completed epochs;
* ``folded``: False for ``checkpoint.pt``, True for ``folded.pt``;
* ``input_shape``: one time step's input (batch 1) the network was trained on;
* ``family``, ``task``.

``checkpoint.pt`` also holds ``optimizer``, ``scheduler``, ``rng`` (Python,
NumPy, torch CPU/CUDA generator states, as tensors and numbers), ``search``
(DGS/TPS/HNS state) and ``history`` (per-epoch metrics), which is what
``--resume`` needs to continue bit for bit. ``folded.pt`` holds ``fold_check``
(unfolded vs folded outputs). Both are read weights-only (never unpickled) and
written atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from snnc.checkpoint import read_checkpoint, write_checkpoint
from snnc.errors import SnncError

__all__ = ["CHECKPOINT_NAME", "FOLDED_NAME", "save_checkpoint", "load_checkpoint", "load_model"]

CHECKPOINT_NAME = "checkpoint.pt"
FOLDED_NAME = "folded.pt"
REQUIRED = ("genotype", "model", "config", "epoch", "folded")


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write a run's ``payload`` atomically: kind ``network`` when folded, else ``training``."""
    missing = [k for k in REQUIRED if k not in payload]
    if missing:
        raise ValueError(f"checkpoint payload lacks {', '.join(missing)}")
    write_checkpoint(path, "network" if payload["folded"] else "training", payload)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a run's ``checkpoint.pt`` (kind ``training``, weights-only) and check its fields.

    Raises:
        SnncError: missing, unreadable, refused, not a training checkpoint, or incomplete.
    """
    payload = read_checkpoint(path, kinds=("training",))
    missing = [k for k in REQUIRED if k not in payload]
    if missing:
        raise SnncError(f"checkpoint lacks {', '.join(missing)}", path)
    return payload


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> torch.nn.Module:
    """The trained network of a run's ``checkpoint.pt`` or ``folded.pt``, in eval mode."""
    from snnc.models.loading import load_network_checkpoint

    model, _, _ = load_network_checkpoint(path)
    return model.to(map_location).eval()
