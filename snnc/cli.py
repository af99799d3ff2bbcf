"""The ``snnc`` command line: one click group, subcommands in :mod:`snnc.commands`.

Every subcommand runs through :func:`main`, which turns an
:class:`~snnc.errors.SnncError` into ``snnc: error: <message>`` on stderr with
exit code 2 (never a traceback). Unexpected exceptions print one line too, with
exit code 3; set ``SNNC_DEBUG=1`` to see the traceback instead.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import click

from snnc.commands.data import data_group
from snnc.commands.demo import demo_command
from snnc.commands.info import info_command
from snnc.commands.search import search_command
from snnc.commands.train import train_command
from snnc.errors import SnncError
from snnc.fileio import remove_live_temps, write_failure
from snnc.signals import Terminated, install_termination_handlers
from snnc.version import version_option

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 3


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@version_option()
def cli() -> None:
    """snnc: spiking neural networks from architecture search to deployment.

    \b
    Pipeline:  search -> train (+ BN folding) -> export (NIR / ONNX / Lava) -> stream (+ energy)
    Data:      snnc data synth OUT_data.hdf5     write a synthetic MVSEC-layout recording
               snnc data info FILE_data.hdf5     summarise a (real or synthetic) recording
    Models:    snnc info --list | snnc info spikedhs-stereo   layers, shapes, parameters, dense ops
    Demo:      snnc demo --out demo_out          run the pipeline on a small embedded default
    """


cli.add_command(data_group)
cli.add_command(demo_command)
cli.add_command(info_command)
cli.add_command(search_command)
from snnc.commands.energy import energy_command
from snnc.commands.stream import stream_command

cli.add_command(energy_command)
cli.add_command(stream_command)
cli.add_command(train_command)
from snnc.commands.export import export_command

cli.add_command(export_command)
from snnc.commands.checkpoint import checkpoint_group

cli.add_command(checkpoint_group)
from snnc.commands.models import models_command

cli.add_command(models_command)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point with one-line error reporting.

    Exit codes: 0 success, 2 a user error (:class:`SnncError`, or a file that
    cannot be written: full or read-only disk), 3 an internal error, 130 Ctrl-C,
    128 + N signal N (143 SIGTERM, 129 SIGHUP; see :mod:`snnc.signals`). Every
    way out removes the temporary output files the command still had.
    """
    install_termination_handlers()
    code = 0
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="snnc", standalone_mode=False)
    except SnncError as exc:
        click.echo(f"snnc: error: {exc}", err=True)
        code = EXIT_USER_ERROR
    except click.exceptions.Abort as exc:
        signalled = exc.__cause__ or exc.__context__  # click turns KeyboardInterrupt into Abort
        if isinstance(signalled, Terminated):
            click.echo(f"snnc: terminated ({signalled.signame})", err=True)
            code = signalled.exit_code
        else:
            click.echo("snnc: aborted", err=True)
            code = 130
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except Terminated as exc:
        click.echo(f"snnc: terminated ({exc.signame})", err=True)
        code = exc.exit_code
    except KeyboardInterrupt:
        click.echo("snnc: interrupted", err=True)
        code = 130
    except Exception as exc:
        if os.environ.get("SNNC_DEBUG"):
            raise
        code = _report_unexpected(exc)
    finally:
        remove_live_temps()
    _exit(code, hard=argv is None)


def _report_unexpected(exc: Exception) -> int:
    """One line for an exception no command turned into an SnncError; its exit code."""
    name = getattr(exc, "filename", None)
    reason = write_failure(exc, name) if isinstance(exc, OSError) and name else None
    if reason is not None:  # a writer outside atomic_output hit a full / read-only disk
        click.echo(f"snnc: error: {name}: cannot write: {reason}", err=True)
        return EXIT_USER_ERROR
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    click.echo(f"snnc: internal error: {type(exc).__name__}: {first} (set SNNC_DEBUG=1 for the traceback)", err=True)
    return EXIT_INTERNAL_ERROR


def _exit(code: int, hard: bool) -> None:
    """``sys.exit(code)``; as the process entry point, skip the interpreter's clean-up when an HDF5
    file is still open after a failed write (HDF5 would crash flushing it at exit)."""
    if hard and code and "h5py" in sys.modules:
        import h5py

        try:
            still_open = len(h5py.h5f.get_obj_ids(types=h5py.h5f.OBJ_FILE))
        except Exception:
            still_open = 0
        if still_open:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    if code:
        sys.exit(code)


if __name__ == "__main__":
    main()
