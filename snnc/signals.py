"""SIGTERM and SIGHUP handled like Ctrl-C.

``timeout``, ``docker stop``, Slurm and a closed terminal end a process with
SIGTERM or SIGHUP. :func:`install_termination_handlers` makes either raise
:class:`Terminated` (a :class:`KeyboardInterrupt`) in the main thread, so the
same clean-up runs as for Ctrl-C: every ``with atomic_output(...)`` removes its
temporary file, open HDF5 writers are closed, run-folder locks are released;
the CLI then prints ``snnc: terminated (SIGTERM)`` and exits with 128 + the
signal number (143 for SIGTERM, 129 for SIGHUP), as a shell reports it.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

__all__ = ["Terminated", "TERMINATION_SIGNALS", "install_termination_handlers"]

#: The signals handled like Ctrl-C (those the platform has).
TERMINATION_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when the process receives SIGTERM or SIGHUP."""

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        self.signame = signal.Signals(signum).name
        super().__init__(self.signame)

    @property
    def exit_code(self) -> int:
        """128 + the signal number, the shell's convention for a process ended by a signal."""
        return 128 + self.signum


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    for sig in TERMINATION_SIGNALS:  # a second signal must not interrupt the clean-up of the first
        signal.signal(sig, signal.SIG_IGN)
    raise Terminated(signum)


def install_termination_handlers() -> bool:
    """Make SIGTERM and SIGHUP raise :class:`Terminated`; False (nothing done) outside the main thread.

    A signal whose handler was set to ``SIG_IGN`` before (``nohup``) stays ignored.
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    for sig in TERMINATION_SIGNALS:
        if signal.getsignal(sig) is signal.SIG_IGN and sig == getattr(signal, "SIGHUP", None):
            continue  # nohup: the user asked to survive a closed terminal
        signal.signal(sig, _raise_terminated)
    return True
