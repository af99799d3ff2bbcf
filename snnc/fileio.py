"""Atomic file output: the one way snnc writes files a user keeps.

Everything is written to a temporary file beside the target and renamed onto
it only when writing succeeded, so a crash or an error never leaves a
half-written output (and never destroys the previous version).
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Union

from snnc.errors import SnncError

__all__ = ["atomic_output", "write_text_atomic", "json_safe", "write_json_atomic"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_output(path: Union[str, Path]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; it replaces ``path`` only if the block succeeds.

    Raises:
        SnncError: the folder cannot be written.
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    except OSError as err:
        raise SnncError(f"cannot write here: {err.strerror}", path) from None
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual mode
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_text_atomic(path: Union[str, Path], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def json_safe(value: Any) -> Any:
    """NaN/inf -> None, recursively through dicts, lists and tuples (standard JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write_json_atomic(path: Union[str, Path], obj: Any) -> None:
    """Indented JSON of ``obj`` (non-finite floats become null), atomically."""
    write_text_atomic(path, json.dumps(json_safe(obj), indent=2) + "\n")
