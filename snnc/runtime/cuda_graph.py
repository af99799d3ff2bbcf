"""One network step on static buffers, and its CUDA-graph capture (batch-1 streaming latency).

A CUDA graph replays a recorded sequence of kernels on fixed memory, which
removes the per-kernel launch cost that dominates a batch-1 step on a GPU.
Its inputs and outputs must live at fixed addresses, so :class:`StaticStep`
runs ``model.step`` on static buffers: the frame is copied into a static
input, the new state is written back into the static state tensors in place
(staged through a copy where a new state tensor shares memory with an old
one, e.g. a value carried unchanged), and the cost is written into a static
output. Eager :class:`StaticStep` runs on any device and gives exactly the
results of ``model.step``; :class:`CudaGraphStep` records one
:meth:`StaticStep.run` with :class:`torch.cuda.CUDAGraph` and replays it per
frame.

``autocast`` (``torch.float16`` / ``torch.bfloat16``) runs the synaptic
layers under :func:`torch.autocast`; the neuron state stays float32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch
from torch import Tensor

from snnc.errors import SnncError
from snnc.models.base import SpikingNet

__all__ = ["AUTOCAST_DTYPES", "CudaGraphStep", "StaticStep", "autocast_context"]

#: ``--dtype`` names -> the autocast dtype (None: plain float32).
AUTOCAST_DTYPES: dict[str, torch.dtype | None] = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}


def autocast_context(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager[object]:
    """:func:`torch.autocast` on ``device`` at ``dtype`` (weight cache off: graph capture may use it), or a no-op."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype, cache_enabled=False)


def _storage(t: Tensor) -> int:
    return int(t.untyped_storage().data_ptr())


class StaticStep:
    """``model.step`` on static buffers (see module docstring).

    Args:
        model: the eval-mode network, already on its device.
        x0: a frame shaped like every later frame (sets the static input's shape, dtype and device).
        state: the state to start from (copied into contiguous static tensors).
        autocast: dtype for the synaptic layers (None: float32).
    """

    def __init__(self, model: SpikingNet, x0: Tensor, state: Sequence[Tensor], autocast: torch.dtype | None = None):
        self.model = model
        self.autocast = autocast
        self.x = torch.zeros(x0.shape, dtype=x0.dtype, device=x0.device)
        self.state: tuple[Tensor, ...] = tuple(s.detach().clone(memory_format=torch.contiguous_format) for s in state)
        self.cost: Tensor | None = None
        self._storages = {_storage(s) for s in self.state}

    def load(self, state: Sequence[Tensor]) -> None:
        """Copy ``state`` into the static state tensors (in place; addresses unchanged)."""
        if len(state) != len(self.state):
            raise ValueError(f"state has {len(state)} tensors, the static step {len(self.state)}")
        with torch.no_grad():
            for dst, src in zip(self.state, state, strict=True):
                dst.copy_(src)

    def run(self) -> Tensor:
        """One step from the static input and state: the state is updated in place; returns the static cost."""
        with torch.no_grad(), autocast_context(self.x.device, self.autocast):
            cost, new_state = self.model.step(self.x, self.state)
        with torch.no_grad():
            # a new state tensor that shares memory with an old one would be overwritten before it is read
            staged = [n.clone() if _storage(n) in self._storages else n for n in new_state]
            for dst, src in zip(self.state, staged, strict=True):
                dst.copy_(src)
            cost = cost.float()
            if self.cost is None or self.cost.shape != cost.shape:
                self.cost = torch.empty_like(cost)
            self.cost.copy_(cost)
        return self.cost

    def __call__(self, x: Tensor) -> Tensor:
        """Copy ``x`` into the static input and run one step; returns the static cost (overwritten next call)."""
        self.x.copy_(x)
        return self.run()


class CudaGraphStep:
    """A :class:`StaticStep` captured once as a CUDA graph and replayed per frame.

    Args:
        model, x0, state, autocast: as for :class:`StaticStep`; ``x0`` and the model must be on a CUDA device.
        warmup: eager steps run on a side stream before capture (lazy cuDNN / cuBLAS set-up); the state is
            restored afterwards, so the first replayed frame starts from ``state``.

    Raises:
        SnncError: the device is not CUDA, or the step cannot be captured (one line with the reason).
    """

    def __init__(
        self,
        model: SpikingNet,
        x0: Tensor,
        state: Sequence[Tensor],
        autocast: torch.dtype | None = None,
        warmup: int = 3,
    ) -> None:
        if x0.device.type != "cuda":
            raise SnncError(f"a CUDA graph needs a CUDA device, not {x0.device} (use --device cuda)")
        self.static = StaticStep(model, x0, state, autocast)
        start = [s.clone() for s in self.static.state]
        self.static.x.copy_(x0)
        side = torch.cuda.Stream(device=x0.device)
        side.wait_stream(torch.cuda.current_stream(x0.device))
        with torch.cuda.stream(side):
            for _ in range(max(int(warmup), 1)):
                self.static.run()
        torch.cuda.current_stream(x0.device).wait_stream(side)
        self.static.load(start)
        self.graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(self.graph):
                self._cost = self.static.run()
        except RuntimeError as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise SnncError(f"the network step cannot be captured as a CUDA graph: {first}") from None
        self.static.load(start)  # capture records kernels without running them; be explicit anyway

    def reset(self, state: Sequence[Tensor]) -> None:
        """Start the next replay from ``state`` (copied in place)."""
        self.static.load(state)

    def __call__(self, x: Tensor) -> Tensor:
        """Replay one step for frame ``x``; returns the static cost (overwritten by the next call)."""
        self.static.x.copy_(x, non_blocking=True)
        self.graph.replay()
        return self._cost
