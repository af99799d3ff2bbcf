"""Atomic file writes for search outputs (genotype, logs, plots, resumable state)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from snnc.checkpoint import read_checkpoint, write_checkpoint
from snnc.errors import SnncError
from snnc.fileio import atomic_output, write_text_atomic

__all__ = ["atomic_output", "write_text_atomic", "save_search_state", "load_search_state", "prepare_search_output"]


def save_search_state(obj: dict[str, Any], path: Path) -> None:
    """Write a search state atomically as a ``search`` checkpoint (:mod:`snnc.checkpoint`)."""
    write_checkpoint(path, "search", obj)


def load_search_state(path: Path) -> dict[str, Any]:
    """Read a search state safely (weights-only, :func:`snnc.checkpoint.read_checkpoint`).

    Raises:
        SnncError: missing, refused, or not a search state.
    """
    return read_checkpoint(path, kinds=("search",))


def prepare_search_output(
    paths: dict[str, Path], method: str, version: int, force: bool, resume: bool
) -> dict[str, Any] | None:
    """Check a search's ``--out`` / ``--force`` / ``--resume`` rules; the stored state when resuming.

    Args:
        paths: ``{"out", "state", ...}`` of the search.
        method: ``"spikedhs"`` or ``"snasnet"`` (a state of the other method is refused).
        version: the state format this snnc writes.

    Raises:
        SnncError: --out is a folder or its folder cannot be created; --out or a state exists
            without --force/--resume; the state to resume is missing, foreign or of
            another method or output.
    """
    out, state = paths["out"], paths["state"]
    if out.is_dir():
        raise SnncError("is a folder, expected a genotype file path", out)
    if not out.parent.is_dir():
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise SnncError(f"cannot create folder {out.parent}: {err.strerror}", out) from None
    if out.exists() and not force:
        raise SnncError("exists; pass --force to overwrite it", out)
    if not resume:
        if state.exists() and not force:
            raise SnncError("a search state exists here; pass --resume to continue it or --force to start over", state)
        return None
    if not state.exists():
        raise SnncError("no search state to resume (run without --resume to start a search)", state)
    stored = load_search_state(state)
    if not isinstance(stored, dict) or stored.get("state_version") != version or "config" not in stored:
        raise SnncError("not a search state written by this snnc version", state)
    if stored.get("method") != method:
        raise SnncError(f"search state belongs to a {stored.get('method')} search, not {method}", state)
    if stored.get("out") != out.name:
        raise SnncError(f"search state belongs to the search for {stored.get('out')}, not {out.name}", state)
    return stored
