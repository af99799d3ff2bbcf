"""Run the ``snnc`` CLI from tests: in-process by default, in a real subprocess on request.

``run_snnc(ARGS)`` calls :func:`snnc.cli.main` in this process, the way the console
script does, and returns a :class:`subprocess.CompletedProcess` as if the command had
run in a subprocess: exit code (from ``SystemExit``, 0 when ``main`` returns), stdout and
stderr as text with universal newlines (``"\\r"`` and ``"\\r\\n"`` read as ``"\\n"``, as
``subprocess.run(text=True)`` gives them). It saves ~4 s of ``import torch`` per call.

To behave like a fresh process it runs with the working directory at :data:`ROOT`,
``SNNC_DEBUG`` unset, an empty stdin, Python's default warning filters with warnings
printed to the captured stderr (so a stray warning still breaks a "one stderr line"
assertion), file descriptors 1 and 2 captured too (what native libraries print), an
uncaught exception printed as a traceback with exit 1, and it restores afterwards the global state a command
may change: the working directory, ``os.environ``, torch's thread count and RNG, numpy's and Python's
global RNGs, logging levels and handlers, signal handlers, and open matplotlib figures.

``run_snnc(ARGS, subprocess=True)`` (or :func:`run_snnc_process`) runs
``python -m snnc ARGS`` as a user does; keep it for the few tests of the entry point
itself (process exit codes, import errors, signals).
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import io
import logging
import os
import random
import signal
import subprocess as _subprocess
import sys
import tempfile
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]

#: Signals whose handlers a command may install (the CLI's interrupt/termination handling).
_SIGNALS = tuple(
    getattr(signal, name)
    for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGPIPE", "SIGUSR1", "SIGUSR2")
    if hasattr(signal, name)
)


def run_snnc(
    *args: str | os.PathLike[str],
    timeout: float = 300,
    subprocess: bool = False,
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> _subprocess.CompletedProcess[str]:
    """``snnc ARGS``: in-process by default, ``python -m snnc ARGS`` when ``subprocess=True``.

    ``env`` (optional) holds extra environment variables for the command; ``cwd`` the working
    directory it runs in (in-process only; default :data:`ROOT`). ``timeout`` bounds the
    subprocess only; an in-process call runs to completion.
    """
    if subprocess:
        if cwd is not None:
            raise ValueError("run_snnc(subprocess=True) runs in ROOT; cwd is for in-process calls")
        return run_snnc_process(*args, timeout=timeout, env=env)
    return _run_in_process([str(a) for a in args], env or {}, Path(cwd) if cwd is not None else ROOT)


def run_snnc_process(
    *args: str | os.PathLike[str], timeout: float = 300, env: dict[str, str] | None = None
) -> _subprocess.CompletedProcess[str]:
    """``python -m snnc ARGS`` in a subprocess with the repo on the path, as a user runs it."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.pop("SNNC_DEBUG", None)
    full_env.update(env or {})
    return _subprocess.run(
        [sys.executable, "-m", "snnc", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=str(ROOT),
    )


@dataclasses.dataclass(frozen=True)
class InProcessRun:
    """One in-process ``snnc`` call with its streams kept apart (:func:`run_snnc_in_process`).

    ``stdout``/``stderr``: what this process wrote to ``sys.stdout``/``sys.stderr`` (``stderr`` ends with
    the interpreter's own message for ``sys.exit("text")``); ``fd_stdout``/``fd_stderr``: what reached
    file descriptors 1 and 2 underneath (C code, child processes such as launched ranks)."""

    returncode: int
    stdout: str
    stderr: str
    fd_stdout: str
    fd_stderr: str


def run_snnc_in_process(
    *args: str | os.PathLike[str], env: dict[str, str] | None = None, cwd: str | os.PathLike[str] | None = None
) -> InProcessRun:
    """Call :func:`snnc.cli.main` with ``ARGS`` as a fresh process would run it (cwd, environment and every
    global restored after, :func:`_isolated_state`); the exit code as a process would have it."""
    from snnc.cli import main  # imported late: a broken import fails the test, not the collection

    out, err = _text_stream(), _text_stream()
    code: Any = 0
    workdir = Path(cwd) if cwd is not None else ROOT
    with tempfile.TemporaryFile() as fd_out, tempfile.TemporaryFile() as fd_err:
        with _isolated_state(env or {}, workdir), _captured_fds(fd_out, fd_err), _captured(out, err):
            try:
                main([str(a) for a in args])
            except SystemExit as exc:
                code = exc.code
            except Exception:
                traceback.print_exc()
                code = 1
        returncode, message = _exit_status(code)
        return InProcessRun(returncode, _read(out), _read(err) + message, _read_fd(fd_out), _read_fd(fd_err))


def _run_in_process(argv: list[str], env: dict[str, str], cwd: Path = ROOT) -> _subprocess.CompletedProcess[str]:
    """:func:`run_snnc_in_process` as a ``CompletedProcess``: each pair of streams joined, this process's first."""
    run = run_snnc_in_process(*argv, env=env, cwd=cwd)
    return _subprocess.CompletedProcess(
        ["snnc", *argv], run.returncode, run.stdout + run.fd_stdout, run.stderr + run.fd_stderr
    )


def _exit_status(code: Any) -> tuple[int, str]:
    """``SystemExit.code`` as the interpreter turns it into an exit status (and stderr text)."""
    if code is None:
        return 0, ""
    if isinstance(code, int):
        return code & 0xFF, ""
    return 1, f"{code}\n"  # sys.exit("text") prints the text and exits 1


def _text_stream() -> io.TextIOWrapper:
    """A text stream with a binary ``.buffer`` underneath, like a process's stdout/stderr."""
    return io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="backslashreplace", newline="", write_through=True)


def _read(stream: io.TextIOWrapper) -> str:
    """The stream's text with universal newlines, as ``subprocess.run(text=True)`` decodes it."""
    stream.flush()
    raw = stream.buffer.getvalue()  # type: ignore[attr-defined]  # BytesIO underneath
    return raw.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")


def _read_fd(file: Any) -> str:
    """What native code wrote to a captured file descriptor, with universal newlines."""
    file.seek(0)
    return file.read().decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")


@contextlib.contextmanager
def _captured_fds(out: Any, err: Any) -> Iterator[None]:
    """File descriptors 1 and 2 into ``out``/``err``: output of C/C++ libraries and child processes."""
    libc = ctypes.CDLL(None)
    sys.stdout.flush()
    sys.stderr.flush()
    libc.fflush(None)
    saved = os.dup(1), os.dup(2)
    try:
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        yield
    finally:
        libc.fflush(None)
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


@contextlib.contextmanager
def _captured(out: io.TextIOWrapper, err: io.TextIOWrapper) -> Iterator[None]:
    """stdout/stderr into ``out``/``err``, an empty stdin, warnings printed to ``err``."""
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdin = io.TextIOWrapper(io.BytesIO(b""), encoding="utf-8")
    sys.stdout, sys.stderr = out, err
    try:
        with warnings.catch_warnings():
            _default_warning_filters()
            warnings.showwarning = _warning_printer(err)
            yield
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved


def _default_warning_filters() -> None:
    """The filters a plain ``python -m snnc`` starts with (no -W options, not a dev build)."""
    warnings.resetwarnings()
    warnings.simplefilter("default")
    for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
        warnings.simplefilter("ignore", category)
    warnings.filterwarnings("default", category=DeprecationWarning, module="__main__")


def _warning_printer(err: io.TextIOWrapper) -> Callable[..., None]:
    """A ``warnings.showwarning`` that writes the usual two lines to ``err``."""

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: Any = None,
        line: str | None = None,
    ) -> None:
        err.write(warnings.formatwarning(message, category, filename, lineno, line))

    return show


@contextlib.contextmanager
def _isolated_state(env: dict[str, str], workdir: Path = ROOT) -> Iterator[None]:
    """Run with a fresh process's cwd/environment; restore every global a command may change."""
    cwd = os.getcwd()
    environ = dict(os.environ)
    threads = torch.get_num_threads()
    torch_rng = torch.random.get_rng_state()
    np_rng = np.random.get_state()  # noqa: NPY002 (the global RNG a command may draw from)
    py_rng = random.getstate()
    handlers = {sig: signal.getsignal(sig) for sig in _SIGNALS}
    log_state = _logging_state()
    figures = _figure_numbers()
    try:
        os.chdir(workdir)
        os.environ.pop("SNNC_DEBUG", None)
        os.environ.update(env)
        yield
    finally:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(environ)
        torch.set_num_threads(threads)
        torch.random.set_rng_state(torch_rng)
        np.random.set_state(np_rng)  # noqa: NPY002 (the global RNG a command may draw from)
        random.setstate(py_rng)
        for sig, handler in handlers.items():
            if handler is not None:  # None: installed outside Python, cannot be set back from here
                signal.signal(sig, handler)
        _restore_logging(log_state)
        _close_new_figures(figures)


_LogState = dict[str, tuple[int, list[logging.Handler], bool, bool]]


def _logging_state() -> _LogState:
    """Level, handlers, propagate and disabled flag of the root and every existing logger."""
    loggers: dict[str, logging.Logger] = {"": logging.getLogger()}
    loggers.update(
        {name: lg for name, lg in logging.Logger.manager.loggerDict.items() if isinstance(lg, logging.Logger)}
    )
    return {name: (lg.level, list(lg.handlers), lg.propagate, lg.disabled) for name, lg in loggers.items()}


def _restore_logging(state: _LogState) -> None:
    """Put loggers back as :func:`_logging_state` saw them; loggers made since get no handlers."""
    for name, lg in logging.Logger.manager.loggerDict.items():
        if isinstance(lg, logging.Logger) and name not in state:
            lg.handlers.clear()
    for name, (level, handlers, propagate, disabled) in state.items():
        lg = logging.getLogger(name or None)
        lg.setLevel(level)
        lg.handlers[:] = handlers
        lg.propagate = propagate
        lg.disabled = disabled


def _figure_numbers() -> set[int]:
    """Open matplotlib figures (none when pyplot was never imported)."""
    plt = sys.modules.get("matplotlib.pyplot")
    return set(plt.get_fignums()) if plt is not None else set()


def _close_new_figures(before: set[int]) -> None:
    """Close the figures a command opened and left open."""
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        for num in set(plt.get_fignums()) - before:
            plt.close(num)


def assert_user_error(proc: _subprocess.CompletedProcess[str], *fragments: str) -> str:
    """The command failed with exit 2 and ONE stderr line containing every fragment, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("snnc: error: "), err
    for frag in fragments:
        assert frag in err, (frag, err)
    return err


def expect_ok(proc: _subprocess.CompletedProcess[str]) -> str:
    """The command succeeded; returns its stdout."""
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    return proc.stdout


__all__: Sequence[str] = ("run_snnc", "run_snnc_process", "assert_user_error", "expect_ok", "ROOT")
