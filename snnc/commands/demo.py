"""``snnc demo``: run the pipeline end to end on a small embedded default."""
from __future__ import annotations

from pathlib import Path

import click


@click.command("demo")
@click.option("--out", "out_dir", default=Path("demo_out"), show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Folder for every artefact.")
@click.option("--frames", default=40, show_default=True, type=int, help="Depth frames of the synthetic recording.")
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed.")
@click.option("--force", is_flag=True, help="Overwrite artefacts of an earlier demo in --out.")
def demo_command(out_dir: Path, frames: int, seed: int, force: bool) -> None:
    """Synthesize a small MVSEC-layout recording, summarise it and draw it (recording.png).

    The demo grows with the pipeline: every stage that exists runs on the
    embedded default and leaves its artefacts in --out.

    \b
    Example:
      snnc demo --out demo_out --force
    """
    from snnc.commands.data import format_summary
    from snnc.data.info import summarize
    from snnc.data.mvsec import MVSECRecording
    from snnc.data.plots import plot_recording
    from snnc.data.synth import synthesize

    out_dir.mkdir(parents=True, exist_ok=True)
    data_path = out_dir / "synthetic_data.hdf5"
    click.echo(f"[1/2] synthesizing {frames} depth frames -> {data_path}")
    data_path, gt_path = synthesize(data_path, frames=frames, seed=seed, force=force, progress=True)
    click.echo(f"[2/2] summarising {data_path}")
    plot_png = out_dir / "recording.png"
    with MVSECRecording(data_path) as rec:
        summary = summarize(rec)
        plot_recording(rec, summary, plot_png)
    click.echo(format_summary(summary))
    click.echo(f"picture: {plot_png}")
