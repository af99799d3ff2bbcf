"""``snnc models``: the shipped trained models (:mod:`snnc.zoo`), with their metrics and provenance."""

from __future__ import annotations

import json
from typing import Any

import click

__all__ = ["models_command", "metric_line"]

_METRIC_WORDS = (
    ("one_pixel_accuracy", "1PA", 100.0, "%"),
    ("accuracy", "accuracy", 100.0, "%"),
    ("mean_depth_error", "MDE", 100.0, " cm"),
)


def metric_line(metrics: dict[str, Any]) -> str:
    """``'1PA 95.1 % (constant median 53.1 %)'`` from one metrics dict of a sidecar (known keys only)."""
    parts = []
    for key, word, scale, unit in _METRIC_WORDS:
        value = metrics.get(key)
        if isinstance(value, (int, float)):
            text = f"{word} {value * scale:.1f}{unit}"
            base = metrics.get(f"baseline_{key}")
            if isinstance(base, (int, float)):
                text += f" (constant median {base * scale:.1f}{unit})"
            parts.append(text)
    return ", ".join(parts) or "-"


def _row(entry: dict[str, Any]) -> list[str]:
    metrics = entry.get("metrics", {})
    return [
        entry["name"],
        entry["family"],
        f"{int(entry['parameters']):,}",
        f"{entry['bytes'] / 1e6:.2f} MB",
        "; ".join(f"{where}: {metric_line(m)}" for where, m in metrics.items() if isinstance(m, dict)),
    ]


@click.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print the sidecars as one JSON list.")
@click.option("--verify", is_flag=True, help="Also check each checkpoint's size and SHA-256 against its sidecar.")
def models_command(as_json: bool, verify: bool) -> None:
    """List the shipped trained models: name, family, parameters, metrics, provenance.

    A shipped model's name works wherever a MODEL goes (snnc stream, energy,
    export, info); snnc stream and snnc energy use the shipped stereo model when
    no model is given. Each model's sidecar (snnc/zoo/NAME.json) records the
    training command, the data, the seed, the snnc version and held-out metrics;
    tools/train_zoo.sh retrains every one from scratch.

    \b
    Examples:
      snnc models
      snnc models --json
      snnc stream REC_data.hdf5 --model stereo-synth
    """
    from snnc.zoo import verify_entry, zoo_entry, zoo_names

    entries = [zoo_entry(name) for name in zoo_names()]
    if verify:
        for entry in entries:
            verify_entry(entry["name"])
    if as_json:
        click.echo(json.dumps(entries, indent=2))
        return
    if not entries:
        click.echo("no shipped models installed (snnc/zoo/ holds no NAME.pt + NAME.json pair)")
        return
    header = ["name", "family", "parameters", "size", "held-out metrics"]
    rows = [_row(e) for e in entries]
    widths = [max(len(r[i]) for r in [*rows, header]) for i in range(len(header) - 1)]
    click.echo("  ".join(h.ljust(w) for h, w in zip(header[:-1], widths, strict=True)) + "  " + header[-1])
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1])
    click.echo("")
    for e in entries:
        data = e.get("data", {})
        click.echo(f"{e['name']}: {e['summary']}")
        click.echo(f"  data     {data.get('description', json.dumps(data))}")
        click.echo(
            f"  trained  seed {e['seed']}, snnc {e['snnc_version']}"
            + (f", {e['training_wall_s'] / 60:.0f} min on CPU" if e.get("training_wall_s") else "")
        )
        command = e["training_command"]
        click.echo(f"  command  {' && '.join(command) if isinstance(command, list) else command}")
        if verify:
            click.echo(f"  sha256   {e['sha256']} (verified)")
    click.echo("reproduce: tools/train_zoo.sh; use: --model NAME (snnc stream, energy, export, info)")
