"""HDF5 output that fails cleanly on a full or read-only disk.

When a write fails inside the HDF5 library (no space left), h5py reports it
late and repeatedly (from object finalisers, one traceback per chunk), the file
can no longer be closed, and the interpreter crashes on exit while HDF5 tries
to flush it again (segmentation fault, exit 139). :class:`H5Output` avoids
that state altogether: h5py writes through a Python file object
(:class:`GuardedFile`) that records the first ``OSError`` and from then on
drops writes, so HDF5 itself never sees a failure and always closes cleanly;
:meth:`H5Output.check` (after each unit of work) and :meth:`H5Output.close`
re-raise the recorded error, which :func:`snnc.fileio.atomic_output` turns into
one line naming the output (the broken temporary file is deleted).
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Any

__all__ = ["GuardedFile", "H5Output"]


class GuardedFile(io.RawIOBase):
    """A read/write binary file that swallows write errors after recording the first one.

    After a failure, writes and truncations are dropped (their size reported as
    written) and reads past what was written return zeros, so a library writing
    through it finishes normally; :attr:`error` holds the failure.
    """

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        self._fd: int | None = os.open(str(self.path), os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        self._pos = 0
        self.error: OSError | None = None

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def _fail(self, err: OSError) -> None:
        if self.error is None:
            if not err.filename:
                err.filename = str(self.path)
            self.error = err

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move the position (an end-relative seek uses the real size, before any failure)."""
        if whence == io.SEEK_SET:
            self._pos = offset
        elif whence == io.SEEK_CUR:
            self._pos += offset
        else:
            self._pos = os.fstat(self._fd).st_size + offset if self._fd is not None else offset
        return self._pos

    def tell(self) -> int:
        """The current position."""
        return self._pos

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` from the current position; zeros past the end of the file."""
        view = memoryview(buffer).cast("B")
        n = 0
        if self._fd is not None:
            try:
                while n < len(view):
                    got = os.preadv(self._fd, [view[n:]], self._pos + n)
                    if got <= 0:
                        break
                    n += got
            except OSError as err:
                self._fail(err)
        view[n:] = bytes(len(view) - n)
        self._pos += len(view)
        return len(view)

    def write(self, data: Any) -> int:
        """Write ``data`` at the current position (dropped once a write has failed)."""
        view = memoryview(data).cast("B")
        if self.error is None and self._fd is not None:
            done = 0
            try:
                while done < len(view):
                    done += os.pwrite(self._fd, view[done:], self._pos + done)
            except OSError as err:
                self._fail(err)
        self._pos += len(view)
        return len(view)

    def truncate(self, size: int | None = None) -> int:
        """Set the file size (dropped once a write has failed)."""
        size = self._pos if size is None else size
        if self.error is None and self._fd is not None:
            try:
                os.ftruncate(self._fd, size)
            except OSError as err:
                self._fail(err)
        return size

    def flush(self) -> None:
        """Nothing is buffered here."""

    def fsync(self) -> None:
        """Push the written data to the disk (a failure is recorded like a failed write)."""
        if self.error is None and self._fd is not None:
            try:
                os.fsync(self._fd)
            except OSError as err:
                self._fail(err)

    def close(self) -> None:
        """Close the descriptor (a failure to close is recorded)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.close(fd)
            except OSError as err:
                self._fail(err)
        super().close()


class H5Output:
    """A new HDF5 file at ``path`` (a temporary path from ``atomic_output``), written through :class:`GuardedFile`.

    Use :attr:`file` like an ``h5py.File`` opened with ``"w"``; call
    :meth:`check` after each step of work and :meth:`close` at the end (both
    raise the first write failure as ``OSError``); :meth:`abort` closes after
    another error without raising. Also a context manager (close on success,
    abort on error).
    """

    def __init__(self, path: str | Path) -> None:
        import h5py

        self._raw = GuardedFile(path)
        try:
            self.file = h5py.File(self._raw, "w")
        except BaseException:
            self._raw.close()
            raise
        self._open = True

    def check(self) -> None:
        """Raise the first write failure (``OSError`` naming the file), if any."""
        if self._raw.error is not None:
            raise self._raw.error

    def flush(self) -> None:
        """Hand HDF5's cached chunks and metadata to the file, then :meth:`check`."""
        self.file.flush()
        self.check()

    def close(self) -> None:
        """Close the HDF5 file and the descriptor, then :meth:`check`."""
        if self._open:
            self._open = False
            try:
                self.file.close()
            finally:
                self._raw.fsync()
                self._raw.close()
        self.check()

    def abort(self) -> None:
        """Close without raising (after another error; the caller deletes the file)."""
        with contextlib.suppress(Exception):
            self.close()

    def __enter__(self) -> H5Output:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
