"""Atomic file output: the one way snnc writes files a user keeps.

Everything is written to a temporary file beside the target and renamed onto
it only when writing succeeded, so a crash or an error never leaves a
half-written output (and never destroys the previous version).

* :func:`atomic_output` — one file; :func:`atomic_output_set` — several files
  renamed as a set (the primary one last), all or nothing.
* A write that fails because the disk is full, read-only, over quota or not
  writable (``ENOSPC``, ``EROFS``, ``EDQUOT``, ``EACCES``...) becomes one
  :class:`~snnc.errors.SnncError` naming the output file (:func:`write_failure`),
  whatever library raised it (h5py, torch, matplotlib, onnx).
* Every temporary file is registered while it exists; :func:`remove_live_temps`
  deletes what an interrupted process left (the CLI calls it on every exit,
  including SIGTERM / SIGHUP, see :mod:`snnc.signals`).
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from snnc.errors import SnncError

__all__ = [
    "file_sha256",
    "atomic_output",
    "atomic_output_set",
    "write_text_atomic",
    "json_safe",
    "write_json_atomic",
    "write_failure",
    "remove_live_temps",
    "temp_beside",
]

#: errno values meaning "this location cannot take the file" (a user-side problem, not a bug).
WRITE_ERRNOS = frozenset(
    getattr(errno, name)
    for name in ("ENOSPC", "EROFS", "EDQUOT", "EACCES", "EPERM", "EFBIG", "EIO", "ENAMETOOLONG")
    if hasattr(errno, name)
)

_LIVE_TEMPS: set[Path] = set()
_ERRNO_IN_TEXT = re.compile(r"errno\s*=\s*(\d+)|\[Errno (\d+)\]")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def temp_beside(path: str | Path, suffix: str = ".tmp") -> Path:
    """A new empty temporary file in ``path``'s folder (same file system: the rename is atomic).

    It has the usual permissions (not mkstemp's 0600) and is registered for
    :func:`remove_live_temps` until renamed or removed.

    Raises:
        SnncError: the folder cannot be written (one line naming ``path``).
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=str(parent))
    except OSError as err:
        raise SnncError(f"cannot write here: {err.strerror}", path) from None
    os.close(fd)
    tmp_path = Path(tmp)
    _LIVE_TEMPS.add(tmp_path)
    os.chmod(tmp_path, 0o666 & ~_umask())
    return tmp_path


def _discard(tmp: Path) -> None:
    with suppress(OSError):
        tmp.unlink(missing_ok=True)
    _LIVE_TEMPS.discard(tmp)


def remove_live_temps() -> list[Path]:
    """Delete every temporary output file this process still has (after an interrupt); returns them."""
    left = sorted(_LIVE_TEMPS)
    for tmp in left:
        _discard(tmp)
    return left


def _errno_of(exc: BaseException) -> int | None:
    """The errno of ``exc`` or of an exception it wraps, also when only its text carries it (h5py)."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        code = getattr(cur, "errno", None)
        if isinstance(code, int) and code:
            return code
        found = _ERRNO_IN_TEXT.search(str(cur))
        if found:
            return int(found.group(1) or found.group(2))
        cur = cur.__cause__ or cur.__context__
    return None


def _folder_state(folder: Path) -> str | None:
    """``"No space left on device"`` / ``"Read-only file system"`` when ``folder``'s file system is so."""
    try:
        st = os.statvfs(folder)
    except OSError:
        return None
    if st.f_flag & os.ST_RDONLY:
        return os.strerror(errno.EROFS)
    if st.f_bavail == 0 or (st.f_favail == 0 and st.f_files):
        return os.strerror(errno.ENOSPC)
    return None


def write_failure(exc: BaseException, path: str | Path, tmp: Path | None = None) -> str | None:
    """Why writing ``path`` failed when ``exc`` means the location cannot take it, else None.

    Recognises an errno of :data:`WRITE_ERRNOS` on ``exc`` or its causes (also
    spelled in the message, as h5py does), and any ``OSError``/``RuntimeError``
    raised while the target's file system is full or read-only (torch's
    ``PytorchStreamWriter failed writing file`` names no errno). An ``OSError``
    about another file than ``path`` or its temporary ``tmp`` (an input) is not one.
    """
    if not isinstance(exc, Exception) or isinstance(exc, SnncError):
        return None
    name = getattr(exc, "filename", None)
    if isinstance(exc, OSError) and name and str(name) not in (str(path), str(tmp)):
        return None
    code = _errno_of(exc)
    if code is not None and code in WRITE_ERRNOS:
        return os.strerror(code)
    if isinstance(exc, (OSError, RuntimeError, ValueError)):
        return _folder_state(Path(path).parent if str(Path(path).parent) else Path("."))
    return None


def _raise_write_error(exc: BaseException, path: Path, tmp: Path | None = None) -> None:
    """Re-raise ``exc`` as a one-line :class:`SnncError` about ``path`` if it is a write failure."""
    reason = write_failure(exc, path, tmp)
    if reason is not None:
        raise SnncError(f"cannot write: {reason}", path) from None


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; it replaces ``path`` only if the block succeeds.

    On any failure (an exception, Ctrl-C, SIGTERM) the temporary file is removed
    and ``path`` keeps its earlier content.

    Raises:
        SnncError: the folder cannot be written, or writing failed because the disk is full,
            read-only or not writable (one line naming ``path``).
    """
    path = Path(path)
    tmp_path = temp_beside(path)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
        _LIVE_TEMPS.discard(tmp_path)
    except BaseException as exc:
        _discard(tmp_path)
        _raise_write_error(exc, path, tmp_path)
        raise


@contextmanager
def atomic_output_set(paths: Sequence[str | Path]) -> Iterator[list[Path]]:
    """Temporary paths for ``paths``, renamed onto them together when the block succeeds.

    ``paths[0]`` is the primary file (a manifest, the data file of a pair): it is
    renamed last, so while it is absent or old the set is incomplete; readers
    check the rest against it (e.g. sizes and hashes in a manifest). On failure
    every temporary file is removed and no target changes.

    Raises:
        SnncError: as :func:`atomic_output`, naming the file that could not be written.
    """
    finals = [Path(p) for p in paths]
    temps: list[Path] = []
    try:
        for final in finals:
            temps.append(temp_beside(final))
        yield list(temps)
        for tmp, final in [*list(zip(temps, finals, strict=False))[1:], (temps[0], finals[0])]:
            os.replace(tmp, final)
            _LIVE_TEMPS.discard(tmp)
    except BaseException as exc:
        for tmp in temps:
            _discard(tmp)
        failed = next(
            ((t, f) for t, f in zip(temps, finals, strict=False) if str(t) in str(exc) or t.name in str(exc)),
            (None, finals[0]),
        )
        _raise_write_error(exc, failed[1], failed[0])
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
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


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """Indented JSON of ``obj`` (non-finite floats become null), atomically."""
    write_text_atomic(path, json.dumps(json_safe(obj), indent=2) + "\n")


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of the file at ``path`` (read in 1 MiB blocks)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
