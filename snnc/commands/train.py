"""``snnc train``: train (retrain) a genotype on classification or event-stereo data, with DGS/TPS/HNS."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from snnc.data.layout import DEFAULT_MAX_WINDOW_EVENTS
from snnc.errors import SnncError


def _int_list(text: str | None, what: str, count: int | None = None) -> list[int] | None:
    if text is None:
        return None
    try:
        values = [int(v) for v in text.replace("x", ",").split(",") if v.strip()]
    except ValueError:
        raise SnncError(f"{what} {text!r} must be comma-separated integers") from None
    if count is not None and len(values) != count:
        raise SnncError(f"{what} {text!r} must have {count} values")
    return values


def _names(text: str | None) -> list[str]:
    return [v.strip() for v in (text or "").split(",") if v.strip()]


def _data_path(value: str) -> str:
    return value if value == "digits" else str(Path(value).expanduser().resolve())


def _arch(value: str) -> str:
    path = Path(value).expanduser()
    return str(path.resolve()) if path.is_file() or value.endswith(".json") else value


@click.command("train")
@click.option(
    "--arch",
    default=None,
    help="Genotype preset (spikedhs-cla, spikedhs-stereo, snasnet-cifar10, ...) or genotype JSON file.",
)
@click.option(
    "--data",
    "data",
    multiple=True,
    help="'digits', a folder of .npz files (x: N,C,H,W; y: N), or MVSEC-layout "
    "*_data.hdf5 recordings (repeat --data for several).",
)
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Run folder (checkpoint.pt, folded.pt, metrics, learning curve).",
)
@click.option("--epochs", type=int, default=None, help="Epochs [classification 100, stereo 200].")
@click.option(
    "--steps",
    type=int,
    default=None,
    help="Classification: time steps T of direct coding [the genotype's T]. "
    "Stereo: labelled SBT stacks per window [6].",
)
@click.option("--burn-in", type=int, default=2, show_default=True, help="Stereo: unlabelled stacks before them.")
@click.option("--batch-size", type=int, default=None, help="[classification 50, stereo 2]")
@click.option("--eval-batch-size", type=int, default=256, show_default=True, help="Classification test batch.")
@click.option("--lr", type=float, default=None, help="Learning rate [SGD 0.025, Adam 0.001].")
@click.option("--optimizer", type=click.Choice(["sgd", "adam"]), default=None, help="[classification sgd, stereo adam]")
@click.option(
    "--schedule",
    type=click.Choice(["cosine", "step", "none"]),
    default=None,
    help="lr schedule: cosine to 0, or halving at 25/50/75 % of the epochs [classification cosine, stereo step].",
)
@click.option("--weight-decay", type=float, default=None, help="[SGD 3e-4, Adam 0]")
@click.option("--momentum", type=float, default=0.9, show_default=True, help="SGD momentum.")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda (error if CUDA is not available).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of initialisation and data order.")
@click.option(
    "--threads",
    type=int,
    default=0,
    show_default=True,
    help="CPU threads (0: PyTorch's default; 1 is fastest for tiny nets on a busy machine).",
)
@click.option(
    "--width",
    type=int,
    default=None,
    help="Network width: filter multiplier (SpikeDHS; stereo: both subnets) or channels (SNASNet).",
)
@click.option("--eval-every", type=int, default=1, show_default=True, help="Evaluate every N epochs (and at the end).")
@click.option(
    "--split-seed", type=int, default=0, show_default=True, help="Classification: seed of the stratified split."
)
@click.option(
    "--test-fraction",
    type=float,
    default=0.2,
    show_default=True,
    help="Held-out fraction (classification split; stereo 'tail' split).",
)
@click.option(
    "--split",
    type=click.Choice(["auto", "1", "3", "tail"]),
    default="auto",
    show_default=True,
    help="Stereo frames: indoor_flying split 1/3 (snnc.data.splits) or a held-out tail of each recording; "
    "auto = split 1/3 for indoor_flying recordings, else tail.",
)
@click.option("--crop", default=None, help="Stereo: TOP,LEFT,HEIGHT,WIDTH sensor crop.")
@click.option(
    "--augment-crop",
    default=None,
    help="Stereo: train on random HEIGHT,WIDTH crops of each batch (test on full frames).",
)
@click.option(
    "--augment-shift",
    type=int,
    default=0,
    show_default=True,
    help="Stereo: shift the right view by a random -S..S pixels per batch (disparity + shift).",
)
@click.option(
    "--feature-stride",
    type=int,
    default=None,
    help="Stereo: stride of the feature net's second stem [genotype's, 3 as in the paper]; "
    "1 matches at input resolution (MVSEC disparities are under 6 px).",
)
@click.option(
    "--volume-shifts",
    default=None,
    help="Stereo: feature-volume shifts, an integer or 'auto' (span the disparity range: "
    "ceil(max_disparity / (7 * stride)) + 1) [genotype's; the paper uses D].",
)
@click.option("--downscale", type=int, default=1, show_default=True, help="Stereo: integer downscale factor.")
@click.option(
    "--max-disparity",
    type=float,
    default=None,
    help="Stereo: largest scaled disparity (7 fB/depth units) -> D = max/2 + 1 bins [genotype's D].",
)
@click.option("--fb", type=float, default=None, help="Stereo: focal length x baseline [indoor_flying 19.941772].")
@click.option("--cache-gb", type=float, default=2.0, show_default=True, help="Stereo: memory for cached SBT stacks.")
@click.option(
    "--rect-dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Stereo: folder with the {left,right}_{x,y}_map.txt rectification maps (win over embedded maps).",
)
@click.option(
    "--max-window-events",
    type=int,
    default=DEFAULT_MAX_WINDOW_EVENTS,
    show_default=True,
    help="Stereo: refuse a 50 ms window with more events than this per camera (bounds memory).",
)
@click.option("--dgs", is_flag=True, help="Differentiable surrogate-gradient search during training.")
@click.option(
    "--dgs-layers",
    default="s1",
    show_default=True,
    help="DGS layers: s1 (first stem), c5 (first node of cell 5) or neuron layer names, comma-separated.",
)
@click.option("--dgs-every", type=int, default=5, show_default=True, help="DGS round every e_D epochs.")
@click.option("--dgs-iters", type=int, default=100, show_default=True, help="DGS iterations I_g per round.")
@click.option("--dgs-candidates", type=int, default=5, show_default=True, help="Candidate temperatures N.")
@click.option("--dgs-db", type=float, default=0.2, show_default=True, help="Temperature step.")
@click.option("--dgs-eps", type=float, default=1e-3, show_default=True, help="Initial alpha.")
@click.option("--dgs-alpha-lr", type=float, default=1.0, show_default=True, help="Step size of alpha.")
@click.option("--tps", is_flag=True, help="Temporal parameter search (tau; ALIF: tau and tau_a).")
@click.option("--tps-dtau", type=float, default=0.1, show_default=True, help="TPS candidate spacing.")
@click.option("--hns", is_flag=True, help="Hybrid network search (spiking neuron or ReLU per layer).")
@click.option("--hns-alif", is_flag=True, help="HNS: also offer an ALIF neuron.")
@click.option("--energy-lambda", type=float, default=0.0, show_default=True, help="HNS energy loss weight.")
@click.option(
    "--rho",
    type=click.Choice(["paper", "measured"]),
    default="paper",
    show_default=True,
    help="HNS ReLU energy factor: the paper's 4.26 or from measured firing rates (snnc.energy).",
)
@click.option("--rho-relu", type=float, default=4.26, show_default=True, help="ReLU factor for --rho paper.")
@click.option(
    "--hns-energy-model",
    type=click.Choice(["paper", "memory", "lemaire"]),
    default="paper",
    show_default=True,
    help="HNS energy loss priced like snnc energy --energy-model (memory/lemaire add weight and state traffic).",
)
@click.option("--search-layers", default="", help="TPS/HNS layers (names or s1/c5), comma-separated [all].")
@click.option("--search-every", type=int, default=100, show_default=True, help="TPS/HNS decision every s iterations.")
@click.option("--search-warmup", type=int, default=5, show_default=True, help="TPS/HNS warm-up epochs with fixed a.")
@click.option(
    "--search-epochs",
    type=int,
    default=None,
    help="TPS/HNS: end the search after this many epochs and train the decided network for the rest [all epochs].",
)
@click.option("--search-eps", type=float, default=1e-3, show_default=True, help="TPS/HNS initial a.")
@click.option("--arch-lr", type=float, default=3e-3, show_default=True, help="TPS/HNS Adam lr of a.")
@click.option(
    "--freeze-bn-epochs",
    type=int,
    default=0,
    show_default=True,
    help="Train the last N epochs with BatchNorm in eval mode (running statistics frozen, affine "
    "trained), so the net adapts to the statistics it is folded and deployed with; helps "
    "cells with recurrent (backward) edges, whose per-step batch statistics drift over time.",
)
@click.option("--stop-after", type=int, default=None, help="Stop after N epochs of this call (continue with --resume).")
@click.option(
    "--qat",
    is_flag=True,
    help="Quantisation-aware fine-tuning into an int8 network: --arch is a trained float checkpoint (or shipped "
    "model); trains it with straight-through fake quantisation (--epochs [2], --lr [1e-4], Adam) and writes "
    "--out/int8.pt (network checkpoint with its int8 fields) and --out/qat.json (docs/INT8.md).",
)
@click.option("--resume", is_flag=True, help="Continue the run in --out exactly where it stopped.")
@click.option("--force", is_flag=True, help="Start over in a non-empty --out (deletes its earlier run files).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option(
    "--nproc",
    type=int,
    default=None,
    help="Data-parallel: start N processes on this machine through torch.distributed.run (gloo on the "
    "CPU, NCCL with --device cuda, one GPU per process). --batch-size is the global batch, split "
    "evenly (it must divide by N); the lr is that global batch's. Same as "
    "torchrun --nproc-per-node N -m snnc train ...",
)
@click.option(
    "--bn-sync",
    type=click.Choice(["batch", "running"]),
    default="batch",
    show_default=True,
    help="Data-parallel BatchNorm: statistics of the global batch at every step (as one process; "
    "one all-reduce per BatchNorm call), or of each process's part with the running statistics "
    "averaged over the processes after every epoch (cheaper). Either way folding stays exact.",
)
@click.option(
    "--dist-timeout",
    type=float,
    default=600.0,
    show_default=True,
    help="Data-parallel: seconds a process waits for the others before the run fails.",
)
@click.pass_context
def train_command(ctx: click.Context, **opts: Any) -> None:
    """Train a network from a genotype and write a run folder.

    \b
    Classification (sklearn digits, 8x8):
      snnc train --arch spikedhs-cla --data digits --width 4 --epochs 10 --out runs/digits
    Event stereo (synthetic or real MVSEC recording):
      snnc data synth /tmp/s_data.hdf5 --frames 200 --height 64 --width 96
      snnc train --arch spikedhs-stereo --data /tmp/s_data.hdf5 --width 4 --max-disparity 38 --steps 2 \\
                 --feature-stride 1 --volume-shifts auto --augment-crop 32,48 --epochs 10 --out runs/stereo
    Searches: --dgs (surrogate temperature), --tps (time constants), --hns --energy-lambda 0.01 (ReLU layers).
    Resume:   snnc train --out runs/digits --resume

    \b
    Run folder: checkpoint.pt (every epoch; keys genotype, model, optimizer, scheduler, epoch, rng, config, folded),
    folded.pt (BN folded, folded=True), genotype.json, metrics.csv / metrics.jsonl (per epoch),
    metrics.json (final, stereo with the constant-median baseline), learning_curve.png, dgs/tps/hns.jsonl.
    """
    from snnc.train.config import TrainConfig
    from snnc.train.resume import resumed_config
    from snnc.train.trainer import train

    nproc, dist_timeout = opts["nproc"], opts["dist_timeout"]
    if nproc is not None and nproc != 1:
        from snnc.train.launch import command_line, launch_ranks

        launch_ranks(nproc, ["train", *command_line(ctx, opts)])
        return
    del opts["nproc"], opts["dist_timeout"]
    resume, force, qat = opts.pop("resume"), opts.pop("force"), opts.pop("qat")
    if qat:
        _run_qat(opts, resume, force)
        return
    if resume and force:
        raise SnncError("--resume and --force exclude each other")
    opts["data"] = [_data_path(d) for d in opts["data"]]
    if opts["rect_dir"] is not None:
        opts["rect_dir"] = str(Path(opts["rect_dir"]).expanduser().resolve())
    if opts["arch"] is not None:
        opts["arch"] = _arch(opts["arch"])
    opts["crop"] = _int_list(opts["crop"], "--crop", 4)
    opts["augment_crop"] = _int_list(opts["augment_crop"], "--augment-crop", 2)
    opts["dgs_layers"] = _names(opts["dgs_layers"])
    opts["search_layers"] = _names(opts["search_layers"])
    out: Path = opts["out"]
    opts["out"] = str(out)

    def make_config() -> TrainConfig:
        if resume:
            given = {
                k: v
                for k, v in opts.items()
                if ctx.get_parameter_source(k) not in (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)
            }
            return resumed_config(out, given)
        if not opts["arch"]:
            raise SnncError("--arch is required (a genotype preset name or JSON file; see snnc info --list)")
        if not opts["data"]:
            raise SnncError("--data is required ('digits', a folder of .npz files, or *_data.hdf5 recordings)")
        for d in opts["data"]:
            if d != "digits" and not Path(d).exists():
                raise SnncError("data not found ('digits', a folder of .npz files, or an MVSEC *_data.hdf5 file)", d)
        return TrainConfig(**opts)

    from contextlib import nullcontext

    from snnc.commands.common import distributed_run
    from snnc.train import distributed
    from snnc.train.rundir import run_folder

    with distributed_run(opts["device"], dist_timeout) as rank:  # a no-op unless torchrun / --nproc started us
        config = distributed.broadcast_object(distributed.agree(make_config if rank.main else lambda: None))
        if rank.active:
            # the process group's device (cpu: gloo, cuda: NCCL, GPU LOCAL_RANK)
            config = dataclasses.replace(config, device=opts["device"])
        inputs = [d for d in (config.data or []) if d != "digits"] + ([config.arch] if config.arch else [])
        # rank 0 owns the run folder: locked, run files recorded at the end
        lock = run_folder(out, inputs=[p for p in inputs if Path(p).exists()]) if rank.main else nullcontext()
        with lock:
            metrics = train(config, resume=resume, force=force, log=click.echo)
    if metrics is not None:
        click.echo(f"wrote {out / 'checkpoint.pt'}, {out / 'folded.pt'}, {out / 'metrics.json'}")


def _run_qat(opts: dict[str, Any], resume: bool, force: bool) -> None:
    """``snnc train --qat``: fine-tune a trained float network into an int8 network (snnc.train.qat)."""
    from snnc.commands.common import check_output_path
    from snnc.train.config import TrainConfig
    from snnc.train.qat import run_qat

    if resume:
        raise SnncError("--qat runs are short and not resumable: drop --resume")
    if not opts["arch"] or not opts["data"]:
        raise SnncError("--qat needs --arch (a trained float checkpoint or shipped model) and --data")
    for flag in ("dgs", "tps", "hns"):
        if opts[flag]:
            raise SnncError(f"--qat fine-tunes a fixed network: --{flag} does not apply")
    out = Path(opts["out"])
    out.mkdir(parents=True, exist_ok=True)
    check_output_path(out / "int8.pt", force)
    opts = {**opts, "data": [_data_path(d) for d in opts["data"]]}
    opts["arch"] = _arch(opts["arch"])
    opts["crop"] = _int_list(opts["crop"], "--crop", 4)
    opts["augment_crop"] = _int_list(opts["augment_crop"], "--augment-crop", 2)
    opts["dgs_layers"] = _names(opts["dgs_layers"])
    opts["search_layers"] = _names(opts["search_layers"])
    if opts["threads"]:
        import torch

        torch.set_num_threads(int(opts["threads"]))
    run_qat(TrainConfig(**opts), out, log=click.echo)
