"""``snnc search``: architecture search (SpikeDHS differentiable, SNASNet training-free)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click

from snnc.errors import SnncError

_METHODS = ("spikedhs", "snasnet")
_TASKS = ("cls", "stereo")
# CLI option name -> configuration key, per method (None: not applicable).
_SPIKEDHS_KEYS = (
    "task",
    "data",
    "nodes",
    "mixing",
    "width",
    "retrain_width",
    "time_steps",
    "epochs",
    "warmup",
    "batch_size",
    "lr",
    "arch_lr",
    "layers",
    "aux_weight",
    "levels",
    "feature_layers",
    "matching_layers",
    "crop",
    "disparities",
    "disp_step",
    "burn_in",
    "max_frames",
    "stem",
    "seed",
    "feature_stride",
    "volume_shifts",
)
_SNASNET_KEYS = (
    "task",
    "data",
    "candidates",
    "batch_size",
    "repeat",
    "time_steps",
    "width",
    "fc_hidden",
    "retrain_width",
    "backward",
    "reduce",
    "seed",
    "conv_edges",
)


#: SpikeDHS options that only one task uses.
_TASK_ONLY = {
    **dict.fromkeys(
        (
            "levels",
            "feature_layers",
            "matching_layers",
            "crop",
            "disparities",
            "disp_step",
            "burn_in",
            "max_frames",
            "feature_stride",
            "volume_shifts",
        ),
        "stereo",
    ),
    **dict.fromkeys(("layers", "aux_weight"), "cls"),
}


def _parse_crop(text: str) -> tuple[int, int]:
    parts = text.lower().replace(",", "x").split("x")
    try:
        h, w = (int(p) for p in parts)
    except ValueError:
        raise SnncError(f"--crop {text!r} must be HEIGHTxWIDTH, e.g. 64x96") from None
    return h, w


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SnncError(f"--device {name}: CUDA is not available on this machine")
    if not (name == "cpu" or name.startswith("cuda")):
        raise SnncError(f"--device must be cpu, cuda[:N] or auto, got {name!r}")
    return name


@click.command("search")
@click.option(
    "--method",
    default="spikedhs",
    show_default=True,
    help="spikedhs: differentiable hierarchical search; snasnet: training-free SAHD score.",
)
@click.option(
    "--task",
    default="cls",
    show_default=True,
    help="cls: classification cell (digits); stereo: feature + matching cells and paths (MVSEC).",
)
@click.option("--data", required=True, help="'digits' (sklearn 8x8, --task cls) or an MVSEC *_data.hdf5 (stereo).")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Genotype JSON to write; OUT.search.jsonl, OUT.search.png and OUT.search_state.pt go "
    "beside it (folders are created).",
)
@click.option("--epochs", type=int, default=None, help="SpikeDHS epochs [cls 50, stereo 12].")
@click.option(
    "--warmup",
    type=int,
    default=None,
    help="SpikeDHS warm-up epochs (weights only) [the recipe's share of --epochs: cls 15 of 50, stereo 3 of 12].",
)
@click.option("--batch-size", type=int, default=None, help="[spikedhs cls 50, stereo 1; snasnet 64]")
@click.option("--lr", type=float, default=None, help="Weight SGD lr (m 0.9, cosine) [cls 0.025, stereo 0.002].")
@click.option("--arch-lr", type=float, default=None, help="Alpha/beta Adam lr [3e-3; DARTS 3e-4].")
@click.option("--nodes", type=int, default=None, help="Nodes per cell [cls 4, stereo 3].")
@click.option("--mixing", default=None, help="Mix candidates at the membrane (one neuron per node) or at spikes [mm].")
@click.option("--layers", type=int, default=None, help="Classifier cells (reductions at L/3, 2L/3) [8].")
@click.option(
    "--width",
    type=int,
    default=None,
    help="Node width at level 0 during search [spikedhs cls 8, stereo 4; snasnet channels 16].",
)
@click.option(
    "--retrain-width",
    type=int,
    default=None,
    help="Width written into the genotype [spikedhs: cls = width, stereo = 2 x width; snasnet 64].",
)
@click.option("--time-steps", type=int, default=None, help="T [spikedhs cls 6, stereo 8; snasnet 5].")
@click.option("--aux-weight", type=float, default=None, help="Classifier auxiliary loss weight [0.4; 0 = no aux head].")
@click.option("--levels", type=int, default=None, help="Stereo trellis levels [4].")
@click.option("--feature-layers", type=int, default=None, help="Stereo feature trellis layers [2].")
@click.option("--matching-layers", type=int, default=None, help="Stereo matching trellis layers [4].")
@click.option("--crop", default=None, help="Stereo training crop HEIGHTxWIDTH [200x280].")
@click.option("--disparities", type=int, default=None, help="Stereo cost bins D [33].")
@click.option("--disp-step", type=float, default=None, help="Stereo scaled disparity per bin [2].")
@click.option(
    "--max-disparity",
    type=float,
    default=None,
    help="Stereo: largest scaled disparity (7 fB/depth units); sets D = ceil(max / disp-step) + 1.",
)
@click.option(
    "--feature-stride",
    type=click.IntRange(1, 8),
    default=None,
    help="Stereo: stride of the second feature stem [3, the paper's; 1 matches MVSEC-scale disparities].",
)
@click.option(
    "--volume-shifts",
    default=None,
    help="Stereo: feature-volume shifts, an integer or 'auto' (span the disparity range, as snnc train) "
    "[D, the paper's].",
)
@click.option("--burn-in", type=int, default=None, help="Stereo unlabelled leading stacks [2].")
@click.option("--max-frames", type=int, default=None, help="Stereo: use the first N depth frames [400].")
@click.option("--stem", default=None, help="Search-time stem activation [relu, the paper's BN+ReLU stems].")
@click.option("--candidates", type=int, default=None, help="SNASNet candidates to score [5000].")
@click.option("--repeat", type=int, default=None, help="SNASNet score batches per candidate [1].")
@click.option("--fc-hidden", type=int, default=None, help="SNASNet hidden FC width while scoring [128].")
@click.option("--forward-only", is_flag=True, default=False, help="SNASNet: forward connections only (SNASNet-Fw).")
@click.option(
    "--conv-edges",
    type=int,
    default=None,
    help="SNASNet: only candidates with exactly N conv (LIF) edges, a compute budget [any].",
)
@click.option(
    "--kernel-reduce",
    default=None,
    help="SNASNet kernel over layers x steps: the paper's sum or the authors' code's mean [sum].",
)
@click.option("--seed", type=int, default=None, help="Random seed [0].")
@click.option("--resume", is_flag=True, help="Continue the search in OUT.search_state.pt beside --out.")
@click.option("--force", is_flag=True, help="Overwrite --out and start over despite an existing search state.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda[:N] or auto.")
@click.option(
    "--threads",
    type=int,
    default=0,
    show_default=True,
    help="Torch CPU threads (0: torch's default; snasnet on the CPU uses 1 unless given).",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option(
    "--nproc",
    type=int,
    default=None,
    help="Start N processes on this machine through torch.distributed.run (gloo; NCCL with --device "
    "cuda, one GPU each): snasnet shares the candidates out, spikedhs splits every (global) "
    "--batch-size batch. Same as torchrun --nproc-per-node N -m snnc search ...",
)
@click.option(
    "--dist-timeout",
    type=float,
    default=600.0,
    show_default=True,
    help="Seconds a process waits for the others before the run fails.",
)
@click.pass_context
def search_command(ctx: click.Context, **opts: Any) -> None:
    """Search an architecture and write its genotype JSON (for snnc info / snnc train).

    \b
    Examples:
      snnc search --method spikedhs --task cls --data digits --out arch.json \\
                  --epochs 10 --warmup 3 --layers 3 --width 4 --time-steps 3
      snnc search --method spikedhs --task stereo --data rec_data.hdf5 --out stereo.json \\
                  --crop 48x64 --disparities 12 --disp-step 3 --time-steps 2 --burn-in 1 --levels 3
      snnc search --method snasnet --data digits --candidates 5000 --out snas.json
    """
    if opts["nproc"] is not None and opts["nproc"] != 1:
        from snnc.train.launch import command_line, launch_ranks

        launch_ranks(opts["nproc"], ["search", *command_line(ctx, opts)])
        return
    method: str = opts["method"]
    if method not in _METHODS:
        raise SnncError(f"unknown search method {method!r} (expected one of {', '.join(_METHODS)})")
    if opts["task"] not in _TASKS:
        raise SnncError(f"unknown task {opts['task']!r} (expected one of {', '.join(_TASKS)})")
    if not opts["resume"]:  # cheap checks before the heavy imports (the configurations check again)
        if opts["task"] == "stereo" and opts["data"] == "digits":
            raise SnncError("--task stereo needs an MVSEC recording (*_data.hdf5) as --data, not digits")
        if opts["task"] == "cls" and opts["data"] != "digits":
            raise SnncError(f"--task cls searches on --data digits (sklearn 8x8 digits), got {opts['data']!r}")
        if opts["task"] == "stereo" and not Path(opts["data"]).is_file():
            raise SnncError("data file not found", opts["data"])
    explicit = {name for name in opts if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE}
    if opts["crop"] is not None:
        opts["crop"] = _parse_crop(opts["crop"])
    if opts["volume_shifts"] is not None and opts["volume_shifts"] != "auto":
        try:
            opts["volume_shifts"] = int(opts["volume_shifts"])
        except ValueError:
            raise SnncError(f"--volume-shifts must be 'auto' or an integer, got {opts['volume_shifts']!r}") from None
    if opts["max_disparity"] is not None:
        if "disparities" in explicit:
            raise SnncError("give either --disparities or --max-disparity, not both")
        if not opts["max_disparity"] > 0:
            raise SnncError(f"--max-disparity must be positive, got {opts['max_disparity']}")
        step = opts["disp_step"] if opts["disp_step"] is not None else 2.0
        opts["disparities"] = math.ceil(opts["max_disparity"] / step) + 1
        explicit = (explicit - {"max_disparity"}) | {"disparities"}
    if opts["forward_only"]:
        opts["backward"] = False
    if opts["kernel_reduce"] is not None:
        opts["reduce"] = opts["kernel_reduce"]
    renamed = {"forward_only": "backward", "kernel_reduce": "reduce"}
    keys = _SPIKEDHS_KEYS if method == "spikedhs" else _SNASNET_KEYS
    given: dict[str, Any] = {}
    always = {"data"} if opts["resume"] else {"task", "data"}  # on resume the stored task is the default
    for name in explicit | always:
        key = renamed.get(name, name)
        if name in ("method", "out", "resume", "force", "device", "threads", "quiet", "nproc", "dist_timeout"):
            continue
        if key not in keys:
            raise SnncError(f"--{name.replace('_', '-')} does not apply to --method {method}")
        if method == "spikedhs" and key in _TASK_ONLY and _TASK_ONLY[key] != opts["task"] and not opts["resume"]:
            raise SnncError(f"--{name.replace('_', '-')} applies to --task {_TASK_ONLY[key]} only")
        given[key] = opts[key]
    out: Path = opts["out"]
    if out.exists() and not opts["force"]:  # before the heavy imports: refuse at once
        raise SnncError("exists; pass --force to overwrite it", out)
    from snnc.commands.common import distributed_run

    with distributed_run(opts["device"], opts["dist_timeout"]) as rank:  # a no-op unless torchrun / --nproc started us
        _run_search(ctx, opts, method, given, explicit, rank)


def _run_search(
    ctx: click.Context, opts: dict[str, Any], method: str, given: dict[str, Any], explicit: set[str], rank: Any
) -> None:
    """Plan the outputs (rank 0), set the threads, run the search, report (rank 0)."""
    from snnc.train import distributed

    out: Path = opts["out"]
    distributed.agree(
        lambda: _plan_outputs(out, opts["data"], force=opts["force"], resume=opts["resume"]) if rank.main else None
    )
    device = _device(opts["device"])
    threads = int(opts["threads"])
    if method == "snasnet" and "threads" not in explicit and device == "cpu":
        threads = 1  # tiny per-candidate ops: extra threads only wait for each other
    if threads:
        import torch

        torch.set_num_threads(threads)
    common = {
        "device": device,
        "resume": opts["resume"],
        "force": opts["force"],
        "progress": not opts["quiet"],
        "echo": click.echo,
    }
    if method == "snasnet":
        from snnc.nas.snasnet_search import run_snasnet_search

        result = run_snasnet_search(given, opts["out"], **common)
        if not rank.main:
            return
        click.echo(
            f"SNASNet best cell {result['best']['cell']} (score {result['best']['score']:.3f}) "
            f"from {result['scored']} candidates in {result['seconds']:.1f} s "
            f"({result['candidates_per_second']:.1f}/s)"
        )
    else:
        from snnc.nas.spikedhs_search import run_spikedhs_search

        result = run_spikedhs_search(given, opts["out"], **common)
        if not rank.main:
            return
        _report_spikedhs(result)
    paths = result["paths"]
    click.echo(
        f"wrote {paths['out']} (log {paths['log'].name}, plot {paths['plot'].name}, state {paths['state'].name})"
    )


def _plan_outputs(out: Path, data: str, *, force: bool, resume: bool) -> None:
    """Check the files written beside --out before the search starts, and hold them until it ends.

    ``OUT.search.jsonl``, ``OUT.search.png`` and ``OUT.search_state.pt`` are refused
    when they exist without --force (or --resume, which continues the search that
    wrote them); with --force they are replaced only if snnc wrote them (its ledger,
    :mod:`snnc.outputs`). --out is locked against a second run, may not be the data
    file, and the three files are recorded when the search ends.
    """
    from snnc.nas.spikedhs_search import output_paths
    from snnc.outputs import OutputPlan, check_outputs

    paths = output_paths(out)
    siblings = [paths["log"], paths["plot"], paths["state"]]
    if not resume:
        if paths["state"].exists() and not force:
            raise SnncError(
                "a search state exists here; pass --resume to continue it or --force to start over", paths["state"]
            )
        check_outputs(derived=siblings, force=force)
    click.get_current_context().with_resource(
        OutputPlan(
            named=[out], derived=siblings, inputs=[Path(data)] if data != "digits" else [], lock=[out], check=False
        )
    )


def _report_spikedhs(result: dict[str, Any]) -> None:
    g = result["genotype"]
    d = g.to_dict()
    if "cell" in d:  # a classifier genotype: one cell; a stereo one has a feature and a matching cell
        click.echo(f"cell {d['cell']['edges']} path {d['path']}")
    else:
        click.echo(f"feature cell {d['feature_cell']['edges']} path {d['feature_path']}")
        click.echo(f"matching cell {d['matching_cell']['edges']} path {d['matching_path']}")
    last: dict[str, Any] | None = result["last"]
    if last is not None:
        metric = last["val"].get(result["metric"], float("nan"))
        click.echo(
            f"search took {result['seconds']:.1f} s over {result['epochs_done']} epochs; "
            f"final {result['metric']} {metric:.4g}"
        )
