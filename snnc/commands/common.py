"""Helpers shared by CLI commands: output-path safety and atomic writes."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from snnc.errors import SnncError


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


@contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    A failure leaves neither a half-written ``path`` nor the temporary file.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent or Path(".")))
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the final file normal permissions
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
