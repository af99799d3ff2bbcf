"""The integer fields of an int8 network: what a checkpoint's ``int8`` entry holds.

An int8 network is a folded float network plus these fields (``docs/INT8.md``):
the int8 weight and integer bias of every synaptic node of its export graph
(by node name), the :class:`~snnc.neurons.integer.IntNeuron` of every neuron
node, the input quantisation ``x_int = clamp(round(x / input_scale), -input_max,
input_max)`` and the output scale (``float output ~ output_scale * integer
output``). The fields do not depend on the input size: :func:`snnc.quant.int8.apply_int8`
puts them on the export graph of any frame size.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from snnc.errors import PathLike, SnncError, short_repr
from snnc.neurons.integer import W_MAX, IntNeuron

__all__ = ["INT8_FORMAT", "QuantFields", "quantize_input"]

#: ``format`` of a checkpoint's ``int8`` entry.
INT8_FORMAT = "snnc-int8/1"


@dataclass
class QuantFields:
    """Integer fields of an int8 network (module docstring).

    Attributes:
        input_scale: float input per integer input step.
        input_max: integer inputs are clamped to ``[-input_max, input_max]`` (<= 127).
        output_scale: float output per integer output step.
        weights: synaptic node name -> int8 weight array.
        biases: synaptic node name -> int32 bias array (absent: no bias).
        neurons: neuron node name -> integer neuron.
        method: how the fields were made (``ptq`` or ``qat``), with ``notes`` (calibration, clamps).
    """

    input_scale: float
    input_max: int
    output_scale: float
    weights: dict[str, np.ndarray[Any, Any]] = field(default_factory=dict)
    biases: dict[str, np.ndarray[Any, Any]] = field(default_factory=dict)
    neurons: dict[str, IntNeuron] = field(default_factory=dict)
    method: str = "ptq"
    notes: dict[str, Any] = field(default_factory=dict)

    def to_checkpoint(self) -> dict[str, Any]:
        """The checkpoint entry: plain data and integer tensors (readable weights-only)."""
        return {
            "format": INT8_FORMAT,
            "input_scale": float(self.input_scale),
            "input_max": int(self.input_max),
            "output_scale": float(self.output_scale),
            "weights": {k: torch.from_numpy(np.asarray(v, dtype=np.int8).copy()) for k, v in self.weights.items()},
            "biases": {k: torch.from_numpy(np.asarray(v, dtype=np.int32).copy()) for k, v in self.biases.items()},
            "neurons": {k: v.to_dict() for k, v in self.neurons.items()},
            "method": self.method,
            "notes": dict(self.notes),
        }

    @classmethod
    def from_checkpoint(cls, entry: Any, path: PathLike | None = None) -> QuantFields:
        """Read a checkpoint's ``int8`` entry.

        Raises:
            SnncError: another format, missing or ill-typed fields, weights outside int8.
        """
        if not isinstance(entry, Mapping) or entry.get("format") != INT8_FORMAT:
            got = entry.get("format") if isinstance(entry, Mapping) else type(entry).__name__
            raise SnncError(f"checkpoint 'int8' entry must have format {INT8_FORMAT!r}, got {short_repr(got)}", path)
        try:
            scale, in_max, out_scale = (
                float(entry["input_scale"]),
                int(entry["input_max"]),
                float(entry["output_scale"]),
            )
            weights = {str(k): _int_array(v, f"weight of {k}") for k, v in entry["weights"].items()}
            biases = {str(k): _int_array(v, f"bias of {k}") for k, v in entry["biases"].items()}
            neurons = {str(k): IntNeuron.from_dict(dict(v), f"neuron {k}") for k, v in entry["neurons"].items()}
            method, notes = str(entry.get("method", "ptq")), dict(entry.get("notes", {}))
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise SnncError(f"checkpoint 'int8' entry is malformed ({type(err).__name__}: {err})", path) from None
        except SnncError as err:
            raise SnncError(f"checkpoint 'int8' entry: {err}", path) from None
        if not (math.isfinite(scale) and scale > 0 and math.isfinite(out_scale) and out_scale > 0):
            raise SnncError("checkpoint 'int8' entry: input_scale and output_scale must be positive", path)
        if not 1 <= in_max <= W_MAX:
            raise SnncError(f"checkpoint 'int8' entry: input_max must be in [1, {W_MAX}], got {in_max}", path)
        for name, w in weights.items():
            if w.size and int(np.abs(w).max()) > W_MAX:
                raise SnncError(f"checkpoint 'int8' entry: weight of {name} leaves [-{W_MAX}, {W_MAX}]", path)
        return cls(scale, in_max, out_scale, weights, biases, neurons, method, notes)


def _int_array(value: Any, what: str) -> np.ndarray[Any, Any]:
    if not isinstance(value, torch.Tensor) or value.dtype.is_floating_point or value.dtype == torch.bool:
        raise TypeError(f"{what} must be an integer tensor")
    return value.numpy().astype(np.int64)


def quantize_input(x: torch.Tensor, fields: QuantFields) -> torch.Tensor:
    """``clamp(round(x / input_scale), -input_max, input_max)`` in ``x.dtype`` (round half to even).

    The clamp runs in place on the rounded copy (half the memory traffic of a second tensor; the same values)."""
    q = x if fields.input_scale == 1.0 else x / fields.input_scale
    return torch.round(q).clamp_(-fields.input_max, fields.input_max)
