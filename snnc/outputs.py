"""What a command may write, checked before it starts: clobbering, ownership, input == output, locks.

Every command plans its outputs up front and checks them before any work:

* :func:`check_outputs` — an existing output is refused without ``--force``;
  with ``--force`` an output the user **named** (``--out FILE``) is replaced,
  but one whose name snnc **derived** (the files of a run folder,
  ``OUT.search.jsonl`` beside ``--out``, the pieces of a partition, the
  ``_gt.hdf5`` of a pair) is replaced or deleted only if snnc wrote it and it is
  unchanged since, as recorded in the folder's ledger (below). A user's file
  that merely shares such a name is refused with a message, never deleted.
* :func:`refuse_same_file` — an output that is also an input (same path, link
  or hard link) is refused, whatever ``--force`` says.
* :class:`OutputLock` — while a run writes an output (a file or a run folder),
  a lock beside it (``.NAME.snnc-lock``, ``flock``) makes a second snnc run on
  the same output fail at once: ``is being written by another snnc run (pid N)``.
  The lock goes when the run ends (also on Ctrl-C / SIGTERM; the kernel drops it
  if the process dies).
* The **ledger** ``.snnc-outputs.json`` in a folder lists the files snnc wrote
  there (relative path, size, SHA-256): :func:`record_outputs` after a run,
  :func:`is_recorded` / :func:`remove_recorded` for ``--force``.

:class:`OutputPlan` bundles the four for one command.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
from collections.abc import Iterable, Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from snnc.errors import SnncError
from snnc.fileio import file_sha256, write_json_atomic

__all__ = [
    "LEDGER_NAME",
    "LOCK_SUFFIX",
    "OutputLock",
    "OutputPlan",
    "check_outputs",
    "refuse_same_file",
    "record_outputs",
    "is_recorded",
    "remove_recorded",
    "snnc_files",
]

PathLike = str | Path

#: The ledger of files snnc wrote in a folder.
LEDGER_NAME = ".snnc-outputs.json"
#: ``.NAME`` + this beside an output while a run writes it.
LOCK_SUFFIX = ".snnc-lock"
_LEDGER_FORMAT = "snnc-outputs/1"


def snnc_files(names: Iterable[str]) -> list[str]:
    """``names`` without snnc's own bookkeeping files (ledger, locks)."""
    return [n for n in names if n != LEDGER_NAME and not (n.startswith(".") and n.endswith(LOCK_SUFFIX))]


def _read_ledger(folder: Path) -> dict[str, dict[str, Any]]:
    """``{relative path: {"size", "sha256"}}``; an unreadable or foreign ledger counts as empty."""
    try:
        doc = json.loads((folder / LEDGER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    files = doc.get("files") if isinstance(doc, dict) and doc.get("format") == _LEDGER_FORMAT else None
    return {k: v for k, v in files.items() if isinstance(v, dict)} if isinstance(files, dict) else {}


def _ledger_root(path: Path, levels: int = 3) -> tuple[Path, str] | None:
    """The nearest folder (``path``'s own or up to ``levels`` above) whose ledger records ``path``."""
    path = Path(os.path.abspath(path))
    folder = path.parent
    for _ in range(levels):
        rel = os.path.relpath(path, folder)
        if rel in _read_ledger(folder):
            return folder, rel
        if folder.parent == folder:
            break
        folder = folder.parent
    return None


def is_recorded(path: PathLike) -> bool:
    """True if ``path`` is a file snnc wrote (in a ledger) and unchanged since (same size and SHA-256);
    a folder counts when every file under it is."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        return all(is_recorded(child) for child in _files_under(path))
    found = _ledger_root(path)
    if found is None or not path.is_file():
        return False
    entry = _read_ledger(found[0])[found[1]]
    try:
        return entry.get("size") == path.stat().st_size and entry.get("sha256") == file_sha256(path)
    except OSError:
        return False


def _files_under(folder: Path) -> list[Path]:
    out: list[Path] = []
    for root, _dirs, files in os.walk(folder):
        out.extend(Path(root) / name for name in snnc_files(files))
    return out


def _stamp(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def _snapshot(paths: Iterable[PathLike]) -> dict[str, tuple[tuple[int, int, int, int], bool]]:
    """``{absolute file: (stamp, recorded)}`` of the files now at or under ``paths``."""
    out = {}
    for p in map(Path, paths):
        for f in _files_under(p) if p.is_dir() and not p.is_symlink() else [p]:
            stamp = _stamp(f)
            if stamp is not None and f.is_file():
                out[os.path.abspath(f)] = (stamp, is_recorded(f))
    return out


def record_outputs(
    folder: PathLike,
    paths: Iterable[PathLike],
    before: dict[str, tuple[tuple[int, int, int, int], bool]] | None = None,
) -> None:
    """Record in ``folder``'s ledger the files among ``paths`` (files, or folders: every file under them)
    that exist; entries of those that no longer exist are dropped.

    With ``before`` (a snapshot taken when the run started) only files this run wrote (new, or
    changed since) and files recorded before and unchanged are recorded: a user's file that
    was there all along never enters the ledger. Errors writing the ledger are ignored (the
    only cost: a later ``--force`` refuses those files).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return
    ledger = _read_ledger(folder)
    for p in paths:
        p = Path(p)
        targets = _files_under(p) if p.is_dir() and not p.is_symlink() else [p]
        if not p.exists():
            prefix = os.path.relpath(os.path.abspath(p), os.path.abspath(folder))
            for key in [k for k in ledger if k == prefix or k.startswith(prefix + os.sep)]:
                del ledger[key]
        for t in targets:
            if before is not None and os.path.abspath(t) in before:
                stamp, was_recorded = before[os.path.abspath(t)]
                if stamp == _stamp(t) and not was_recorded:
                    continue  # untouched and not snnc's: never adopted
            if t.is_file():
                rel = os.path.relpath(os.path.abspath(t), os.path.abspath(folder))
                try:
                    ledger[rel] = {"size": t.stat().st_size, "sha256": file_sha256(t)}
                except OSError:
                    ledger.pop(rel, None)
    try:
        if ledger:
            write_json_atomic(folder / LEDGER_NAME, {"format": _LEDGER_FORMAT, "files": dict(sorted(ledger.items()))})
        else:
            (folder / LEDGER_NAME).unlink(missing_ok=True)
    except (OSError, SnncError):
        pass


def remove_recorded(path: PathLike) -> None:
    """Delete ``path`` (a file, or a folder) if snnc wrote it and it is unchanged; refuse otherwise.

    A folder is deleted only if every file under it is recorded; its ledgers go with it.

    Raises:
        SnncError: ``path`` (or a file under it) was not written by snnc or changed since.
    """
    path = Path(path)
    if not (path.exists() or path.is_symlink()):
        return
    _refuse_foreign(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _refuse_foreign(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        foreign = next((f for f in _files_under(path) if not is_recorded(f)), None)
        if foreign is not None:
            raise SnncError(
                f"was not written by snnc (or changed since), and --force replaces only snnc's own "
                f"outputs: {path} is left alone; move the file away or choose another --out",
                foreign,
            )
        return
    if not is_recorded(path):
        raise SnncError(
            "was not written by snnc (or changed since), and --force replaces only snnc's own "
            "outputs: it is left alone; move it away or choose another --out",
            path,
        )


def check_outputs(named: Sequence[PathLike] = (), derived: Sequence[PathLike] = (), *, force: bool) -> None:
    """Refuse to start when an output may not be written (see the module docstring).

    Args:
        named: outputs the user named (replaced with ``force``).
        derived: outputs whose names snnc chose (replaced with ``force`` only if snnc wrote them).

    Raises:
        SnncError: an output exists without ``force``, is a folder where a file is expected,
            or (derived, with ``force``) is not snnc's.
    """
    for p in map(Path, named):
        if p.is_dir():
            raise SnncError("is a folder, expected a file path", p)
        if p.exists() and not force:
            raise SnncError("exists; pass --force to overwrite it", p)
    for p in map(Path, derived):
        if not (p.exists() or p.is_symlink()):
            continue
        if not force:
            raise SnncError("exists; pass --force to overwrite it", p)
        _refuse_foreign(p)


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def refuse_same_file(inputs: Iterable[PathLike | None], outputs: Iterable[PathLike | None]) -> None:
    """Refuse an output that is one of the inputs (same resolved path, symlink or hard link).

    Raises:
        SnncError: naming the output, whatever ``--force`` says.
    """
    ins = [Path(p) for p in inputs if p is not None and str(p)]
    keys: dict[str | tuple[int, int], Path] = {}
    for p in ins:
        keys[os.path.realpath(p)] = p
        ident = _identity(p)
        if ident is not None:
            keys[ident] = p
    for out in (Path(p) for p in outputs if p is not None and str(p)):
        ident = _identity(out)
        hit = keys.get(os.path.realpath(out)) or (keys.get(ident) if ident is not None else None)
        if hit is not None:
            raise SnncError(
                f"is also an input ({hit}); writing it would destroy that input: choose another output path", out
            )


class OutputLock:
    """An exclusive, non-blocking ``flock`` on ``.NAME.snnc-lock`` beside ``target`` (a file or folder).

    Raises (on :meth:`acquire`):
        SnncError: another snnc run holds it: ``is being written by another snnc run (pid N)``.
    """

    def __init__(self, target: PathLike) -> None:
        self.target = Path(target)
        parent = self.target.parent if str(self.target.parent) else Path(".")
        self.path = parent / f".{self.target.name}{LOCK_SUFFIX}"
        self._fd: int | None = None

    def acquire(self) -> OutputLock:
        """Take the lock (creating the target's parent folders if needed)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise SnncError(f"cannot create the folder: {err.strerror}", self.path.parent) from None
        while True:
            try:
                fd = os.open(str(self.path), os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
            except OSError as err:
                if err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                    raise SnncError(f"cannot write here: {err.strerror}", self.target) from None
                raise SnncError(f"cannot create the lock file {self.path.name}: {err.strerror}", self.target) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                owner = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
                os.close(fd)
                if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise SnncError(
                        f"is being written by another snnc run (pid {owner}); wait for it to end or "
                        f"choose another output",
                        self.target,
                    ) from None
                raise SnncError(f"cannot lock: {err.strerror}", self.target) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino  # not a lock file its owner just removed
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        except OSError:
            pass  # a full disk: the lock holds all the same, only its pid cannot be shown
        self._fd = fd
        return self

    def release(self) -> None:
        """Remove the lock file and drop the lock (removed first, so no later run locks a dead file)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with suppress(OSError):
            self.path.unlink(missing_ok=True)
        os.close(fd)

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


@dataclass
class OutputPlan:
    """The outputs of one command run: checked, locked, and recorded when the run ends.

    Args:
        named: output files the user named.
        derived: output files (or folders) whose names snnc chose.
        inputs: files the command reads (none may be an output).
        lock: what to lock while the run writes (default: every named and derived output).
        ledger: folder whose ledger records the outputs at the end (default: each output's folder,
            derived outputs only).
        force: ``--force`` was given.

    Use as a context manager: on entry :func:`refuse_same_file`, :func:`check_outputs`
    and the locks; on exit (also after an error or a signal) the outputs that exist
    are recorded in the ledger and the locks released.
    """

    named: Sequence[PathLike] = ()
    derived: Sequence[PathLike] = ()
    inputs: Sequence[PathLike | None] = ()
    lock: Sequence[PathLike] | None = None
    ledger: PathLike | None = None
    force: bool = False
    check: bool = True
    _stack: ExitStack = field(default_factory=ExitStack, repr=False)
    _before: dict[str, Any] = field(default_factory=dict, repr=False)

    def __enter__(self) -> OutputPlan:
        outputs = [*map(Path, self.named), *map(Path, self.derived)]
        refuse_same_file(self.inputs, outputs)
        try:
            for target in self.lock if self.lock is not None else outputs:
                self._stack.enter_context(OutputLock(target))
            if self.check:
                check_outputs(self.named, self.derived, force=self.force)
            self._before = _snapshot([*self.named, *self.derived])
        except BaseException:
            self._stack.close()
            raise
        return self

    def record(self) -> None:
        """Record the planned outputs that exist now in the ledger(s)."""
        if self.ledger is not None:
            record_outputs(Path(self.ledger), [*self.named, *self.derived], self._before)
            return
        by_folder: dict[Path, list[Path]] = {}
        for p in map(Path, self.derived):
            by_folder.setdefault(p.parent if str(p.parent) else Path("."), []).append(p)
        for folder, paths in by_folder.items():
            record_outputs(folder, paths, self._before)

    def __exit__(self, *exc: Any) -> None:
        try:
            self.record()
        finally:
            self._stack.close()
