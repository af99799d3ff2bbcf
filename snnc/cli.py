"""The ``snnc`` command line: one click group, subcommands in :mod:`snnc.commands`.

Every subcommand runs through :func:`main`, which turns an
:class:`~snnc.errors.SnncError` into ``snnc: error: <message>`` on stderr with
exit code 2 (never a traceback). Unexpected exceptions print one line too, with
exit code 3; set ``SNNC_DEBUG=1`` to see the traceback instead.
"""
from __future__ import annotations

import os
import sys
from typing import Optional, Sequence

import click

from snnc.commands.data import data_group
from snnc.commands.demo import demo_command
from snnc.commands.info import info_command
from snnc.commands.search import search_command
from snnc.commands.train import train_command
from snnc.errors import SnncError
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
from snnc.commands.energy import energy_command  # noqa: E402
from snnc.commands.stream import stream_command  # noqa: E402
cli.add_command(energy_command)
cli.add_command(stream_command)
cli.add_command(train_command)
from snnc.commands.export import export_command  # noqa: E402
cli.add_command(export_command)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Console-script entry point with one-line error reporting."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="snnc", standalone_mode=False)
    except SnncError as exc:
        click.echo(f"snnc: error: {exc}", err=True)
        sys.exit(EXIT_USER_ERROR)
    except click.exceptions.Abort:
        click.echo("snnc: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("snnc: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the CLI must never show a traceback
        if os.environ.get("SNNC_DEBUG"):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        click.echo(f"snnc: internal error: {type(exc).__name__}: {first} (set SNNC_DEBUG=1 for the traceback)", err=True)
        sys.exit(EXIT_INTERNAL_ERROR)


if __name__ == "__main__":
    main()
