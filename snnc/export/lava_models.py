"""Faster fixed-point ProcessModels for lava-nc's ``Conv`` and ``LIF`` processes, with Lava's own integers.

Lava's ``PyConvModelFixed`` computes a step with ``lava.proc.conv.utils.conv``:
one ``scipy.signal.convolve2d`` per (output channel, input channel) pair, so a
48 -> 48 convolution of both cameras is 4 608 scipy calls per step. That is
what dominates the Lava run of the int8 stereo feature net
(``benchmarks/bench_lava_int8.py``). :class:`PyConvModelGemm` implements the
same ``Conv`` process with the same ports, variables and step (send the
previous step's activation, receive this step's spikes, convolve, wrap to 24
bits) and computes the convolution as one matrix product per kernel tap
(:func:`conv_gemm`).

**Exact.** Inputs and weights are integers; every partial sum of a product is
bounded by ``sum |w| * max |input|`` (per output channel), so the products are
formed in float32 when that bound is below 2^24, in float64 below 2^53 (exact
integers either way, in any summation order), and by Lava's own
``utils.conv`` otherwise. ``tests/test_lava_models.py`` checks
``conv_gemm == lava.proc.conv.utils.conv`` on strides, paddings, dilations and
groups, and ``tests/test_lava_int8.py`` runs the stereo feature net with it
against the integer specification.

:class:`PyLifModelBitAccBiasFrom` is Lava's ``PyLifModelBitAcc`` whose bias is held
at 0 before the process's Lava step ``bias_from`` (a process parameter,
``LIF(..., bias_from=L)``). :class:`snnc.export.lava_procs.LavaProcNet` needs
every layer's bias off until the layer's first real step; switching it on with
``Var.set`` between steps costs seconds per layer at 64x96, because Lava's
runtime sends a Var's values to its process one message per element.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from snnc.export.lava_env import import_lava

__all__ = ["PyConvModelGemm", "PyLifModelBitAccBiasFrom", "conv_gemm", "exact_dtype"]

import_lava()

from lava.magma.core.decorator import implements, requires, tag  # noqa: E402
from lava.magma.core.model.py.ports import PyInPort, PyOutPort  # noqa: E402
from lava.magma.core.model.py.type import LavaPyType  # noqa: E402
from lava.magma.core.resources import CPU  # noqa: E402
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol  # noqa: E402
from lava.proc.conv import utils  # noqa: E402
from lava.proc.conv.models import AbstractPyConvModel  # noqa: E402
from lava.proc.conv.process import Conv  # noqa: E402
from lava.proc.lif.models import PyLifModelBitAcc  # noqa: E402
from lava.proc.lif.process import LIF  # noqa: E402

#: Lava's graded spikes are 24-bit values (the fixed-point ``s_in`` port's precision).
GRADED_MAX = 2**23


def exact_dtype(weight: npt.NDArray[Any], input_max: int) -> Any:
    """float32 or float64 when every partial sum of the convolution is an exact integer in it, else None."""
    w = np.abs(np.asarray(weight, dtype=np.float64)).reshape(weight.shape[0], -1)
    bound = float(w.sum(axis=1).max(initial=0.0)) * float(input_max)
    if bound < 2**24:
        return np.float32
    if bound < 2**53:
        return np.float64
    return None


def conv_gemm(
    input_: npt.NDArray[Any],
    weight: npt.NDArray[Any],
    kernel_size: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: int,
    dtype: Any = np.float64,
) -> npt.NDArray[Any]:
    """``lava.proc.conv.utils.conv`` (a true convolution in Lava's (x, y, c) order) as a product per kernel tap.

    Args:
        input_: ``(X, Y, C)`` integer-valued input.
        weight: ``(O, kx, ky, C / groups)`` Lava kernel.
        kernel_size, stride, padding, dilation: (x, y) pairs as Lava's Conv holds them.
        groups: convolution groups.
        dtype: the float type the products are summed in (see :func:`exact_dtype`).

    Returns:
        ``(X', Y', O)`` in ``weight.dtype``, equal to Lava's ``utils.conv`` on integer data.
    """
    kx, ky = (int(v) for v in kernel_size)
    sx, sy = (int(v) for v in stride)
    px, py = (int(v) for v in padding)
    dx, dy = (int(v) for v in dilation)
    g = int(groups)
    xo, yo, out_c = utils.output_shape(input_.shape, weight.shape[0], (kx, ky), (sx, sy), (px, py), (dx, dy))
    xo, yo = int(xo), int(yo)
    cin = input_.shape[2]
    cg, og = cin // g, out_c // g
    padded = np.pad(np.asarray(input_, dtype=dtype), ((px, px), (py, py), (0, 0)))
    # a convolution is a correlation with the flipped kernel: tap (i, j) multiplies padded[x*s + i*d, y*s + j*d]
    taps = np.asarray(weight, dtype=dtype)[:, ::-1, ::-1, :].reshape(g, og, kx, ky, cg).transpose(2, 3, 0, 4, 1)
    acc = np.zeros((g, xo * yo, og), dtype=dtype)
    for i in range(kx):
        for j in range(ky):
            patch = padded[i * dx : i * dx + sx * (xo - 1) + 1 : sx, j * dy : j * dy + sy * (yo - 1) + 1 : sy, :]
            p = patch.reshape(xo * yo, g, cg).transpose(1, 0, 2)  # (groups, pixels, cg)
            tap = taps[i, j]  # (groups, cg, og)
            if cg == 1:  # depthwise: a broadcast product, no tiny matrix products
                acc += p * tap
            else:
                acc += np.matmul(p, tap)
    out = acc.transpose(1, 0, 2).reshape(xo, yo, out_c)
    result: npt.NDArray[Any] = np.rint(out).astype(weight.dtype)
    return result


@implements(proc=Conv, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyConvModelGemm(AbstractPyConvModel):  # type: ignore[misc]  # Lava is untyped
    """Lava's ``PyConvModelFixed`` (same ports, variables, timing and 24-bit wrap), convolving by :func:`conv_gemm`."""

    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    a_buf: npt.NDArray[np.int32] = LavaPyType(np.ndarray, np.int32, precision=24)
    weight: npt.NDArray[np.int32] = LavaPyType(np.ndarray, np.int32, precision=8)

    _dtype: Any = "unset"

    def run_spk(self) -> None:
        """Send the previous step's activation, receive this step's spikes, convolve them (Lava's order)."""
        self.a_out.send(self.a_buf)
        graded = self.num_message_bits.item() > 0
        s_in = self.s_in.recv() if graded else self.s_in.recv().astype(bool)
        if isinstance(self._dtype, str):
            self._dtype = exact_dtype(self.weight, GRADED_MAX if graded else 1)
        args = (s_in, self.weight, self.kernel_size, self.stride, self.padding, self.dilation, self.groups[0])
        a_out = utils.conv(*args) if self._dtype is None else conv_gemm(*args, dtype=self._dtype)
        self.a_buf = utils.signed_clamp(a_out, bits=24)


@implements(proc=LIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PyLifModelBitAccBiasFrom(PyLifModelBitAcc):  # type: ignore[misc]  # Lava is untyped
    """Lava's bit-accurate LIF, its bias 0 before Lava step ``proc_params["bias_from"]`` (0-based; default 0)."""

    def scale_bias(self) -> None:
        """Lava's ``bias_mant << bias_exp``, or 0 while ``time_step`` (1 at step 0) is not past ``bias_from``."""
        super().scale_bias()
        if self.time_step <= int(self.proc_params.get("bias_from", 0)):
            self.effective_bias = np.zeros(np.shape(self.bias_mant), dtype=np.int32)  # as Lava scales it: int32
