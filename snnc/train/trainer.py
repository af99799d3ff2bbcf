"""The training loop shared by every task: epochs, searches, checkpoints, metrics, final folding.

Per epoch ``e`` (0-based): shuffled batches (order from a generator seeded by
``(seed, e)``), one optimizer step per batch (plus the TPS/HNS architecture
step), the lr schedule step, the end of a TPS/HNS search at epoch
``search_epochs`` (default: the last), a DGS round every ``dgs_every`` epochs,
evaluation on the held-out data, then ``metrics.csv``/``metrics.jsonl``, the
search logs and ``checkpoint.pt`` are rewritten. Because the checkpoint holds
every RNG state, the optimizer, scheduler and search states, a ``--resume``d
run continues exactly as if it had not stopped.

At the end: BN folding (checked against the trained network), ``folded.pt``,
``genotype.json`` (the trained genotype with the searched neuron parameters),
``metrics.json`` and ``learning_curve.png``.

Data-parallel (several ranks, :mod:`snnc.train.distributed`): the network is
wrapped in ``DistributedDataParallel``, its BatchNorms use the global batch's
statistics (:mod:`snnc.train.syncbn`), each rank trains on its part of every
global batch (:mod:`snnc.train.shardtask`), the TPS/HNS ``a`` gradients and
DGS gradients are averaged over the ranks (and DGS's decision is rank 0's,
broadcast), so parameters, BatchNorm buffers and architecture parameters stay
identical on every rank. Rank 0 alone reads the checkpoint (sent to the
others), evaluates, prints and writes every file; the others wait for it.
``metrics.json`` records ``world_size``.
"""

from __future__ import annotations

import dataclasses
import functools
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import torch
from tqdm import tqdm

from snnc.errors import SnncError
from snnc.models.genotype import genotype_from_dict, load_genotype, save_genotype, with_overrides
from snnc.neurons import Neuron, NeuronSpec
from snnc.train import distributed
from snnc.train.checkpoint import CHECKPOINT_NAME, FOLDED_NAME, load_checkpoint, save_checkpoint
from snnc.train.config import TrainConfig, resolve_defaults, resolved
from snnc.train.dgs import DGSearch
from snnc.train.finalize import fold_and_check
from snnc.train.hns import HNSearch
from snnc.train.mixed import MixedNeuron
from snnc.train.mixsearch import MixingSearch
from snnc.train.optim import extend_schedule, freeze_batchnorm, make_optimizer, make_scheduler
from snnc.train.plot import plot_learning_curve
from snnc.train.rundir import check_run_dir, prepare_run_dir, write_history, write_json, write_jsonl
from snnc.train.runtime import epoch_generator, resolve_device, rng_state, seed_everything, set_rng_state, set_threads
from snnc.train.setup import make_model, make_task, task_for_family
from snnc.train.shardtask import ShardedTask
from snnc.train.syncbn import average_running_stats, sync_batchnorm
from snnc.train.task import Task
from snnc.train.tps import TPSearch

__all__ = ["Trainer", "train"]

Log = Callable[[str], None]
_DGS_STREAM = 1


class Trainer:
    """One run in ``config.out`` (see module docstring).

    Args:
        config: the run's settings (for a resume: the saved config, see :func:`train`).
        resume: continue from ``checkpoint.pt``.
        force: start over in a non-empty run folder.
        log: where progress lines go.
    """

    task: Task  # set by _configure

    def __init__(self, config: TrainConfig, *, resume: bool = False, force: bool = False, log: Log = print) -> None:
        self.dist = ctx = distributed.current()
        self.log = log if ctx.main else _silent
        run_dir = Path(config.out)

        def read() -> dict[str, Any] | None:
            check_run_dir(run_dir, resume, force)
            return load_checkpoint(run_dir / CHECKPOINT_NAME) if resume else None  # on the CPU: RNG states stay

        ckpt = distributed.agree(read if ctx.main else lambda: None, "reading the run folder")
        if resume:
            ckpt = distributed.broadcast_object(ckpt)
        try:
            genotype = distributed.agree(lambda: self._configure(config, ckpt, run_dir), "setting up the run")
            distributed.agree(lambda: self._build(genotype, ckpt, run_dir), "building the network")
            self.run_dir = distributed.agree(
                lambda: prepare_run_dir(run_dir, resume, force) if ctx.main else run_dir, "preparing the run folder"
            )
            self._wrap()
        except BaseException:
            task = getattr(self, "task", None)  # not set when the setup failed before loading the data
            if task is not None:
                task.close()
            raise

    def _configure(self, config: TrainConfig, ckpt: dict[str, Any] | None, run_dir: Path) -> Any:
        """Device, threads, genotype, the resolved config, seeds and the task (loads the data); the genotype."""
        ctx = self.dist
        self.device = ctx.device if ctx.active else resolve_device(config.device)
        set_threads(config.threads)
        if ckpt is not None:
            genotype = genotype_from_dict(ckpt["genotype"], run_dir / CHECKPOINT_NAME)
        else:
            genotype = load_genotype(config.arch)
            config = dataclasses.replace(
                config, task=task_for_family(getattr(genotype, "family", ""))
            )  # caller's stays
        self.config = config = resolve_defaults(config, genotype)
        config.validate()
        ctx.shard().check_batch(resolved(config.batch_size, "batch_size"))
        seed_everything(config.seed, self.device)
        self.task = make_task(config, genotype, self.device)
        return genotype

    def _wrap(self) -> None:
        """Several ranks: global-batch BatchNorm, DDP around the network, the task seen through this rank's shard."""
        ctx = self.dist
        self.ddp: torch.nn.Module | None = None
        self.train_task: Any = self.task
        if not ctx.active:
            return
        from torch.nn.parallel import DistributedDataParallel

        if self.config.bn_sync == "batch":
            sync_batchnorm(self.model)
        # one-channel first convolutions: a (C, 1, k, k) gradient's stride of the size-1 dim differs, harmlessly
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
        self.ddp = DistributedDataParallel(
            self.model, device_ids=[ctx.local_rank] if ctx.backend == "nccl" else None, forward_sync_buffers=False
        )
        self.train_task = ShardedTask(self.task, ctx.shard())
        if self.dgs is not None:
            self.dgs.mean_over_ranks = distributed.mean_over_ranks

    # ------------------------------------------------------------------ construction
    def _build(self, genotype: Any, ckpt: dict[str, Any] | None, run_dir: Path) -> None:
        config = self.config
        if ckpt is not None:
            from snnc.models.build import build_model

            self.model = build_model(genotype)
        else:
            self.model = make_model(genotype, self.task, config)
        self.base_genotype = self.model.genotype
        self.model.to(self.device)
        self.optimizer = make_optimizer(self.model.parameters(), config)
        self.scheduler = make_scheduler(self.optimizer, config)
        search = ckpt.get("search", {}) if ckpt is not None else {}
        self.dgs = self._make_dgs() if config.dgs else None
        self.mix = self._make_mix(search.get("mixing")) if (config.tps or config.hns) else None
        self.history: list[dict[str, Any]] = []
        self.start_epoch = 0
        if ckpt is None:
            if self.mix is not None:
                self.mix.attach(self.model)
            return
        try:
            self.model.load_state_dict(ckpt["model"])
        except RuntimeError as err:
            raise SnncError(
                f"checkpoint weights do not fit its genotype: {str(err).splitlines()[0]}", run_dir / CHECKPOINT_NAME
            ) from None
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        extend_schedule(self.scheduler, config)
        if self.dgs is not None and "dgs" in search:
            self.dgs.load_state_dict(search["dgs"])
        if self.mix is not None and "mixing" in search:
            self.mix.load_state_dict(search["mixing"])
            if not self.mix.finished:
                self.mix.attach(self.model)
        self.base_genotype = genotype_from_dict(ckpt["base_genotype"]) if "base_genotype" in ckpt else genotype
        self.history = list(ckpt.get("history", []))
        self.start_epoch = int(ckpt["epoch"])
        set_rng_state(ckpt["rng"])

    def _make_dgs(self) -> DGSearch:
        c = self.config
        return DGSearch(
            self.model,
            layers=c.dgs_layers,
            every=c.dgs_every,
            iters=c.dgs_iters,
            candidates=c.dgs_candidates,
            db=c.dgs_db,
            eps=c.dgs_eps,
            alpha_lr=c.dgs_alpha_lr,
        )

    def _make_mix(self, state: dict[str, Any] | None) -> MixingSearch:
        """A new TPS/HNS search, or (``state`` from a checkpoint) one with the saved layers and candidates."""
        c = self.config
        candidates = None
        if state is not None:
            candidates = {k: [NeuronSpec.from_dict(d) for d in v] for k, v in state["candidates"].items()}
        common: dict[str, Any] = {
            "layers": c.search_layers,
            "every": c.search_every,
            "warmup": c.search_warmup,
            "eps": c.search_eps,
            "arch_lr": c.arch_lr,
            "device": self.device,
            "candidates": candidates,
        }
        if c.tps:
            return TPSearch(self.model, dtau=c.tps_dtau, **common)
        return HNSearch(
            self.model,
            energy_lambda=c.energy_lambda,
            rho=c.rho,
            rho_relu=c.rho_relu,
            alif=c.hns_alif,
            steps_per_prediction=self.task.steps_per_prediction,
            energy_model=c.hns_energy_model,
            **common,
        )

    # ------------------------------------------------------------------ genotype
    def effective_specs(self) -> dict[str, NeuronSpec]:
        """Every neuron layer's spec as the trained genotype must record it (mixed layers: the search's decision)."""
        out = {}
        for name, neuron in self.model.neurons():
            if isinstance(neuron, MixedNeuron) and self.mix is not None:
                out[name] = self.mix.decided_spec(name)
            else:
                out[name] = neuron.spec
        return out

    def genotype(self) -> Any:
        """The base genotype with ``neuron_layers`` = every layer whose spec differs from the default neuron."""
        default = self.base_genotype.neuron
        layers = {k: v for k, v in self.effective_specs().items() if v != default}
        return with_overrides(self.base_genotype, {"neuron_layers": layers})

    # ------------------------------------------------------------------ training
    def _train_epoch(self, epoch: int) -> dict[str, Any]:
        config, model, task = self.config, self.model, self.task
        model.train()
        if epoch >= resolved(config.epochs, "epochs") - config.freeze_bn_epochs:
            freeze_batchnorm(model)
        if self.mix is not None:
            self.mix.begin_epoch(model, task, epoch)
        sums: dict[str, float] = {}
        extra_sum, steps = 0.0, 0
        t0 = time.perf_counter()
        shard_task = self.train_task
        bar = tqdm(
            shard_task.train_batches(epoch_generator(config.seed, epoch)),
            total=task.num_train_batches(),
            desc=f"epoch {epoch + 1}/{config.epochs}",
            unit="batch",
            disable=config.quiet or not self.dist.main,
            leave=False,
        )
        for i, batch in enumerate(bar):
            loss, stats = shard_task.loss(self.ddp or model, batch)
            finite = bool(torch.isfinite(loss))
            if self.dist.active:  # every rank stops together, with the same message
                finite = distributed.all_reduce_sum([0.0 if finite else 1.0])[0] == 0.0
            if not finite:
                raise distributed.CollectiveError(
                    f"training diverged: loss is not finite at epoch {epoch + 1}, batch {i + 1} (try a lower --lr)", 0
                )
            total = loss
            if self.mix is not None and self.mix.active(epoch):
                extra = self.mix.extra_loss()
                if extra is not None:
                    total = total + extra
                    extra_sum += float(extra.detach())
            self.optimizer.zero_grad(set_to_none=True)
            if self.mix is not None:
                self.mix.zero_grad()
            total.backward()
            if self.mix is not None and self.dist.active:
                distributed.average_gradients(self.mix.alphas.values())
            self.optimizer.step()
            if self.mix is not None:
                self.mix.after_backward(model, epoch)
            for k, v in stats.items():
                sums[k] = sums.get(k, 0.0) + v
            steps += 1
            bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
        bar.close()
        if self.dist.active:
            if config.bn_sync == "running":
                average_running_stats(model)
            keys = sorted(sums)
            sums = dict(zip(keys, distributed.all_reduce_sum([sums[k] for k in keys]), strict=True))
        out: dict[str, Any] = dict(task.train_metrics(sums))
        if self.mix is not None and extra_sum:
            out["energy_loss"] = extra_sum / max(steps, 1)
        out["train_time_s"] = time.perf_counter() - t0
        return out

    def _dgs_batches(self, epoch: int) -> Callable[[int], Any]:
        def batches(cycle: int) -> Any:
            return self.train_task.train_batches(epoch_generator(self.config.seed, epoch * 1000 + cycle, _DGS_STREAM))

        return batches

    def _search_end(self) -> int:
        c = self.config
        epochs = resolved(c.epochs, "epochs")
        return min(c.search_epochs or epochs, epochs)

    def _after_epoch(self, epoch: int) -> dict[str, Any]:
        """Schedule, search bookkeeping; returns extra per-epoch fields."""
        extra: dict[str, Any] = {"lr": self.optimizer.param_groups[0]["lr"]}
        self.scheduler.step()
        if self.mix is not None and not self.mix.finished and epoch + 1 >= self._search_end():
            self.mix.finalize(self.model, epoch)
            self.log(f"{self.mix.name.upper()} search finished: {self.mix.summary()}")
        if self.dgs is not None and self.dgs.due(epoch + 1):
            t0 = time.perf_counter()
            new = self.dgs.run(
                self.model, self.train_task, epoch=epoch, lr=extra["lr"], batches=self._dgs_batches(epoch)
            )
            if self.dist.active:
                new = self._adopt_dgs_decision(len(new))
            for r in new:
                self.log(
                    f"DGS after epoch {epoch + 1}: {r['layer']} b {r['previous_b']:g} -> {r['chosen_b']:g} "
                    f"(alpha mean {', '.join(f'{a:.6f}' for a in r['alpha_mean'])})"
                )
            extra["dgs_time_s"] = time.perf_counter() - t0
            if self.mix is not None:
                self.mix.sync(self.model)
        if self.dgs is not None:
            extra.update({f"dgs_b[{k}]": v for k, v in self.dgs.summary().items()})
        return extra

    def _adopt_dgs_decision(self, count: int) -> list[dict[str, Any]]:
        """Rank 0's DGS log and chosen temperatures on every rank (they agree already; this makes it certain)."""
        from snnc.train.dgs import set_surrogate_b

        assert self.dgs is not None  # called with DGS on only
        records = distributed.broadcast_object(self.dgs.records)
        self.dgs.records = list(records)
        for record in records[len(records) - count :]:
            set_surrogate_b(cast(Neuron, self.model.get_submodule(record["layer"])), record["chosen_b"])
        return records[len(records) - count :]

    def _checkpoint(self, epochs_done: int) -> None:
        search: dict[str, Any] = {}
        if self.dgs is not None:
            search["dgs"] = self.dgs.state_dict()
        if self.mix is not None:
            search["mixing"] = self.mix.state_dict()
        genotype = self.genotype()
        save_checkpoint(
            self.run_dir / CHECKPOINT_NAME,
            {
                "genotype": genotype.to_dict(),
                "base_genotype": self.base_genotype.to_dict(),
                "family": genotype.family,
                "task": self.config.task,
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "epoch": epochs_done,
                "rng": rng_state(),
                "config": self.config.to_dict(),
                "input_shape": self.input_shape(),
                "folded": False,
                "search": search,
                "history": self.history,
            },
        )
        write_history(self.run_dir, self.history)
        write_json(self.run_dir / "config.json", self.config.to_dict())
        if self.dgs is not None:
            write_jsonl(self.run_dir / "dgs.jsonl", self.dgs.records)
        if self.mix is not None:
            write_jsonl(self.run_dir / f"{self.mix.name}.jsonl", self.mix.records)

    def input_shape(self) -> list[int]:
        """One time step's input shape (batch 1) of the task's held-out data, recorded in checkpoints."""
        return [1, *(int(s) for s in self.task.example_input().shape[2:])]

    def _epoch_line(self, record: dict[str, Any]) -> str:
        task = self.task
        parts = [f"epoch {record['epoch']}/{self.config.epochs}", f"loss {record['train_loss']:.4f}"]
        if "train_accuracy" in record:
            parts.append(f"train acc {record['train_accuracy']:.4f}")
        if record.get(task.primary) is not None:
            parts.append(f"{task.primary} {record[task.primary]:.4f}")
        if record.get("mean_disparity_error") is not None:
            parts.append(f"MDispE {record['mean_disparity_error']:.3f} px")
        parts.append(f"{record['train_time_s']:.1f} s")
        return ", ".join(parts)

    def run(self) -> dict[str, Any] | None:
        """Train to ``config.epochs`` (or ``stop_after`` epochs of this call), then finish the run.

        Returns the final metrics, or None when stopped early by ``stop_after``.
        """
        config = self.config
        try:
            self.log(f"{self.task.describe()}")
            self.log(
                f"{self.base_genotype.family} network, {sum(p.numel() for p in self.model.parameters()):,} "
                f"parameters, device {self.device}{self._ranks_text()}; run folder {self.run_dir}"
            )
            if self.start_epoch:
                self.log(f"resuming after epoch {self.start_epoch}")
            for done_now, epoch in enumerate(range(self.start_epoch, resolved(config.epochs, "epochs"))):
                if config.stop_after is not None and done_now >= config.stop_after:
                    self.log(f"stopped after {done_now} epoch(s) (--stop-after); continue with --resume")
                    return None
                record: dict[str, Any] = {"epoch": epoch + 1}
                record.update(self._train_epoch(epoch))
                record.update(self._after_epoch(epoch))
                distributed.agree(functools.partial(self._end_epoch, epoch, record), "rank 0 evaluating and saving")
            return self._finish()
        finally:
            self.task.close()

    def _end_epoch(self, epoch: int, record: dict[str, Any]) -> None:
        """Evaluate, keep the record, write the checkpoint and print the line (rank 0; the others only keep it)."""
        config = self.config
        if self.dist.main and ((epoch + 1) % config.eval_every == 0 or epoch + 1 == config.epochs):
            record.update(self.task.evaluate(self.model))
        self.history.append(record)
        if self.dist.main:
            self._checkpoint(epoch + 1)
            self.log(self._epoch_line(record))

    def check_ranks_agree(self) -> None:
        """Raise :class:`SnncError` if the ranks' architecture decisions differ (never expected; a guard)."""
        if not self.dist.active:
            return
        mine = (self.genotype().to_dict(), self.mix.decisions if self.mix is not None else None)
        if any(other != mine for other in distributed.all_gather_objects(mine)):
            raise SnncError("internal: the ranks' architecture decisions differ")

    def _ranks_text(self) -> str:
        ctx = self.dist
        if not ctx.active:
            return ""
        return (
            f" x {ctx.world} ranks ({ctx.backend}; global batch {self.config.batch_size}, "
            f"{resolved(self.config.batch_size, 'batch_size') // ctx.world} per rank)"
        )

    # ------------------------------------------------------------------ end of run
    def _finish(self) -> dict[str, Any] | None:
        config = self.config
        if self.mix is not None and not self.mix.finished:
            # a resumed run whose search had not ended when its last epoch was trained
            self.mix.finalize(self.model, resolved(config.epochs, "epochs") - 1)

            def again() -> None:
                if self.dist.main:
                    if self.history:
                        self.history[-1].update(self.task.evaluate(self.model))
                    self._checkpoint(resolved(config.epochs, "epochs"))

            distributed.agree(again, "rank 0 saving")
        self.check_ranks_agree()
        return distributed.agree(
            lambda: self._write_results() if self.dist.main else None, "rank 0 folding and writing the results"
        )

    def _write_results(self) -> dict[str, Any]:
        config, task = self.config, self.task
        genotype = self.genotype()
        self.model.genotype = genotype
        save_genotype(genotype, self.run_dir / "genotype.json")
        final = self.history[-1] if self.history else {}
        if task.primary not in final:
            final = dict(final, **task.evaluate(self.model))
        folded, check = fold_and_check(self.model, task.example_input())
        folded_metrics = task.evaluate(folded)
        save_checkpoint(
            self.run_dir / FOLDED_NAME,
            {
                "genotype": genotype.to_dict(),
                "family": genotype.family,
                "task": config.task,
                "model": folded.state_dict(),
                "config": config.to_dict(),
                "epoch": config.epochs,
                "input_shape": self.input_shape(),
                "folded": True,
                "fold_check": check,
            },
        )
        metrics: dict[str, Any] = {
            "task": config.task,
            "epochs": config.epochs,
            "world_size": self.dist.world,
            "batch_size": config.batch_size,
            "batch_size_per_rank": resolved(config.batch_size, "batch_size") // self.dist.world,
        }
        metrics.update({k: final[k] for k in final if k in _EVAL_KEYS})
        baseline = task.baseline()
        if baseline is not None:
            metrics["baseline"] = baseline
        metrics["folded"] = {k: folded_metrics[k] for k in folded_metrics if k in _EVAL_KEYS}
        metrics["fold_check"] = check
        metrics["train_time_s"] = sum(
            float(r.get("train_time_s", 0.0)) + float(r.get("dgs_time_s", 0.0)) for r in self.history
        )
        metrics["parameters"] = sum(p.numel() for p in self.model.parameters())
        steps = resolved(config.steps, "steps")
        metrics["time_steps"] = steps if config.task == "classification" else config.burn_in + steps
        metrics["genotype"] = "genotype.json"
        searches: dict[str, Any] = {}
        if self.dgs is not None:
            searches["dgs"] = self.dgs.summary()
        if self.mix is not None:
            searches[self.mix.name] = self.mix.summary()
            if isinstance(self.mix, HNSearch):
                searches["hns_energy"] = self.mix.energy_share()
        if searches:
            metrics["searches"] = searches
        write_json(self.run_dir / "metrics.json", metrics)
        plot_learning_curve(
            self.history,
            self.run_dir / "learning_curve.png",
            task.primary,
            baseline,
            title=f"{genotype.family} on {', '.join(Path(d).name for d in config.data)}",
        )
        self.log(_final_line(metrics, task.primary))
        return metrics


def _silent(_: str) -> None:
    """The log of ranks other than 0."""


_EVAL_KEYS = (
    "test_accuracy",
    "mean_disparity_error",
    "mean_depth_error",
    "median_depth_error",
    "one_pixel_accuracy",
    "frames_used",
    "n_valid_pixels",
    "test_loss",
)


def _final_line(metrics: dict[str, Any], primary: str) -> str:
    if primary == "test_accuracy":
        return (
            f"final: test accuracy {metrics['test_accuracy']:.4f} (folded {metrics['folded']['test_accuracy']:.4f}), "
            f"{metrics['train_time_s']:.0f} s training"
        )
    b = metrics.get("baseline", {})
    nan = float("nan")
    return (
        f"final: 1PA {metrics['one_pixel_accuracy']:.4f} vs baseline {b.get('one_pixel_accuracy', nan):.4f}, "
        f"mean disparity error {metrics['mean_disparity_error']:.3f} px vs {b.get('mean_disparity_error', nan):.3f}, "
        f"MDE {100 * metrics['mean_depth_error']:.1f} cm vs {100 * b.get('mean_depth_error', nan):.1f} cm"
    )


def train(config: TrainConfig, *, resume: bool = False, force: bool = False, log: Log = print) -> dict[str, Any] | None:
    """Run (or continue) a training run; returns the final metrics (None if stopped by ``stop_after``)."""
    return Trainer(config, resume=resume, force=force, log=log).run()
