"""The integer neuron of ``--precision int8``: Loihi/Lava's bit-accurate LIF, as a pure step function.

The semantics are those of ``lava.proc.lif.models.PyLifModelBitAcc`` (its
``AbstractPyLifModelFixed.subthr_dynamics``) with the current decay switched off
(``du = 4095``, so Lava's ``du + ds_offset = 4096`` clears the current every step)::

    a_t = sum_k W[k] s[k] + b                     synaptic input (integer; W int8, s spikes or integer input)
    u_t = a_t << 6                                Lava's act_shift (|a_t| <= 2**17 - 1, so u never wraps)
    p   = v_{t-1} * (4096 - dv)
    v_t = clip(sign(p) * (|p| >> 12) + u_t, -(2**23 - 1), 2**23 - 1)     12-bit decay, rounded toward zero
    s_t = v_t > (vth << 6)                        strict, Lava's vth_shift
    v_t = 0 where s_t                             hard reset (kept as the state (v, y) and applied
                                                  at the start of the next step, like snnc's float LIF)

``IF`` is ``dv = 0``; ``binary`` is memory-less (``v_t = u_t``, no state). The
bias is part of ``a`` here (Lava adds it to ``v`` as ``bias_mant << bias_exp``
with ``bias_exp = 6``, which is the same number). The full specification with
every bit width is ``docs/INT8.md``.

**Exact in float32.** Every tensor here holds integers below ``2**24`` in
magnitude, so float32 stores them exactly; the one product that can leave
that range, ``v * (4096 - dv)`` (up to ``2**35``), is split as
``|v| = 4096 h + l`` (``h = floor(|v| / 4096)``, ``0 <= l < 4096``)::

    trunc(v k / 4096) = sign(v) (h k + floor(l k / 4096))     (h k and l k both below 2**24)

(the sign put back with a select). So torch, onnxruntime
and any float32 backend compute this step bit for bit like Lava's int64 code,
with no float64 and no integer tensor types.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from snnc.errors import SnncError, short_repr

__all__ = [
    "ACT_SHIFT",
    "DECAY_SHIFT",
    "DECAY_UNITY",
    "V_MAX",
    "A_MAX",
    "VTH_MAX",
    "W_MAX",
    "BIAS_MAX",
    "INT_NEURON_TYPES",
    "INT_STATE_FIELDS",
    "IntNeuron",
    "int_state_fields",
    "int_init_state",
    "exact_decay",
    "int_neuron_step",
]

#: Lava's ``act_shift`` / ``vth_shift``: synaptic input and threshold are MSB-aligned by 6 bits.
ACT_SHIFT = 6
#: Lava's ``decay_shift``: decays are 12-bit fractions of ``DECAY_UNITY``.
DECAY_SHIFT = 12
DECAY_UNITY = 1 << DECAY_SHIFT
#: Largest membrane magnitude: Lava's 24-bit ``v`` saturates at ``+-(2**23 - 1)``.
V_MAX = (1 << 23) - 1
#: Largest synaptic input magnitude ``|a|`` (bias included): ``a << 6`` then stays inside 24 bits.
A_MAX = (1 << 17) - 1
#: Largest threshold: Lava's 17-bit unsigned ``vth``.
VTH_MAX = (1 << 17) - 1
#: Weights are int8 in ``[-127, 127]`` (symmetric; -128 unused).
W_MAX = 127
#: A neuron's summed bias fits Lava's 13-bit signed ``bias_mant`` (``bias_exp = 6``).
BIAS_MAX = (1 << 12) - 1

#: Neuron types with an integer form.
INT_NEURON_TYPES: tuple[str, ...] = ("lif", "if", "binary")
#: State tensors per type: ``v`` the membrane before this step's reset, ``y`` this step's spikes
#: (Lava's ``v`` is ``v * (1 - y)``: the reset is applied at the start of the next step, as snnc's float LIF does).
INT_STATE_FIELDS: dict[str, tuple[str, ...]] = {"lif": ("v", "y"), "if": ("v", "y"), "binary": ()}


@dataclass(frozen=True)
class IntNeuron:
    """Integer parameters of one neuron layer (validated on construction).

    Attributes:
        type: ``lif``, ``if`` or ``binary``.
        vth: threshold in synaptic units, ``0 <= vth <= VTH_MAX``; spikes where ``v > vth << 6``.
        dv: Lava's 12-bit voltage decay (``v <- trunc(v (4096 - dv) / 4096)``): ``0 <= dv <= 4095``
            for ``lif``, ``0`` for ``if``, ``4096`` for ``binary`` (no memory; Lava cannot hold it in ``dv``).
    """

    type: str
    vth: int
    dv: int

    def __post_init__(self) -> None:
        if self.type not in INT_NEURON_TYPES:
            raise SnncError(
                f"integer neuron: type must be one of {', '.join(INT_NEURON_TYPES)}, got {short_repr(self.type)}"
            )
        for name in ("vth", "dv"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise SnncError(f"integer neuron: {name} must be an integer, got {short_repr(value)}")
        if not 0 <= self.vth <= VTH_MAX:
            raise SnncError(f"integer neuron: vth must be in [0, {VTH_MAX}] (17-bit unsigned), got {self.vth}")
        want = {"if": (0, 0), "binary": (DECAY_UNITY, DECAY_UNITY)}.get(self.type, (0, DECAY_UNITY - 1))
        if not want[0] <= self.dv <= want[1]:
            raise SnncError(
                f"integer neuron: dv of a {self.type} neuron must be in [{want[0]}, {want[1]}], got {self.dv}"
            )

    @property
    def keep(self) -> int:
        """``4096 - dv``: the membrane kept per step, in 1/4096."""
        return DECAY_UNITY - self.dv

    @property
    def threshold(self) -> int:
        """The membrane threshold ``vth << 6`` (``v`` spikes strictly above it)."""
        return self.vth << ACT_SHIFT

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable fields."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Any, where: str = "integer neuron") -> IntNeuron:
        """The record of :meth:`to_dict`; SnncError naming ``where`` for anything else."""
        if not isinstance(d, dict) or set(d) != {"type", "vth", "dv"}:
            raise SnncError(f"{where}: expected {{'type', 'vth', 'dv'}}, got {short_repr(d)}")
        try:
            return cls(str(d["type"]), d["vth"], d["dv"])
        except SnncError as err:
            raise SnncError(f"{where}: {err}") from None


def int_state_fields(spec: IntNeuron) -> tuple[str, ...]:
    """Names of the state tensors of an integer neuron (``("v", "y")``; ``()`` for binary)."""
    return INT_STATE_FIELDS[spec.type]


def int_init_state(spec: IntNeuron, like: Tensor) -> tuple[Tensor, ...]:
    """Resting state: zeros shaped like one step's synaptic input."""
    return tuple(torch.zeros_like(like) for _ in INT_STATE_FIELDS[spec.type])


def exact_decay(v: Tensor, keep: int) -> Tensor:
    """``trunc(v * keep / 4096)`` for integer-valued ``|v| <= V_MAX``, exact in float32 (module docstring).

    Formed on the magnitude, ``|v| = 4096 h + l``: ``floor(|v| keep / 4096) = h keep + floor(l keep / 4096)``,
    then the sign of ``v`` put back with a select (every product and scaling by a power of two here is
    exact in float32; no Sign op, which OpenVINO's CPU plugin runs as a slow reference kernel).
    """
    if keep == DECAY_UNITY:
        return v
    if keep == 0:
        return torch.zeros_like(v)
    a = torch.abs(v)
    h = torch.floor(a * (1.0 / DECAY_UNITY))
    m = h * keep + torch.floor((a - h * DECAY_UNITY) * (keep / DECAY_UNITY))
    return torch.where(v < 0, -m, m)


def int_neuron_step(
    spec: IntNeuron, a: Tensor, state: tuple[Tensor, ...], *, spike_dtype: torch.dtype | None = None
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """One step of the integer neuron (module docstring).

    Args:
        spec: the layer's integer parameters.
        a: this step's synaptic input, integer-valued with ``|a| <= A_MAX`` (float32 or float64).
        state: ``(v, y)`` from :func:`int_init_state` or the last step (``()`` for binary); ``y`` in any dtype.
        spike_dtype: the spikes' dtype (default ``a.dtype``), e.g. ``torch.uint8``: the same 0/1 values in a
            quarter of the bytes (``snnc.export.runtime.GraphModule(target="openvino")``).

    Returns:
        ``(spikes, new_state)``, spikes 0/1 in ``spike_dtype`` (the state's ``y`` is the spikes).

    Raises:
        SnncError: a state of the wrong size.
    """
    fields = INT_STATE_FIELDS[spec.type]
    if len(state) != len(fields):
        raise SnncError(
            f"integer neuron state for type {spec.type!r} must hold {len(fields)} tensors, got {len(state)}"
        )
    dtype = a.dtype if spike_dtype is None else spike_dtype
    u = a * float(1 << ACT_SHIFT)
    if spec.type == "binary":
        return (u > spec.threshold).to(dtype), ()
    last = state[1] if state[1].dtype == a.dtype else state[1].to(a.dtype)
    v = torch.clamp(exact_decay(state[0] * (1.0 - last), spec.keep) + u, -V_MAX, V_MAX)
    y = (v > spec.threshold).to(dtype)
    return y, (v, y)
