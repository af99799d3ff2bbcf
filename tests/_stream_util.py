"""Small stereo networks and recordings for the streaming / energy tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from snnc.models.genotype import load_genotype

#: A SpikeDHS-Stereo genotype small enough for CPU tests (the preset's cells, narrow and few disparities).
SMALL_STEREO: dict[str, Any] = {"feature_filter_multiplier": 2, "matching_filter_multiplier": 2, "disparities": 9}


def small_stereo_json(folder: Path, **extra: Any) -> Path:
    """Write the small stereo genotype (with ``extra`` fields replaced) as JSON; returns its path."""
    d = load_genotype("spikedhs-stereo").to_dict()
    d.update(SMALL_STEREO)
    d.update(extra)
    path = folder / ("small_stereo.json" if not extra else "small_stereo_" + "_".join(map(str, extra)) + ".json")
    path.write_text(json.dumps(d))
    return path


def stream_files(folder: Path, frames: int) -> dict[str, Path]:
    """A tiny synthetic recording (``frames`` depth frames, 48 x 64) and :func:`active_checkpoint`, in ``folder``.

    Returns ``{"data": recording, "ckpt": checkpoint, "tmp": folder}``, the ``files`` fixture of the stream tests.
    """
    from snnc.data.synth import synthesize

    data, _ = synthesize(folder / "tiny_data.hdf5", frames=frames, height=48, width=64, progress=False)
    return {"data": data, "ckpt": active_checkpoint(folder), "tmp": folder}


def active_checkpoint(folder: Path, gain: float = 3.0) -> Path:
    """A BN-folded checkpoint of the small stereo net with weights scaled by ``gain`` so that it fires.

    An untrained network is nearly silent after BatchNorm; scaling every weight
    by 3 gives firing rates around 20 % and a non-flat matching cost, like a
    trained network (the stand-in when no trained checkpoint is available).
    """
    from snnc.models.loading import save_network
    from snnc.runtime.model import load_network

    net = load_network(str(small_stereo_json(folder)))
    with torch.no_grad():
        for p in net.model.parameters():
            if p.dim() > 1:
                p.mul_(gain)
    path = folder / "active.pt"
    save_network(net.model, path, folded=True)
    return path
