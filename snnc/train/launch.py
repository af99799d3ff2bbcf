"""``--nproc N``: start a command as N ranks on this machine through PyTorch's own launcher.

The same thing ``torchrun --nproc-per-node N -m snnc ...`` does, from inside
snnc: :func:`torch.distributed.launcher.api.elastic_launch` (the engine of
``torch.distributed.run``) with the c10d rendezvous on a free port of
127.0.0.1, no restarts, every rank running ``python -m snnc ARGS`` with
``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` set. When a rank fails, the launcher
stops the others; the rank's own one-line ``snnc: error:`` (rank 0 prints the
errors all ranks agree on) is the report, and a rank that died without one
(killed, crashed) is named in one line here.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import uuid
from collections.abc import Sequence
from typing import Any

import click

from snnc.errors import SnncError

__all__ = ["free_port", "command_line", "launch_ranks", "USER_ERROR_EXIT"]

#: The exit code of a rank that already printed its one-line error (``snnc.cli.EXIT_USER_ERROR``).
USER_ERROR_EXIT = 2
_SIGTERM = 15


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def command_line(ctx: click.Context, params: dict[str, Any], drop: Sequence[str] = ("nproc",)) -> list[str]:
    """The options given on the command line of ``ctx``'s command, rebuilt as arguments (without ``drop``)."""
    from click.core import ParameterSource

    args: list[str] = []
    for param in ctx.command.params:
        name = param.name or ""
        if name in drop or not isinstance(param, click.Option):
            continue
        if ctx.get_parameter_source(name) != ParameterSource.COMMANDLINE:
            continue
        value = params[name]
        flag = max(param.opts, key=len)
        if param.is_flag:
            if value:
                args.append(flag)
        elif param.multiple:
            for v in value:
                args += [flag, str(v)]
        else:
            args += [flag, str(value)]
    return args


def _failure_line(err: Any) -> str:
    """One line about the rank that failed first, or "" when it reported its own error (exit code 2)."""
    failures = getattr(err, "failures", {}) or {}
    if not failures:
        return ""

    def cause(r: int) -> tuple[int, int]:  # a kill first, then a crash; ranks stopped (SIGTERM) or reported last
        c = getattr(failures[r], "exitcode", None)
        if c is not None and c < 0 and c != -_SIGTERM:
            return 0, r
        return (1 if c not in (USER_ERROR_EXIT, 128 + _SIGTERM, -_SIGTERM) else 2), r

    rank = min(failures, key=cause)
    code = getattr(failures[rank], "exitcode", None)
    if code == USER_ERROR_EXIT:
        return ""
    if code is not None and code < 0:
        return f"rank {rank} was killed by signal {-code}"
    return f"rank {rank} exited with code {code}"


def _quiet_launcher_logs() -> None:
    """The launcher's own log lines off: a failing rank reports itself in one line, and so does :func:`launch_ranks`."""
    names = [
        n
        for n in logging.root.manager.loggerDict
        if n.startswith(("torch.distributed.elastic", "torch.distributed.launcher"))
    ]
    for name in {"torch.distributed.elastic", "torch.distributed.launcher", *names}:
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


def launch_ranks(nproc: int, command: Sequence[str]) -> None:
    """Run ``python -m snnc COMMAND`` as ``nproc`` ranks of one process group on this machine.

    Raises:
        SnncError: ``nproc`` < 1, already inside a launched run, or a rank that failed without
            reporting (killed, crashed); a rank's own reported error exits with code 2 quietly
            (it has printed its line).
    """
    from snnc.train import distributed

    if nproc < 1:
        raise SnncError(f"--nproc must be >= 1, got {nproc}")
    if distributed.launched():
        raise SnncError("--nproc inside a launched run (WORLD_SIZE is set): torchrun already started the ranks")
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    _quiet_launcher_logs()
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # as torchrun does for several ranks; --threads overrides
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=uuid.uuid4().hex,
        rdzv_backend="c10d",
        rdzv_endpoint=f"127.0.0.1:{free_port()}",
        max_restarts=0,
        monitor_interval=0.2,
        start_method="spawn",
        local_addr="127.0.0.1",
    )
    try:
        elastic_launch(config, sys.executable)("-m", "snnc", *command)
    except ChildFailedError as err:
        line = _failure_line(err)
        if line:
            raise SnncError(
                f"distributed run failed: {line}; the others were stopped "
                f"(a training run continues from rank 0's checkpoint with --resume)"
            ) from None
        raise SystemExit(USER_ERROR_EXIT) from None
