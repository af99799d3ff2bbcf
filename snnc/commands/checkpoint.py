"""``snnc checkpoint``: inspect and upgrade checkpoint files (never unpickling code)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from snnc.errors import SnncError


@click.group("checkpoint")
def checkpoint_group() -> None:
    """Checkpoint files: show what one holds, or convert one written by snnc 0.1.

    Every checkpoint is read with torch.load(weights_only=True) and nothing else:
    a file that asks to unpickle any other Python object is refused, not loaded.
    """


@checkpoint_group.command("show")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def show_command(path: Path, as_json: bool) -> None:
    """Print the header of checkpoint PATH: format, kind, family, epoch, input shape, fields.

    \b
    Example:
      snnc checkpoint show run/folded.pt
    """
    from snnc.checkpoint import read_checkpoint

    doc = read_checkpoint(path)
    genotype = doc.get("genotype")
    header = {
        "path": str(path),
        "format": doc["format"],
        "version": doc["version"],
        "kind": doc["kind"],
        "legacy": bool(doc.get("legacy", False)),
        "snnc_version": doc.get("snnc_version"),
        "family": genotype.get("family") if isinstance(genotype, dict) else None,
        "folded": doc.get("folded"),
        "epoch": doc.get("epoch"),
        "input_shape": doc.get("input_shape"),
        "fields": sorted(str(k) for k in doc),
    }
    if as_json:
        click.echo(json.dumps(header, indent=2))
        return
    for key, value in header.items():
        if value is not None and key != "path":
            click.echo(f"{key:13s} {value}")


@checkpoint_group.command("upgrade")
@click.argument("src", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("dst", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite DST.")
def upgrade_command(src: Path, dst: Path, force: bool) -> None:
    """Convert SRC, a checkpoint written by snnc 0.1, to the current format in DST.

    0.1 training checkpoints held NumPy RNG state, which a weights-only load refuses.
    SRC is read with the weights-only unpickler plus the NumPy array constructors
    only (arrays are data; no code can run); anything else it asks for is refused.

    \b
    Example:
      snnc checkpoint upgrade old_run/checkpoint.pt old_run/checkpoint.v2.pt
    """
    from snnc.checkpoint import upgrade_checkpoint
    from snnc.commands.common import check_output_path

    if dst.exists() and src.exists() and dst.resolve() == src.resolve():
        raise SnncError("is both the input and the output; write the upgraded checkpoint to another file", dst)
    check_output_path(dst, force)
    info = upgrade_checkpoint(src, dst)
    click.echo(f"wrote {dst}: {info['kind']} checkpoint, format version 2 (from {src})")
