"""``build_model``: genotype (or preset name / JSON file) -> network.

Dispatches through the family registry (:mod:`snnc.models.families`): ``spikedhs-cla`` ->
:class:`~snnc.models.spikedhs.SpikeDHSClassifier`, ``spikedhs-stereo`` -> :class:`~snnc.models.stereo.SpikeDHSStereo`,
``snasnet`` -> ``snnc.models.snasnet.build_snasnet``, ``sequential`` -> ``snnc.models.sequential.build_sequential``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from snnc.errors import SnncError
from snnc.models.base import SpikingNet
from snnc.models.families import FAMILIES, build
from snnc.models.genotype import load_genotype

__all__ = ["build_model"]


def build_model(genotype: Any | str | Path, **overrides: Any) -> SpikingNet:
    """Build the network described by ``genotype``.

    Args:
        genotype: a genotype dataclass, a preset name or a JSON file path.
        **overrides: genotype fields to replace first, e.g. ``filter_multiplier=16``,
            ``num_classes=100``, ``disparities=9`` (SNASNet: passed to ``build_snasnet``).

    Raises:
        SnncError: unknown preset/file/family or override, or an invalid value.
    """
    if isinstance(genotype, (str, Path)):
        genotype = load_genotype(genotype)
    family = getattr(genotype, "family", None)
    if family not in FAMILIES:
        raise SnncError(f"cannot build a network from {type(genotype).__name__} (family {family!r})")
    net: SpikingNet = build(genotype, overrides)
    return net
