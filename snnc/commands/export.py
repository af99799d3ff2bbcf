"""``snnc export``: a checkpoint or an architecture -> NIR, ONNX or Lava (lava-dl netx), BN folded first."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from snnc.errors import SnncError

if TYPE_CHECKING:
    import torch

FORMATS = ("nir", "onnx", "lava", "checkpoint")


def _write_partition_atomically(graph, out: Path, dt: float, opset: int) -> dict:
    """Write manifest + pieces as one set (renamed together, manifest last; see ``write_partition``)."""
    from snnc.export.partition import write_partition

    return write_partition(graph, out, dt=dt, opset=opset)


def _plan_outputs(source: str, out: Path, pieces: list[Path], force: bool) -> None:
    """Check --out (and a partition's pieces: replaced with --force only if snnc wrote them), refuse
    an output that is the source, and lock --out until the command ends (:mod:`snnc.outputs`)."""
    from snnc.commands.common import check_output_path
    from snnc.outputs import OutputPlan, check_outputs

    check_output_path(out, force)
    check_outputs(derived=pieces, force=force)
    click.get_current_context().with_resource(
        OutputPlan(named=[out], derived=pieces, inputs=[Path(source)], lock=[out], check=False)
    )


@contextmanager
def _naming(source: str) -> Iterator[None]:
    """Re-raise a :class:`SnncError` that names no file as one about ``source`` (the network exported)."""
    try:
        yield
    except SnncError as err:
        if err.path is not None:
            raise
        raise SnncError(str(err), source) from None


@click.command("export")
@click.argument("source")
@click.option("--to", "fmt", required=True, metavar="nir|onnx|lava|checkpoint", help="Target format.")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Output file (with --partition: the JSON manifest; the pieces go beside it).",
)
@click.option("--force", is_flag=True, help="Overwrite existing output files.")
@click.option(
    "--partition",
    is_flag=True,
    help="NIR only: write the NIR-expressible spiking front to <stem>.front.nir, the rest to "
    "<stem>.rest.onnx, and a JSON manifest (--out) describing how they connect.",
)
@click.option(
    "--input-shape",
    default=None,
    help="One time step's input incl. batch, e.g. 1,3,32,32 or 1,2,5,260,346 (default: the shape a checkpoint "
    "was trained on, else from the genotype).",
)
@click.option(
    "--seed", default=0, show_default=True, type=int, help="Seed of the random weights of a preset / genotype."
)
@click.option(
    "--dt",
    default=None,
    type=float,
    help="NIR: seconds per time step (neuron mapping) [1e-4 when writing NIR; when SOURCE is a .nir file: "
    "from its metadata, this option overrides it or is needed when the file has none].",
)
@click.option(
    "--window",
    default=None,
    type=int,
    help="ONNX, classification: write the fixed-window graph over this many steps instead of the streaming one.",
)
@click.option("--opset", default=17, show_default=True, type=int, help="ONNX opset.")
@click.option(
    "--for",
    "consumer",
    default=None,
    metavar="spikingjelly|snntorch|norse|sinabs|rockpool",
    help="NIR: check that this library's stock importer runs the file with snnc's spikes; refuse "
    "(naming the node) what it cannot run.",
)
@click.option(
    "--check-hardware",
    is_flag=True,
    help="With --for sinabs / --for rockpool: report whether the network fits Speck / Xylo Audio 2, and why "
    "not, from sinabs' DynapcnnNetwork conversion and core mapping / rockpool's Xylo mapper (before writing).",
)
@click.option(
    "--precision",
    type=click.Choice(["fp32", "int8"]),
    default="fp32",
    show_default=True,
    help="int8: write the integer network (docs/INT8.md): a checkpoint's int8 fields, else quantised now "
    "(post-training); --to checkpoint saves it as a network checkpoint with its integer fields.",
)
@click.option(
    "--calibrate",
    default=None,
    metavar="DATA",
    help="int8 of a classifier: calibrate its input on the first 256 training images of DATA (digits or an "
    ".npz folder). Stereo nets need none (SBT input is exact).",
)
def export_command(
    source: str,
    fmt: str,
    out: Path,
    force: bool,
    partition: bool,
    input_shape: str | None,
    seed: int,
    dt: float,
    window: int | None,
    opset: int,
    consumer: str | None,
    precision: str = "fp32",
    calibrate: str | None = None,
    check_hardware: bool = False,
) -> None:
    """Export SOURCE (a checkpoint .pt, a shipped model, a genotype JSON, a preset name, or a NIR file
    for --to onnx|lava) with BatchNorm folded. SOURCE is a file, typed by its extension (.pt/.pth/.ckpt,
    .json, .nir), or a name: a preset (snnc info --list) or a shipped model (snnc models); a preset name
    always means the preset.

    \b
    nir   NIR graph (nir.write) of the spiking network; parts NIR cannot express
          (3-D conv, cost volume, up-sampling, ReLU...) are refused, or with
          --partition split off to ONNX with a JSON manifest.
    onnx  one-step streaming graph: inputs x, state_in_0.., outputs y, state_out_0..
          (opset 17; --window T: fixed-window classification graph x -> y_mean).
    lava  lava-dl netx HDF5 of a sequential spiking net (family 'sequential'), fixed point.
    checkpoint  (--precision int8) the int8 network as one network checkpoint with its integer fields.

    \b
    --precision int8: the integer network (int8 weights, integer thresholds and biases,
    Lava's 12-bit decay; docs/INT8.md), identical in torch, onnxruntime, Lava and float32
    NIR importers; a layer that could overflow is refused, named.

    \b
    Examples:
      snnc export snasnet-cifar10 --to nir --out snasnet.nir
      snnc export spikedhs-stereo --to nir --partition --out stereo.json --input-shape 1,2,5,48,72
      snnc export run/best.pt --to onnx --out net.onnx
      snnc export sequential-dvs --to lava --out net.h5
      snnc export digits-cla --precision int8 --calibrate digits --to nir --for spikingjelly --out d8.nir
    """
    from snnc.commands.info import default_step_shape, parse_shape

    fmt = fmt.strip().lower()
    if fmt not in FORMATS:
        raise SnncError(f"unknown export format {fmt!r} for --to (expected one of {', '.join(FORMATS)})")
    if partition and fmt != "nir":
        raise SnncError("--partition splits a network between NIR and ONNX: use it with --to nir")
    if fmt == "checkpoint" and precision != "int8":
        raise SnncError("--to checkpoint writes an int8 network: add --precision int8")
    if precision == "int8" and (partition or window is not None or fmt == "lava"):
        what = "--partition" if partition else "--window" if window is not None else "--to lava"
        raise SnncError(
            f"--precision int8 writes one integer graph (--to nir|onnx|checkpoint); {what} does not apply "
            f"(Lava runs int8 networks in snnc stream --backend lava --precision int8)"
        )
    if calibrate is not None and precision != "int8":
        raise SnncError("--calibrate is for --precision int8")
    if window is not None and fmt != "onnx":
        raise SnncError("--window is for --to onnx (the fixed-window classification graph)")
    if consumer is not None:
        from snnc.export.nir_targets import TARGETS

        consumer = consumer.strip().lower()
        if fmt != "nir" or partition:
            raise SnncError("--for names the library that imports a NIR file: use it with --to nir (no --partition)")
        if consumer not in TARGETS:
            raise SnncError(f"unknown NIR consumer {consumer!r} for --for (expected one of {', '.join(TARGETS)})")
    if check_hardware:
        from snnc.export.nir_hardware import HARDWARE

        if consumer not in HARDWARE or precision == "int8":
            raise SnncError(
                f"--check-hardware checks a chip with its vendor's tools: use it with --for "
                f"{' or --for '.join(HARDWARE)} (float network, no --precision int8)"
            )
    targets = [out]
    if partition:
        from snnc.export.partition import partition_paths

        if out.suffix.lower() != ".json":
            raise SnncError("with --partition, --out names the JSON manifest (use a .json file name)", out)
        targets += list(partition_paths(out))
    _plan_outputs(source, out, targets[1:], force)

    from snnc.models.fold import fold_bn
    from snnc.models.loading import open_model, resolve_model

    ref = resolve_model(source)
    if ref.kind == "nir":
        assert ref.path is not None
        _export_nir_file(ref.path, fmt, out, dt, opset, window, partition, input_shape)
        return
    dt = 1e-4 if dt is None else dt

    opened = open_model(source, seed=seed)
    genotype = opened.genotype
    folded = fold_bn(opened.model.eval()).eval()
    shape = parse_shape(input_shape) if input_shape else (opened.input_shape or default_step_shape(genotype))
    from snnc.models.size import check_step_shape

    check_step_shape(genotype, shape, "--input-shape" if input_shape else "input shape")  # before any tensor
    with _naming(source):
        if precision == "int8":
            from snnc.quant.network import network_fields

            fields = network_fields(folded, shape, opened.meta, calibrate, source)
            _export_int8(folded, genotype, shape, fields, fmt, out, dt, opset, consumer)
        else:
            _export(folded, genotype, shape, fmt, out, partition, window, dt, opset, consumer, check_hardware)


def _export_nir_file(
    path: Path,
    fmt: str,
    out: Path,
    dt: float | None,
    opset: int,
    window: int | None,
    partition: bool,
    input_shape: str | None,
) -> None:
    """Write the graph of NIR file ``path`` (snnc's or another library's) as ONNX or lava-dl netx."""
    from snnc.commands.common import atomic_output
    from snnc.export.nir_reader import load_nir_model

    if fmt == "nir":
        raise SnncError("is already a NIR file; export it --to onnx or --to lava", path)
    if window is not None or partition or input_shape:
        raise SnncError(
            "a NIR file exports as its own graph: --window, --partition and --input-shape do not apply", path
        )
    nm = load_nir_model(path, dt)
    if fmt == "onnx":
        import torch

        from snnc.export.onnx_writer import export_graph_stream

        example = {nm.graph.inputs[0]: torch.zeros(nm.input_shape)}
        with atomic_output(out) as tmp:
            info = export_graph_stream(nm.module, example, tmp, opset, meta={"snnc.source": f"nir:{path.name}"})
        n = len(info["state_names"])
        click.echo(
            f"wrote {out}: ONNX opset {opset}, one-step streaming graph of NIR file {path.name} "
            f"(dt = {nm.dt} s): inputs {', '.join(info['inputs'][:1])} {nm.input_shape}, "
            f"state_in_0..{n - 1}; outputs {', '.join(info['outputs'][:-n] if n else info['outputs'])}, "
            f"state_out_0..{n - 1}"
        )
        return
    from snnc.export.lava_writer import write_netx

    with atomic_output(out) as tmp:
        info = write_netx(nm.graph, tmp)
    click.echo(
        f"wrote {out}: lava-dl netx network of NIR file {path.name}, {len(info['layers'])} CUBA layers; "
        f"8-bit weights, fixed point"
    )


def _export(
    folded: torch.nn.Module,
    genotype: object,
    shape: tuple[int, ...],
    fmt: str,
    out: Path,
    partition: bool,
    window: int | None,
    dt: float,
    opset: int,
    consumer: str | None = None,
    check_hardware: bool = False,
) -> None:
    """Write ``folded`` in ``fmt`` to ``out`` and print one line about it (after the chip check, if asked)."""
    from snnc.commands.common import atomic_output
    from snnc.export.lower import lower

    family = getattr(genotype, "family", "?")

    if fmt == "onnx":
        from snnc.export.onnx_writer import export_stream, export_window

        with atomic_output(out) as tmp:
            if window is not None:
                export_window(folded, shape, window, tmp, opset)
            else:
                info = export_stream(folded, shape, tmp, opset)
        if window is not None:
            click.echo(
                f"wrote {out}: ONNX opset {opset}, fixed-window graph of {family} over {window} steps: "
                f"input x {tuple(shape)} -> y_mean"
            )
        else:
            n = len(info["state_names"])
            click.echo(
                f"wrote {out}: ONNX opset {opset}, one-step streaming graph of {family}: inputs x "
                f"{tuple(shape)}, state_in_0..{n - 1}; outputs y, state_out_0..{n - 1} "
                f"(state names in metadata snnc.state_names)"
            )
        return

    graph = lower(folded, shape)
    if fmt == "lava":
        from snnc.export.lava_writer import write_netx

        with atomic_output(out) as tmp:
            info = write_netx(graph, tmp)
        layers = ", ".join(f"{layer['kind']} {tuple(layer['shape'])}" for layer in info["layers"])
        layout = "flat (C*H*W,)" if info["input_flat"] else "(W, H, C) spike frames"
        click.echo(
            f"wrote {out}: lava-dl netx network of {family}, {len(info['layers'])} CUBA layers [{layers}]; "
            f"input {layout}; 8-bit weights, fixed point"
        )
        return
    if partition:
        doc = _write_partition_atomically(graph, out, dt, opset)
        pieces = {p["name"]: p for p in doc["pieces"]}
        front = pieces["front"]
        if "rest" not in pieces:
            click.echo(f"wrote {out}: everything fits NIR: {front['file']} ({front['nodes']} nodes, dt = {dt} s)")
            return
        rest = pieces["rest"]
        click.echo(
            f"wrote {out}: {front['file']} (NIR, {front['nodes']} nodes) -> {rest['file']} (ONNX opset "
            f"{opset}, {rest['nodes']} nodes) through {len(doc['connections'])} tensors; NIR stops at "
            f"{rest['reason']}"
        )
        return
    from snnc.export.nir_writer import write_nir

    if check_hardware and consumer is not None:
        from snnc.export.nir_hardware import check_hardware as check_chip

        report = check_chip(graph, consumer, dt)
        click.echo(f"hardware: {report.line()}")
        for line in report.details:
            click.echo(f"  {line}")
        click.echo(f"  {report.not_checked}")
    with atomic_output(out) as tmp:
        ngraph = write_nir(graph, tmp, dt, consumer)
    target = f"; checked for {consumer}'s stock importer" if consumer else ""
    click.echo(
        f"wrote {out}: NIR graph of {family}, {len(ngraph.nodes)} nodes, {len(ngraph.edges)} edges, "
        f"dt = {dt} s (BatchNorm folded){target}"
    )


def _export_int8(
    folded: torch.nn.Module,
    genotype: object,
    shape: tuple[int, ...],
    fields: object,
    fmt: str,
    out: Path,
    dt: float,
    opset: int,
    consumer: str | None,
) -> None:
    """Write the int8 network of ``folded`` (``fields``: :class:`snnc.quant.QuantFields`) and print one line."""
    from snnc.commands.common import atomic_output
    from snnc.quant import QuantFields, int8_graph

    assert isinstance(fields, QuantFields)
    family = getattr(genotype, "family", "?")
    graph = int8_graph(folded, shape, fields)  # refuses overflow, naming the layer
    inp = (
        "input x as is (integer)"
        if fields.input_scale == 1.0
        else f"input x_int = clamp(round(x / {fields.input_scale:.6g}), +-{fields.input_max})"
    )
    what = f"int8 {family} ({fields.method}, {len(fields.neurons)} integer neuron layers; {inp})"
    if fmt == "checkpoint":
        from snnc.models.loading import save_network

        with atomic_output(out) as tmp:
            save_network(folded, tmp, folded=True, input_shape=[1, *shape[1:]], int8=fields.to_checkpoint())
        click.echo(f"wrote {out}: network checkpoint of {what}")
        return
    if fmt == "onnx":
        from snnc.export.onnx_writer import export_stream

        with atomic_output(out) as tmp:
            info = export_stream(folded, shape, tmp, opset, graph=graph)
        n = len(info["state_names"])
        click.echo(
            f"wrote {out}: ONNX opset {opset}, one-step streaming graph of {what}: inputs x {tuple(shape)}, "
            f"state_in_0..{n - 1}; outputs y (integer; float = y * {fields.output_scale:.6g}"
            f"{', then the host head in metadata snnc.int8' if graph.meta['int8']['head'] else ''}), "
            f"state_out_0..{n - 1}"
        )
        return
    from snnc.export.nir_writer import write_nir
    from snnc.quant import nir_form

    with atomic_output(out) as tmp:
        ngraph = write_nir(nir_form(graph), tmp, dt, consumer)
    target = f"; checked for {consumer}'s stock importer" if consumer else ""
    click.echo(
        f"wrote {out}: NIR graph of {what}, {len(ngraph.nodes)} nodes; integer-valued weights, thresholds "
        f"vth*64 + 0.5, dt = {dt} s{target}"
    )
