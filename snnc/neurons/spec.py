"""Neuron hyper-parameters: one immutable, validated, JSON-friendly record.

``NeuronSpec`` names the neuron type and its constants. It is frozen so that
search methods swap it whole (``dataclasses.replace``): DGS changes ``b``,
TPS changes ``decay``/``decay_a``, HNS changes ``type``. Every construction is
validated, so an invalid spec cannot exist.

Types (methods.md §1):

* ``lif``    leaky integrate-and-fire, hard reset, membrane decay factor ``decay``.
* ``if``     integrate-and-fire: ``decay`` is taken as 1 by the dynamics.
* ``binary`` memory-less spiking neuron: ``decay`` is taken as 0 by the dynamics.
* ``alif``   LIF with adaptive threshold ``A = vth + beta_a * a``,
  ``a <- decay_a * a + y_prev``.
* ``relu``   float ("ANN") activation for hybrid networks.

ALIF scale ``beta_a`` (the papers leave it open): **0.2**. With the default
``decay_a = 0.2`` and ``vth = 0.5`` one spike raises the next step's threshold
by 0.2 (to 0.7, +40 %), the increment decays by ``decay_a`` per step (under 1 %
of ``vth`` after three silent steps), and a neuron firing at every step
saturates at ``vth + beta_a / (1 - decay_a) = 0.75 = 1.5 vth``. So adaptation is
strong enough to halve the rate of a neuron that LIF would fire at every step
(constant input 0.6: LIF 1,1,1,1..., ALIF 1,0,1,0...), yet weak enough that
no input in the useful range is silenced for long, keeping surrogate gradients
(whose width scales with the threshold) alive during training.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from snnc.errors import PathLike, SnncError, short_repr
from snnc.neurons.surrogate import SURROGATES
from snnc.serial import dataclass_from_dict

__all__ = ["NEURON_TYPES", "LEGACY_FIELD_NAMES", "NeuronSpec"]

#: Supported neuron types (``NeuronSpec.type``).
NEURON_TYPES: tuple[str, ...] = ("lif", "if", "binary", "alif", "relu")

_FLOAT_FIELDS = ("decay", "vth", "decay_a", "beta_a", "b")

#: Field names of snnc 0.1 files, read as their new names: ``tau`` was never a time
#: constant but the per-step decay factor (``u <- tau * u + x``), hence the rename.
LEGACY_FIELD_NAMES: dict[str, str] = {"tau": "decay", "tau_a": "decay_a"}


@dataclass(frozen=True)
class NeuronSpec:
    """Hyper-parameters of one neuron layer (see module docstring).

    Attributes:
        type: one of :data:`NEURON_TYPES`.
        decay: membrane decay factor per step in [0, 1], ``u <- decay * u + x`` (a factor,
            not a time constant: ``decay = exp(-dt / tau_mem)``; ignored by ``if``/``binary``/``relu``).
        vth: firing threshold (> 0).
        decay_a: ALIF threshold-adaptation decay factor per step in [0, 1].
        beta_a: ALIF threshold-adaptation scale (>= 0), default 0.2.
        surrogate: one of :data:`snnc.neurons.surrogate.SURROGATES`.
        b: surrogate temperature (> 0).
    """

    type: str = "lif"
    decay: float = 0.2
    vth: float = 0.5
    decay_a: float = 0.2
    beta_a: float = 0.2
    surrogate: str = "dspike"
    b: float = 3.0

    def __post_init__(self) -> None:
        _validate(self, None)

    def to_dict(self) -> dict[str, Any]:
        """All fields as a plain JSON-serialisable dict."""
        return asdict(self)

    @classmethod
    def coerce(cls, value: Any, what: str, path: PathLike | None = None) -> NeuronSpec:
        """A spec from a :class:`NeuronSpec` or its dict form (genotype fields use this).

        Raises:
            SnncError: ``"<what>: <problem>"`` for a bad dict or any other type.
        """
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            try:
                return cls.from_dict(value)
            except SnncError as err:
                raise SnncError(f"{what}: {err}", path) from None
        raise SnncError(f"{what} must be a neuron spec object, got {type(value).__name__}", path)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], path: PathLike | None = None) -> NeuronSpec:
        """Build a spec from a dict (missing keys take their defaults).

        Args:
            d: mapping of field names to values, e.g. from a JSON config.
            path: file the dict came from, named in error messages.

        Raises:
            SnncError: not a mapping, unknown key, unknown type or surrogate,
                non-numeric value, ``vth <= 0``, ``b <= 0``, ``beta_a < 0``,
                ``decay`` or ``decay_a`` outside [0, 1], or an old name given with its new one.

        The snnc 0.1 names ``tau`` / ``tau_a`` (:data:`LEGACY_FIELD_NAMES`) read as
        ``decay`` / ``decay_a``; a dict giving both spellings of one field is refused.
        """
        if isinstance(d, Mapping):
            d = dict(d)
            for old, new in LEGACY_FIELD_NAMES.items():
                if old in d:
                    if new in d:
                        raise SnncError(f"neuron spec: both {old!r} (the old name) and {new!r} given", path)
                    d[new] = d.pop(old)
        return dataclass_from_dict(cls, d, "neuron spec", path)


def _validate(spec: NeuronSpec, path: PathLike | None) -> None:
    """Check every field, coercing ints to float in place (frozen-safe)."""
    if spec.type not in NEURON_TYPES:
        raise SnncError(
            f"neuron spec: unknown neuron type {short_repr(spec.type)} (expected one of {', '.join(NEURON_TYPES)})",
            path,
        )
    if spec.surrogate not in SURROGATES:
        raise SnncError(
            f"neuron spec: unknown surrogate {short_repr(spec.surrogate)} (expected one of {', '.join(SURROGATES)})",
            path,
        )
    for name in _FLOAT_FIELDS:
        value = getattr(spec, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise SnncError(f"neuron spec: {name} must be a finite number, got {short_repr(value)}", path)
        object.__setattr__(spec, name, float(value))
    for name in ("decay", "decay_a"):
        if not 0.0 <= getattr(spec, name) <= 1.0:
            raise SnncError(f"neuron spec: {name} must be in [0, 1], got {short_repr(getattr(spec, name))}", path)
    for name in ("vth", "b"):
        if getattr(spec, name) <= 0.0:
            raise SnncError(f"neuron spec: {name} must be positive, got {short_repr(getattr(spec, name))}", path)
    if spec.beta_a < 0.0:
        raise SnncError(f"neuron spec: beta_a must be >= 0, got {short_repr(spec.beta_a)}", path)
