"""Load the network to run: a preset name, a genotype JSON file or a training checkpoint.

Checkpoints (``.pt`` / ``.pth``: keys ``genotype`` and ``model``) are read with
the export helper's weights-only loader (:mod:`snnc.export.checkpoint`); a
training run's ``checkpoint.pt`` / ``folded.pt`` that it cannot read (it
also holds optimizer and RNG state) goes through :mod:`snnc.train.checkpoint`,
which unpickles it: only load training checkpoints you trust. A preset or a
genotype gives an **untrained** network (weights from ``torch.manual_seed(seed)``),
useful for timing and op counts; with BatchNorm at its initial statistics it
is nearly silent, so firing-rate-based energy numbers need a checkpoint.

Every network is returned BN-folded (:func:`snnc.models.fold.fold_bn`) in
eval mode: the deployed form every backend runs, so all backends start from
identical weights.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch

from snnc.errors import SnncError
from snnc.models.base import SpikingNet

__all__ = ["LoadedNetwork", "load_network", "network_time_steps"]


@dataclass
class LoadedNetwork:
    """A network ready to run.

    Attributes:
        model: folded, eval-mode network.
        genotype: the genotype it was built from.
        kind: ``preset``, ``genotype`` or ``checkpoint``.
        source: the preset name or file path given.
        trained: weights come from a checkpoint (whatever training they had).
    """

    model: SpikingNet
    genotype: Any
    kind: str
    source: str
    trained: bool

    @property
    def family(self) -> str:
        """Genotype family (``spikedhs-stereo``, ``spikedhs-cla``, ``snasnet``, ``sequential``)."""
        return str(getattr(self.genotype, "family", "?"))

    def describe(self) -> str:
        """``'spikedhs-stereo (preset spikedhs-stereo, untrained)'``, ``'... (checkpoint X, trained weights)'``."""
        state = "trained weights" if self.trained else "untrained"
        return f"{self.family} ({self.kind} {self.source}, {state})"


def network_time_steps(genotype: Any) -> int:
    """The genotype's time steps T (``time_steps`` or ``timesteps``; 1 when it has none)."""
    from snnc.models.genotype import genotype_time_steps

    return genotype_time_steps(genotype) or 1


def _is_checkpoint_file(path: Path) -> bool:
    if path.suffix.lower() == ".json":
        return False
    with open(path, "rb") as f:
        head = f.read(4)
    return head.startswith(b"PK") or head[:1] == b"\x80"  # torch zip or legacy pickle


def _load_checkpoint(path: Path) -> torch.nn.Module:
    """A checkpoint in the export format (:mod:`snnc.export.checkpoint`, weights-only load) or, failing
    that, a training run's (:mod:`snnc.train.checkpoint`, which also holds optimizer and RNG state)."""
    from snnc.export.checkpoint import load_checkpoint

    try:
        return load_checkpoint(path)[0]
    except SnncError as first:
        try:
            from snnc.train.checkpoint import load_model
        except ImportError:
            raise first from None
        try:
            return load_model(path)
        except SnncError:
            raise first from None


def load_network(spec: str, *, overrides: Optional[dict[str, Any]] = None, seed: int = 0,
                 device: str | torch.device = "cpu") -> LoadedNetwork:
    """Build or load ``spec`` (preset name, genotype JSON path or checkpoint path), folded and in eval mode.

    Args:
        spec: what the user passed as MODEL.
        overrides: genotype fields to replace for a preset / genotype (ignored for
            checkpoints, whose genotype is fixed by the trained weights).
        seed: torch seed for an untrained network's weights.
        device: where to put the network.

    Raises:
        SnncError: unknown preset, unreadable file, weights that do not fit.
    """
    from snnc.models.build import build_model
    from snnc.models.fold import fold_bn
    from snnc.models.genotype import load_genotype

    path = Path(spec)
    if path.is_file() and _is_checkpoint_file(path):
        model = _load_checkpoint(path)
        kind, trained = "checkpoint", True
    else:
        if path.suffix.lower() in (".pt", ".pth", ".ckpt") and not path.exists():
            raise SnncError("checkpoint file not found", path)
        genotype = load_genotype(spec)
        torch.manual_seed(seed)
        model = build_model(genotype, **(overrides or {}))
        kind = "genotype" if path.is_file() else "preset"
        trained = False
    if not isinstance(model, SpikingNet):
        raise SnncError(f"{spec}: not an snnc spiking network ({type(model).__name__})")
    model = fold_bn(model.eval()).eval().to(device)
    for p in model.parameters():
        p.requires_grad_(False)
    return LoadedNetwork(model, model.genotype, kind, str(spec), trained)
