"""The SpikeDHS search driver: build supernet and task, run the bi-level search, decode, write.

Outputs, for ``--out ARCH.json``:

* ``ARCH.json``: the decoded genotype (:func:`snnc.models.genotype.save_genotype`
  format; ``snnc info`` / ``build_model`` / training read it), written only
  when the search finishes, atomically; an existing file is refused unless
  ``force``.
* ``ARCH.search.jsonl``: one JSON object per epoch: phase, lr, losses,
  validation metrics, alpha/beta entropies, softmax(alpha) and the trellis
  level probabilities, the genotype decoded at that epoch, seconds.
* ``ARCH.search.png``: softmax(alpha) per edge and level probabilities per
  layer over the epochs.
* ``ARCH.search_state.pt``: everything needed to resume
  (configuration, supernet, optimisers, schedule, log), rewritten atomically
  after every epoch. ``resume=True`` continues from it; without ``resume`` an
  existing state is refused unless ``force``.

Paper recipes are the defaults (:data:`TASK_DEFAULTS`); every value can be
scaled down by the caller.

Under ``torchrun`` / ``--nproc`` (:mod:`snnc.train.distributed`) the bi-level
search is data-parallel (:mod:`snnc.nas.bilevel`): ``batch_size`` is the global
batch, rank 0 reads the state, evaluates, prints and writes every file, and the
supernet (weights, alphas, betas, BatchNorm statistics) is the same on every rank.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch

from snnc.errors import SnncError
from snnc.models.genotype import MIXINGS, save_genotype
from snnc.nas.arch import alpha_entropy, beta_entropy
from snnc.nas.bilevel import BilevelConfig, BilevelSearch
from snnc.nas.decode import decode_classifier, decode_stereo, level_probabilities
from snnc.nas.files import atomic_output, prepare_search_output, save_search_state
from snnc.nas.report import plot_arch_history, write_jsonl
from snnc.nas.supernet import SEARCH_STEM_SPEC, ClassifierSupernet, StereoSupernet
from snnc.nas.tasks import DigitsTask, SearchTask, StereoTask
from snnc.neurons import NeuronSpec

__all__ = [
    "STATE_SUFFIX",
    "TASK_DEFAULTS",
    "scaled_warmup",
    "SpikeDHSConfig",
    "output_paths",
    "resolve_config",
    "run_spikedhs_search",
]

STATE_SUFFIX = ".search_state.pt"  #: the resumable state is ``ARCH`` + this (one per --out)
STATE_VERSION = 1

#: Paper recipes (NeurIPS §4.1.1, §4.2.1), per task.
TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "cls": {"nodes": 4, "width": 8, "time_steps": 6, "epochs": 50, "warmup": 15, "batch_size": 50, "lr": 0.025},
    "stereo": {
        "nodes": 3,
        "width": 4,
        "time_steps": 8,
        "burn_in": 2,
        "epochs": 12,
        "warmup": 3,
        "batch_size": 1,
        "lr": 0.002,
    },
}


@dataclass(frozen=True)
class SpikeDHSConfig:
    """Everything that defines a SpikeDHS search (stored in the state, checked on resume).

    Attributes:
        task: ``"cls"`` (digits) or ``"stereo"`` (an MVSEC recording).
        data: ``"digits"`` or the ``*_data.hdf5`` path.
        nodes: nodes per cell; mixing: ``"mm"``/``"ms"``.
        width: node width at level 0 during search; retrain_width: the
            genotype's filter multiplier (default: ``width`` for cls,
            ``2 * width`` for stereo, the paper's channel expansion 12 -> 24).
        time_steps: T; layers: classifier cells; aux_weight: aux loss weight.
        levels, feature_layers, matching_layers: the stereo trellises.
        crop, disparities, disp_step, burn_in, max_frames: stereo data.
        feature_stride, volume_shifts: the stereo geometry, as for ``snnc train``
            (``volume_shifts`` None: V = D, the paper's; ``"auto"``: span the
            disparity range, :func:`~snnc.models.stereo.auto_volume_shifts`).
        stem: ``"relu"`` (search stems of the paper) or ``"spike"``.
        epochs ... seed: :class:`~snnc.nas.bilevel.BilevelConfig`.
    """

    task: str
    data: str
    nodes: int
    width: int
    time_steps: int
    epochs: int
    warmup: int
    batch_size: int
    lr: float
    mixing: str = "mm"
    retrain_width: int | None = None
    layers: int = 8
    aux_weight: float = 0.4
    levels: int = 4
    feature_layers: int = 2
    matching_layers: int = 4
    crop: tuple[int, int] = (200, 280)
    disparities: int = 33
    disp_step: float = 2.0
    burn_in: int = 2
    max_frames: int = 400
    stem: str = "relu"
    arch_lr: float = 3e-3
    seed: int = 0
    feature_stride: int = 3
    volume_shifts: int | str | None = None

    def __post_init__(self) -> None:
        if self.task not in TASK_DEFAULTS:
            raise SnncError(f"unknown task {self.task!r} for spikedhs (expected one of {', '.join(TASK_DEFAULTS)})")
        if self.task == "cls" and self.data != "digits":
            raise SnncError(f"--task cls searches on --data digits (sklearn 8x8 digits), got {self.data!r}")
        if self.task == "stereo" and self.data == "digits":
            raise SnncError("--task stereo needs an MVSEC recording (*_data.hdf5) as --data, not digits")
        if self.nodes not in (3, 4):
            raise SnncError(f"--nodes must be 3 or 4, got {self.nodes}")
        if self.mixing not in MIXINGS:
            raise SnncError(f"--mixing must be one of {', '.join(MIXINGS)}, got {self.mixing!r}")
        if self.stem not in ("relu", "spike"):
            raise SnncError(f"stem must be 'relu' or 'spike', got {self.stem!r}")
        for name in ("width", "time_steps", "layers", "feature_layers", "matching_layers"):
            if int(getattr(self, name)) < 1:
                raise SnncError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.retrain_width is not None and self.retrain_width < 1:
            raise SnncError(f"--retrain-width must be >= 1, got {self.retrain_width}")
        if not 1 <= int(self.feature_stride) <= 8:
            raise SnncError(f"--feature-stride must be in 1..8, got {self.feature_stride}")
        if (
            self.volume_shifts is not None
            and self.volume_shifts != "auto"
            and not (
                isinstance(self.volume_shifts, int)
                and not isinstance(self.volume_shifts, bool)
                and 2 <= self.volume_shifts <= 1024
            )
        ):
            raise SnncError(f"--volume-shifts must be 'auto' or an integer in 2..1024, got {self.volume_shifts!r}")
        object.__setattr__(self, "crop", tuple(int(c) for c in self.crop))
        self.bilevel()  # validates the optimisation values

    def bilevel(self) -> BilevelConfig:
        """The optimisation part."""
        return BilevelConfig(
            epochs=self.epochs,
            warmup=self.warmup,
            batch_size=self.batch_size,
            lr=self.lr,
            arch_lr=self.arch_lr,
            seed=self.seed,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (stored in the state)."""
        d = dataclasses.asdict(self)
        d["crop"] = list(self.crop)
        return d


def resolve_config(given: Mapping[str, Any], stored: Mapping[str, Any] | None = None) -> SpikeDHSConfig:
    """Config from explicitly given values, task defaults and (on resume) the stored config.

    On resume every given value must equal the stored one.

    Raises:
        SnncError: unknown task, a conflict with the stored search, or an invalid value.
    """
    given = dict(given)
    if given.get("data", "digits") != "digits":  # a recording: compare and store it as an absolute path
        given["data"] = str(Path(given["data"]).resolve())
    if stored is not None:
        conflicts = []
        for key, value in given.items():
            old = stored.get(key)
            old_cmp = tuple(old) if isinstance(old, list) else old
            new_cmp = tuple(value) if isinstance(value, list) else value
            if key in stored and old_cmp != new_cmp:
                conflicts.append(f"--{key.replace('_', '-')} {value!r} (search state has {old!r})")
        if conflicts:
            raise SnncError(
                "--resume: options differ from the stored search: "
                + "; ".join(conflicts)
                + " (omit them to use the stored values, or start over with --force)"
            )
        values = dict(stored)
    else:
        task = given.get("task", "cls")
        if task not in TASK_DEFAULTS:
            raise SnncError(f"unknown task {task!r} for spikedhs (expected one of {', '.join(TASK_DEFAULTS)})")
        values = dict(TASK_DEFAULTS[task])
        values.update(given)
        values["task"] = task
        if "epochs" in given and "warmup" not in given:
            values["warmup"] = scaled_warmup(task, int(given["epochs"]))
    try:
        return SpikeDHSConfig(**values)
    except TypeError as err:
        raise SnncError(f"invalid search configuration: {err}") from None


def scaled_warmup(task: str, epochs: int) -> int:
    """The default warm-up for ``epochs`` search epochs: the paper recipe's share of the epochs
    (cls 15 of 50, stereo 3 of 12), rounded, so ``--epochs`` alone never makes the warm-up too long."""
    recipe = TASK_DEFAULTS[task]
    return max(0, min(epochs, round(epochs * recipe["warmup"] / recipe["epochs"])))


def output_paths(out: Path) -> dict[str, Path]:
    """Genotype, log, plot and state paths for ``--out``."""
    out = Path(out)
    stem = out.with_suffix("") if out.suffix else out
    return {
        "out": out,
        "log": stem.with_name(stem.name + ".search.jsonl"),
        "plot": stem.with_name(stem.name + ".search.png"),
        "state": stem.with_name(stem.name + STATE_SUFFIX),
    }


def volume_shifts(cfg: SpikeDHSConfig) -> int | None:
    """The stereo supernet's volume shifts V for ``cfg`` (None: V = D)."""
    if cfg.volume_shifts == "auto":
        from snnc.data.layout import DISPARITY_SCALE
        from snnc.models.stereo import auto_volume_shifts

        return auto_volume_shifts(cfg.disparities, cfg.disp_step, DISPARITY_SCALE, cfg.feature_stride)
    return None if cfg.volume_shifts is None else int(cfg.volume_shifts)


def _build(cfg: SpikeDHSConfig, device: torch.device, progress: bool) -> tuple[torch.nn.Module, SearchTask]:
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    stem = SEARCH_STEM_SPEC if cfg.stem == "relu" else NeuronSpec()
    if cfg.task == "cls":
        task: SearchTask = DigitsTask(cfg.time_steps, cfg.aux_weight, device)
        model: torch.nn.Module = ClassifierSupernet(
            nodes=cfg.nodes,
            layers=cfg.layers,
            width=cfg.width,
            in_channels=1,
            num_classes=10,
            mixing=cfg.mixing,
            stem_spec=stem,
            aux=cfg.aux_weight > 0,
            generator=gen,
        )
    else:
        task = StereoTask(
            cfg.data,
            cfg.crop,
            cfg.disparities,
            cfg.disp_step,
            cfg.time_steps,
            cfg.burn_in,
            cfg.max_frames,
            device=device,
            progress=progress,
        )
        model = StereoSupernet(
            nodes=cfg.nodes,
            feature_layers=cfg.feature_layers,
            matching_layers=cfg.matching_layers,
            levels=cfg.levels,
            feature_width=cfg.width,
            matching_width=cfg.width,
            in_channels=5,
            disparities=cfg.disparities,
            mixing=cfg.mixing,
            stem_spec=stem,
            generator=gen,
            feature_stride=cfg.feature_stride,
            volume_shifts=volume_shifts(cfg),
        )
    return model.to(device), task


def decode(model: torch.nn.Module, cfg: SpikeDHSConfig) -> Any:
    """The genotype the supernet's current alphas/betas decode to."""
    if cfg.task == "cls":
        width = cfg.retrain_width or cfg.width
        return decode_classifier(model, filter_multiplier=width, time_steps=cfg.time_steps, mixing=cfg.mixing)
    width = cfg.retrain_width or 2 * cfg.width
    return decode_stereo(
        model,
        feature_filter_multiplier=width,
        matching_filter_multiplier=width,
        disp_step=cfg.disp_step,
        time_steps=cfg.time_steps,
        mixing=cfg.mixing,
    )


def _arch_snapshot(model: torch.nn.Module, cfg: SpikeDHSConfig) -> dict[str, Any]:
    if cfg.task == "cls":
        alphas = {"cell": cast(ClassifierSupernet, model).alphas}
        return {
            "alpha_entropy": {k: alpha_entropy(v) for k, v in alphas.items()},
            "alphas": {k: torch.softmax(v.detach().cpu(), -1).tolist() for k, v in alphas.items()},
        }
    net = cast(StereoSupernet, model)
    alphas = {"feature": net.feature_alphas, "matching": net.matching_alphas}
    betas = {
        "feature": (net.feature_betas, net.feature_geometry),
        "matching": (net.matching_betas, net.matching_geometry),
    }
    return {
        "alpha_entropy": {k: alpha_entropy(v) for k, v in alphas.items()},
        "beta_entropy": {k: beta_entropy(b, g) for k, (b, g) in betas.items()},
        "alphas": {k: torch.softmax(v.detach().cpu(), -1).tolist() for k, v in alphas.items()},
        "levels": {k: level_probabilities(b, g).tolist() for k, (b, g) in betas.items()},
    }


def run_spikedhs_search(
    given: Mapping[str, Any],
    out: Path,
    *,
    device: str = "cpu",
    resume: bool = False,
    force: bool = False,
    progress: bool = True,
    echo: Callable[[str], None] = print,
    stop_after: int | None = None,
    plot: bool = True,
) -> dict[str, Any]:
    """Run (or resume) a SpikeDHS search and write its outputs (see module docstring).

    Args:
        given: explicitly chosen configuration values (:class:`SpikeDHSConfig` fields).
        out: genotype JSON path.
        device: torch device for the search.
        resume: continue from ``ARCH.search_state.pt`` beside ``out``.
        force: overwrite an existing ``out`` / start over despite an existing state.
        progress: show a tqdm bar (stderr).
        echo: receives one summary line per epoch.
        stop_after: run at most this many epochs in this call, then return
            without writing ``out`` (the state allows resuming); for tests and
            for splitting long searches.
        plot: write the PNG (skipped by tests that do not look at it).

    Returns:
        ``{"genotype", "paths", "epochs_done", "finished", "seconds", "last"}``.

    Raises:
        SnncError: refused overwrite, missing/mismatching state, bad data or options.
    """
    from snnc.train import distributed
    from snnc.train.syncbn import sync_batchnorm

    rank = distributed.current()
    main = rank.main
    if not main:
        echo, progress = (lambda _: None), False
    paths = output_paths(out)
    out = paths["out"]
    stored = distributed.broadcast_object(
        distributed.agree(
            lambda: prepare_search_output(paths, "spikedhs", STATE_VERSION, force, resume) if main else None
        )
    )
    cfg = distributed.agree(lambda: resolve_config(given, stored["config"] if stored else None))
    dev = rank.device if rank.active else torch.device(device)
    model, task = distributed.agree(lambda: _build(cfg, dev, progress), "loading the search data")
    if rank.active:
        sync_batchnorm(model)
        distributed.agree(lambda: distributed.check_batch_split(cfg.batch_size))
    search = BilevelSearch(model, task, cfg.bilevel())
    log: list[dict[str, Any]] = []
    seconds = 0.0
    if stored is not None:
        search.load_state_dict(stored["search"])
        log = list(stored["log"])
        seconds = float(stored.get("seconds", 0.0))

    from tqdm import tqdm

    per_epoch = search.steps_per_epoch()
    bar = tqdm(
        total=cfg.epochs * per_epoch,
        initial=search.epoch * per_epoch,
        desc=f"spikedhs {cfg.task}",
        unit="step",
        disable=not progress,
        leave=False,
    )
    ran = 0

    def on_step(loss: float) -> None:
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}")

    try:
        while search.epoch < cfg.epochs and (stop_after is None or ran < stop_after):
            t0 = time.perf_counter()
            entry = search.run_epoch(on_step=on_step)
            entry["seconds"] = time.perf_counter() - t0
            seconds += entry["seconds"]
            entry.update(_arch_snapshot(model, cfg))
            entry["genotype"] = decode(model, cfg).to_dict()
            log.append(entry)

            def save(seconds: float = seconds) -> None:
                if main:
                    save_search_state(
                        {
                            "state_version": STATE_VERSION,
                            "method": "spikedhs",
                            "config": cfg.to_dict(),
                            "out": out.name,
                            "search": search.state_dict(),
                            "log": log,
                            "seconds": seconds,
                        },
                        paths["state"],
                    )
                    write_jsonl(paths["log"], log)

            distributed.agree(save, "rank 0 saving the search state")
            ran += 1
            metric = entry["val"].get(task.metric, float("nan"))
            arch = "" if entry["arch_loss"] is None else f" arch_loss {entry['arch_loss']:.4f}"
            ent = " ".join(f"H({k}) {v:.3f}" for k, v in entry["alpha_entropy"].items())
            echo(
                f"epoch {entry['epoch']}/{cfg.epochs} [{entry['phase']}] loss {entry['train_loss']:.4f}{arch} "
                f"{task.metric} {metric:.4g} {ent} ({entry['seconds']:.1f} s)"
            )
    finally:
        bar.close()
    genotype = decode(model, cfg)
    finished = search.epoch >= cfg.epochs

    def write() -> None:
        if not main:
            return
        if log and plot:
            plot_arch_history(log, paths["plot"], f"SpikeDHS {cfg.task} ({cfg.mixing}, {cfg.nodes} nodes)")
        if finished:
            with atomic_output(out) as tmp:
                save_genotype(genotype, tmp)

    distributed.agree(write, "rank 0 writing the genotype")
    return {
        "genotype": genotype,
        "paths": paths,
        "epochs_done": search.epoch,
        "finished": finished,
        "seconds": seconds,
        "last": log[-1] if log else None,
        "metric": task.metric,
    }
