"""``TrainConfig``: every setting of one training run, validated and JSON-friendly.

The config is saved in every checkpoint (``checkpoint.pt['config']``) and in
``run_dir/config.json``; ``--resume`` rebuilds the run from it, so a resumed
run uses exactly the settings it started with (only :data:`RESUME_MUTABLE`
fields may be changed on resume).

Defaults that depend on the task (``None`` here) are filled by
:func:`resolve_defaults` from the papers' retraining recipes (methods.md §3):
classification SGD (momentum 0.9, weight decay 3e-4) with cosine lr 0.025,
batch 50, T = 6; stereo Adam (0.9, 0.999) lr 1e-3 halved at 25/50/75 % of the
epochs (the paper's 50/100/150 of 200), batch 2, windows of 2 burn-in + 6
labelled SBT stacks.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from snnc.data.layout import DEFAULT_MAX_WINDOW_EVENTS
from snnc.errors import SnncError, list_items

__all__ = ["TrainConfig", "RESUME_MUTABLE", "TASKS", "resolve_defaults"]

TASKS = ("classification", "stereo")
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("cosine", "step", "none")
RHO_MODES = ("paper", "measured")
SPLITS = ("auto", "1", "3", "tail")
#: Data-parallel BatchNorm: global-batch statistics every step, or per-rank statistics with the running
#: statistics averaged over the ranks after every epoch (:mod:`snnc.train.syncbn`).
BN_SYNC = ("batch", "running")
#: Fields a ``--resume`` may change (they do not affect the computation).
RESUME_MUTABLE = ("epochs", "device", "quiet", "stop_after", "max_window_events")

_TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "classification": {
        "epochs": 100,
        "steps": 6,
        "batch_size": 50,
        "lr": 0.025,
        "optimizer": "sgd",
        "schedule": "cosine",
        "weight_decay": 3e-4,
    },
    "stereo": {
        "epochs": 200,
        "steps": 6,
        "batch_size": 2,
        "lr": 1e-3,
        "optimizer": "adam",
        "schedule": "step",
        "weight_decay": 0.0,
    },
}


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one run (see the module docstring and ``snnc train --help``).

    Frozen: a derived setting is a new config (``dataclasses.replace``), so nothing that
    takes a config changes its caller's object.
    """

    arch: str = ""
    data: list[str] = field(default_factory=list)
    out: str = ""
    task: str | None = None
    epochs: int | None = None
    steps: int | None = None
    burn_in: int = 2
    batch_size: int | None = None
    eval_batch_size: int = 256
    lr: float | None = None
    optimizer: str | None = None
    schedule: str | None = None
    weight_decay: float | None = None
    momentum: float = 0.9
    device: str = "cpu"
    seed: int = 0
    threads: int = 0
    width: int | None = None
    eval_every: int = 1
    freeze_bn_epochs: int = 0
    bn_sync: str = "batch"
    # classification data
    split_seed: int = 0
    test_fraction: float = 0.2
    # stereo data
    split: str = "auto"
    crop: list[int] | None = None
    augment_crop: list[int] | None = None
    augment_shift: int = 0
    feature_stride: int | None = None
    volume_shifts: str | None = None
    downscale: int = 1
    max_disparity: float | None = None
    fb: float | None = None
    cache_gb: float = 2.0
    rect_dir: str | None = None
    max_window_events: int = DEFAULT_MAX_WINDOW_EVENTS
    # DGS
    dgs: bool = False
    dgs_layers: list[str] = field(default_factory=lambda: ["s1"])
    dgs_every: int = 5
    dgs_iters: int = 100
    dgs_candidates: int = 5
    dgs_db: float = 0.2
    dgs_eps: float = 1e-3
    dgs_alpha_lr: float = 1.0
    # TPS / HNS (mixing searches)
    tps: bool = False
    tps_dtau: float = 0.1
    hns: bool = False
    hns_alif: bool = False
    energy_lambda: float = 0.0
    rho: str = "paper"
    rho_relu: float = 4.26
    hns_energy_model: str = "paper"
    search_layers: list[str] = field(default_factory=list)
    search_every: int = 100
    search_warmup: int = 5
    search_epochs: int | None = None
    search_eps: float = 1e-3
    arch_lr: float = 3e-3
    # per invocation
    quiet: bool = False
    stop_after: int | None = None

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        """Rebuild from :meth:`to_dict` output (unknown keys raise :class:`SnncError`)."""
        known = {f.name for f in fields(cls)}
        unknown = [str(k) for k in d if k not in known]
        if unknown:
            raise SnncError(f"training config: unknown key(s) {list_items(unknown, sort=True)}")
        return cls(**dict(d))

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Raise :class:`SnncError` for any out-of-range setting (call after :func:`resolve_defaults`)."""

        def positive_int(name: str, minimum: int = 1) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
                raise SnncError(f"--{name.replace('_', '-')} must be an integer >= {minimum}, got {v!r}")

        def positive_float(name: str, allow_zero: bool = False) -> None:
            v = getattr(self, name)
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            if not ok or v < 0 or (v == 0 and not allow_zero):
                raise SnncError(
                    f"--{name.replace('_', '-')} must be a {'non-negative' if allow_zero else 'positive'} "
                    f"number, got {v!r}"
                )

        if self.task not in TASKS:
            raise SnncError(f"unknown task {self.task!r} (expected one of {', '.join(TASKS)})")
        for name in (
            "epochs",
            "steps",
            "batch_size",
            "eval_batch_size",
            "eval_every",
            "downscale",
            "dgs_every",
            "dgs_iters",
            "dgs_candidates",
            "search_every",
        ):
            positive_int(name)
        for name in ("burn_in", "threads", "search_warmup", "seed", "split_seed", "augment_shift", "freeze_bn_epochs"):
            positive_int(name, 0)
        positive_int("max_window_events")
        epochs = resolved(self.epochs, "epochs")
        if self.freeze_bn_epochs > epochs:
            raise SnncError(f"--freeze-bn-epochs {self.freeze_bn_epochs} exceeds --epochs {self.epochs}")
        if self.width is not None:
            positive_int("width")
        if self.stop_after is not None:
            positive_int("stop_after")
        if self.search_epochs is not None:
            positive_int("search_epochs")
        for name in (
            "lr",
            "dgs_db",
            "dgs_eps",
            "dgs_alpha_lr",
            "tps_dtau",
            "search_eps",
            "arch_lr",
            "rho_relu",
            "cache_gb",
        ):
            positive_float(name)
        for name in ("weight_decay", "momentum", "energy_lambda"):
            positive_float(name, allow_zero=True)
        if not 0.0 < self.test_fraction < 1.0:
            raise SnncError(f"--test-fraction must be in (0, 1), got {self.test_fraction!r}")
        if self.optimizer not in OPTIMIZERS:
            raise SnncError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise SnncError(f"--schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.rho not in RHO_MODES:
            raise SnncError(f"--rho must be one of {', '.join(RHO_MODES)}, got {self.rho!r}")
        if self.hns_energy_model not in ("paper", "memory", "lemaire"):
            raise SnncError(f"--hns-energy-model must be paper, memory or lemaire, got {self.hns_energy_model!r}")
        if self.bn_sync not in BN_SYNC:
            raise SnncError(f"--bn-sync must be one of {', '.join(BN_SYNC)}, got {self.bn_sync!r}")
        if self.split not in SPLITS:
            raise SnncError(f"--split must be one of {', '.join(SPLITS)}, got {self.split!r}")
        if self.tps and self.hns:
            raise SnncError("--tps and --hns cannot be combined in one run (run HNS on a TPS result instead)")
        search_end = min(self.search_epochs or epochs, epochs)
        if (self.tps or self.hns) and self.search_warmup >= search_end:
            raise SnncError(
                f"the TPS/HNS search would never start: --search-warmup {self.search_warmup} epochs "
                f"but the search ends after {search_end} (--epochs/--search-epochs)"
            )
        if self.dgs_candidates % 2 != 1:
            raise SnncError(
                f"--dgs-candidates must be odd (b + k*db, k = -(N-1)/2 .. (N-1)/2), got {self.dgs_candidates}"
            )
        if self.crop is not None and (
            len(self.crop) != 4
            or any(isinstance(v, bool) or not isinstance(v, int) for v in self.crop)
            or self.crop[0] < 0
            or self.crop[1] < 0
            or self.crop[2] < 1
            or self.crop[3] < 1
        ):
            raise SnncError(
                f"--crop must be TOP,LEFT,HEIGHT,WIDTH (non-negative offsets, positive size), got {self.crop!r}"
            )
        if self.augment_crop is not None and (
            len(self.augment_crop) != 2
            or any(isinstance(v, bool) or not isinstance(v, int) or v < 16 for v in self.augment_crop)
        ):
            raise SnncError(f"--augment-crop must be HEIGHT,WIDTH (each >= 16), got {self.augment_crop!r}")
        if self.feature_stride is not None:
            positive_int("feature_stride")
        if self.volume_shifts is not None and not (
            self.volume_shifts == "auto"
            or (isinstance(self.volume_shifts, str) and self.volume_shifts.isdigit() and int(self.volume_shifts) >= 2)
        ):
            raise SnncError(f"--volume-shifts must be 'auto' or an integer >= 2, got {self.volume_shifts!r}")
        if self.max_disparity is not None:
            positive_float("max_disparity")
        if self.fb is not None:
            positive_float("fb")
        if not self.data:
            raise SnncError("no training data given (--data)")


_T = TypeVar("_T")


def resolved(value: _T | None, name: str) -> _T:
    """A task-dependent field (``epochs``, ``steps``, ``batch_size``, ...) of a resolved config, never None there."""
    if value is None:
        raise ValueError(f"TrainConfig.{name} is unset: pass the config through resolve_defaults first")
    return value


def resolve_defaults(config: TrainConfig, genotype: Any = None) -> TrainConfig:
    """Fill the task-dependent ``None`` fields from the task's recipe (returns a copy).

    A classifier's ``steps`` defaults to its genotype's own time steps
    (``time_steps``) when ``genotype`` is
    given, so a searched genotype trains at the T it was searched with; the
    recipe value (6) applies otherwise.
    """
    if config.task not in TASKS:
        raise SnncError(f"unknown task {config.task!r} (expected one of {', '.join(TASKS)})")
    values = {k: v for k, v in _TASK_DEFAULTS[config.task].items() if getattr(config, k) is None}
    if config.task == "classification" and config.steps is None and genotype is not None:
        from snnc.models.genotype import genotype_time_steps

        own = genotype_time_steps(genotype)
        if own is not None and own >= 1:
            values["steps"] = own
    return dataclasses.replace(config, **values)
