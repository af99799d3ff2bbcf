"""Load the network to run: a checkpoint, a shipped model, a genotype JSON file or a preset.

MODEL arguments resolve by :data:`snnc.models.loading.MODEL_RULE` (a file's
type by its extension, a bare name is a preset or a shipped model) and
checkpoints are read weights-only by the one loader,
:func:`snnc.models.loading.open_model`. A preset or a genotype gives an
**untrained** network (weights from a forked RNG seeded with ``seed``),
useful for timing and op counts; with BatchNorm at its initial statistics it
is nearly silent, so firing-rate-based energy numbers need a checkpoint.

Every network is returned BN-folded (:func:`snnc.models.fold.fold_bn`) in
eval mode: the deployed form every backend runs, so all backends start from
identical weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
        kind: ``preset``, ``genotype``, ``checkpoint`` or ``zoo`` (a shipped model).
        source: the preset name or file path given.
        trained: weights come from a checkpoint (whatever training they had).
        input_shape: one time step's input (batch 1) the checkpoint was trained on, if recorded.
        meta: the checkpoint's other fields (``int8``: an int8 network's integer fields), empty otherwise.
    """

    model: SpikingNet
    genotype: Any
    kind: str
    source: str
    trained: bool
    input_shape: tuple[int, ...] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def family(self) -> str:
        """Genotype family (``spikedhs-stereo``, ``spikedhs-cla``, ``snasnet``, ``sequential``)."""
        return str(getattr(self.genotype, "family", "?"))

    def describe(self) -> str:
        """``'spikedhs-stereo (preset spikedhs-stereo, untrained)'``, ``'... (checkpoint X, trained weights)'``."""
        state = "trained weights" if self.trained else "untrained"
        return f"{self.family} ({self.kind} {self.source}, {state})"


def network_time_steps(genotype: Any) -> int:
    """The genotype's time steps T (1 when it has none)."""
    from snnc.models.genotype import genotype_time_steps

    return genotype_time_steps(genotype) or 1


def load_network(
    spec: str, *, overrides: dict[str, Any] | None = None, seed: int = 0, device: str | torch.device = "cpu"
) -> LoadedNetwork:
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
    from snnc.models.fold import fold_bn
    from snnc.models.loading import open_model, resolve_model

    ref = resolve_model(spec)
    opened = open_model(ref, seed=seed, overrides=None if ref.kind in ("checkpoint", "zoo") else overrides)
    model, kind, trained = opened.model, ref.kind, opened.trained
    if not isinstance(model, SpikingNet):
        raise SnncError(f"{spec}: not an snnc spiking network ({type(model).__name__})")
    model = fold_bn(model.eval()).eval().to(device)
    for p in model.parameters():
        p.requires_grad_(False)
    return LoadedNetwork(model, model.genotype, kind, str(spec), trained, opened.input_shape, dict(opened.meta))
