"""End of a run: fold BatchNorm and check the folded network against the trained one.

Folding re-associates floating-point sums (``(w x) * s + t`` becomes
``(w * s) x + t'``), so in float32 a membrane potential that lies within
rounding (~1e-7 relative) of the threshold can spike in one network and not
in the other, and that flip propagates. The check therefore has two parts:

* **exactness of the fold**, in float64: a double-precision copy of the
  trained network and its fold must give the same outputs (to 1e-9 of the
  output scale). Failing this means the folded network computes something
  else, and is an error.
* **float32 agreement** of the deployed pair (folded weights computed in
  float64 and rounded once to the model's dtype) (the saved ``folded.pt`` against
  the trained network), reported, not enforced: the largest output
  difference and the fraction of output elements that agree to 1e-4 of the
  output scale (1.0 unless a rounding-induced spike flip happened).
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from snnc.errors import SnncError
from snnc.models.base import SpikingNet
from snnc.models.fold import fold_bn

__all__ = ["fold_and_check", "outputs_close", "EXACT_TOL", "AGREE_TOL"]

#: float64 tolerance of the exactness check, relative to the output scale.
EXACT_TOL = 1e-9
#: float32 agreement tolerance, relative to the output scale.
AGREE_TOL = 1e-4


def outputs_close(a: torch.Tensor, b: torch.Tensor, tol: float) -> torch.Tensor:
    """Element-wise ``|a - b| <= tol * max(max|a|, 1e-12)``."""
    scale = float(a.abs().max()) if a.numel() else 0.0
    return (a - b).abs() <= tol * max(scale, 1e-12)


def _eval_outputs(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    was = model.training
    model.eval()
    try:
        return model(x)
    finally:
        model.train(was)


@torch.no_grad()
def fold_and_check(model: SpikingNet, x_seq: torch.Tensor) -> tuple[SpikingNet, dict[str, Any]]:
    """``fold_bn(model)`` (eval mode) and the check described in the module docstring.

    Returns ``(folded, check)`` with ``check = {exact, exact_max_abs_diff,
    max_abs_diff, output_scale, agreement, checked_input_shape}``.

    Raises:
        SnncError: the fold is not exact in float64.
    """
    model64 = copy.deepcopy(model).double()
    folded64 = fold_bn(model64)
    x64 = x_seq.double()
    a64 = _eval_outputs(model64, x64)
    b64 = _eval_outputs(folded64, x64)
    exact = bool(outputs_close(a64, b64, EXACT_TOL).all())
    exact_diff = float((a64 - b64).abs().max()) if a64.numel() else 0.0
    if not exact:
        raise SnncError(
            f"BN folding changed the network's outputs in float64 (max |diff| {exact_diff:.3g}); folded.pt not written"
        )
    dtype = next(model.parameters()).dtype
    folded = folded64.to(dtype).eval()  # folded weights computed in float64, rounded once
    a = _eval_outputs(model, x_seq)
    b = _eval_outputs(folded, x_seq)
    close = outputs_close(a, b, AGREE_TOL)
    check = {
        "exact": exact,
        "exact_max_abs_diff": exact_diff,
        "max_abs_diff": float((a - b).abs().max()) if a.numel() else 0.0,
        "output_scale": float(a.abs().max()) if a.numel() else 0.0,
        "agreement": float(close.float().mean()) if close.numel() else 1.0,
        "checked_input_shape": list(x_seq.shape),
    }
    return folded, check
