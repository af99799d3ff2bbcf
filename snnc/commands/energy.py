"""``snnc energy``: ACs, MACs and 45 nm energy per frame of a network, measured on real data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from snnc.commands.common import recording_int8_fields, recording_options
from snnc.errors import SnncError


def _stereo(net: Any) -> bool:
    """Whether a loaded network takes stereo pairs (its family's ``stereo_input``)."""
    from snnc.models.families import find

    fam = find(net.family)
    return fam is not None and fam.stereo_input


_PAPER = "papers (spec/energy.md): SpikeDHS-Stereo 7414 M AC, 0 MAC, 6.7 mJ per frame; DDES (ANN) 37917 M MAC, 174.4 mJ"
_SILENT_NOTE = (
    "the network is nearly silent: its spike-input layers receive almost no spikes "
    "(an untrained network with BatchNorm at its initial statistics stays below threshold); "
    "the AC count and energy are then close to zero; pass a trained checkpoint for real numbers"
)


def _digit_overrides(genotype: Any) -> dict[str, Any]:
    """Fields that make a preset/genotype take sklearn digits (1 x 8 x 8, 10 classes)."""
    out: dict[str, Any] = {}
    for name, value in (("in_channels", 1), ("image_size", 8), ("num_classes", 10)):
        if hasattr(genotype, name) and getattr(genotype, name) != value:
            out[name] = value
    return out


@click.command("energy")
@click.argument("model_spec", metavar="[MODEL]", required=False)
@click.option(
    "--data",
    "data",
    required=True,
    help="An MVSEC-layout *_data.hdf5 recording (stereo networks) or 'digits' (classification).",
)
@click.option(
    "--gt",
    "gt_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Ground-truth file of the recording (sets the frame clock; default: beside the data file).",
)
@recording_options()
@click.option(
    "--frames",
    default=None,
    type=click.IntRange(min=1),
    help="Frames to measure on (stereo: default 20 frames; digits: default 360 test images).",
)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.option(
    "--count",
    type=click.Choice(["rate", "events"]),
    default="rate",
    show_default=True,
    help="AC count: the papers' rate x steps x dense ops, or the stricter fan-out synaptic events.",
)
@click.option(
    "--costs",
    default=None,
    help="Energy per op: 45nm-fp32 (AC 0.9, MAC 4.6 pJ; the papers'; default), 45nm-fp16, 45nm-int32 "
    "(default of --energy-model lemaire), 45nm-int8, loihi (Davies et al. 2018: synaptic op 23.6 pJ, "
    "neuron update 52 / 81 pJ).",
)
@click.option(
    "--energy-model",
    "energy_model",
    type=click.Choice(["paper", "memory", "lemaire"]),
    default="paper",
    show_default=True,
    help="paper: AC/MAC compute only (the papers' numbers); memory: plus neuron updates and weight, "
    "membrane-state and spike traffic; lemaire: Lemaire et al. 2022's analytical model.",
)
@click.option(
    "--compare",
    nargs=2,
    default=None,
    metavar="A B",
    help="Print two energy models (e.g. paper memory) of MODEL, or two MODELs, side by side.",
)
@click.option("--ac-pj", type=float, default=None, help="Override the AC energy (pJ).")
@click.option("--mac-pj", type=float, default=None, help="Override the MAC energy (pJ).")
@click.option(
    "--plot",
    "plot_png",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write a bar chart of energy per layer (PNG).",
)
@click.option("--threads", default=0, type=click.IntRange(min=0), help="CPU threads (0: PyTorch default).")
@click.option(
    "--dt",
    default=None,
    type=float,
    help="MODEL.nir: seconds per time step of its neurons (default: the file's metadata; needed when it has none).",
)
@click.option(
    "--steps",
    default=None,
    type=click.IntRange(min=1),
    help="MODEL.nir on digits: time steps per image (default: the genotype recorded in the file).",
)
@click.option(
    "--precision",
    type=click.Choice(["fp32", "int8"]),
    default="fp32",
    show_default=True,
    help="int8: count the ops on the int8 network's own spikes (its checkpoint's int8 fields, else PTQ; a "
    "classifier is calibrated on --data's first 256 training images) and price them at the 45 nm int8 costs "
    "(45nm-int8: 8-bit add 0.03 pJ, 8-bit mult 0.2 pJ, Horowitz 2014) unless --costs (docs/INT8.md).",
)
@click.option("--force", is_flag=True, help="Overwrite --plot.")
def energy_command(
    model_spec: str | None,
    data: str,
    gt_file: Path | None,
    rect_dir: Path | None,
    max_window_events: int,
    frames: int | None,
    fmt: str,
    count: str,
    costs: str | None,
    energy_model: str,
    compare: tuple[str, str] | None,
    ac_pj: float | None,
    mac_pj: float | None,
    plot_png: Path | None,
    threads: int,
    force: bool,
    dt: float | None = None,
    steps: int | None = None,
    precision: str = "fp32",
) -> None:
    """Per-layer and total ACs, MACs and energy per frame of MODEL on real data, with firing
    rates and the same network counted as an ANN.

    MODEL is a checkpoint (.pt), a shipped model, a genotype JSON, a preset or a NIR
    file (.nir, snnc's or another library's; --dt, --steps): a file is typed by its
    extension, a bare name is a preset (always) or a shipped model; without
    MODEL, the shipped stereo model (digits: the shipped classifier, see snnc models). A layer whose
    input is spikes (or signed events) does ACs = rate x steps x dense ops; a
    layer with real-valued input (an image, a ReLU layer's output) does
    MACs = dense ops x steps. Energy: AC 0.9 pJ, MAC 4.6 pJ (Horowitz, 45 nm).
    Stereo: one frame = one depth frame streamed with state carried; digits: one
    frame = one image presented for T steps.

    \b
    Examples:
      snnc energy --data rec_data.hdf5                 (the shipped stereo model)
      snnc energy spikedhs-stereo --data rec_data.hdf5 --frames 10
      snnc energy run/folded.pt --data rec_data.hdf5 --format json --plot energy.png
      snnc energy snasnet-cifar10 --data digits --format csv
      snnc energy digits.nir --data digits
    """
    from snnc.commands.common import atomic_output, plan_outputs

    if data != "digits" and not Path(data).is_file():
        raise SnncError("data file not found (give an MVSEC-layout *_data.hdf5 recording or 'digits')", data)
    if plot_png is not None:  # checked, locked and compared with the inputs before any work
        plan_outputs([plot_png], inputs=[model_spec, Path(data), gt_file], force=force)  # model_spec: None = shipped
    if model_spec is None:
        from snnc.zoo import default_model, default_model_note

        model_spec = default_model("classification" if data == "digits" else "stereo")
        click.echo(default_model_note(model_spec, "MODEL"), err=fmt != "table")

    from snnc.energy.costs import resolve_costs
    from snnc.energy.models import ENERGY_MODELS
    from snnc.energy.units import format_energy

    if threads:
        import torch

        torch.set_num_threads(threads)
    if compare is not None:
        sides = []
        for side in compare:
            spec, model_name = (model_spec, side) if side in ENERGY_MODELS else (side, energy_model)
            side_costs = resolve_costs(costs or _default_costs(model_name, precision), ac_pj, mac_pj)
            m = _measure(
                spec, data, frames, side_costs, count, model_name, gt_file, rect_dir, max_window_events, precision
            )
            sides.append((f"{m[0].describe()} [{model_name}]", m[1]))
        _print_compare(sides, fmt)
        return
    energy_costs = resolve_costs(costs or _default_costs(energy_model, precision), ac_pj, mac_pj)
    rect_line, stats = "", None
    if Path(model_spec).suffix.lower() == ".nir":
        if energy_model != "paper" or compare is not None:
            raise SnncError("--energy-model memory|lemaire and --compare take snnc models, not NIR files", model_spec)
        if precision == "int8":
            raise SnncError(
                "--precision int8 counts an snnc network's integer spikes; a NIR file holds float weights "
                "(an int8 export its float relaxation): price its own activity with --costs 45nm-int8",
                model_spec,
            )
        net, report, data_desc, rect_line, stats = _measure_nir(
            model_spec, data, dt, steps, frames, energy_costs, count, gt_file, rect_dir, max_window_events
        )
    else:
        net, report, data_desc, rect_line, stats = _measure(
            model_spec, data, frames, energy_costs, count, energy_model, gt_file, rect_dir, max_window_events, precision
        )
    if plot_png is not None:
        from snnc.energy.plot import plot_energy

        with atomic_output(plot_png) as tmp:
            plot_energy(report, tmp, title=f"{net.describe()} on {data_desc}")
    d = report.to_dict()
    d["model"] = net.describe()
    d["trained"] = net.trained
    d["data"] = data_desc
    if stats is not None:
        d["rectification"], d["windows"] = rect_line, stats.to_dict()
    if report.silent:
        d["note"] = _SILENT_NOTE
    if fmt == "json":
        click.echo(json.dumps(d, indent=2))
        return
    if fmt == "csv":
        click.echo(report.to_csv(), nl=False)
        if rect_line:
            click.echo(rect_line, err=True)
        return
    click.echo(f"{net.describe()} on {data_desc}")
    if rect_line:
        click.echo(rect_line)
    if stats is not None and stats.summary_line():
        click.echo(f"input windows: {stats.summary_line()}")
    click.echo(
        f"energy model: {energy_model}; costs: {energy_costs.name} (AC {energy_costs.ac_pj:g} pJ, "
        f"MAC {energy_costs.mac_pj:g} pJ; {energy_costs.source}); AC count: {count}; all numbers per frame"
    )
    click.echo(report.format_table())
    click.echo("")
    ratio = report.energy_j / report.ann_energy_j if report.ann_energy_j else float("nan")
    click.echo(
        f"total: {report.ac / 1e6:.1f} M AC + {report.mac / 1e6:.1f} M MAC = {format_energy(report.energy_j)} "
        f"per frame; as an ANN {report.ann_mac / 1e6:.1f} M MAC = {format_energy(report.ann_energy_j)} "
        f"(SNN/ANN = {ratio:.4f})"
    )
    click.echo(
        f"split: synaptic compute {format_energy(report.compute_j)}, neuron updates {format_energy(report.neuron_j)} "
        f"({report.neuron_updates / 1e6:.3g} M updates{'' if energy_model != 'paper' else ', not in the total'}), "
        f"memory {format_energy(report.memory_j)}"
    )
    click.echo(f"mean input firing rate of spike layers: {100 * report.spike_input_rate:.3f} %")
    if _stereo(net):
        click.echo(_PAPER)
    if report.silent:
        click.echo(f"note: {_SILENT_NOTE}")
    if plot_png is not None:
        click.echo(f"wrote {plot_png}")


def _measure_nir(
    model_spec: str,
    data: str,
    dt: float | None,
    steps: int | None,
    frames: int | None,
    energy_costs: Any,
    count: str,
    gt_file: Path | None,
    rect_dir: Path | None,
    max_window_events: int,
) -> tuple[Any, Any, str, str, Any]:
    """``(model info, report, data description, rectification line, window stats)`` of a NIR file on ``data``."""
    from snnc.export.nir_reader import load_nir_model
    from snnc.models.loading import resolve_model
    from snnc.runtime.nir_measure import NirNetworkInfo, measure_nir_images, measure_nir_stereo, nir_time_steps

    ref = resolve_model(model_spec, allowed=("nir",))
    assert ref.path is not None
    nm = load_nir_model(ref.path, dt)
    info = NirNetworkInfo(nm)
    if data == "digits":
        from snnc.data.images import load_digits_set

        images = load_digits_set().x_test
        images = images[: frames or images.shape[0]]
        t = nir_time_steps(nm, steps)
        report = measure_nir_images(nm, images, t, costs=energy_costs, count=count)
        return info, report, f"digits ({images.shape[0]} test images, T = {t} steps each)", "", None
    from snnc.data.mvsec import MVSECRecording
    from snnc.data.windows import WindowStats

    data_path = Path(data)
    with MVSECRecording(data_path, gt_path=gt_file, rect_dir=rect_dir, max_window_events=max_window_events) as rec:
        stats = WindowStats(data_path)
        report = measure_nir_stereo(nm, rec, frames=frames or 20, costs=energy_costs, count=count, stats=stats)
        rect_line = rec.rectification_line()
    return info, report, f"{data_path} ({report.frames} frames, one step each, state carried)", rect_line, stats


def _default_costs(energy_model: str, precision: str = "fp32") -> str:
    """The cost table an energy model uses unless ``--costs`` says otherwise (Lemaire: 32-bit integer ops;
    ``--precision int8``: 45 nm int8 ops)."""
    if precision == "int8":
        return "45nm-int8"
    return "45nm-int32" if energy_model == "lemaire" else "45nm-fp32"


def _measure(
    model_spec: str,
    data: str,
    frames: int | None,
    energy_costs: Any,
    count: str,
    energy_model: str,
    gt_file: Path | None,
    rect_dir: Path | None,
    max_window_events: int,
    precision: str = "fp32",
) -> tuple[Any, Any, str, str, Any]:
    """``(network, report, data description, rectification line, window stats)`` of an snnc MODEL on ``data``
    (``precision`` int8: counted on the int8 network's own spikes, :mod:`snnc.runtime.measure`)."""
    from snnc.models.genotype import load_genotype
    from snnc.quant.network import network_fields
    from snnc.runtime.measure import measure_images, measure_stereo
    from snnc.runtime.model import load_network

    if data == "digits":
        from snnc.data.images import load_digits_set
        from snnc.models.loading import resolve_model

        overrides: dict[str, Any] = {}
        ref = resolve_model(model_spec)
        if ref.kind in ("genotype", "preset"):
            overrides = _digit_overrides(load_genotype(ref.path if ref.path is not None else model_spec))
        net = load_network(model_spec, overrides=overrides)
        if _stereo(net):
            raise SnncError(
                f"{model_spec}: a stereo network cannot run on digits images; give an MVSEC recording with --data"
            )
        images = load_digits_set().x_test
        images = images[: frames or images.shape[0]]
        fields = None
        if precision == "int8":  # calibrated on the digits training images unless the checkpoint is int8
            calibrate = None if net.meta.get("int8") is not None else "digits"
            fields = network_fields(net.model, (1, *images.shape[1:]), net.meta, calibrate, model_spec)
        report = measure_images(net, images, costs=energy_costs, count=count, energy_model=energy_model, fields=fields)
        return (
            net,
            report,
            f"digits ({images.shape[0]} test images, T = {report.steps_per_frame:g} steps each)",
            "",
            None,
        )
    from snnc.data.mvsec import MVSECRecording
    from snnc.data.windows import WindowStats

    data_path = Path(data)
    with MVSECRecording(
        data_path, gt_path=gt_file, rect_dir=rect_dir, max_window_events=max_window_events
    ) as rec:  # bad data fails before torch loads
        rect_line = rec.rectification_line()
        net = load_network(model_spec)
        fields = None
        if precision == "int8":
            from snnc.runtime.engine import check_stereo_network

            check_stereo_network(net, 5)  # before quantising: a classifier on a recording is refused as at fp32
            fields = recording_int8_fields(net, rec, model_spec)
        stats = WindowStats(data_path)
        report = measure_stereo(
            net,
            rec,
            frames=frames or 20,
            costs=energy_costs,
            count=count,
            stats=stats,
            energy_model=energy_model,
            fields=fields,
        )
    return net, report, f"{data_path} ({report.frames} frames, one step each, state carried)", rect_line, stats


def _compare_rows(report: Any) -> dict[str, float | None]:
    """The per-frame figures ``--compare`` puts side by side."""
    return {
        "synaptic compute (mJ)": report.compute_j * 1e3,
        "neuron updates (mJ)": report.neuron_j * 1e3,
        "memory (mJ)": report.memory_j * 1e3,
        "total (mJ)": report.energy_j * 1e3,
        "as an ANN (mJ)": report.ann_energy_j * 1e3,
        "SNN/ANN": report.energy_j / report.ann_energy_j if report.ann_energy_j else None,
        "AC (M)": report.ac / 1e6,
        "MAC (M)": report.mac / 1e6,
        "neuron updates (M)": report.neuron_updates / 1e6,
        "spike input rate (%)": 100 * report.spike_input_rate,
    }


def _print_compare(sides: list[tuple[str, Any]], fmt: str) -> None:
    """Two reports side by side: a table, or JSON / CSV with one column per side."""
    rows = [_compare_rows(rep) for _, rep in sides]
    if fmt == "json":
        click.echo(json.dumps({"compare": [{"label": lab, **rep.to_dict()} for lab, rep in sides]}, indent=2))
        return
    if fmt == "csv":
        click.echo("quantity," + ",".join(f'"{lab}"' for lab, _ in sides))
        for key in rows[0]:
            click.echo(f'"{key}",' + ",".join("" if r[key] is None else f"{r[key]:.6g}" for r in rows))
        return
    width = max(len(k) for k in rows[0])
    cols = [max(len(lab), 12) for lab, _ in sides]
    click.echo(f"{'per frame':<{width}}  " + "  ".join(f"{lab:>{w}}" for (lab, _), w in zip(sides, cols, strict=True)))
    for key in rows[0]:
        cells = ["-" if r[key] is None else f"{r[key]:.4g}" for r in rows]
        click.echo(f"{key:<{width}}  " + "  ".join(f"{c:>{w}}" for c, w in zip(cells, cols, strict=True)))
    for lab, rep in sides:
        if rep.energy_model == "paper":
            click.echo(f"note: {lab}: the paper model's total leaves the neuron updates out (the papers' numbers)")
