"""Jobs that tests/test_distributed.py runs on every rank (and in one process, to compare)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from _train_util import config, digits_subset, quiet_log, tiny_genotype

#: The per-run settings of the training jobs (a tiny digits subset, two epochs).
TPS_DGS = {
    "epochs": 2,
    "steps": 2,
    "batch_size": 50,
    "lr": 0.1,
    "tps": True,
    "search_warmup": 1,
    "search_every": 2,
    "dgs": True,
    "dgs_every": 1,
    "dgs_iters": 2,
    "dgs_candidates": 3,
}
HNS = {
    "epochs": 2,
    "steps": 2,
    "batch_size": 50,
    "lr": 0.1,
    "hns": True,
    "energy_lambda": 0.01,
    "search_warmup": 1,
    "search_every": 2,
}
PLAIN = {"epochs": 2, "steps": 2, "batch_size": 50, "lr": 0.1}


def _inputs(folder: Path, n_train: int = 125) -> tuple[Path, Path]:
    """The tiny genotype and a digits subset of ``n_train`` training images in ``folder`` (written once).

    125 = 50 + 50 + 25 at batch 50: the last batch splits 13 + 12 over 2 ranks (unequal loss weights)."""
    folder.mkdir(parents=True, exist_ok=True)
    arch = folder / "tiny.json"
    if not arch.exists():
        tiny_genotype(arch)
    data = folder / "data"
    if not (data / "test.npz").exists():
        digits_subset(data, n_train=n_train, n_test=100)
    return arch, data


def train_run(folder: Path, name: str, settings: dict[str, Any]) -> dict[str, Any]:
    """Train in ``folder/name``; the network's state, architecture parameters and what rank 0 wrote."""
    from snnc.train.distributed import current
    from snnc.train.trainer import Trainer

    arch, data = _inputs(folder)
    trainer = Trainer(config(arch, data, folder / name, **settings), log=quiet_log)
    metrics = trainer.run()
    mix = trainer.mix
    return {
        "rank": current().rank,
        "world": current().world,
        "state": {k: v.detach().clone() for k, v in trainer.model.state_dict().items()},
        "alphas": {k: v.detach().clone() for k, v in mix.alphas.items()} if mix is not None else None,
        "mix": mix.state_dict() if mix is not None else None,
        "dgs": trainer.dgs.records if trainer.dgs is not None else None,
        "genotype": trainer.genotype().to_dict(),
        "metrics": metrics,
    }


def train_jobs(folder: Path, runs: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Several :func:`train_run` one after the other (one process start for all of them)."""
    return [train_run(folder, name, settings) for name, settings in runs]


def snasnet_run(folder: Path, name: str, candidates: int) -> dict[str, Any]:
    """A small SNASNet search writing ``folder/name.json``; its winner and (rank 0) the scores of its log."""
    import json

    from snnc.nas.snasnet_search import run_snasnet_search
    from snnc.train.distributed import current

    given = {"candidates": candidates, "width": 8, "fc_hidden": 32, "batch_size": 32, "time_steps": 2, "seed": 3}
    result = run_snasnet_search(given, folder / f"{name}.json", progress=False, echo=quiet_log, plot=False)
    log = folder / f"{name}.search.jsonl"
    scores = (
        [(e["index"], e["cell"], e["score"]) for e in map(json.loads, log.read_text().splitlines())]
        if current().main
        else None
    )
    return {
        "best": result["best"]["cell"],
        "best_score": result["best"]["score"],
        "scored": result["scored"],
        "scores": scores,
    }


def bilevel_steps(folder: Path, epochs: int = 1) -> dict[str, Any]:
    """A tiny SpikeDHS bi-level search (no warm-up): alphas after every step, final weights."""
    from snnc.nas.bilevel import BilevelSearch
    from snnc.nas.spikedhs_search import _build, resolve_config
    from snnc.train.distributed import current
    from snnc.train.syncbn import sync_batchnorm

    cfg = resolve_config(
        {
            "task": "cls",
            "data": "digits",
            "epochs": epochs,
            "warmup": 0,
            "layers": 2,
            "width": 4,
            "time_steps": 2,
            "batch_size": 50,
            "nodes": 3,
        }
    )
    model, task = _build(cfg, torch.device("cpu"), False)
    if current().active:
        sync_batchnorm(model)
    search = BilevelSearch(model, task, cfg.bilevel())
    steps: list[torch.Tensor] = []
    limit = 6

    def snapshot(_: float) -> None:
        steps.append(torch.cat([p.detach().reshape(-1) for p in search.arch_params]).clone())

    # a short epoch: the first `limit` batch pairs of A and B
    batches = task.batches

    def short(part: str, batch_size: int, seed: int, epoch: int) -> Any:
        for i, b in enumerate(batches(part, batch_size, seed, epoch)):
            if i >= limit:
                return
            yield b

    task.batches = short  # type: ignore[method-assign]
    task.n_batches = lambda part, batch_size: limit  # type: ignore[method-assign]
    entry = search.run_epoch(on_step=snapshot)
    return {"alphas": steps, "weights": {k: v.detach().clone() for k, v in model.state_dict().items()}, "entry": entry}


def search_jobs(folder: Path) -> dict[str, Any]:
    """:func:`snasnet_run` (10 candidates) and :func:`bilevel_steps`."""
    folder.mkdir(parents=True, exist_ok=True)
    return {"snasnet": snasnet_run(folder, "snas", 10), "bilevel": bilevel_steps(folder)}


def every_job(folder: Path, runs: list[tuple[str, dict[str, Any]]], recording: str) -> dict[str, Any]:
    """:func:`train_jobs`, :func:`search_jobs` and :func:`stereo_run` in one process group (one start)."""
    return {"train": train_jobs(folder, runs), "search": search_jobs(folder), "stereo": stereo_run(folder, recording)}


def stereo_run(folder: Path, recording: str) -> dict[str, Any]:
    """One epoch of a tiny stereo net (global batch 2: one window per rank) on ``recording``; its state."""
    from snnc.train.config import TrainConfig
    from snnc.train.distributed import current
    from snnc.train.trainer import Trainer

    cfg = TrainConfig(
        arch="spikedhs-stereo",
        data=[recording],
        out=str(folder / "stereo"),
        epochs=1,
        steps=2,
        width=2,
        batch_size=2,
        max_disparity=38,
        threads=1,
        quiet=True,
    )
    trainer = Trainer(cfg, log=quiet_log)
    metrics = trainer.run()
    return {
        "world": current().world,
        "metrics": metrics,
        "state": {k: v.detach().clone() for k, v in trainer.model.state_dict().items()},
    }
