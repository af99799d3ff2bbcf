"""The one error type snnc raises for bad user input.

Every problem a user can cause (a missing file, a malformed HDF5 dataset, an
unknown architecture name...) is raised as :class:`SnncError` with a one-line
message that names the file and the problem. The CLI turns it into
``snnc: error: <message>`` on stderr and exit code 2, never a traceback.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

PathLike = Union[str, Path]


class SnncError(Exception):
    """A user-facing error with a one-line message."""

    def __init__(self, message: str, path: Optional[PathLike] = None) -> None:
        message = " ".join(str(message).split())  # always one line
        if path is not None:
            message = f"{path}: {message}"
        super().__init__(message)
        self.path = None if path is None else str(path)
