"""``snnc stream``: streaming stereo inference on an MVSEC-layout recording, one network step per frame."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, cast

import click

from snnc.commands.common import recording_int8_fields, recording_options
from snnc.errors import SnncError
from snnc.fileio import json_safe


def _fmt(v: float | None, scale: float = 1.0, digits: int = 2) -> str:
    if v is None or not math.isfinite(v):
        return "-"
    return f"{v * scale:.{digits}f}"


def _frame_row(r: Any) -> str:
    from snnc.energy.units import format_energy

    m = r.metrics or {}
    return (
        f"{r.index:6d} {r.t:16.4f} {r.events[0]:8d} {r.events[1]:8d} {_fmt(r.ac, 1e-6):>10s} "
        f"{_fmt(r.mac, 1e-6):>9s} {format_energy(r.energy_j):>10s} {_fmt(m.get('mean_depth_error'), 100):>8s} "
        f"{_fmt(m.get('one_pixel_accuracy'), 100):>7s} {r.infer_s * 1e3:8.1f}"
    )


_HEADER = (
    f"{'frame':>6s} {'t (s)':>16s} {'ev left':>8s} {'ev right':>8s} {'AC M':>10s} {'MAC M':>9s} "
    f"{'energy':>10s} {'MDE cm':>8s} {'1PA %':>7s} {'ms':>8s}"
)


def _check_png_dir(png_dir: Path, force: bool) -> None:
    if png_dir.exists() and not png_dir.is_dir():
        raise SnncError("--png-dir exists and is not a folder", png_dir)
    if not force and png_dir.is_dir() and any(png_dir.glob("frame_*.png")):
        raise SnncError("folder already holds frame_*.png files; pass --force to overwrite them", png_dir)


def _prepare_png_dir(png_dir: Path, force: bool) -> None:
    _check_png_dir(png_dir, force)
    try:
        png_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SnncError(f"cannot create the folder: {err.strerror}", png_dir) from None


def _plan_outputs(
    data_file: Path,
    gt_file: Path | None,
    model_spec: str,
    out_file: Path | None,
    png_dir: Path | None,
    force: bool,
) -> None:
    """Check --out / --png-dir before any work, refuse an output that is an input, and lock the
    outputs for the rest of the command (released when it ends; see :mod:`snnc.outputs`)."""
    from snnc.commands.common import check_output_path
    from snnc.data.layout import gt_path_for
    from snnc.outputs import OutputPlan

    if out_file is not None:
        check_output_path(out_file, force)
    if png_dir is not None:
        _check_png_dir(png_dir, force)
    try:
        default_gt: Path | None = gt_path_for(data_file) if gt_file is None else None
    except SnncError:
        default_gt = None
    inputs = [data_file, gt_file, default_gt, Path(model_spec) if model_spec else None]
    outputs = [p for p in (out_file, png_dir) if p is not None]
    click.get_current_context().with_resource(
        OutputPlan(
            named=[p for p in (out_file,) if p is not None],
            inputs=[p for p in inputs if p is not None],
            lock=outputs,
            check=False,
        )
    )


@click.command("stream")
@click.argument("data_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--model",
    "model_spec",
    default=None,
    help="Checkpoint (checkpoint.pt / folded.pt), shipped model, genotype JSON, partition manifest (a .json "
    "whose format is snnc-partition/1, from snnc export --partition; runs its pieces, energy not counted) or "
    "preset name. A file is typed by its extension (.pt/.pth/.ckpt, .json); a bare name is a preset (always) "
    "or a shipped model. Default: the shipped stereo model (snnc models).",
)
@click.option(
    "--backend", type=click.Choice(["torch", "onnx", "openvino", "lava", "hybrid"]), default="torch", show_default=True
)
@click.option(
    "--gt",
    "gt_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Ground-truth file (default: the _gt.hdf5 beside DATA_FILE, if present).",
)
@recording_options()
@click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write per-frame results to this HDF5 file (disparity in unscaled px, energy, metrics).",
)
@click.option(
    "--png-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write predicted vs ground-truth disparity PNGs here.",
)
@click.option(
    "--png-every", default=1, show_default=True, type=click.IntRange(min=1), help="Write a PNG for every k-th frame."
)
@click.option(
    "--video",
    "video_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write a video (.mp4 or .gif, 20 fps): left events, predicted disparity, ground truth and error "
    "per frame, colour bar in pixels and metres.",
)
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda (torch, onnx, hybrid backends).")
@click.option(
    "--dtype",
    type=click.Choice(["fp32", "fp16", "bf16"]),
    default="fp32",
    show_default=True,
    help="torch backend: run the synaptic layers under autocast at this type (neuron state stays fp32; "
    "spikes may differ from fp32).",
)
@click.option(
    "--cuda-graph",
    is_flag=True,
    help="torch backend on --device cuda: capture the step once as a CUDA graph and replay it per frame "
    "(batch-1 latency; needs --no-energy).",
)
@click.option("--frames", "max_frames", type=click.IntRange(min=1), default=None, help="Stream at most N frames.")
@click.option("--no-energy", is_flag=True, help="Do not count ops / energy per frame.")
@click.option(
    "--count",
    type=click.Choice(["rate", "events"]),
    default="rate",
    show_default=True,
    help="AC count: the papers' rate x dense ops, or fan-out synaptic events.",
)
@click.option(
    "--costs",
    default=None,
    help="Energy per op table: 45nm-fp32 (AC 0.9, MAC 4.6 pJ; default), 45nm-fp16, 45nm-int32 (default of "
    "--energy-model lemaire), 45nm-int8, loihi.",
)
@click.option(
    "--energy-model",
    "energy_model",
    type=click.Choice(["paper", "memory", "lemaire"]),
    default="paper",
    show_default=True,
    help="Per-frame energy model (see snnc energy --help): paper (compute only), memory, lemaire.",
)
@click.option(
    "--threads",
    default=0,
    type=click.IntRange(min=0),
    help="CPU threads of the backend: torch intra-op, onnxruntime intra-op (spinning off above 1), "
    "OpenVINO INFERENCE_NUM_THREADS (0: torch's count for all three, by default the physical cores).",
)
@click.option(
    "--precision",
    type=click.Choice(["fp32", "int8"]),
    default="fp32",
    show_default=True,
    help="int8: the integer network (docs/INT8.md; a checkpoint's int8 fields, else quantised now), "
    "identical on the torch, onnx, openvino, lava and hybrid backends; energy priced at 45nm-int8 unless --costs.",
)
@click.option(
    "--check-against",
    "check_against",
    type=click.Choice(["torch", "onnx"]),
    default=None,
    help="Also run this backend (same precision) on every frame and report the pixels whose disparity "
    "differs and the 1PA difference.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
@click.option("--quiet", is_flag=True, help="No progress bar and no per-frame rows.")
@click.option("--force", is_flag=True, help="Overwrite --out and PNGs.")
def stream_command(
    data_file: Path,
    model_spec: str | None,
    backend: str,
    gt_file: Path | None,
    rect_dir: Path | None,
    max_window_events: int,
    out_file: Path | None,
    png_dir: Path | None,
    png_every: int,
    device: str,
    max_frames: int | None,
    no_energy: bool,
    count: str,
    costs: str | None,
    threads: int,
    as_json: bool,
    quiet: bool,
    force: bool,
    video_file: Path | None = None,
    dtype: str = "fp32",
    cuda_graph: bool = False,
    energy_model: str = "paper",
    precision: str = "fp32",
    check_against: str | None = None,
) -> None:
    """Stream DATA_FILE (an MVSEC-layout *_data.hdf5) through a stereo network, one step per frame.

    Events are read window by window (never the whole file) and encoded as SBT
    stacks per frame: at the ground-truth depth timestamps when a gt file is
    present, else on a 20 Hz clock over the event time range. The network state
    is carried from frame to frame. Disparity is reported in unscaled pixels
    (fB / depth). Energy per frame comes from the op-counting pass (AC 0.9 pJ,
    MAC 4.6 pJ, 45 nm); an untrained preset is nearly silent, use a checkpoint.

    \b
    Backends:
      torch   eager PyTorch on --device
      onnx    the one-step ONNX graph in onnxruntime, state fed back each frame
      openvino  the same ONNX graph compiled by OpenVINO for the CPU (optional package: snnc[openvino])
      lava    the Lava-expressible spiking layers simulated in Lava, the rest on CPU
      hybrid  NIR-expressible spiking front vs ONNX rest (export partition), energy per part
    \b
    Examples:
      snnc stream rec_data.hdf5 --out results.h5 --video stream.mp4   (the shipped stereo model)
      snnc stream rec_data.hdf5 --model spikedhs-stereo --frames 20
      snnc stream rec_data.hdf5 --model run/folded.pt --out results.h5 --png-dir pngs --png-every 10
      snnc stream rec_data.hdf5 --model run/folded.pt --backend onnx --json
    """
    from snnc.commands.common import atomic_output
    from snnc.data.mvsec import MVSECRecording

    options = _backend_options(backend, threads=threads, dtype=dtype, cuda_graph=cuda_graph, energy=not no_energy)
    model_spec = _default_model(model_spec, as_json)
    manifest = _manifest_model(model_spec, backend, precision, check_against)
    if manifest is not None:
        backend, no_energy = "hybrid", True  # its pieces run from their files: no torch network to count on
    if video_file is not None:
        _check_video(video_file, force)
    video = None
    _plan_outputs(data_file, gt_file, model_spec, out_file, png_dir, force)
    t_start = time.perf_counter()
    with MVSECRecording(
        data_file, gt_path=gt_file, rect_dir=rect_dir, max_window_events=max_window_events
    ) as rec:  # bad data fails here, before torch loads
        from tqdm import tqdm

        from snnc.energy.costs import resolve_costs
        from snnc.runtime import make_backend
        from snnc.runtime.engine import StreamEngine, check_stereo_network
        from snnc.runtime.frames import frame_times
        from snnc.runtime.model import LoadedNetwork, load_network
        from snnc.runtime.pngs import save_frame_png
        from snnc.runtime.results import ResultsWriter
        from snnc.runtime.stream_report import StreamSetup, result_attrs, stream_summary
        from snnc.train.runtime import resolve_device, set_threads

        default_costs = "45nm-int32" if energy_model == "lemaire" else "45nm-fp32"
        energy_costs = resolve_costs(costs or ("45nm-int8" if precision == "int8" else default_costs))
        dev = resolve_device(device)
        set_threads(threads)
        times, clock = frame_times(rec, limit=max_frames)
        if manifest is not None:
            from snnc.runtime.manifest_backend import open_manifest

            manifest_net, be = open_manifest(manifest, dev, threads)
            # ManifestNetwork duck-types LoadedNetwork (the fields the engine reads; see its docstring)
            net = cast(LoadedNetwork, manifest_net)
        else:
            net = load_network(model_spec)
        if png_dir is not None:
            _prepare_png_dir(png_dir, force)
        check_stereo_network(net, 5)
        if manifest is not None:
            pass  # be: the manifest's pieces
        elif precision == "int8" or check_against is not None:
            from snnc.runtime.int8_backend import make_precision_backend

            fields = recording_int8_fields(net, rec, model_spec) if precision == "int8" else None
            be = make_precision_backend(backend, net, dev, fields, options)
            if check_against is not None:
                from snnc.runtime.check import CheckedBackend

                ref_options = {} if check_against == "torch" else {"threads": threads}
                checked = CheckedBackend(be, make_precision_backend(check_against, net, dev, fields, ref_options))
                be = checked
        else:
            be = make_backend(backend, net, dev, **options)
        engine = StreamEngine(net, be, energy=not no_energy, costs=energy_costs, count=count, energy_model=energy_model)
        agreement = None
        if check_against is not None:
            from snnc.runtime.check import Agreement

            agreement = Agreement(check_against, engine.disp_step)
        setup = StreamSetup(data_file, backend, str(dev), clock, energy_costs, precision, out_file)
        with_gt = setup.with_gt
        show_rows = not (as_json or quiet)
        if show_rows:
            click.echo(
                f"{data_file}: {rec.height}x{rec.width}, {len(times)} frames ({clock} clock); "
                f"model {net.describe()}; backend {backend} on {dev}"
            )
        if not as_json:
            click.echo(rec.rectification_line())
        video = _open_video(video_file, rec, net, data_file) if video_file is not None else None
        bar = tqdm(total=len(times), unit="frame", desc="stream", disable=as_json or quiet, leave=False)
        try:
            with _MaybeAtomic(out_file, atomic_output) as tmp:
                attrs = result_attrs(engine, setup, rec)
                writer = ResultsWriter(tmp, rec.height, rec.width, with_gt=with_gt, attrs=attrs) if tmp else None
                try:
                    if show_rows:
                        tqdm.write(_HEADER)
                    for r in engine.run(rec, times, with_gt=with_gt):
                        if agreement is not None:
                            agreement.add(r.disparity, checked.take_reference(), r.gt_depth, r.metrics)
                        if writer is not None:
                            writer.add(r)
                        if video is not None:
                            video.add(r.disparity, r.gt_depth, r.left_events, caption=_video_caption(r))
                        if png_dir is not None and r.index % png_every == 0:
                            save_frame_png(
                                png_dir / f"frame_{r.index:06d}.png",
                                r.disparity,
                                r.gt_depth,
                                title=f"frame {r.index}, t = {r.t:.3f} s",
                            )
                        if show_rows:
                            tqdm.write(_frame_row(r))
                        bar.update(1)
                    wall_s = time.perf_counter() - t_start
                    written = None
                    if video is not None:
                        video.close()
                        written, video = (video.path, video.frames), None
                    summary = stream_summary(
                        engine,
                        setup,
                        rec,
                        times,
                        wall_s=wall_s,
                        check=agreement.result() if agreement is not None else None,
                        video=written,
                    )
                    if writer is not None:
                        writer.finish(json_safe(summary))
                        writer = None
                finally:
                    if writer is not None:
                        writer.close()
        finally:
            bar.close()
            be.close()
            if video is not None:
                video.abort()
    if as_json:
        click.echo(json.dumps(json_safe(summary)))
        return
    _print_summary(summary, engine)


def _backend_options(backend: str, *, threads: int, dtype: str, cuda_graph: bool, energy: bool) -> dict[str, Any]:
    """The backend constructor's options for the CLI's --threads / --dtype / --cuda-graph (refused where they do
    not apply, in one line)."""
    if backend != "torch" and (dtype != "fp32" or cuda_graph):
        given = "--cuda-graph" if cuda_graph else f"--dtype {dtype}"
        raise SnncError(f"{given} applies to --backend torch only (not {backend})")
    if cuda_graph and energy:
        raise SnncError(
            "--cuda-graph replays recorded GPU work, which the per-layer energy hooks cannot see; add --no-energy"
        )
    if backend == "torch":
        return {"dtype": dtype, "cuda_graph": cuda_graph}
    return {"threads": threads}


def _manifest_model(model_spec: str, backend: str, precision: str, check_against: str | None) -> Path | None:
    """The partition manifest MODEL names (a .json whose format field says so), else None; refuses
    options a manifest cannot take (it runs its own pieces, front NIR + rest ONNX, in fp32)."""
    from click.core import ParameterSource

    from snnc.runtime.manifest_backend import is_partition_manifest

    if not is_partition_manifest(model_spec):
        return None
    explicit = click.get_current_context().get_parameter_source("backend") is not ParameterSource.DEFAULT
    if explicit and backend != "hybrid":
        raise SnncError(
            f"is a partition manifest: it streams its own pieces (front NIR + rest ONNX), not --backend {backend}; "
            f"drop --backend or pass --backend hybrid",
            model_spec,
        )
    if precision != "fp32" or check_against is not None:
        raise SnncError("is a partition manifest: --precision int8 and --check-against take snnc networks", model_spec)
    return Path(model_spec)


def _default_model(model_spec: str | None, as_json: bool) -> str:
    """``model_spec``, or the shipped stereo model, announced on the first output line (stderr with --json)."""
    if model_spec is not None:
        return model_spec
    from snnc.zoo import default_model_note, default_stereo_model

    name = default_stereo_model()
    click.echo(default_model_note(name), err=as_json)
    return name


def _check_video(video_file: Path, force: bool) -> None:
    """Refuse an existing --video without --force, a missing folder, an unknown suffix or a missing writer."""
    from snnc.commands.common import check_output_path
    from snnc.runtime.video import check_video_path

    check_video_path(video_file)
    check_output_path(video_file, force)


def _open_video(video_file: Path, rec: Any, net: Any, data_file: Path) -> Any:
    """A :class:`snnc.runtime.video.StreamVideo` on the network's disparity range, opened."""
    from snnc.data import layout
    from snnc.runtime.video import StreamVideo

    g = net.genotype
    top = (int(getattr(g, "disparities", 33)) - 1) * float(getattr(g, "disp_step", 2.0)) / layout.DISPARITY_SCALE
    return StreamVideo(
        video_file, rec.height, rec.width, max_disparity_px=top, title=f"{net.describe()} on {data_file.name}"
    ).open()


def _video_caption(r: Any) -> str:
    m = r.metrics or {}
    text = f"frame {r.index}, t = {r.t:.3f} s"
    pa, mde = m.get("one_pixel_accuracy"), m.get("mean_depth_error")
    if isinstance(pa, float) and math.isfinite(pa):
        text += f", 1PA {100 * pa:.1f} %"
    if isinstance(mde, float) and math.isfinite(mde):
        text += f", MDE {100 * mde:.1f} cm"
    return text


class _MaybeAtomic:
    """``atomic_output(path)`` when a path is given, else a context yielding None."""

    def __init__(self, path: Path | None, atomic: Any) -> None:
        self._cm = atomic(path) if path is not None else None

    def __enter__(self) -> Path | None:
        return self._cm.__enter__() if self._cm is not None else None

    def __exit__(self, *exc: Any) -> Any:
        return self._cm.__exit__(*exc) if self._cm is not None else False


def _print_summary(summary: dict[str, Any], engine: Any) -> None:
    from snnc.energy.units import format_energy

    click.echo("")
    click.echo(f"frames              {summary['frames']}")
    click.echo(
        f"frames/s            {_fmt(summary['fps'])} (read + encode + infer + energy counting), "
        f"{_fmt(summary['infer_fps'])} (backend alone)"
    )
    if summary["energy_j_per_frame"] is not None:
        click.echo(
            f"energy per frame    {format_energy(summary['energy_j_per_frame'])} "
            f"({_fmt(summary['ac_per_frame'], 1e-6, 1)} M AC, {_fmt(summary['mac_per_frame'], 1e-6, 1)} M MAC; "
            f"as an ANN {format_energy(summary.get('ann_energy_j_per_frame'))}; counted: "
            f"{summary['energy_count']})"
        )
        if summary.get("silent"):
            click.echo(
                "note                the network is nearly silent (spike layers receive almost no spikes): "
                "an untrained network with BatchNorm at its initial statistics does not fire; "
                "use a trained checkpoint for meaningful energy numbers"
            )
    for part in summary.get("energy_parts") or []:
        click.echo(
            f"  part {part['part']:<14s} {part['runs_on']}: {_fmt(part['energy_j'], 1e6, 3)} uJ "
            f"({_fmt(part['ac'], 1e-6, 3)} M AC, {_fmt(part['mac'], 1e-6, 3)} M MAC; "
            f"{_fmt(part['dense_energy_j'], 1e6, 3)} uJ if run densely)"
        )
    if summary.get("windows_note"):
        click.echo(f"input windows       {summary['windows_note']}")
    if summary.get("check"):
        c = summary["check"]
        line = (
            f"check vs {c['reference']:<10s}{c['pixels_differing']} of {c['pixels']} pixels differ "
            f"({_fmt(100 * c['fraction_differing'], 1, 3)} %; {c['pixels_over_half_px']} by > 0.5 px, "
            f"max {c['max_abs_px']:.3g} px)"
        )
        if "one_pixel_accuracy_difference" in c:
            line += f"; 1PA difference {_fmt(100 * c['one_pixel_accuracy_difference'], 1, 3)} points"
        click.echo(line)
    if summary["frames_with_gt"]:
        click.echo(f"mean depth error    {_fmt(summary['mean_depth_error'], 100)} cm")
        click.echo(f"median depth error  {_fmt(summary['median_depth_error'], 100)} cm")
        click.echo(f"mean disp. error    {_fmt(summary['mean_disparity_error'], 1, 3)} px")
        click.echo(
            f"1PA                 {_fmt(summary['one_pixel_accuracy'], 100)} % "
            f"({summary['frames_with_gt']} frames with ground truth)"
        )
    elif summary.get("gt_file"):
        click.echo(
            f"metrics             none computed: ground truth {summary['gt_file']} is loaded, but no "
            f"streamed frame has a valid (finite, positive) depth pixel"
        )
    else:
        click.echo("metrics             no ground truth (no _gt.hdf5 beside the data file; pass --gt): none computed")
    for p in summary["placement"]:
        detail = {k: v for k, v in p.items() if k not in ("part", "runs_on")}
        click.echo(f"placement           {p['part']}: {p['runs_on']} {json.dumps(detail) if detail else ''}")
    if summary["out"]:
        click.echo(f"wrote {summary['out']}")
    if summary.get("video"):
        click.echo(f"wrote {summary['video']} ({summary['video_frames']} frames)")
