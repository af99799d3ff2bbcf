"""``snnc demo``: run the pipeline end to end on a small embedded default.

Stages (each reuses the library function or the click command behind the
matching ``snnc`` command, in process):

1. ``snnc data synth``: a small synthetic MVSEC-layout recording + recording.png;
2. ``snnc search --method spikedhs --task stereo``: a tiny stereo search (genotype JSON);
3. ``snnc train``: the searched genotype trained briefly, matching at input resolution
   (``--feature-stride 1 --volume-shifts auto``; checkpoint.pt, folded.pt,
   metrics.json with the constant-median baseline);
4. ``snnc export``: the folded net to NIR (``--partition``: NIR front + ONNX rest +
   manifest) and to a one-step streaming ONNX graph;
5. ``snnc stream --backend onnx``: the held-out tail of the recording (the frames
   training never saw) -> results.h5, disparity PNGs, energy per frame;
6. ``snnc energy``: per-layer energy report with a bar chart.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from snnc.errors import SnncError
from snnc.fileio import atomic_output, write_text_atomic
from snnc.outputs import OutputPlan, check_outputs, remove_recorded, snnc_files


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of one demo run (the default, or the much smaller ``--quick`` one)."""

    frames: int
    height: int
    width: int
    test_fraction: float
    search: dict[str, Any]
    train_width: int
    train_epochs: int
    train_steps: int
    burn_in: int
    max_disparity: float
    png_every: int
    energy_frames: int
    extra_train: dict[str, Any] = field(default_factory=dict)


DEFAULT = DemoSettings(
    frames=32,
    height=48,
    width=64,
    test_fraction=0.25,
    search={
        "width": 2,
        "levels": 3,
        "feature_layers": 2,
        "matching_layers": 3,
        "crop": (24, 32),
        "disparities": 10,
        "disp_step": 4.0,
        "time_steps": 2,
        "burn_in": 1,
        "epochs": 1,
        "warmup": 0,
        "batch_size": 2,
        "max_frames": 12,
    },
    train_width=2,
    train_epochs=2,
    train_steps=2,
    burn_in=1,
    max_disparity=38.0,
    png_every=2,
    energy_frames=4,
    extra_train={"augment_crop": [24, 32], "feature_stride": 1, "volume_shifts": "auto"},
)

QUICK = DemoSettings(
    frames=10,
    height=32,
    width=48,
    test_fraction=0.2,
    search={
        "width": 2,
        "levels": 3,
        "feature_layers": 2,
        "matching_layers": 3,
        "crop": (16, 24),
        "disparities": 5,
        "disp_step": 8.0,
        "time_steps": 2,
        "burn_in": 1,
        "epochs": 1,
        "warmup": 0,
        "batch_size": 2,
        "max_frames": 6,
    },
    train_width=2,
    train_epochs=1,
    train_steps=2,
    burn_in=1,
    max_disparity=38.0,
    png_every=2,
    energy_frames=2,
    extra_train={"augment_crop": [16, 24], "feature_stride": 1, "volume_shifts": "auto"},
)


#: Top-level names a demo writes in --out; ``--force`` removes only these (never other files).
DEMO_ARTEFACTS = (
    "synthetic_data.hdf5",
    "synthetic_gt.hdf5",
    "recording.png",
    "heldout_gt.hdf5",
    "stereo_genotype.json",
    "stereo_genotype.search.jsonl",
    "stereo_genotype.search.png",
    "stereo_genotype.search_state.pt",
    "train",
    "stereo_partition.json",
    "stereo_partition.front.nir",
    "stereo_partition.rest.onnx",
    "stereo.onnx",
    "results.h5",
    "results_shipped.h5",
    "disparity_png",
    "energy.png",
    "energy.json",
    "search_state.pt",
)  # earlier demos' search state name (now stereo_genotype.search_state.pt)


def _prepare_out(out_dir: Path, force: bool) -> None:
    """Refuse a non-empty ``out_dir`` unless ``force``; with ``force`` remove an earlier demo's artefacts.

    Only artefacts snnc wrote and nobody changed since (recorded in the folder's
    ledger, :mod:`snnc.outputs`) are removed; a user's file among them (also
    inside ``train/`` or ``disparity_png/``) is refused before anything is
    deleted. Files with other names are left alone.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise SnncError("exists and is not a folder", out_dir)
    if out_dir.is_dir() and snnc_files(p.name for p in out_dir.iterdir()):
        if not force:
            raise SnncError("folder is not empty; pass --force to overwrite an earlier demo", out_dir)
        artefacts = [out_dir / name for name in DEMO_ARTEFACTS]
        check_outputs(derived=artefacts, force=True)  # all or nothing: refuse before deleting anything
        for child in artefacts:
            remove_recorded(child)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SnncError(f"cannot create the folder: {err.strerror}", out_dir) from None


def write_heldout_gt(gt_path: Path, out_path: Path, test_fraction: float) -> tuple[int, int]:
    """Copy ``gt_path`` keeping only the held-out tail of its depth frames.

    The tail is the one ``snnc train --split tail`` holds out (last
    ``round(n * test_fraction)`` frames), so streaming the recording with this
    ground truth runs on the frames training never saw. Returns ``(first, n)``:
    the index of the first held-out frame and the number of held-out frames.
    """
    import h5py

    from snnc.data import layout
    from snnc.h5write import H5Output

    with h5py.File(gt_path, "r") as src, atomic_output(out_path) as tmp, H5Output(tmp) as out:
        dst = out.file
        n = int(src[layout.DEPTH_TS_KEY].shape[0])
        n_test = max(1, round(n * test_fraction))
        cut = n - n_test
        tails = {layout.DEPTH_KEY, layout.DEPTH_TS_KEY}

        def copy(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Dataset):
                data = obj[cut:] if name in tails else obj[()]
                ds = dst.create_dataset(name, data=data)
                ds.attrs.update(dict(obj.attrs))
            elif isinstance(obj, h5py.Group):
                dst.require_group(name).attrs.update(dict(obj.attrs))

        dst.attrs.update(dict(src.attrs))
        src.visititems(copy)
    return cut, n_test


class _Stages:
    """Runs stages with a progress header and records (stage, seconds, key numbers)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.rows: list[tuple[str, float, str]] = []

    def run(self, name: str, what: str, fn: Callable[[], str]) -> None:
        click.echo(f"\n[{len(self.rows) + 1}/{self.total}] {name}: {what}")
        t0 = time.perf_counter()
        key = fn()
        seconds = time.perf_counter() - t0
        self.rows.append((name, seconds, key))
        click.echo(f"[{len(self.rows)}/{self.total}] {name} done in {seconds:.1f} s: {key}")


def _num(v: float | None, scale: float = 1.0, digits: int = 3) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{v * scale:.{digits}f}"


@click.command("demo")
@click.option(
    "--out",
    "out_dir",
    default=Path("demo_out"),
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for every artefact.",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed.")
@click.option(
    "--threads",
    default=2,
    show_default=True,
    type=click.IntRange(min=0),
    help="Torch CPU threads (0: PyTorch default).",
)
@click.option("--quick", is_flag=True, help="Much smaller settings (tens of seconds; for tests).")
@click.option(
    "--force", is_flag=True, help="Overwrite artefacts of an earlier demo in --out (other files are left alone)."
)
@click.pass_context
def demo_command(ctx: click.Context, out_dir: Path, seed: int, threads: int, quick: bool, force: bool) -> None:
    """Run the whole pipeline on a small synthetic MVSEC recording: synthesize, search a
    stereo architecture, train it, export it (NIR + ONNX), stream the held-out frames and
    report energy. Every artefact lands in --out; a summary table ends the run.

    \b
    Example:
      snnc demo --out demo_out --force
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise SnncError("exists and is not a folder", out_dir)
    # locked for the whole demo (a second demo on it fails at once); its artefacts recorded when it ends
    ctx.with_resource(
        OutputPlan(derived=[out_dir / name for name in DEMO_ARTEFACTS], lock=[out_dir], ledger=out_dir, check=False)
    )
    _prepare_out(out_dir, force)
    s = QUICK if quick else DEFAULT
    import torch

    if threads:
        torch.set_num_threads(threads)
    stages = _Stages(6)
    paths: dict[str, Path] = {}
    facts: dict[str, Any] = {}

    data_path = out_dir / "synthetic_data.hdf5"

    def synth() -> str:
        from snnc.commands.data import format_summary
        from snnc.data.info import summarize
        from snnc.data.mvsec import MVSECRecording
        from snnc.data.plots import plot_recording
        from snnc.data.synth import synthesize

        _, gt_path = synthesize(
            data_path, frames=s.frames, seed=seed, height=s.height, width=s.width, force=True, progress=False
        )
        paths["recording"], paths["ground truth"] = data_path, gt_path
        paths["recording plot"] = out_dir / "recording.png"
        with MVSECRecording(data_path) as rec:
            summary = summarize(rec)
            with atomic_output(paths["recording plot"]) as tmp:
                plot_recording(rec, summary, tmp)
        click.echo(format_summary(summary))
        first, n_test = write_heldout_gt(gt_path, out_dir / "heldout_gt.hdf5", s.test_fraction)
        paths["held-out gt"] = out_dir / "heldout_gt.hdf5"
        facts["heldout"] = (first, n_test)
        return (
            f"{s.frames} depth frames at {s.height}x{s.width}; frames {first}..{s.frames - 1} "
            f"({n_test}) held out for testing"
        )

    def search() -> str:
        from snnc.nas.spikedhs_search import run_spikedhs_search

        given = dict(task="stereo", data=str(data_path), seed=seed, **s.search)
        out = out_dir / "stereo_genotype.json"
        result = run_spikedhs_search(given, out, force=True, progress=False, echo=click.echo)
        d = result["genotype"].to_dict()
        paths["genotype"] = out
        last = result["last"] or {}
        metric = (last.get("val") or {}).get(result["metric"], float("nan"))
        return (
            f"searched spikedhs stereo (width {s.search['width']}, {result['epochs_done']} epochs): "
            f"feature cell {d['feature_cell']['edges']} path {d['feature_path']}, matching cell "
            f"{d['matching_cell']['edges']} path {d['matching_path']}; search val {result['metric']} "
            f"{_num(metric)}"
        )

    run_dir = out_dir / "train"

    def train_stage() -> str:
        from snnc.train.config import TrainConfig
        from snnc.train.trainer import train

        config = TrainConfig(
            arch=str(paths["genotype"].resolve()),
            data=[str(data_path.resolve())],
            out=str(run_dir),
            epochs=s.train_epochs,
            steps=s.train_steps,
            burn_in=s.burn_in,
            width=s.train_width,
            max_disparity=s.max_disparity,
            split="tail",
            test_fraction=s.test_fraction,
            threads=threads,
            seed=seed,
            quiet=True,
            **s.extra_train,
        )
        from snnc.train.rundir import run_folder

        with run_folder(run_dir):
            metrics = train(config, force=True, log=click.echo)
        if metrics is None:
            raise SnncError("training stopped before its last epoch", run_dir)
        paths["checkpoint"], paths["folded checkpoint"] = run_dir / "checkpoint.pt", run_dir / "folded.pt"
        paths["train metrics"] = run_dir / "metrics.json"
        saved = json.loads(paths["train metrics"].read_text())
        facts["train"] = saved
        base = saved.get("baseline") or {}
        return (
            f"trained the searched genotype at width {s.train_width} for {s.train_epochs} epochs: "
            f"MDE {_num(saved.get('mean_disparity_error'))} px, 1PA "
            f"{_num(saved.get('one_pixel_accuracy'), 100, 1)} % vs constant-median baseline MDE "
            f"{_num(base.get('mean_disparity_error'))} px, 1PA {_num(base.get('one_pixel_accuracy'), 100, 1)} %"
        )

    def export() -> str:
        from snnc.commands.export import export_command

        folded = str(paths["folded checkpoint"])
        shape = f"1,2,5,{s.height},{s.width}"
        paths["NIR manifest"] = out_dir / "stereo_partition.json"
        ctx.invoke(
            export_command,
            source=folded,
            fmt="nir",
            out=paths["NIR manifest"],
            force=True,
            partition=True,
            input_shape=shape,
        )
        paths["ONNX"] = out_dir / "stereo.onnx"
        ctx.invoke(export_command, source=folded, fmt="onnx", out=paths["ONNX"], force=True, input_shape=shape)
        doc = json.loads(paths["NIR manifest"].read_text())
        for piece in doc["pieces"]:
            paths[f"partition {piece['name']}"] = out_dir / piece["file"]
        return (
            ", ".join(f"{p['name']} {p['file']} ({p['nodes']} nodes)" for p in doc["pieces"])
            + f" + streaming {paths['ONNX'].name}"
        )

    def stream() -> str:
        import h5py

        from snnc.commands.stream import stream_command
        from snnc.energy.units import format_energy

        paths["results"] = out_dir / "results.h5"
        paths["disparity PNGs"] = out_dir / "disparity_png"
        ctx.invoke(
            stream_command,
            data_file=data_path,
            model_spec=str(paths["folded checkpoint"]),
            backend="onnx",
            gt_file=paths["held-out gt"],
            out_file=paths["results"],
            png_dir=paths["disparity PNGs"],
            png_every=s.png_every,
            threads=threads,
            quiet=True,
            force=True,
        )
        with h5py.File(paths["results"], "r") as f:
            summary = json.loads(f.attrs["summary"])
        facts["stream"] = summary
        shipped = _stream_shipped(ctx, data_path, paths, threads)
        if shipped:
            facts["shipped"] = shipped
        return (
            f"onnx backend, {summary['frames']} held-out frames at {_num(summary['fps'], digits=1)} fps: "
            f"MDE {_num(summary['mean_disparity_error'])} px, 1PA "
            f"{_num(summary['one_pixel_accuracy'], 100, 1)} %, "
            f"{format_energy(summary['energy_j_per_frame'])}/frame"
            + (
                f"; shipped {shipped['zoo_name']} 1PA {_num(shipped['one_pixel_accuracy'], 100, 1)} %"
                if shipped
                else ""
            )
        )

    def energy() -> str:
        from snnc.energy.costs import resolve_costs
        from snnc.energy.plot import plot_energy
        from snnc.energy.units import format_energy
        from snnc.runtime.measure import measure_stereo
        from snnc.runtime.model import load_network

        net = load_network(str(paths["folded checkpoint"]))
        report = measure_stereo(
            net, data_path, frames=s.energy_frames, gt_file=paths["held-out gt"], costs=resolve_costs("45nm-fp32")
        )
        click.echo(report.format_table())
        paths["energy plot"], paths["energy report"] = out_dir / "energy.png", out_dir / "energy.json"
        with atomic_output(paths["energy plot"]) as tmp:
            plot_energy(report, tmp, title=f"{net.describe()} on {report.frames} held-out frames")
        d = report.to_dict()
        write_text_atomic(paths["energy report"], json.dumps(d, indent=2))
        facts["energy"] = d
        return (
            f"{report.ac / 1e6:.2f} M AC + {report.mac / 1e6:.2f} M MAC = {format_energy(report.energy_j)}/frame "
            f"(as an ANN {format_energy(report.ann_energy_j)}) over {report.frames} frames"
        )

    stages.run("synthesize", f"{s.frames} frames at {s.height}x{s.width} -> {data_path}", synth)
    stages.run("search", "SpikeDHS stereo search (tiny supernet) on the synthetic recording", search)
    stages.run("train", "the searched genotype on the training frames (held-out tail for test)", train_stage)
    stages.run("export", "folded net -> NIR (--partition) and ONNX", export)
    stages.run("stream", "held-out frames through the ONNX backend", stream)
    stages.run("energy", "per-layer energy report + bar chart", energy)
    _print_summary(stages, paths, facts)


def _stream_shipped(ctx: click.Context, data_path: Path, paths: dict[str, Path], threads: int) -> dict[str, Any]:
    """The shipped stereo model (snnc models) streamed over the same held-out frames (torch backend, no
    energy count): a trained reference next to the demo's tiny net. Empty when it is not installed."""
    import h5py

    from snnc.commands.stream import stream_command
    from snnc.zoo import DEFAULT_STEREO, zoo_names

    if DEFAULT_STEREO not in zoo_names():
        return {}
    paths["shipped results"] = data_path.parent / "results_shipped.h5"
    ctx.invoke(
        stream_command,
        data_file=data_path,
        model_spec=DEFAULT_STEREO,
        backend="torch",
        gt_file=paths["held-out gt"],
        out_file=paths["shipped results"],
        no_energy=True,
        threads=threads,
        quiet=True,
        force=True,
    )
    with h5py.File(paths["shipped results"], "r") as f:
        summary = json.loads(f.attrs["summary"])
    summary["zoo_name"] = DEFAULT_STEREO
    return summary


def _print_summary(stages: _Stages, paths: dict[str, Path], facts: dict[str, Any]) -> None:
    """The final table: stage, seconds, key numbers; then the metrics and the artefacts."""
    from snnc.energy.units import format_energy

    click.echo("\n== snnc demo summary ==")
    width = max(len(name) for name, _, _ in stages.rows)
    click.echo(f"{'stage':<{width}s}  {'time s':>7s}  key numbers")
    for name, seconds, key in stages.rows:
        click.echo(f"{name:<{width}s}  {seconds:7.1f}  {key}")
    total = sum(seconds for _, seconds, _ in stages.rows)
    click.echo(f"{'total':<{width}s}  {total:7.1f}")
    train = facts.get("train", {})
    base = train.get("baseline") or {}
    st = facts.get("stream", {})
    click.echo("")
    shipped = facts.get("shipped")
    rows = [("trained net (train eval)", train), ("constant-median baseline", base), ("trained net (stream)", st)]
    if shipped:
        rows.append((f"shipped {shipped['zoo_name']} (stream)", shipped))
    label_w = max(24, *(len(label) + 1 for label, _ in rows))
    click.echo(f"{'held-out metrics':<{label_w}s}{'MDE px':>10s}{'1PA %':>9s}{'mean depth err cm':>19s}")
    for label, m in rows:
        click.echo(
            f"{label:<{label_w}s}{_num(m.get('mean_disparity_error')):>10s}"
            f"{_num(m.get('one_pixel_accuracy'), 100, 1):>9s}{_num(m.get('mean_depth_error'), 100, 1):>19s}"
        )
    if st:
        click.echo(
            f"stream: {_num(st.get('fps'), digits=1)} fps (backend alone {_num(st.get('infer_fps'), digits=1)});"
            f" energy per frame {_num(st.get('ac_per_frame'), 1e-6)} M AC, "
            f"{_num(st.get('mac_per_frame'), 1e-6)} M MAC, {format_energy(st.get('energy_j_per_frame'))}"
        )
    click.echo("\nartefacts:")
    for label, path in paths.items():
        click.echo(f"  {label:<20s} {path}")
