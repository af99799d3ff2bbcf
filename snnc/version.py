"""The version ``snnc --version`` reports: the release, plus the git revision in a checkout.

An installed wheel reports ``snnc 0.2.0``. Run from a git checkout (the package's
parent folder holds ``.git``), it adds the short commit and whether tracked files have
uncommitted changes: ``snnc 0.2.0 (git 1a2b3c4, dirty)``, so a result or a bug report
names the code that produced it. Git being absent or failing only drops the suffix.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from snnc import __version__

F = TypeVar("F", bound=Callable[..., Any])

_GIT_TIMEOUT_S = 5.0


def git_revision(package_dir: Path | None = None) -> str | None:
    """``"1a2b3c4"`` or ``"1a2b3c4, dirty"`` when snnc runs from a git checkout, else None.

    Only the folder right above the package counts as a checkout: a wheel installed
    in a virtual environment that lies inside some other repository reports no revision.
    """
    root = (package_dir or Path(__file__).resolve().parent).parent
    if not (root / ".git").exists():
        return None
    try:
        rev = _git(root, "rev-parse", "--short", "HEAD")
        changes = _git(root, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    if not rev:
        return None
    return f"{rev}, dirty" if changes else rev


def _git(root: Path, *args: str) -> str:
    """Stdout of ``git -C ROOT ARGS`` (stripped); raises on a non-zero exit."""
    proc = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=_GIT_TIMEOUT_S, check=True
    )
    return proc.stdout.strip()


def version_text() -> str:
    """The ``--version`` line: ``snnc X.Y.Z`` and, in a checkout, ``(git REV[, dirty])``."""
    rev = git_revision()
    return f"snnc {__version__}" + (f" (git {rev})" if rev else "")


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """Eager ``--version`` callback: print :func:`version_text` and exit 0."""
    if not value or ctx.resilient_parsing:
        return
    click.echo(version_text())
    ctx.exit()


def version_option() -> Callable[[F], F]:
    """``--version`` for the click group; git is asked only when the option is given."""
    return click.option(
        "--version",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=_print_version,
        help="Show the version (and the git revision in a checkout) and exit.",
    )
