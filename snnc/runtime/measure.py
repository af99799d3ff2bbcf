"""Measure energy on real data: a stereo recording streamed frame by frame, or classification images.

Both run the torch network under one :class:`~snnc.energy.meter.EnergyMeter`
(the single counting pass), so the firing rates are those of the data:

* stereo: the recording is streamed exactly as ``snnc stream`` does (frames at
  the gt depth timestamps or a 20 Hz clock, SBT encoded on the fly, state
  carried); one frame = one time step;
* images: each image is one frame presented for the network's ``T`` steps
  (direct coding), from the resting state; counts are per image.

**int8** (``fields``: the network's :class:`snnc.quant.QuantFields`, ``--precision int8``): the ops are
counted on the **integer network's own spikes**, not the float network's. A stereo recording is streamed by
the stream engine with the torch int8 backend (:class:`snnc.runtime.int8_backend.Int8TorchBackend`: the
integer graph in :class:`snnc.export.runtime.GraphModule`), whose step values go through the integer graph's
:class:`snnc.export.activity.ActivityPlan` into an :class:`~snnc.energy.meter.ActivityMeter`: the report is
``snnc stream --precision int8 --backend torch``'s, plus every neuron layer's firing rate. Images run the same
integer graph (:class:`snnc.quant.Int8Network`'s, input quantised per step) for ``T`` steps from rest, each
step's node values counted by the same plan.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from snnc.energy.costs import DEFAULT_COSTS, EnergyCosts
from snnc.energy.meter import ActivityMeter, EnergyMeter
from snnc.energy.report import EnergyReport
from snnc.errors import SnncError

if TYPE_CHECKING:  # pragma: no cover
    from snnc.data.mvsec import MVSECRecording
    from snnc.data.windows import WindowStats
    from snnc.models.base import SpikingNet
    from snnc.quant import QuantFields
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
    fields: QuantFields | None = None,
) -> EnergyReport:
    """Energy per frame of a stereo network streamed over ``frames`` frames of ``data_file``.

    ``data_file`` is a path or an open :class:`~snnc.data.mvsec.MVSECRecording` (then ``gt_file`` is
    ignored and the recording is left open); ``stats`` collects the empty-window counts
    (:mod:`snnc.data.windows`); ``fields``: count the int8 network's own spikes (module docstring).
    """
    from snnc.data.mvsec import MVSECRecording
    from snnc.runtime.engine import check_stereo_network

    check_stereo_network(net, 5)
    if fields is not None:
        args = (net, fields, frames, stats, costs, count, energy_model)
        if isinstance(data_file, MVSECRecording):
            return _measure_recording_int8(data_file, *args)
        with MVSECRecording(data_file, gt_path=gt_file) as rec:
            return _measure_recording_int8(rec, *args)
    meter = EnergyMeter(
        net.model, costs=costs, count=count, steps_per_frame=1.0, neurons=True, energy_model=energy_model
    )
    if isinstance(data_file, MVSECRecording):
        return _measure_recording(net.model, meter, data_file, frames, stats)
    with MVSECRecording(data_file, gt_path=gt_file) as rec:
        return _measure_recording(net.model, meter, rec, frames, stats)


def _model_device(model: torch.nn.Module) -> torch.device:
    """The device of the network's weights (CPU for a network without any)."""
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def _measure_recording_int8(
    rec: MVSECRecording,
    net: LoadedNetwork,
    fields: QuantFields,
    frames: int | None,
    stats: WindowStats | None,
    costs: EnergyCosts,
    count: str,
    energy_model: str,
) -> EnergyReport:
    """Stream ``frames`` frames of ``rec`` through the int8 network: the stream engine with the torch int8 backend,
    energy from its integer spikes (module docstring)."""
    from snnc.runtime.engine import StreamEngine
    from snnc.runtime.frames import frame_times
    from snnc.runtime.int8_backend import Int8TorchBackend

    times, _clock = frame_times(rec, limit=frames)
    backend = Int8TorchBackend(net.model, _model_device(net.model), fields=fields, neurons=True)
    engine = StreamEngine(net, backend, costs=costs, count=count, energy_model=energy_model)
    try:
        for _ in engine.run(rec, times, with_gt=False, stats=stats):
            pass
    finally:
        backend.close()
    if engine.summary.energy is None:  # pragma: no cover - frame_times gives at least one frame or raises
        raise SnncError("no frame to measure on", rec.data_path)
    return engine.summary.energy


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
    fields: QuantFields | None = None,
) -> EnergyReport:
    """Energy per image of a classification network, each image presented for ``T`` steps.

    ``images`` is ``(N, C, H, W)``; N is cut to a multiple of the batch size so that
    every batch weighs the same (at least one batch). ``fields``: count the int8 network's
    own spikes (module docstring).

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
    if fields is not None:
        counted = ActivityMeter(
            costs=costs, count=count, steps_per_frame=float(steps), energy_model=energy_model, neurons=True
        )
        _count_images_int8(model, fields, images, steps, bs, batches, counted)
        return counted.total()
    meter = EnergyMeter(
        model, costs=costs, count=count, steps_per_frame=float(steps), neurons=True, energy_model=energy_model
    )
    with meter, torch.no_grad():
        for b in range(batches):
            x = images[b * bs : (b + 1) * bs]
            model(x.unsqueeze(0).expand(steps, *x.shape).contiguous())
            meter.frame()
    return meter.total()


def _count_images_int8(
    model: SpikingNet,
    fields: QuantFields,
    images: torch.Tensor,
    steps: int,
    bs: int,
    batches: int,
    meter: ActivityMeter,
) -> None:
    """Run the integer graph over ``batches`` batches of ``bs`` images, ``steps`` steps each from rest, counting
    every step's node values through the integer graph's :class:`~snnc.export.activity.ActivityPlan` into
    ``meter`` (one frame per batch, as the hooks' count)."""
    from snnc.export.activity import ActivityPlan
    from snnc.export.lower import graph_inputs
    from snnc.quant import Int8Network, quantize_input

    int8 = Int8Network(model, fields)
    device = _model_device(model)
    gm = int8.graph_module((bs, *(int(s) for s in images.shape[1:]))).to(device)

    def inputs(b: int) -> dict[str, torch.Tensor]:
        x = images[b * bs : (b + 1) * bs].to(device, torch.float32)
        return graph_inputs(int8.family, quantize_input(x, fields))

    plan = ActivityPlan(gm.graph, model, int(inputs(0)["x"].shape[0]))
    meter.bind(plan.specs(), plan.neurons, batch=bs)
    plan.prepare(meter.events, meter.neurons, device)
    with torch.no_grad():
        for b in range(batches):
            x = inputs(b)
            state = gm.init_state(x)
            for _ in range(steps):  # direct coding: the same (quantised) image every step
                values, state = gm.step_nodes(x, state)
                meter.record(*plan.count(values, meter.events, meter.neurons))
            meter.frame()
