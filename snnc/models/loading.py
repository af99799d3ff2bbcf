"""What a MODEL argument means, and the one loader of networks from checkpoints.

**Names resolve predictably** (the rule every command's ``--help`` points to):

1. An argument ending in ``.pt`` / ``.pth`` / ``.ckpt`` is a checkpoint file,
   ``.json`` a genotype (or partition manifest) file, ``.nir`` a NIR graph file.
   The extension decides the type; the content is then checked against it
   (a checkpoint must be a torch zip archive read weights-only, a genotype valid
   JSON), never guessed from its first bytes.
2. Any other argument is a *name*: a preset (``snnc info --list``) or a
   shipped model (``snnc models``). A preset name means the preset even when a
   file of that name exists in the current folder.
3. Anything else is an error that says which of the above it is not; an
   existing file without a model extension is refused (rename it).

Checkpoints are read with :func:`snnc.checkpoint.read_checkpoint` only
(``torch.load(weights_only=True)``, no fallback). A network checkpoint holds
the genotype dict, the ``state_dict`` (of the BN-folded network when
``folded``) and, when known, ``input_shape``: one time step's input (batch 1)
the network was trained on, which ``export``, ``info``, ``energy`` and
``stream`` default to.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from snnc.checkpoint import SUFFIXES as CHECKPOINT_SUFFIXES
from snnc.checkpoint import read_checkpoint, write_checkpoint
from snnc.errors import SnncError
from snnc.models.base import SpikingNet

__all__ = [
    "MODEL_RULE",
    "ModelRef",
    "OpenedModel",
    "resolve_model",
    "save_network",
    "network_from_checkpoint",
    "load_network_checkpoint",
    "open_model",
    "CHECKPOINT_SUFFIXES",
]

#: One line for ``--help`` texts: how a MODEL argument is read.
MODEL_RULE = (
    "MODEL is a file, typed by its extension (.pt/.pth/.ckpt checkpoint, .json genotype, .nir NIR), "
    "or a name: a preset (snnc info --list) or a shipped model (snnc models); a preset name always "
    "means the preset."
)
_GENOTYPE_SUFFIXES = (".json",)
_NIR_SUFFIXES = (".nir",)


@dataclass(frozen=True)
class ModelRef:
    """What a MODEL argument names.

    Attributes:
        kind: ``checkpoint``, ``genotype``, ``nir``, ``preset`` or ``zoo`` (a shipped model).
        spec: the argument as given.
        path: the file (the shipped checkpoint for ``zoo``); None for presets.
    """

    kind: str
    spec: str
    path: Path | None = None


def _zoo_names() -> list[str]:
    try:
        from snnc.zoo import zoo_names
    except ImportError:
        return []
    return list(zoo_names())


def _zoo_path(name: str) -> Path:
    from snnc.zoo import zoo_path

    return Path(zoo_path(name))


def resolve_model(
    spec: str | Path, allowed: Sequence[str] = ("checkpoint", "genotype", "nir", "preset", "zoo")
) -> ModelRef:
    """Classify ``spec`` by the rule in the module docstring (files must exist).

    Args:
        spec: the MODEL argument.
        allowed: the kinds the caller can use; another kind is a one-line error.

    Raises:
        SnncError: a missing file, a file without a model extension, an unknown name,
            or a kind the caller does not take.
    """
    from snnc.models.genotype import preset_names

    text = str(spec)
    suffix = Path(text).suffix.lower()
    ref: ModelRef
    if suffix in CHECKPOINT_SUFFIXES + _GENOTYPE_SUFFIXES + _NIR_SUFFIXES or isinstance(spec, Path):
        path = Path(text)
        kind = (
            "checkpoint"
            if suffix in CHECKPOINT_SUFFIXES
            else "genotype"
            if suffix in _GENOTYPE_SUFFIXES
            else "nir"
            if suffix in _NIR_SUFFIXES
            else ""
        )
        if not kind:
            raise SnncError(
                f"has no model file extension ({', '.join(CHECKPOINT_SUFFIXES + _GENOTYPE_SUFFIXES + _NIR_SUFFIXES)}); "
                f"snnc decides a file's type by its extension",
                path,
            )
        if not path.exists():
            raise SnncError(f"{kind} file not found" if kind != "nir" else "NIR file not found", path)
        if not path.is_file():
            raise SnncError(f"is a folder, expected a {kind} file", path)
        ref = ModelRef(kind, text, path)
    elif text in preset_names():
        ref = ModelRef("preset", text)
    elif text in _zoo_names():
        ref = ModelRef("zoo", text, _zoo_path(text))
    else:
        presets = ", ".join(preset_names())
        shipped = ", ".join(_zoo_names()) or "none installed"
        if os.sep in text or "/" in text or Path(text).exists():
            raise SnncError(
                f"has no model file extension; snnc decides a file's type by its extension "
                f"(.pt/.pth/.ckpt checkpoint, .json genotype, .nir NIR), and a bare name must be a "
                f"preset ({presets}) or a shipped model ({shipped})",
                text,
            )
        raise SnncError(
            f"unknown model {text!r}: not a preset ({presets}), not a shipped model ({shipped}), "
            f"and not a file name ending in .pt, .pth, .ckpt, .json or .nir"
        )
    if ref.kind not in allowed:
        raise SnncError(
            f"is a {_KIND_WORDS[ref.kind]}, but this command takes {' or '.join(_KIND_WORDS[k] for k in allowed)}", text
        )
    return ref


_KIND_WORDS = {
    "checkpoint": "checkpoint",
    "genotype": "genotype JSON file",
    "nir": "NIR file",
    "preset": "preset name",
    "zoo": "shipped model name",
}


def save_network(
    model: nn.Module,
    path: str | Path,
    *,
    folded: bool = False,
    input_shape: Sequence[int] | None = None,
    **meta: Any,
) -> None:
    """Write ``model`` (an snnc network with a ``genotype``) as a network checkpoint.

    Args:
        model: the network; ``folded`` says its ``state_dict`` is that of ``fold_bn(net)``.
        input_shape: one time step's input shape (batch 1) it was trained on.
        **meta: further data fields (epoch, metrics, training command...).

    Raises:
        SnncError: the model has no genotype, or the file cannot be written.
    """
    genotype = getattr(model, "genotype", None)
    if genotype is None:
        raise SnncError("cannot save a checkpoint of a network without a genotype", path)
    payload: dict[str, Any] = {
        "genotype": genotype.to_dict(),
        "family": genotype.family,
        "model": model.state_dict(),
        "folded": bool(folded),
        **meta,
    }
    if input_shape is not None:
        payload["input_shape"] = [int(s) for s in input_shape]
    write_checkpoint(path, "network", payload)


def _describe_mismatch(err: Exception, expected: Mapping[str, torch.Tensor], got: Mapping[str, Any]) -> str:
    missing = [k for k in expected if k not in got]
    unexpected = [k for k in got if k not in expected]
    shaped = [
        k for k in expected if k in got and hasattr(got[k], "shape") and tuple(got[k].shape) != tuple(expected[k].shape)
    ]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing (e.g. {missing[0]!r})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (e.g. {str(unexpected[0])[:80]!r})")
    if shaped:
        k = shaped[0]
        parts.append(
            f"{len(shaped)} of another shape (e.g. {k!r}: {tuple(got[k].shape)} vs {tuple(expected[k].shape)})"
        )
    if not parts:
        first = str(err).strip().splitlines()[0] if str(err).strip() else "load_state_dict failed"
        parts.append(first[:200])
    return "; ".join(parts)


def network_from_checkpoint(doc: Mapping[str, Any], path: str | Path) -> tuple[SpikingNet, Any]:
    """``(model, genotype)`` rebuilt from a read checkpoint (network or training), in eval mode.

    The network is built from the stored genotype, BN-folded first when the
    stored weights are folded, and loaded strictly.

    Raises:
        SnncError: missing fields, an invalid genotype, or weights of another architecture.
    """
    from snnc.models.build import build_model
    from snnc.models.fold import fold_bn
    from snnc.models.genotype import genotype_from_dict

    missing = [k for k in ("genotype", "model") if k not in doc]
    if missing:
        raise SnncError(
            f"checkpoint lacks {', '.join(map(repr, missing))} (a network checkpoint holds "
            f"'genotype' (genotype.to_dict()) and 'model' (state_dict))",
            path,
        )
    if not isinstance(doc["model"], Mapping):
        raise SnncError("checkpoint 'model' must be a state_dict (a dict of tensors)", path)
    genotype = genotype_from_dict(doc["genotype"], path)
    model = build_model(genotype)
    if doc.get("folded", False):
        model = fold_bn(model.eval())
    expected = model.state_dict()
    try:
        model.load_state_dict(doc["model"], strict=True)
    except (RuntimeError, TypeError, ValueError) as err:
        raise SnncError(
            f"checkpoint weights do not fit its genotype (family {genotype.family!r}): "
            f"{_describe_mismatch(err, expected, doc['model'])}; the weights belong to another "
            f"architecture",
            path,
        ) from None
    return model.eval(), genotype


def load_network_checkpoint(path: str | Path) -> tuple[SpikingNet, Any, dict[str, Any]]:
    """``(model, genotype, checkpoint dict)`` of a network or training checkpoint, model in eval mode.

    Raises:
        SnncError: see :func:`snnc.checkpoint.read_checkpoint` and :func:`network_from_checkpoint`.
    """
    doc = read_checkpoint(path, kinds=("network", "training"))
    model, genotype = network_from_checkpoint(doc, path)
    return model, genotype, doc


@dataclass
class OpenedModel:
    """A network opened from a MODEL argument (not yet folded).

    Attributes:
        model: the network in eval mode, as stored (folded when the checkpoint was).
        genotype: its genotype.
        ref: what the argument named.
        trained: weights come from a checkpoint.
        input_shape: the trained-on step input shape, when the checkpoint records it.
        meta: the checkpoint's other fields (empty for presets and genotypes).
    """

    model: SpikingNet
    genotype: Any
    ref: ModelRef
    trained: bool
    input_shape: tuple[int, ...] | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def open_model(
    spec: str | Path | ModelRef, *, seed: int = 0, overrides: Mapping[str, Any] | None = None
) -> OpenedModel:
    """Open a checkpoint, shipped model, genotype file or preset as a network.

    Presets and genotypes get seeded random weights: ``seed`` seeds a forked RNG,
    so the caller's global torch RNG is left as it was. ``overrides`` replace
    genotype fields of a preset or genotype; a checkpoint's genotype is fixed by
    its weights, so overrides on one are an error.

    Raises:
        SnncError: see :func:`resolve_model`, :func:`load_network_checkpoint` and
            :func:`snnc.models.genotype.load_genotype`; a NIR file (read by
            :mod:`snnc.export.nir_reader`, not here).
    """
    from snnc.models.build import build_model
    from snnc.models.genotype import load_genotype

    ref = spec if isinstance(spec, ModelRef) else resolve_model(spec)
    if ref.kind in ("checkpoint", "zoo"):
        assert ref.path is not None
        if overrides:
            raise SnncError(
                f"a checkpoint's architecture is fixed by its weights; cannot change {', '.join(sorted(overrides))}",
                ref.spec,
            )
        model, genotype, doc = load_network_checkpoint(ref.path)
        shape = doc.get("input_shape")
        meta = {k: v for k, v in doc.items() if k not in ("model", "optimizer", "scheduler", "rng")}
        return OpenedModel(model, genotype, ref, True, tuple(int(s) for s in shape) if shape else None, meta)
    if ref.kind == "nir":
        raise SnncError("is a NIR graph; this command needs an snnc network (checkpoint, genotype or preset)", ref.spec)
    genotype = load_genotype(ref.path if ref.path is not None else ref.spec)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(genotype, **dict(overrides or {}))
    return OpenedModel(model.eval(), model.genotype, ref, False)
