"""A data file and its ground truth written as one set by ``snnc data synth``: detect a stale pair.

``snnc data synth`` writes ``X_data.hdf5`` and ``X_gt.hdf5`` to temporary
files and renames them together (the data file last); both carry the same
root attribute :data:`SET_ID_ATTR`. A ``_gt.hdf5`` left by another synth run
beside a data file (a failure between the renames, or files copied together
from different runs) has another id, and :func:`check_pair` refuses it when
the recording is opened. Files without the attribute (real MVSEC recordings,
older snnc versions) are not checked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from snnc.errors import SnncError

__all__ = ["SET_ID_ATTR", "check_pair"]

#: Root attribute shared by the two files of one synth run.
SET_ID_ATTR = "snnc_set_id"


def _set_id(h5: Any) -> str:
    try:
        value = h5.attrs.get(SET_ID_ATTR)
    except Exception:
        return ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value if isinstance(value, str) else ""


def check_pair(data_h5: Any, gt_h5: Any, data_path: str | Path, gt_path: str | Path) -> None:
    """Refuse ``gt_h5`` when both open files carry set ids and they differ.

    Raises:
        SnncError: naming the gt file: it belongs to another synth run (a stale or partial pair).
    """
    data_id, gt_id = _set_id(data_h5), _set_id(gt_h5)
    if data_id and gt_id and data_id != gt_id:
        raise SnncError(
            f"is not the ground truth written with {Path(data_path).name} (another snnc data synth "
            f"run: set ids differ), so the pair is stale or partial; write both again with "
            f"snnc data synth --force, or pass the matching --gt",
            gt_path,
        )
