"""Finding and loading MVSEC rectification maps stored as text files.

Real MVSEC ships, per camera and axis, a 260 x 346 text table
(``indoor_flying_left_x_map.txt`` in the calibration archives): the rectified
position of raw pixel ``(x, y)`` is ``(x_map[y, x], y_map[y, x])``. This module
looks for ``{camera}_{axis}_map.txt`` or ``*_{camera}_{axis}_map.txt`` in a list
of folders and parses them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from snnc.errors import SnncError


def _prefix_score(candidate: Path, suffix: str, stem: str) -> int:
    """Length of the candidate's scene prefix when it prefixes ``stem``, else -1."""
    prefix = candidate.name[: -len(suffix)]  # e.g. "indoor_flying_" for ..._left_x_map.txt
    scene = prefix.rstrip("_")
    return len(scene) if scene and stem.startswith(scene) else -1


def find_rect_map_txt(camera: str, axis: str, folders: Sequence[Path], data_stem: str) -> Path | None:
    """The text map for ``camera``/``axis`` in the first folder that has one.

    In each folder the plain ``{camera}_{axis}_map.txt`` wins; otherwise one
    ``*_{camera}_{axis}_map.txt`` is taken. Several prefixed files are resolved
    by the longest scene prefix that starts ``data_stem`` (``indoor_flying`` for
    ``indoor_flying1_data``); if that does not single one out, SnncError.
    """
    suffix = f"_{camera}_{axis}_map.txt"
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            continue
        plain = folder / f"{camera}_{axis}_map.txt"
        if plain.is_file():
            return plain
        candidates: list[Path] = sorted(p for p in folder.glob(f"*{suffix}") if p.is_file())
        if not candidates:
            continue
        if len(candidates) == 1:
            return candidates[0]
        scores = [_prefix_score(c, suffix, data_stem) for c in candidates]
        best = max(scores)
        winners = [c for c, s in zip(candidates, scores, strict=False) if s == best]
        if best < 0 or len(winners) > 1:
            names = ", ".join(c.name for c in candidates)
            raise SnncError(
                f"several rectification maps match *{suffix} ({names}); "
                "keep one or pass the calibration folder explicitly",
                folder,
            )
        return winners[0]
    return None


def load_rect_map_txt(path: Path) -> np.ndarray:
    """Parse a whitespace- or comma-separated 2-D table of floats as float32."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SnncError(f"cannot read rectification map: {exc.strerror or exc}", path) from None
    rows = [line.replace(",", " ").split() for line in text.splitlines()]
    rows = [r for r in rows if r and not r[0].startswith("#")]
    if not rows:
        raise SnncError("rectification map is empty", path)
    width = len(rows[0])
    for i, row in enumerate(rows):
        if len(row) != width:
            raise SnncError(f"rectification map row {i + 1} has {len(row)} values, expected {width}", path)
    try:
        table = np.array(rows, dtype=np.float64)
    except ValueError:
        raise SnncError("rectification map contains a value that is not a number", path) from None
    return table.astype(np.float32)
