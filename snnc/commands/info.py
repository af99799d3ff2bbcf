"""``snnc info``: layers, output shapes, parameters, neurons and dense ops of an architecture."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from snnc.errors import SnncError


def default_step_shape(genotype: Any) -> tuple[int, ...]:
    """One time step's input shape (batch 1) from the genotype's own fields (:mod:`snnc.models.families`)."""
    from snnc.models.families import default_step_shape as family_step_shape

    return family_step_shape(genotype)


def parse_shape(text: str) -> tuple[int, ...]:
    """``"1,3,32,32"`` (or ``1x3x32x32``) -> ``(1, 3, 32, 32)``; SnncError when malformed."""
    parts = [p for p in text.replace("x", ",").split(",") if p.strip()]
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        raise SnncError(f"--input-shape {text!r} is not a comma-separated list of integers") from None
    if not shape or any(s <= 0 for s in shape):
        raise SnncError(f"--input-shape {text!r} must be positive integers")
    return shape


@click.command("info")
@click.argument("arch", required=False)
@click.option(
    "--input-shape",
    default=None,
    help="One time step's input incl. batch, e.g. 1,3,32,32 (classification) or 1,2,5,260,346 (stereo). "
    "Default: a checkpoint's trained-on shape, else from the genotype.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--list", "list_presets", is_flag=True, help="List the preset architecture names.")
@click.option(
    "--dt",
    default=None,
    type=float,
    help="NIR files: seconds per time step, for files whose metadata has none (other libraries' exports).",
)
def info_command(
    arch: str | None, input_shape: str | None, as_json: bool, list_presets: bool, dt: float | None
) -> None:
    """Describe ARCH (a preset name, a genotype JSON file, a checkpoint or a shipped model): layers,
    output shapes, parameters, neuron types and dense synaptic ops per layer for one time step.
    A checkpoint is described at the input shape it was trained on. ARCH is a file, typed by its
    extension (.json genotype, .pt/.pth/.ckpt checkpoint), or a name: a preset or a shipped model;
    a preset name always means the preset.

    \b
    Examples:
      snnc info --list
      snnc info spikedhs-stereo
      snnc info snasnet-cifar10 --input-shape 1,3,32,32 --json
      snnc info my_arch.json
    """
    from snnc.models.genotype import genotype_time_steps, load_genotype, preset_names

    if list_presets:
        for name in preset_names():
            click.echo(name)
        return
    if not arch:
        raise SnncError(
            "give an architecture (preset name or genotype JSON file) or --list; presets: " + ", ".join(preset_names())
        )
    import torch

    from snnc.energy.summary import describe, format_table
    from snnc.models.build import build_model
    from snnc.models.loading import open_model, resolve_model

    ref = resolve_model(arch, allowed=("checkpoint", "genotype", "nir", "preset", "zoo"))
    if ref.kind == "nir" and ref.path is not None:
        _nir_info(ref.path, dt, as_json, format_table)
        return
    if ref.kind in ("checkpoint", "zoo"):
        opened = open_model(ref)
        model, genotype, trained_shape = opened.model, opened.genotype, opened.input_shape
    else:
        genotype = load_genotype(ref.path if ref.path is not None else arch)
        model, trained_shape = build_model(genotype).eval(), None
    shape = parse_shape(input_shape) if input_shape else (trained_shape or default_step_shape(genotype))
    from snnc.models.size import check_step_shape

    check_step_shape(genotype, shape, "--input-shape" if input_shape else "input shape")  # before any tensor
    x_seq = torch.zeros((1, *shape))  # T = 1: dense ops are per time step
    try:
        model.check_input(x_seq[0])
    except SnncError as exc:
        raise SnncError(f"{arch}: input shape {shape} does not fit: {exc}") from None
    desc = describe(model, x_seq)
    desc["architecture"] = arch if not Path(arch).exists() else str(Path(arch))
    desc["family"] = getattr(genotype, "family", None)
    desc["input_shape"] = list(shape)
    desc["time_steps"] = genotype_time_steps(genotype) or 1
    if as_json:
        click.echo(json.dumps(desc, indent=2))
        return
    click.echo(
        f"{desc['architecture']} ({desc['family']}), one time step on input {tuple(shape)}, T = {desc['time_steps']}"
    )
    click.echo(format_table(desc))


def _nir_info(path: Path, dt: float | None, as_json: bool, format_table: Any) -> None:
    """``snnc info x.nir``: the graph's layers and neurons (one step, batch 1)."""
    from snnc.export.nir_reader import load_nir_model

    opened = load_nir_model(path, dt)
    desc = dict(opened.info)
    desc["architecture"] = str(path)
    if as_json:
        click.echo(json.dumps(desc, indent=2))
        return
    nodes = ", ".join(f"{op} {n}" for op, n in sorted(desc["nodes"].items()))
    click.echo(
        f"{path} (NIR graph{', ' + desc['family'] if desc['family'] else ''}), one time step on input "
        f"{tuple(desc['input_shape'])}, dt = {opened.dt:g} s; nodes: {nodes}"
    )
    click.echo(format_table(desc))
