"""What ``snnc export`` (and other deployment commands) load: a checkpoint, a genotype JSON or a preset.

Checkpoint format (``torch.save`` of a plain dict, read with
``torch.load(weights_only=True)``, file name ending in ``.pt`` or ``.pth``)::

    {
      "genotype": {...},          # required: genotype.to_dict() of the trained network
                                  #   (family + every field, build overrides already applied)
      "model": {...},             # required: the network's state_dict(); by default of the
                                  #   unfolded network (with BatchNorm) as build_model(genotype) makes it
      "folded": False,            # optional: True when "model" is the state of fold_bn(net) (no BN)
      "format": "snnc-checkpoint/1",   # optional, written by save_checkpoint
      ...                         # anything else (epoch, metrics, optimizer state) is ignored here
    }

The network is rebuilt with ``build_model(genotype)`` and the weights are
loaded strictly: weights of another architecture (another family, other
widths, another cell) are a one-line :class:`~snnc.errors.SnncError` naming the
first missing / unexpected / mis-shaped entries.

A preset name (``snnc info --list``) or a genotype ``.json`` file gives a
randomly initialised network, seeded (``torch.manual_seed(seed)`` before building).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Union

import torch
from torch import nn

from snnc.errors import SnncError

__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_SUFFIXES", "save_checkpoint", "load_checkpoint", "load_checkpoint_or_preset"]

#: ``format`` value written by :func:`save_checkpoint`.
CHECKPOINT_FORMAT = "snnc-checkpoint/1"
#: File suffixes read as checkpoints.
CHECKPOINT_SUFFIXES = (".pt", ".pth")


def save_checkpoint(model: nn.Module, path: Union[str, Path], folded: bool = False, **extra: Any) -> None:
    """Write ``model`` (an snnc network with a ``genotype``) in the checkpoint format above.

    Raises:
        SnncError: the model has no genotype, or the file cannot be written.
    """
    genotype = getattr(model, "genotype", None)
    if genotype is None:
        raise SnncError("cannot save a checkpoint of a network without a genotype")
    doc = {"format": CHECKPOINT_FORMAT, "genotype": genotype.to_dict(), "model": model.state_dict(),
           "folded": bool(folded), **extra}
    try:
        torch.save(doc, str(path))
    except OSError as err:
        raise SnncError(f"cannot write checkpoint: {err}", path) from None


def _describe_mismatch(err: RuntimeError, expected: Mapping[str, torch.Tensor], got: Mapping[str, Any]) -> str:
    missing = [k for k in expected if k not in got]
    unexpected = [k for k in got if k not in expected]
    shaped = [k for k in expected if k in got and hasattr(got[k], "shape") and tuple(got[k].shape) != tuple(expected[k].shape)]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing (e.g. {missing[0]!r})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]!r})")
    if shaped:
        k = shaped[0]
        parts.append(f"{len(shaped)} of another shape (e.g. {k!r}: {tuple(got[k].shape)} vs {tuple(expected[k].shape)})")
    if not parts:
        first = str(err).strip().splitlines()[0] if str(err).strip() else "load_state_dict failed"
        parts.append(first)
    return "; ".join(parts)


def load_checkpoint(path: Union[str, Path]) -> tuple[nn.Module, Any]:
    """``(model, genotype)`` from a checkpoint file (module docstring); the model is in eval mode.

    Raises:
        SnncError: unreadable file, missing keys, invalid genotype, or weights
            of another architecture.
    """
    from snnc.models.build import build_model
    from snnc.models.fold import fold_bn
    from snnc.models.genotype import genotype_from_dict

    path = Path(path)
    if not path.is_file():
        raise SnncError("checkpoint file not found", path)
    try:
        doc = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch.load raises many types for non-checkpoints
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SnncError(f"not a readable torch checkpoint: {first[:160]}", path) from None
    if not isinstance(doc, Mapping):
        raise SnncError(f"checkpoint must hold a dict with 'genotype' and 'model', got {type(doc).__name__}", path)
    missing = [k for k in ("genotype", "model") if k not in doc]
    if missing:
        raise SnncError(f"checkpoint lacks key(s) {', '.join(map(repr, missing))} (expected a dict with "
                        f"'genotype' (genotype.to_dict()) and 'model' (state_dict))", path)
    if not isinstance(doc["model"], Mapping):
        raise SnncError("checkpoint 'model' must be a state_dict (a dict of tensors)", path)
    genotype = genotype_from_dict(doc["genotype"], path)
    model = build_model(genotype)
    if doc.get("folded", False):
        model = fold_bn(model.eval())
    expected = model.state_dict()
    try:
        model.load_state_dict(doc["model"], strict=True)
    except RuntimeError as err:
        raise SnncError(f"checkpoint weights do not fit its genotype (family {genotype.family!r}): "
                        f"{_describe_mismatch(err, expected, doc['model'])}; the weights belong to another "
                        f"architecture", path) from None
    return model.eval(), genotype


def load_checkpoint_or_preset(arg: Union[str, Path], seed: int = 0) -> tuple[nn.Module, Any]:
    """``(model, genotype)`` from a checkpoint (``.pt``/``.pth``), a genotype JSON file or a preset name.

    Presets and genotype files give a randomly initialised network (``torch.manual_seed(seed)``);
    the model is returned in eval mode.

    Raises:
        SnncError: see :func:`load_checkpoint` and :func:`snnc.models.genotype.load_genotype`.
    """
    from snnc.models.build import build_model
    from snnc.models.genotype import load_genotype

    text = str(arg)
    if text.lower().endswith(CHECKPOINT_SUFFIXES):
        return load_checkpoint(arg)
    genotype = load_genotype(arg)
    torch.manual_seed(seed)
    return build_model(genotype).eval(), genotype
