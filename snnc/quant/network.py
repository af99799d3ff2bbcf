"""The integer fields of a network a command opened: from its checkpoint, or by post-training quantisation.

One rule for ``snnc export``, ``stream`` and ``energy`` with ``--precision int8``:

1. a checkpoint that holds an ``int8`` entry (written by ``snnc export --to checkpoint
   --precision int8`` or ``snnc train --qat``) is that int8 network;
2. otherwise the folded network is quantised now (PTQ, :mod:`snnc.quant.int8`). The
   weights need no data. The input does: a stereo network's input is SBT event frames,
   in {-1, 0, 1} by construction (:mod:`snnc.data.sbt`), so its input is exact at
   scale 1 with no calibration data; a classifier is calibrated on the first
   256 training images of ``calibrate`` (``digits`` or an ``.npz`` folder), which it needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from snnc.errors import PathLike, SnncError
from snnc.quant.fields import QuantFields

__all__ = ["CALIBRATION_IMAGES", "network_fields"]

#: Training images a classifier's input is calibrated on.
CALIBRATION_IMAGES = 256


def network_fields(
    model: nn.Module,
    step_shape: Sequence[int],
    meta: Mapping[str, Any] | None,
    calibrate: str | None = None,
    source: PathLike | None = None,
) -> QuantFields:
    """The int8 fields of a folded network (module docstring).

    Args:
        model: the folded network.
        step_shape: one step's input shape (batch included) to lower it at.
        meta: the checkpoint's fields (``OpenedModel.meta``), or None.
        calibrate: image data for a classifier's input calibration.
        source: the MODEL argument, named in errors.

    Raises:
        SnncError: a bad ``int8`` entry, a classifier without ``calibrate``, a network without an int8 form.
    """
    from snnc.export.lower import family_of, lower
    from snnc.models.families import family as registered_family
    from snnc.quant.calibrate import quantize_network
    from snnc.quant.int8 import quantize_graph

    if meta is not None and meta.get("int8") is not None:
        if calibrate is not None:
            raise SnncError("is already an int8 checkpoint (its fields are fixed); drop --calibrate", source)
        return QuantFields.from_checkpoint(meta["int8"], source)
    family = family_of(model)
    if registered_family(family).stereo_input:  # SBT event frames
        if calibrate is not None:
            raise SnncError("--calibrate is for classifiers: a stereo net's SBT input needs no calibration")
        notes = {"calibration": "SBT event frames in {-1, 0, 1} by construction: scale 1, no data"}
        return quantize_graph(lower(model, step_shape), 1.0, 1, notes=notes)
    if calibrate is None:
        raise SnncError(
            f"a {family} network needs calibration inputs for int8: pass --calibrate DATA (digits or an .npz folder)",
            source,
        )
    from snnc.data.images import load_image_set

    images = load_image_set(calibrate).x_train[:CALIBRATION_IMAGES]
    return quantize_network(model, step_shape, [images])
