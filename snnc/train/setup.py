"""From a config to a task and a network: data loading, genotype overrides, model building."""

from __future__ import annotations

import math
from typing import Any

import torch

from snnc.errors import SnncError
from snnc.models.base import SpikingNet
from snnc.models.build import build_model
from snnc.models.families import FAMILIES, find
from snnc.models.stereo import auto_volume_shifts
from snnc.train.config import TrainConfig, resolved
from snnc.train.task import Task

__all__ = ["task_for_family", "width_overrides", "make_task", "make_model"]


def task_for_family(family: str) -> str:
    """The training task of ``family`` (:mod:`snnc.models.families`): ``stereo`` or ``classification``."""
    return FAMILIES[family].task if family in FAMILIES else "classification"


def width_overrides(family: str, width: Any) -> dict[str, int]:
    """Genotype fields that ``--width`` sets for ``family`` (its registered ``width_fields``)."""
    if width is None or family not in FAMILIES:
        return {}
    return {name: int(width) for name in FAMILIES[family].width_fields}


def _disparity_bins(genotype: Any, max_disparity: Any) -> int:
    if max_disparity is None:
        return int(genotype.disparities)
    return math.floor(float(max_disparity) / float(genotype.disp_step)) + 1


def make_task(config: TrainConfig, genotype: Any, device: torch.device) -> Task:
    """The :class:`~snnc.train.task.Task` of ``config`` (loads the data).

    Raises:
        SnncError: data that does not fit the task (e.g. an HDF5 file for a classifier).
    """
    if config.task == "classification":
        from snnc.data.images import load_image_set
        from snnc.train.task_cls import ClassificationTask

        if len(config.data) != 1:
            raise SnncError(
                f"classification takes one --data ('digits' or a folder of .npz files), got {len(config.data)}"
            )
        source = config.data[0]
        if source.endswith((".hdf5", ".h5")):
            raise SnncError(f"{source}: an event recording needs a stereo architecture (e.g. --arch spikedhs-stereo)")
        steps, batch = resolved(config.steps, "steps"), resolved(config.batch_size, "batch_size")
        return ClassificationTask(
            load_image_set(source, config.test_fraction, config.split_seed),
            steps,
            batch,
            config.eval_batch_size,
            device,
        )
    from snnc.train.data_stereo import StereoData
    from snnc.train.task_stereo import StereoTask

    for source in config.data:
        if not source.endswith((".hdf5", ".h5")):
            raise SnncError(f"{source}: a stereo network trains on MVSEC-layout *_data.hdf5 recordings")
    bins = _disparity_bins(genotype, config.max_disparity)
    if bins < 2:
        raise SnncError(
            f"--max-disparity {config.max_disparity} leaves fewer than 2 disparity bins "
            f"(bin width {genotype.disp_step})"
        )
    stereo = StereoData(
        config.data,
        burn_in=config.burn_in,
        steps=resolved(config.steps, "steps"),
        split=config.split,
        test_fraction=config.test_fraction,
        crop=config.crop,
        downscale=config.downscale,
        max_disparity=(bins - 1) * float(genotype.disp_step),
        fb=config.fb,
        cache_gb=config.cache_gb,
        progress=not config.quiet,
        rect_dir=config.rect_dir,
        max_window_events=config.max_window_events,
    )
    try:
        batch = resolved(config.batch_size, "batch_size")
        return StereoTask(
            stereo, bins, float(genotype.disp_step), batch, device, config.augment_crop, config.augment_shift
        )
    except BaseException:
        stereo.close()
        raise


def geometry_overrides(genotype: Any, config: TrainConfig, disparities: int, scale: float) -> dict[str, int]:
    """Stereo genotype fields set by ``--feature-stride`` and ``--volume-shifts``.

    ``--volume-shifts auto`` spans the disparity range with shifts of one feature
    pixel: ``ceil((disparities - 1) * disp_step / (scale * stride)) + 1``, where
    ``scale`` is the data's scaled-disparity units per input pixel (7 for MVSEC).
    """
    out: dict[str, int] = {}
    stride = int(genotype.feature_stride)
    if config.feature_stride is not None:
        stride = out["feature_stride"] = int(config.feature_stride)
    if config.volume_shifts == "auto":
        out["volume_disparities"] = auto_volume_shifts(disparities, float(genotype.disp_step), scale, stride)
    elif config.volume_shifts is not None:
        out["volume_disparities"] = int(config.volume_shifts)
    return out


def make_model(genotype: Any, task: Any, config: TrainConfig) -> SpikingNet:
    """Build the network for ``task``: the data's fields, ``--width`` and the stereo geometry override the
    genotype's."""
    family = getattr(genotype, "family", "")
    overrides = {**task.model_overrides(family), **width_overrides(family, config.width)}
    fam = find(family)
    if fam is not None and fam.task == "stereo":
        overrides.update(geometry_overrides(genotype, config, overrides["disparities"], task.data.scale))
    elif config.feature_stride is not None or config.volume_shifts is not None:
        raise SnncError("--feature-stride / --volume-shifts apply to stereo networks only")
    model = build_model(genotype, **overrides)
    if not isinstance(model, SpikingNet):
        raise SnncError(f"architecture family {family!r} did not build a SpikingNet")
    return model
