"""Strict construction of snnc's plain dataclasses from their JSON dict form."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, TypeVar

from snnc.errors import PathLike, SnncError, list_items

T = TypeVar("T")

__all__ = ["dataclass_from_dict"]


def dataclass_from_dict(cls: type[T], d: Any, what: str, path: PathLike | None = None) -> T:
    """``cls(**d)`` refusing non-mappings and unknown keys; missing keys take their defaults.

    Args:
        cls: a dataclass whose ``__post_init__`` raises SnncError on bad values.
        d: the dict form.
        what: how messages name the object (``"neuron spec"``, ``"snasnet genotype"``).
        path: the file the dict came from, named in every message.

    Raises:
        SnncError: ``d`` is not a mapping, has unknown keys, or a value is invalid.
    """
    if not isinstance(d, Mapping):
        raise SnncError(f"{what} must be a mapping, got {type(d).__name__}", path)
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = [k for k in d if k not in known]
    if unknown:
        shown = list_items(map(str, unknown), fmt=repr, sort=True)
        raise SnncError(f"{what}: unknown key(s) {shown} (expected {', '.join(sorted(known))})", path)
    try:
        return cls(**dict(d))
    except SnncError as err:
        raise SnncError(str(err), path) from None
