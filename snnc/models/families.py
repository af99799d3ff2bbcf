"""The family registry: the one place that maps a genotype family to what it means.

Each :class:`Family` names its genotype class, its network builder, the
network class it builds, the training task it serves, the genotype fields
``--width`` sets, and how to form one time step's default input. Everything
that used to branch on a family name (genotype parsing, ``build_model``,
``snnc train``'s task and width rules, ``snnc info``'s default shape, the
exporter's family of a network) asks this registry instead.

Classes are named by ``"module:attribute"`` and imported on first use, so
reading the registry imports no network code.

To add a family: write its genotype dataclass (``family``, ``time_steps``,
``neuron``, ``neuron_layers``, ``to_dict``/``from_dict``, validating in
``__post_init__``), its :class:`~snnc.models.base.SpikingNet` subclass and
builder, then add one :class:`Family` entry here (and, to export it, its
lowering in :mod:`snnc.export.lower`).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from snnc.errors import PathLike, SnncError

__all__ = [
    "Genotype",
    "Family",
    "FAMILIES",
    "family",
    "family_names",
    "genotype_class",
    "build",
    "family_of_model",
    "default_step_shape",
]


@runtime_checkable
class Genotype(Protocol):
    """What every genotype is: plain, validated, serialisable data."""

    family: str
    time_steps: int

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able dict (``family`` first)."""


@dataclass(frozen=True)
class Family:
    """One genotype family.

    Attributes:
        name: the ``family`` value of its genotypes.
        genotype: ``"module:Class"`` of the genotype dataclass.
        builder: ``"module:function"`` building the network from a genotype (and overrides).
        network: ``"module:Class"`` of the network it builds.
        task: ``"classification"`` or ``"stereo"`` (what ``snnc train`` trains it on).
        width_fields: genotype fields ``--width`` sets.
        stereo_input: one step is a left/right pair ``(B, 2, C, H, W)``.
    """

    name: str
    genotype: str
    builder: str
    network: str
    task: str
    width_fields: tuple[str, ...] = ()
    stereo_input: bool = False


def _resolve(ref: str) -> Any:
    module, attr = ref.split(":")
    return getattr(importlib.import_module(module), attr)


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family(
            "spikedhs-cla",
            "snnc.models.genotype:SpikeDHSClassifierGenotype",
            "snnc.models.spikedhs:build_spikedhs_classifier",
            "snnc.models.spikedhs:SpikeDHSClassifier",
            "classification",
            ("filter_multiplier",),
        ),
        Family(
            "spikedhs-stereo",
            "snnc.models.genotype:SpikeDHSStereoGenotype",
            "snnc.models.stereo:build_spikedhs_stereo",
            "snnc.models.stereo:SpikeDHSStereo",
            "stereo",
            ("feature_filter_multiplier", "matching_filter_multiplier"),
            stereo_input=True,
        ),
        Family(
            "snasnet",
            "snnc.models.snasnet:SNASNetGenotype",
            "snnc.models.snasnet:build_snasnet",
            "snnc.models.snasnet:SNASNet",
            "classification",
            ("channels",),
        ),
        Family(
            "sequential",
            "snnc.models.sequential:SequentialGenotype",
            "snnc.models.sequential:build_sequential",
            "snnc.models.sequential:SequentialNet",
            "classification",
        ),
    )
}


def family_names() -> list[str]:
    """The registered family names."""
    return list(FAMILIES)


def family(name: Any, path: PathLike | None = None) -> Family:
    """The registered family ``name``.

    Raises:
        SnncError: not a string, or not a registered family (the known ones are listed).
    """
    if name is None:
        raise SnncError(f"genotype has no 'family' (expected one of {', '.join(FAMILIES)})", path)
    if not isinstance(name, str):
        raise SnncError(f"genotype 'family' must be a string, got {type(name).__name__}", path)
    if name not in FAMILIES:
        raise SnncError(f"unknown genotype family {name[:80]!r} (expected one of {', '.join(FAMILIES)})", path)
    return FAMILIES[name]


def genotype_class(name: str) -> type:
    """The genotype dataclass of family ``name``."""
    cls: type = _resolve(family(name).genotype)
    return cls


def build(genotype: Genotype, overrides: Mapping[str, Any]) -> Any:
    """The network of ``genotype`` (its family's builder, with ``overrides`` of genotype fields)."""
    return _resolve(family(genotype.family).builder)(genotype, **dict(overrides))


def family_of_model(model: Any) -> Family:
    """The family of a built network (by its class).

    Raises:
        SnncError: not a network of a registered family.
    """
    for fam in FAMILIES.values():
        if isinstance(model, _resolve(fam.network)):
            return fam
    raise SnncError(f"{type(model).__name__} is not a network of a registered family ({', '.join(FAMILIES)})")


def default_step_shape(genotype: Genotype) -> tuple[int, ...]:
    """One time step's input shape (batch 1) from the genotype's own fields.

    Stereo: ``(1, 2, in_channels, 260, 346)`` (an MVSEC/DAVIS346 frame);
    others: ``(1, in_channels, S, S)`` with S the genotype's ``image_size`` (32, CIFAR,
    when it has none).
    """
    from snnc.data.layout import HEIGHT, WIDTH

    channels = int(getattr(genotype, "in_channels", 3))
    if family(genotype.family).stereo_input:
        return (1, 2, channels, HEIGHT, WIDTH)
    size = int(getattr(genotype, "image_size", 32))
    return (1, channels, size, size)
