"""The family registry: the one place that maps a genotype family to what it means.

Each :class:`Family` names its genotype class, its network builder, the
network class it builds, the training task it serves, the genotype fields
``--width`` and the training data set, its size estimator, and the layout of one
time step's input. Everything that would branch on a family name (genotype
parsing, ``build_model``, ``snnc train``'s task, data and width rules, size
estimates, ``snnc info``'s default shape, the exporter's input layout, which
commands take stereo input) reads a :class:`Family` attribute instead: this is
the only module that compares family names.

Classes are named by ``"module:attribute"`` and imported on first use, so
reading the registry imports no network code.

To add a family: write its genotype dataclass (``family``, ``time_steps``,
``neuron``, ``neuron_layers``, ``to_dict``/``from_dict``, validating in
``__post_init__``), its :class:`~snnc.models.base.SpikingNet` subclass and
builder and a size estimator in :mod:`snnc.models.size`, then add one
:class:`Family` entry here. To export it, register its lowering with
``@lowers(NetworkClass)`` in :mod:`snnc.export.lower` (keyed by the network class,
so this module imports no export code).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, cast, runtime_checkable

from snnc.errors import PathLike, SnncError

__all__ = [
    "Genotype",
    "Family",
    "FAMILIES",
    "family",
    "find",
    "family_names",
    "families_for",
    "genotype_class",
    "build",
    "size_estimator",
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
        size_estimator: ``"module:function"`` estimating its size from a genotype
            (:func:`snnc.models.size.estimate_size`).
        width_fields: genotype fields ``--width`` sets.
        data_fields: genotype fields ``snnc train`` sets from the training data (the
            classification task: ``in_channels``, ``num_classes``, ``time_steps`` and, for a
            network built for one square image size, ``image_size``); empty when ``snnc train``
            does not train the family.
        stereo_input: one step is a left/right pair ``(B, 2, C, H, W)`` (both cameras go into
            the batch of the graph input, :attr:`input_layout`); otherwise one image ``(B, C, H, W)``.
    """

    name: str
    genotype: str
    builder: str
    network: str
    task: str
    size_estimator: str
    width_fields: tuple[str, ...] = ()
    data_fields: tuple[str, ...] = ()
    stereo_input: bool = False

    @property
    def input_layout(self) -> str:
        """How one step's network input becomes the export graph's input ``x`` (recorded in exported files)."""
        if self.stereo_input:
            return (
                "x_t (B, 2, C, H, W) -> x = x_t.transpose(0, 1).reshape(2B, C, H, W): both cameras in the batch, "
                "left frames first"
            )
        return "x = x_t (B, C, H, W)"


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
            "snnc.models.size:_classifier",
            ("filter_multiplier",),
            ("in_channels", "num_classes", "time_steps"),
        ),
        Family(
            "spikedhs-stereo",
            "snnc.models.genotype:SpikeDHSStereoGenotype",
            "snnc.models.stereo:build_spikedhs_stereo",
            "snnc.models.stereo:SpikeDHSStereo",
            "stereo",
            "snnc.models.size:_stereo",
            ("feature_filter_multiplier", "matching_filter_multiplier"),
            stereo_input=True,
        ),
        Family(
            "snasnet",
            "snnc.models.snasnet:SNASNetGenotype",
            "snnc.models.snasnet:build_snasnet",
            "snnc.models.snasnet:SNASNet",
            "classification",
            "snnc.models.size:_snasnet",
            ("channels",),
            ("in_channels", "num_classes", "image_size", "time_steps"),
        ),
        Family(
            "sequential",
            "snnc.models.sequential:SequentialGenotype",
            "snnc.models.sequential:build_sequential",
            "snnc.models.sequential:SequentialNet",
            "classification",
            "snnc.models.size:_sequential",
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


def find(name: Any) -> Family | None:
    """The registered family ``name``, or None (not a string, or not registered)."""
    return FAMILIES.get(name) if isinstance(name, str) else None


def families_for(task: str) -> list[str]:
    """The families ``snnc train`` trains on ``task`` (registered for it, with their ``data_fields`` when
    the task is classification)."""
    return [f.name for f in FAMILIES.values() if f.task == task and (task != "classification" or f.data_fields)]


def genotype_class(name: str) -> type:
    """The genotype dataclass of family ``name``."""
    cls: type = _resolve(family(name).genotype)
    return cls


def build(genotype: Genotype, overrides: Mapping[str, Any]) -> Any:
    """The network of ``genotype`` (its family's builder, with ``overrides`` of genotype fields)."""
    return _resolve(family(genotype.family).builder)(genotype, **dict(overrides))


def size_estimator(name: Any) -> Callable[[Any, tuple[int, ...]], Any] | None:
    """The size estimator of family ``name`` (``estimator(genotype, (H, W))``), None if not registered."""
    fam = find(name)
    return None if fam is None else cast(Callable[[Any, tuple[int, ...]], Any], _resolve(fam.size_estimator))


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
