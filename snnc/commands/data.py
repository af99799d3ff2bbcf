"""``snnc data``: write synthetic MVSEC-layout recordings and summarise recordings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from snnc.commands.common import plan_outputs, recording_options
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
@click.option(
    "--rect-txt", is_flag=True, help="Also write {left,right}_{x,y}_map.txt beside the files, like real MVSEC."
)
@click.option("--force", is_flag=True, help="Overwrite existing output files.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def synth_command(
    out: Path, frames: int, seed: int, height: int, width: int, rect_txt: bool, force: bool, quiet: bool
) -> None:
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
    from snnc.data.layout import CAMERAS, rect_map_txt_path

    gt = gt_path_for(out)
    txts = [rect_map_txt_path(out, cam, axis) for cam in CAMERAS for axis in ("x", "y")] if rect_txt else []
    plan_outputs([out], derived=[gt, *txts], force=force, lock=[out])  # the _gt / map files: only snnc's replaced
    data_path, gt_path = synthesize(
        out,
        frames=frames,
        seed=seed,
        height=height,
        width=width,
        force=force,
        progress=not quiet,
        write_rect_txt=rect_txt,
    )
    click.echo(f"wrote {data_path}")
    click.echo(f"wrote {gt_path}")


@data_group.command("info")
@click.argument("data_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--gt",
    "gt_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Ground-truth file (default: the _gt.hdf5 beside DATA_FILE, if present).",
)
@recording_options("Refuse a 50 ms window (--plot) with more events than this per camera.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--plot",
    "plot_png",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write a PNG: GT disparity and left/right SBT of the middle depth frame, disparity histogram.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing --plot file.")
def info_command(
    data_file: Path,
    gt_file: Path | None,
    rect_dir: Path | None,
    max_window_events: int,
    as_json: bool,
    plot_png: Path | None,
    force: bool,
) -> None:
    """Summarise an MVSEC-layout recording: length, events, rates, depth range, disparities.

    Also shows the time ranges of both cameras and the depth clock, their
    overlap, and the events the rectification maps drop (checks). When a check
    fails (clocks, units, coordinates, maps, depth; see docs/STREAM_ENERGY.md)
    the summary is printed and the command then fails with that problem.

    \b
    Example:
      snnc data info indoor_flying1_data.hdf5
      snnc data info /tmp/s_data.hdf5 --json --plot /tmp/s.png
    """
    from snnc.data.info import summarize
    from snnc.data.mvsec import MVSECRecording

    if plot_png is not None:
        plan_outputs([plot_png], inputs=[data_file, gt_file], force=force)
    with MVSECRecording(
        data_file, gt_path=gt_file, rect_dir=rect_dir, max_window_events=max_window_events, sanity=False
    ) as rec:
        summary = summarize(rec)
        check = rec.check
        if plot_png is not None and not (check is not None and check.problems):
            from snnc.commands.common import atomic_output
            from snnc.data.plots import plot_recording

            with atomic_output(plot_png) as tmp:
                plot_recording(rec, summary, tmp)
    if as_json:
        click.echo(json.dumps(summary, indent=2, default=_json_default))
    else:
        click.echo(format_summary(summary))
    if check is not None:
        check.raise_first()


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


def format_summary(summary: dict[str, Any], indent: int = 0) -> str:
    """Human-readable text for :func:`snnc.data.info.summarize`'s nested dict.

    Nested dicts become indented sections; a histogram (a dict with ``counts``
    and ``bin_edges``) becomes text bars, merged into at most 16 rows.
    """
    pad = "  " * indent
    lines = []
    for key, value in summary.items():
        if isinstance(value, dict) and "counts" in value and "bin_edges" in value:
            lines.append(f"{pad}{key}:")
            lines.extend(_histogram_lines(value, pad + "  "))
        elif isinstance(value, dict):
            lines.append(f"{pad}{key}:")
            lines.append(format_summary(value, indent + 1))
        else:
            lines.append(f"{pad}{key:<{30 - len(pad)}} {_fmt(value)}")
    return "\n".join(lines)


def _histogram_lines(hist: dict[str, Any], pad: str, max_rows: int = 16) -> list:
    counts = [int(c) for c in hist["counts"]]
    edges = [float(e) for e in hist["bin_edges"]]
    group = max(1, -(-len(counts) // max_rows))
    rows = []
    for i in range(0, len(counts), group):
        rows.append((edges[i], edges[min(i + group, len(counts))], sum(counts[i : i + group])))
    top = max((c for _, _, c in rows), default=0) or 1
    out = [f"{pad}[{lo:5.0f}, {hi:5.0f})  {c:>10}  {'#' * round(40 * c / top)}" for lo, hi, c in rows]
    for extra in ("overflow", "scale"):
        if extra in hist:
            out.append(f"{pad}{extra:<14} {_fmt(hist[extra])}")
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6f}" if abs(v) >= 1e6 else f"{v:.6g}"
    if isinstance(v, (list, tuple)) and len(v) <= 8:
        return ", ".join(_fmt(x) for x in v)
    return str(v)
