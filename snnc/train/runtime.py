"""Device selection, thread count, seeding and RNG state capture (for bit-exact resume)."""

from __future__ import annotations

import random
from typing import Any, cast

import numpy as np
import torch

from snnc.checkpoint import numpy_rng_state
from snnc.errors import SnncError

__all__ = ["resolve_device", "set_threads", "seed_everything", "rng_state", "set_rng_state", "epoch_generator"]


def resolve_device(name: str) -> torch.device:
    """``'cpu'`` or ``'cuda'`` / ``'cuda:N'`` as a :class:`torch.device`.

    Raises:
        SnncError: unknown device, or CUDA requested where PyTorch sees no GPU.
    """
    text = str(name).strip().lower()
    if text == "cpu":
        return torch.device("cpu")
    if text == "cuda" or text.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise SnncError(
                f"--device {name} requested but CUDA is not available "
                f"(torch {torch.__version__} sees no GPU); use --device cpu"
            )
        device = torch.device(text)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise SnncError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) present")
        return device
    raise SnncError(f"unknown --device {name!r} (expected cpu or cuda)")


def set_threads(threads: int) -> None:
    """Use ``threads`` intra-op CPU threads (0 keeps PyTorch's default)."""
    if threads > 0:
        torch.set_num_threads(int(threads))


def seed_everything(seed: int, device: torch.device) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA); make cuDNN deterministic."""
    random.seed(seed)
    # NumPy's global RNG (what libraries and legacy code draw from) has no Generator equivalent to seed or capture.
    np.random.seed(seed % (2**32))  # noqa: NPY002
    torch.manual_seed(seed)
    if device.type == "cuda":
        torch.cuda.manual_seed_all(seed)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def rng_state() -> dict[str, Any]:
    """Every global RNG state (Python, NumPy, torch CPU, torch CUDA when present)."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        # get_state() (legacy=True) returns the tuple form; numpy's stubs declare the dict form too
        "numpy": numpy_rng_state(cast(tuple[Any, ...], np.random.get_state())),  # noqa: NPY002 (the global RNG)
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    random.setstate(state["python"])
    numpy_state = state["numpy"]
    np.random.set_state(  # noqa: NPY002 (the global RNG, as seeded above)
        (
            numpy_state["name"],
            np.asarray(numpy_state["keys"], dtype=np.uint32),
            int(numpy_state["pos"]),
            int(numpy_state["has_gauss"]),
            float(numpy_state["cached_gaussian"]),
        )
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def epoch_generator(seed: int, epoch: int, stream: int = 0) -> torch.Generator:
    """A CPU generator that depends only on (seed, epoch, stream): data order is reproducible on resume."""
    g = torch.Generator()
    g.manual_seed((int(seed) * 1_000_003 + int(epoch) * 7919 + int(stream) * 104_729) % (2**63))
    return g
