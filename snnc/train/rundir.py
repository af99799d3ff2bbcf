"""The run folder: refusing to clobber, and writing its metric files atomically.

Files of a run (all written by snnc): ``checkpoint.pt``, ``folded.pt``,
``config.json``, ``genotype.json``, ``metrics.csv``, ``metrics.jsonl``
(one line per epoch), ``metrics.json`` (final), ``learning_curve.png`` and the
search logs ``dgs.jsonl``, ``tps.jsonl``, ``hns.jsonl``. Every file is
rewritten whole through a temporary file and a rename, so after a crash each
one is either the old or the new version, never half written. The folder's
ledger ``.snnc-outputs.json`` records the run files snnc wrote (``--force``
replaces only those), and ``.NAME.snnc-lock`` beside the folder marks a run
in progress (:func:`run_folder`, :mod:`snnc.outputs`).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from snnc.errors import PathLike, SnncError
from snnc.fileio import json_safe, write_text_atomic
from snnc.outputs import OutputPlan, check_outputs, remove_recorded, snnc_files

__all__ = [
    "RUN_FILES",
    "check_run_dir",
    "prepare_run_dir",
    "run_folder",
    "write_text",
    "write_json",
    "write_jsonl",
    "write_history",
]

RUN_FILES = (
    "checkpoint.pt",
    "folded.pt",
    "config.json",
    "genotype.json",
    "metrics.csv",
    "metrics.jsonl",
    "metrics.json",
    "learning_curve.png",
    "dgs.jsonl",
    "tps.jsonl",
    "hns.jsonl",
)


def _user_files(path: Path) -> list[str]:
    return snnc_files(p.name for p in path.iterdir()) if path.is_dir() else []


def check_run_dir(path: Path, resume: bool, force: bool) -> Path:
    """Check the run folder without touching it (call before loading data; see :func:`prepare_run_dir`).

    Raises:
        SnncError: the path is a file, the folder is not empty, there is nothing to resume,
            or (``force``) a file named like a run file was not written by snnc.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise SnncError("run folder path is a file", path)
    if resume:
        if not (path / "checkpoint.pt").is_file():
            raise SnncError("no checkpoint.pt to resume from", path)
    elif _user_files(path):
        if not force:
            raise SnncError("run folder is not empty; pass --resume to continue its run or --force to start over", path)
        check_outputs(derived=[path / name for name in RUN_FILES], force=True)
    return path


def prepare_run_dir(path: Path, resume: bool, force: bool) -> Path:
    """Check and create the run folder.

    * new or empty folder: created, used;
    * ``resume``: must hold ``checkpoint.pt``;
    * ``force``: the run files snnc wrote there before (recorded in its ledger
      ``.snnc-outputs.json`` and unchanged) are deleted; other files are left alone,
      and a user's file named like a run file is refused, never deleted;
    * otherwise a non-empty folder is refused.

    Raises:
        SnncError: as :func:`check_run_dir`, or the folder cannot be created.
    """
    path = check_run_dir(path, resume, force)
    if resume:
        return path
    if path.is_dir() and force:
        for name in RUN_FILES:
            remove_recorded(path / name)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SnncError(f"cannot create the run folder: {err.strerror}", path) from None
    return path


def run_folder(path: Path, inputs: Iterable[PathLike | None] = ()) -> OutputPlan:
    """The output plan of a training run in ``path``: locked while it runs (a second run on the same
    folder fails at once), inputs that are run files refused, and the run files recorded in the
    folder's ledger when it ends (so a later ``--force`` may replace them).

    The clobbering rules are :func:`check_run_dir`'s (the trainer applies them).
    """
    path = Path(path)
    return OutputPlan(
        derived=[path / name for name in RUN_FILES], inputs=list(inputs), lock=[path], ledger=path, check=False
    )


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    write_text_atomic(path, text)


def write_json(path: Path, obj: Any) -> None:
    """Indented JSON, atomically (non-finite floats become null)."""
    write_text(path, json.dumps(json_safe(obj), indent=2) + "\n")


def write_jsonl(path: Path, records: Iterable[Any]) -> None:
    """One JSON object per line, atomically."""
    write_text(path, "".join(json.dumps(json_safe(r)) + "\n" for r in records))


def _flat(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if not isinstance(v, (dict, list))}


def write_history(run_dir: Path, history: Sequence[dict[str, Any]]) -> None:
    """``metrics.jsonl`` (every epoch record) and ``metrics.csv`` (its scalar columns)."""
    write_jsonl(run_dir / "metrics.jsonl", history)
    columns: list[str] = []
    for record in history:
        for key in _flat(record):
            if key not in columns:
                columns.append(key)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for record in history:
        writer.writerow(_flat(json_safe(record)))
    write_text(run_dir / "metrics.csv", buf.getvalue())
