"""Checkpoint files of a training run: format, atomic writing, loading a trained network.

``run_dir/checkpoint.pt`` (written after every epoch) and ``run_dir/folded.pt``
(written at the end) are ``torch.save`` dicts with at least:

* ``genotype``: the genotype as a dict (``snnc.models.genotype.genotype_from_dict``),
  including every training override and the searched neuron parameters
  (DGS ``b``, TPS ``tau``, HNS ``relu`` layers in ``neuron_layers``);
* ``model``: the network's ``state_dict`` (for ``folded.pt`` the BN-folded
  network's: convs with bias, no BatchNorm);
* ``config``: the :class:`~snnc.train.config.TrainConfig` dict;
* ``epoch``: completed epochs;
* ``folded``: False for ``checkpoint.pt``, True for ``folded.pt``;
* ``format`` = ``"snnc-checkpoint"``, ``version`` = 1, ``family``, ``task``.

``checkpoint.pt`` also holds ``optimizer``, ``scheduler``, ``rng`` (Python,
NumPy, torch CPU/CUDA generator states), ``search`` (DGS/TPS/HNS state) and
``history`` (per-epoch metrics), which is what ``--resume`` needs to continue
bit for bit. ``folded.pt`` holds ``fold_check`` (unfolded vs folded outputs).
Files are written to a temporary name in the same folder and renamed, so a
crash never leaves a half-written checkpoint.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Union

import torch

from snnc.errors import SnncError
from snnc.fileio import atomic_output

__all__ = ["CHECKPOINT_NAME", "FOLDED_NAME", "FORMAT", "VERSION", "save_checkpoint", "load_checkpoint", "load_model"]

CHECKPOINT_NAME = "checkpoint.pt"
FOLDED_NAME = "folded.pt"
FORMAT = "snnc-checkpoint"
VERSION = 1
REQUIRED = ("genotype", "model", "config", "epoch", "folded")


def save_checkpoint(path: Union[str, Path], payload: dict[str, Any]) -> None:
    """``torch.save`` ``payload`` to ``path`` atomically (temporary file + rename)."""
    path = Path(path)
    missing = [k for k in REQUIRED if k not in payload]
    if missing:
        raise ValueError(f"checkpoint payload lacks {', '.join(missing)}")
    payload = {"format": FORMAT, "version": VERSION, **payload}
    with atomic_output(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: Union[str, Path], map_location: Union[str, torch.device] = "cpu") -> dict[str, Any]:
    """Read and check a checkpoint written by :func:`save_checkpoint`.

    Raises:
        SnncError: missing, unreadable or not an snnc checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise SnncError("checkpoint file not found", path)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:  # noqa: BLE001 - any unpickling problem is a bad file
        raise SnncError(f"cannot read checkpoint: {type(err).__name__}: {err}", path) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise SnncError("not an snnc training checkpoint", path)
    if payload.get("version") != VERSION:
        raise SnncError(f"checkpoint version {payload.get('version')!r} is not supported (expected {VERSION})", path)
    missing = [k for k in REQUIRED if k not in payload]
    if missing:
        raise SnncError(f"checkpoint lacks {', '.join(missing)}", path)
    return payload


def load_model(path: Union[str, Path], map_location: Union[str, torch.device] = "cpu") -> torch.nn.Module:
    """The trained network of a checkpoint (``checkpoint.pt`` or ``folded.pt``), in eval mode."""
    from snnc.models.build import build_model
    from snnc.models.fold import fold_bn
    from snnc.models.genotype import genotype_from_dict

    payload = load_checkpoint(path, map_location)
    model = build_model(genotype_from_dict(payload["genotype"], path))
    if payload["folded"]:
        model = fold_bn(model)
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise SnncError(f"checkpoint weights do not fit its genotype: {first}", path) from None
    return model.to(map_location).eval()
