"""Measure energy on real data: a stereo recording streamed frame by frame, or classification images.

Both run the torch network under one :class:`~snnc.energy.meter.EnergyMeter`
(the single counting pass), so the firing rates are those of the data:

* stereo: the recording is streamed exactly as ``snnc stream`` does (frames at
  the gt depth timestamps or a 20 Hz clock, SBT encoded on the fly, state
  carried); one frame = one time step;
* images: each image is one frame presented for the network's ``T`` steps
  (direct coding), from the resting state; counts are per image.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from snnc.energy.costs import DEFAULT_COSTS, EnergyCosts
from snnc.energy.meter import EnergyMeter
from snnc.energy.report import EnergyReport
from snnc.errors import SnncError

if TYPE_CHECKING:  # pragma: no cover
    from snnc.data.mvsec import MVSECRecording
    from snnc.data.windows import WindowStats
    from snnc.models.base import SpikingNet
    from snnc.runtime.model import LoadedNetwork

__all__ = ["measure_stereo", "measure_images"]


def measure_stereo(
    net: LoadedNetwork,
    data_file: Path | MVSECRecording,
    *,
    frames: int | None = 20,
    gt_file: Path | None = None,
    costs: EnergyCosts = DEFAULT_COSTS,
    count: str = "rate",
    stats: WindowStats | None = None,
    energy_model: str = "paper",
) -> EnergyReport:
    """Energy per frame of a stereo network streamed over ``frames`` frames of ``data_file``.

    ``data_file`` is a path or an open :class:`~snnc.data.mvsec.MVSECRecording` (then ``gt_file`` is
    ignored and the recording is left open); ``stats`` collects the empty-window counts
    (:mod:`snnc.data.windows`).
    """
    from snnc.data.mvsec import MVSECRecording
    from snnc.runtime.engine import check_stereo_network

    check_stereo_network(net, 5)
    meter = EnergyMeter(
        net.model, costs=costs, count=count, steps_per_frame=1.0, neurons=True, energy_model=energy_model
    )
    if isinstance(data_file, MVSECRecording):
        return _measure_recording(net.model, meter, data_file, frames, stats)
    with MVSECRecording(data_file, gt_path=gt_file) as rec:
        return _measure_recording(net.model, meter, rec, frames, stats)


def _measure_recording(
    model: SpikingNet,
    meter: EnergyMeter,
    rec: MVSECRecording,
    frames: int | None,
    stats: WindowStats | None,
) -> EnergyReport:
    """Stream ``frames`` frames of the open ``rec`` through ``model`` under ``meter``."""
    from snnc.runtime.frames import frame_times, iter_frames

    times, _clock = frame_times(rec, limit=frames)
    state: tuple[torch.Tensor, ...] = ()
    with meter, torch.no_grad():
        for frame in iter_frames(rec, times, with_gt=False, stats=stats):
            x = torch.from_numpy(frame.x).to(torch.float32).unsqueeze(0)
            if not state:
                state = model.init_state(x)
            _, state = model.step(x, state)
            meter.frame()
    return meter.total()


def measure_images(
    net: LoadedNetwork,
    images: torch.Tensor,
    *,
    costs: EnergyCosts = DEFAULT_COSTS,
    count: str = "rate",
    batch_size: int = 100,
    energy_model: str = "paper",
) -> EnergyReport:
    """Energy per image of a classification network, each image presented for ``T`` steps.

    ``images`` is ``(N, C, H, W)``; N is cut to a multiple of the batch size so that
    every batch weighs the same (at least one batch).

    Raises:
        SnncError: the images do not fit the network.
    """
    from snnc.runtime.model import network_time_steps

    model = net.model
    steps = network_time_steps(net.genotype)
    n = images.shape[0]
    if n == 0:
        raise SnncError("no images to measure on")
    bs = min(batch_size, n)
    batches = max(n // bs, 1)
    try:
        model.init_state(images[:1])
    except SnncError as err:
        raise SnncError(
            f"{net.source}: images shaped {tuple(images.shape[1:])} do not fit the network: {err}"
        ) from None
    meter = EnergyMeter(
        model, costs=costs, count=count, steps_per_frame=float(steps), neurons=True, energy_model=energy_model
    )
    with meter, torch.no_grad():
        for b in range(batches):
            x = images[b * bs : (b + 1) * bs]
            model(x.unsqueeze(0).expand(steps, *x.shape).contiguous())
            meter.frame()
    return meter.total()
