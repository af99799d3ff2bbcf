"""Helpers shared by CLI commands: output-path safety (checks, locks, input == output) and atomic writes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from snnc.data.layout import DEFAULT_MAX_WINDOW_EVENTS
from snnc.errors import PathLike, SnncError
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


def plan_outputs(
    named: Sequence[Path | None] = (),
    derived: Sequence[Path] = (),
    inputs: Sequence[PathLike | None] = (),
    *,
    force: bool,
    lock: Sequence[Path] | None = None,
) -> None:
    """Check a command's outputs before it starts and hold them until it ends (:mod:`snnc.outputs`).

    ``named`` outputs (the user's paths; None entries are skipped) follow :func:`check_output_path`;
    ``derived`` ones (names snnc chose) are replaced with ``force`` only if snnc wrote them. An output
    that is one of ``inputs`` is refused. The outputs (or ``lock``) are locked against other snnc runs
    and the derived ones recorded in their folder's ledger when the current click command ends.

    Raises:
        SnncError: as :func:`check_output_path` and :func:`snnc.outputs.check_outputs`, input == output,
            or another snnc run writes an output now.
    """
    import click

    from snnc.outputs import OutputPlan, check_outputs

    files = [Path(p) for p in named if p is not None]
    for path in files:
        check_output_path(path, force)
    check_outputs(derived=derived, force=force)
    plan = OutputPlan(
        named=files,
        derived=list(derived),
        inputs=[p for p in inputs if p is not None],
        lock=list(lock) if lock is not None else files + list(derived),
        check=False,
    )
    click.get_current_context().with_resource(plan)


@contextmanager
def distributed_run(device: str, timeout: float) -> Iterator[Any]:
    """The rank of a command run under torchrun / ``--nproc`` (a single-process no-op otherwise).

    An error all ranks agreed on (:class:`snnc.train.distributed.CollectiveError`) is
    printed by rank 0 only; the other ranks exit 2 quietly. The process group is shut
    down however the block ends.
    """
    import click

    from snnc.train import distributed

    rank = distributed.init(device, timeout)
    try:
        yield rank
    except distributed.CollectiveError:
        if not rank.main:  # rank 0 prints the error all ranks agree on
            raise click.exceptions.Exit(2) from None
        raise
    finally:
        distributed.shutdown()


F = TypeVar("F", bound=Any)

_RECT_DIR_HELP = "Folder with the {left,right}_{x,y}_map.txt rectification maps (win over maps embedded in the file)."
_WINDOW_EVENTS_HELP = "Refuse a 50 ms window with more events than this per camera (bounds memory, ~100 B/event)."


def recording_options(window_help: str = _WINDOW_EVENTS_HELP) -> Any:
    """The ``--rect-dir`` and ``--max-window-events`` options of every command that reads a recording."""

    def apply(f: F) -> F:
        f = click.option(
            "--max-window-events",
            type=click.IntRange(min=1),
            default=DEFAULT_MAX_WINDOW_EVENTS,
            show_default=True,
            help=window_help,
        )(f)
        return click.option(
            "--rect-dir", type=click.Path(file_okay=False, path_type=Path), default=None, help=_RECT_DIR_HELP
        )(f)

    return apply


def recording_int8_fields(net: Any, rec: Any, model_spec: str) -> Any:
    """The int8 fields of a stereo network streamed over recording ``rec`` (``snnc stream`` and ``snnc energy``
    at ``--precision int8``): its checkpoint's, else PTQ (SBT input needs no calibration data), lowered at one
    step of the recording's frame size."""
    from snnc.quant.network import network_fields

    shape = (1, 2, int(getattr(net.genotype, "in_channels", 5)), rec.height, rec.width)
    return network_fields(net.model, shape, net.meta, None, model_spec)
