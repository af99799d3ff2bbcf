"""Shipped trained models: ``snnc/zoo/<name>.pt`` (a network checkpoint) plus ``<name>.json`` (its sidecar).

A shipped model is used wherever a MODEL goes (``snnc stream REC_data.hdf5
--model stereo-synth``); ``snnc models`` lists them. The sidecar records how
the checkpoint was made and what it scores, so a number quoted for a shipped
model can be traced and reproduced (``tools/train_zoo.sh``)::

    {
      "name": "stereo-synth",             # the file stem, what --model takes
      "family": "spikedhs-stereo",        # genotype family
      "task": "stereo" | "classification",
      "summary": "one line",
      "file": "stereo-synth.pt",
      "sha256": "...", "bytes": 123,      # of the .pt file
      "parameters": 12345,
      "snnc_version": "0.2.0 (git ...)",  # the code that trained it
      "seed": 0,
      "training_command": ["snnc data synth ...", "snnc train ..."],
      "training_wall_s": 1234.5,
      "data": {...},                      # what it was trained on (synthetic seeds, sizes, split)
      "metrics": {...}                    # held-out numbers, with their baselines
    }

The functions here only read the package folder; they never load torch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from snnc.errors import SnncError
from snnc.fileio import file_sha256

__all__ = [
    "ZOO_DIR",
    "REQUIRED_FIELDS",
    "DEFAULT_STEREO",
    "DEFAULT_DIGITS",
    "zoo_names",
    "zoo_entry",
    "zoo_path",
    "verify_entry",
    "default_model",
    "default_stereo_model",
    "default_model_note",
]

#: The folder holding the shipped ``.pt`` / ``.json`` pairs.
ZOO_DIR = Path(__file__).resolve().parent
#: Sidecar fields every shipped model has.
REQUIRED_FIELDS = (
    "name",
    "family",
    "task",
    "summary",
    "file",
    "sha256",
    "bytes",
    "parameters",
    "snnc_version",
    "seed",
    "training_command",
    "data",
    "metrics",
)
#: The shipped stereo model ``snnc stream`` and ``snnc energy`` use when no model is given.
DEFAULT_STEREO = "stereo-synth"
#: The shipped classifier ``snnc energy --data digits`` uses when no model is given.
DEFAULT_DIGITS = "digits-cla"


def zoo_names() -> list[str]:
    """Names of the shipped models (sorted): every ``<name>.json`` with its ``<name>.pt`` beside it."""
    return sorted(p.stem for p in ZOO_DIR.glob("*.json") if (ZOO_DIR / f"{p.stem}.pt").is_file())


def _check_name(name: str) -> None:
    if name not in zoo_names():
        shipped = ", ".join(zoo_names()) or "none installed"
        raise SnncError(f"unknown shipped model {name!r} (shipped: {shipped}; see snnc models)")


def zoo_entry(name: str) -> dict[str, Any]:
    """The sidecar dict of shipped model ``name`` (see the module docstring for its fields).

    Raises:
        SnncError: ``name`` is not shipped, or its sidecar is unreadable or lacks a required field.
    """
    _check_name(name)
    path = ZOO_DIR / f"{name}.json"
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SnncError(f"shipped model sidecar is unreadable: {exc}", path) from None
    if not isinstance(entry, dict):
        raise SnncError("shipped model sidecar must be a JSON object", path)
    missing = [k for k in REQUIRED_FIELDS if k not in entry]
    if missing:
        raise SnncError(f"shipped model sidecar lacks {', '.join(missing)}", path)
    return entry


def zoo_path(name: str) -> Path:
    """The checkpoint file (``snnc/zoo/<name>.pt``) of shipped model ``name``.

    Raises:
        SnncError: ``name`` is not shipped.
    """
    _check_name(name)
    return ZOO_DIR / f"{name}.pt"


def verify_entry(name: str) -> None:
    """Check that shipped model ``name``'s checkpoint is the one its sidecar describes (size and SHA-256).

    Raises:
        SnncError: the file differs from the sidecar (a damaged or replaced checkpoint).
    """
    entry = zoo_entry(name)
    path = zoo_path(name)
    size = path.stat().st_size
    if size != entry["bytes"] or file_sha256(path) != entry["sha256"]:
        raise SnncError(
            f"checkpoint does not match its sidecar {name}.json (size {size} vs {entry['bytes']} "
            f"bytes or SHA-256 differs): reinstall snnc or rebuild it with tools/train_zoo.sh",
            path,
        )


def default_model(task: str = "stereo") -> str:
    """The shipped model a command runs when it is given none: :data:`DEFAULT_STEREO` for ``"stereo"``,
    :data:`DEFAULT_DIGITS` for ``"classification"``.

    Raises:
        SnncError: it is not installed (a trimmed package); the message says to pass a model.
    """
    names = {"stereo": DEFAULT_STEREO, "classification": DEFAULT_DIGITS}
    if task not in names:
        raise SnncError(f"no default shipped model for task {task!r} (expected stereo or classification)")
    name = names[task]
    if name not in zoo_names():
        raise SnncError(
            f"no model given and the shipped {task} model {name!r} is not installed "
            f"(snnc/zoo/{name}.pt); give a model (checkpoint, shipped model or preset)"
        )
    return name


def default_stereo_model() -> str:
    """:func:`default_model` for stereo (what ``snnc stream`` runs without ``--model``)."""
    return default_model("stereo")


def default_model_note(name: str, option: str = "--model") -> str:
    """The line a command prints first when it runs shipped model ``name`` because ``option`` was not given."""
    return f"model: shipped {name} (no {option} given; snnc models lists the shipped models)"
