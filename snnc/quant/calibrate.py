"""Post-training calibration: the input quantisation from a few batches, and one-call quantisation of a network.

The weights need no data (their scales come from the weights themselves,
:mod:`snnc.quant.int8`); the input does. :func:`calibrate_input` looks at a
few calibration inputs: integer-valued inputs within ``[-127, 127]`` (SBT event
frames are in {-1, 0, 1}) keep scale 1 and lose nothing; any other input is
scaled so that its largest magnitude seen maps to ``127``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from snnc.errors import SnncError
from snnc.export.graph import Graph
from snnc.neurons.integer import W_MAX
from snnc.quant.fields import QuantFields
from snnc.quant.int8 import apply_int8, quantize_graph

__all__ = ["calibrate_input", "quantize_network", "int8_graph"]


def calibrate_input(batches: Iterable[Tensor]) -> tuple[float, int, dict[str, Any]]:
    """``(input_scale, input_max, notes)`` from calibration inputs (module docstring).

    Raises:
        SnncError: no calibration input, or inputs that are all zero / not finite.
    """
    peak, count, integer = 0.0, 0, True
    for x in batches:
        x = x.detach().to(torch.float64)
        if not bool(torch.isfinite(x).all()):
            raise SnncError("int8 calibration: an input holds NaN or infinity")
        peak = max(peak, float(x.abs().max()) if x.numel() else 0.0)
        integer = integer and bool(torch.equal(x, torch.round(x)))
        count += int(x.shape[0]) if x.dim() else 1
    if count == 0 or peak == 0.0:
        raise SnncError("int8 calibration needs at least one non-zero input")
    if integer and peak <= W_MAX:
        return 1.0, int(peak), {"calibration": f"{count} inputs, integer-valued within +-{int(peak)}: scale 1"}
    return peak / W_MAX, W_MAX, {"calibration": f"{count} inputs, largest |x| {peak:.6g} -> {W_MAX}"}


def quantize_network(
    model: nn.Module,
    step_shape: Sequence[int],
    batches: Iterable[Tensor],
    method: str = "ptq",
) -> QuantFields:
    """PTQ of a folded network: calibrate the input on ``batches`` (one step's inputs), quantise its graph.

    Raises:
        SnncError: see :func:`calibrate_input` and :func:`snnc.quant.int8.quantize_graph`.
    """
    from snnc.export.lower import graph_inputs, lower

    graph = lower(model, step_shape)
    family = str(graph.meta["family"])
    scale, peak, notes = calibrate_input(graph_inputs(family, x)["x"] for x in batches)
    return quantize_graph(graph, scale, max(1, peak), method=method, notes=notes)


def int8_graph(model: nn.Module, step_shape: Sequence[int], fields: QuantFields) -> Graph:
    """The integer export graph of a folded network for one-step inputs of ``step_shape``."""
    from snnc.export.lower import lower

    return apply_int8(lower(model, step_shape), fields)
