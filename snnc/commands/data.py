"""``snnc data``: write synthetic MVSEC-layout recordings and summarise recordings."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Optional

import click

from snnc.commands.common import check_output_path
from snnc.errors import SnncError


@click.group("data")
def data_group() -> None:
    """MVSEC-layout recordings: synthesize one, or summarise a real or synthetic one."""


@data_group.command("synth")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--frames", default=40, show_default=True, type=int, help="Depth frames (20 Hz).")
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed (same seed, same files).")
@click.option("--height", default=260, show_default=True, type=int, help="Sensor rows.")
@click.option("--width", default=346, show_default=True, type=int, help="Sensor columns.")
@click.option("--rect-txt", is_flag=True, help="Also write {left,right}_{x,y}_map.txt beside the files, like real MVSEC.")
@click.option("--force", is_flag=True, help="Overwrite existing output files.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def synth_command(out: Path, frames: int, seed: int, height: int, width: int, rect_txt: bool, force: bool, quiet: bool) -> None:
    """Write OUT (must end in _data.hdf5) and the matching _gt.hdf5 from a synthetic scene.

    Textured planar surfaces at known, changing depths move in front of a
    rectified stereo pair (fB = 19.941772 px*m, like MVSEC indoor_flying);
    events come from log-intensity changes. The files have the real MVSEC
    layout, so every reader path is exercised.

    \b
    Example:
      snnc data synth /tmp/s_data.hdf5 --frames 40
      snnc data info /tmp/s_data.hdf5
    """
    from snnc.data.layout import gt_path_for
    from snnc.data.synth import synthesize

    if not out.name.endswith("_data.hdf5"):
        raise SnncError("output name must end in _data.hdf5 (the _gt.hdf5 file is written beside it)", out)
    gt = gt_path_for(out)
    check_output_path(out, force)
    check_output_path(gt, force)
    data_path, gt_path = synthesize(out, frames=frames, seed=seed, height=height, width=width,
                                    force=force, progress=not quiet, write_rect_txt=rect_txt)
    click.echo(f"wrote {data_path}")
    click.echo(f"wrote {gt_path}")


@data_group.command("info")
@click.argument("data_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--gt", "gt_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Ground-truth file (default: the _gt.hdf5 beside DATA_FILE, if present).")
@click.option("--rect-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder with the {left,right}_{x,y}_map.txt rectification maps.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def info_command(data_file: Path, gt_file: Optional[Path], rect_dir: Optional[Path], as_json: bool) -> None:
    """Summarise an MVSEC-layout recording: length, events, rates, depth range, disparities.

    \b
    Example:
      snnc data info indoor_flying1_data.hdf5
      snnc data info /tmp/s_data.hdf5 --json
    """
    from snnc.data.info import summarize
    from snnc.data.mvsec import MVSECRecording

    with MVSECRecording(data_file, gt_path=gt_file, rect_dir=rect_dir) as rec:
        summary = summarize(rec)
    if as_json:
        click.echo(json.dumps(summary, indent=2, default=_json_default))
    else:
        click.echo(format_summary(summary))


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def format_summary(summary: Dict[str, Any]) -> str:
    """Human-readable text for :func:`snnc.data.info.summarize`'s dict (keys shown as found)."""
    lines = []
    hist = None
    for key, value in summary.items():
        if isinstance(value, dict) and "counts" in value and "edges" in value:
            hist = (key, value)
            continue
        if isinstance(value, dict):
            lines.append(f"{key}:")
            for k, v in value.items():
                lines.append(f"  {k:<28} {_fmt(v)}")
        else:
            lines.append(f"{key:<30} {_fmt(value)}")
    if hist is not None:
        key, h = hist
        counts, edges = list(h["counts"]), list(h["edges"])
        top = max(counts) if counts and max(counts) > 0 else 1
        lines.append(f"{key}:")
        for i, c in enumerate(counts):
            bar = "#" * int(round(40 * c / top))
            lines.append(f"  [{edges[i]:6.1f}, {edges[i + 1]:6.1f})  {c:>10}  {bar}")
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, (list, tuple)) and len(v) <= 8:
        return ", ".join(_fmt(x) for x in v)
    return str(v)
