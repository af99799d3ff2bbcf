"""Helpers shared by CLI commands: output-path safety and atomic writes."""
from __future__ import annotations

from pathlib import Path

from snnc.errors import SnncError
from snnc.fileio import atomic_output  # noqa: F401  (commands import it from here)


def check_output_path(path: Path, force: bool) -> None:
    """Refuse to overwrite an existing file unless ``force``; the parent folder must exist."""
    path = Path(path)
    if path.exists() and not force:
        raise SnncError("exists; pass --force to overwrite it", path)
    if path.is_dir():
        raise SnncError("is a folder, expected a file path", path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        raise SnncError(f"folder {parent} does not exist", path)
