"""The config of a resumed run: the saved one, with only harmless settings changeable."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from snnc.errors import SnncError
from snnc.train.checkpoint import CHECKPOINT_NAME, load_checkpoint
from snnc.train.config import RESUME_MUTABLE, TrainConfig
from snnc.train.rundir import check_run_dir

__all__ = ["resumed_config"]


def resumed_config(run_dir: Path, given: Mapping[str, Any]) -> TrainConfig:
    """The saved config of ``run_dir`` updated with ``given`` (explicitly passed settings).

    Settings in :data:`~snnc.train.config.RESUME_MUTABLE` (epochs, device, quiet,
    stop_after) may change; any other explicitly given setting must equal the
    saved one. ``epochs`` may not go below the epochs already done.

    Raises:
        SnncError: no checkpoint, a changed setting, or fewer epochs than done.
    """
    check_run_dir(Path(run_dir), resume=True, force=False)
    path = Path(run_dir) / CHECKPOINT_NAME
    ckpt = load_checkpoint(path)
    config = TrainConfig.from_dict(ckpt["config"])
    changes: dict[str, Any] = {"stop_after": None, "quiet": False}  # per invocation, never inherited
    for key, value in given.items():
        if key in RESUME_MUTABLE:
            changes[key] = value
        elif key != "out" and value != getattr(config, key):
            raise SnncError(
                f"--{key.replace('_', '-')} {value!r} differs from the run's saved setting "
                f"{getattr(config, key)!r}; a resumed run keeps its settings (only "
                f"{', '.join('--' + k.replace('_', '-') for k in RESUME_MUTABLE)} may change)",
                path,
            )
    config = dataclasses.replace(config, **changes, out=str(run_dir))
    done = int(ckpt["epoch"])
    if config.epochs is not None and config.epochs < done:
        raise SnncError(f"--epochs {config.epochs} is less than the {done} epochs already trained", path)
    return config
