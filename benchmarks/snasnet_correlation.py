"""Does the SNASNet score predict trained accuracy? Kendall tau on digits (acceptance check).

Protocol (fixed before looking at any correlation; every variant below is printed):

Candidates
    The first ``--candidates`` (36) distinct cells of the seeded SNASNet
    candidate list (``candidate_cells(.., seed=--seed)``, backward edges on),
    i.e. the cells ``snnc search --method snasnet --seed 0`` scores first.

Score (training-free)
    Each candidate is built untrained (init seed = its index) at the search
    defaults (width 16, FC 128, T = 5, dropout off, train mode so BatchNorm
    uses batch statistics) and scored by ``log|det K|`` of the
    sparsity-aware Hamming kernel over all LIF layers and time steps. Four
    variants, all reported: the kernel summed over layers x steps as in the
    paper (eq. 5, the search default) or averaged as in the authors' code,
    each on the search's fixed digits batch (64 images) or as in the
    authors' code (mean over 2 batches of 256). No score sees a trained
    weight or a label.

Accuracy
    Each candidate is trained ``--seeds`` (3) times (seed = init and batch
    order) on the full digits search-train split (A + B, 1150 images): Adam,
    lr ``--lr`` (0.01) cosine-annealed to 0, batch 32, ``--epochs`` (8),
    same width / FC / T, dropout off. Accuracy = validation accuracy (287
    images, eval mode: BatchNorm running statistics, as deployed), averaged
    over the seeds. The training budget was chosen by the seed-to-seed
    reliability of the accuracies (not by the correlation). A diagnostic
    column re-evaluates the same trained nets with BatchNorm on the
    validation batch's statistics: cells with recurrent (backward) loops
    drift over time steps, so one set of running statistics shared by all
    steps can cost them most of their accuracy; this column is not the
    acceptance number.

Printed: every candidate (scores, per-seed accuracies), the seed-to-seed
Kendall tau of the accuracies (noise floor), then for each score variant
Kendall's tau-b with the mean accuracy (and p), the selected (best-scored)
candidate's accuracy against the median candidate, and the wall time.
A last diagnostic (added after the first full run, so not part of the
acceptance) splits the candidates by their number of LIF edges (conv
edges of the cell): within such a group every score variant differs by a
constant (``N log(calls)``), so it isolates the SAHD diversity term from
the layer-count term. It prints the group-size-weighted Kendall tau and a
permutation p-value (accuracies shuffled within groups).

Budgeted candidates (``--conv-edges K``, confirmatory run)
    The first full run (36 unconstrained cells) found no positive tau: on
    digits, more LIF layers do not buy accuracy, while the summed score grows
    with them. Its within-group diagnostic (analysed after the fact) pointed
    at cells of equal size. ``--conv-edges K`` draws the candidates from the
    budgeted search space instead (``snnc search --conv-edges K``: only cells
    with exactly K conv edges), leaving everything else as above. The
    confirmatory run was fixed before it ran: K = 3, ``--seed 1`` (a fresh
    candidate list; it shares no cell with the first run), 24 candidates, 3 seeds x 8 epochs, eval-mode accuracy,
    the paper's summed score as the acceptance variant. Result
    (``benchmarks/results/snasnet_correlation_digits_conv3.*``, 1103 s):
    Kendall tau +0.222 (p = 0.13; permutation p = 0.066 one-sided), the
    selected cell 97.33 % (rank 2/24) vs the median 95.41 %; seed-to-seed
    tau of the accuracies +0.58.

Not named ``bench_*``: it trains every candidate (about 30 minutes on one
shared core at the defaults), so ``make bench`` does not run it.
``--jsonl`` saves one row per candidate; ``--from-jsonl`` reprints the
summary from such a file without scoring or training.

    .venv/bin/python benchmarks/snasnet_correlation.py [--candidates 36] [--epochs 8] [--seeds 3]
        [--lr 0.01] [--seed 0] [--conv-edges K] [--threads 1] [--jsonl rows.jsonl] [--from-jsonl rows.jsonl]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from snnc.data.images import digits_arrays
from snnc.models.snasnet import SNASNetGenotype, build_snasnet
from snnc.nas.snasnet_search import SNASNetSearchConfig, candidate_cells, conv_edge_count, score_batches, score_cell
from snnc.nas.tasks import digits_split
from snnc.train.optim import freeze_batchnorm

#: score variants: (label, kernel reduction, batch size, batches)
VARIANTS = (
    ("sum, batch 64 (paper eq. 5; search default)", "sum", 64, 1),
    ("mean, batch 64 (authors' reduction)", "mean", 64, 1),
    ("sum, 2 x batch 256 (authors' batches)", "sum", 256, 2),
    ("mean, 2 x batch 256 (authors' code)", "mean", 256, 2),
)


def distinct_cells(n: int, seed: int, conv_edges: int | None = None) -> list[str]:
    """The first ``n`` distinct cells of the seeded candidate list (of the ``conv_edges`` budget if given)."""
    cells: list[str] = []
    for c in candidate_cells(20 * n, seed, conv_edges=conv_edges):
        if c not in cells:
            cells.append(c)
        if len(cells) == n:
            break
    return cells


def _accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, time_steps: int) -> float:
    with torch.no_grad():
        logits = model(x.unsqueeze(0).expand(time_steps, *x.shape)).mean(0)
    return 100.0 * float((logits.argmax(1) == y).float().mean())


def train_and_eval(cell: str, args: argparse.Namespace, data: dict, seed: int) -> tuple[float, float]:
    """Validation accuracy (%) after training: (eval mode, BatchNorm on the validation batch's statistics)."""
    torch.manual_seed(seed)
    g = SNASNetGenotype(
        cell=cell,
        time_steps=args.time_steps,
        channels=args.width,
        in_channels=1,
        image_size=8,
        num_classes=10,
        vote=10,
        fc_hidden=args.fc_hidden,
        final_pool=2,
        dropout=0.0,
    )
    model = build_snasnet(g)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    x, y = data["x_train"], data["y_train"]
    steps = args.epochs * -(-len(y) // args.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(args.epochs):
        model.train()
        if epoch >= args.epochs - args.freeze_bn_epochs:
            freeze_batchnorm(model)  # as snnc train --freeze-bn-epochs
        perm = torch.randperm(len(y), generator=gen)
        for i in range(0, len(y), args.batch_size):
            j = perm[i : i + args.batch_size]
            seq = x[j].unsqueeze(0).expand(args.time_steps, *x[j].shape)
            loss = F.cross_entropy(model(seq).mean(0), y[j])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    acc = _accuracy(model, data["x_val"], data["y_val"], args.time_steps)
    model.train()  # diagnostic only: normalise with the validation batch's own statistics
    acc_batch_stats = _accuracy(model, data["x_val"], data["y_val"], args.time_steps)
    return acc, acc_batch_stats


def summarise(name: str, scores: np.ndarray, acc: np.ndarray, cells: list[str]) -> str:
    """One line: Kendall tau-b (p), the selected candidate vs the median."""
    from scipy.stats import kendalltau

    tau, p = kendalltau(scores, acc)
    best = int(np.argmax(scores))
    med = float(np.median(acc))
    verdict = "beats" if acc[best] > med else "does not beat"
    return (
        f"{name:46s}: Kendall tau {tau:+.3f} (p = {p:.3g}); selected {cells[best]} acc {acc[best]:.2f} % "
        f"vs median {med:.2f} % (rank {int((acc > acc[best]).sum()) + 1}/{len(acc)}) -> {verdict} the median"
    )


def stratified_tau(
    scores: np.ndarray, acc: np.ndarray, groups: np.ndarray, perms: int = 2000, seed: int = 0
) -> tuple[float, float, list[tuple[int, int, float]]]:
    """Group-size-weighted Kendall tau within ``groups`` (of >= 3), its permutation p, per-group taus."""
    from scipy.stats import kendalltau

    members = [np.flatnonzero(groups == g) for g in np.unique(groups)]
    members = [m for m in members if len(m) >= 3]
    if not members:
        return float("nan"), float("nan"), []

    def weighted(a: np.ndarray) -> float:
        taus = [kendalltau(scores[m], a[m])[0] for m in members]
        return float(
            np.nansum([t * len(m) for t, m in zip(taus, members, strict=False)]) / sum(len(m) for m in members)
        )

    observed = weighted(acc)
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(perms):
        shuffled = acc.copy()
        for m in members:
            shuffled[m] = acc[rng.permutation(m)]
        hits += weighted(shuffled) >= observed
    per_group = [(int(groups[m[0]]), len(m), float(kendalltau(scores[m], acc[m])[0])) for m in members]
    return observed, (hits + 1) / (perms + 1), per_group


def collect(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Score and train every candidate (see module docstring); one row per candidate."""
    images, labels = digits_arrays()
    split = digits_split(labels)
    train = np.concatenate([split["A"], split["B"]])
    data = {
        "x_train": torch.from_numpy(images[train]),
        "y_train": torch.from_numpy(labels[train]),
        "x_val": torch.from_numpy(images[split["val"]]),
        "y_val": torch.from_numpy(labels[split["val"]]),
    }
    common = {"seed": args.seed, "width": args.width, "fc_hidden": args.fc_hidden, "time_steps": args.time_steps}
    scorers = []
    for _, reduce, bs, rep in VARIANTS:
        cfg = SNASNetSearchConfig.resolve({**common, "batch_size": bs, "repeat": rep})
        scorers.append((reduce, score_batches(cfg, torch.device("cpu")), cfg.search_genotype()))
    cells = distinct_cells(args.candidates, args.seed, args.conv_edges)
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    print(
        f"{len(cells)} candidates x {args.seeds} seeds x {args.epochs} epochs (Adam lr {args.lr}, cosine); "
        f"scores: " + " | ".join(v[0] for v in VARIANTS),
        flush=True,
    )
    for i, cell in enumerate(cells):
        scores = [score_cell(cell, batches, net, reduce, seed=i) for reduce, batches, net in scorers]
        runs = [train_and_eval(cell, args, data, seed) for seed in range(args.seeds)]
        row = {
            "index": i,
            "cell": cell,
            "scores": scores,
            "acc": [r[0] for r in runs],
            "acc_batch_stats": [r[1] for r in runs],
            "epochs": args.epochs,
            "lr": args.lr,
            "freeze_bn_epochs": args.freeze_bn_epochs,
            "elapsed_s": time.perf_counter() - t0,
        }
        rows.append(row)
        if args.jsonl is not None:
            with args.jsonl.open("a") as f:
                f.write(json.dumps(row) + "\n")
        print(
            f"{i:3d} {cell}  scores "
            + " ".join(f"{s:8.2f}" for s in scores)
            + f"  val acc {np.mean(row['acc']):6.2f} % ("
            + " ".join(f"{a:.1f}" for a in row["acc"])
            + f")  batch-stat acc {np.mean(row['acc_batch_stats']):6.2f} %  ({row['elapsed_s']:.0f} s)",
            flush=True,
        )
    return rows


def report(rows: list[dict[str, Any]], seconds: float) -> None:
    """Print the noise floor, every variant's tau / selection, the diagnostics and the totals."""
    from scipy.stats import kendalltau

    cells = [r["cell"] for r in rows]
    per_seed = np.array([r["acc"] for r in rows])  # (candidates, seeds)
    seeds = per_seed.shape[1]
    acc = per_seed.mean(1)
    acc_bs = np.array([r["acc_batch_stats"] for r in rows]).mean(1)
    scores = np.array([r["scores"] for r in rows])  # (candidates, variants)
    if seeds > 1:
        pair_taus = [kendalltau(per_seed[:, a], per_seed[:, b])[0] for a, b in itertools.combinations(range(seeds), 2)]
        print(
            f"noise floor: Kendall tau between single seeds' accuracies, mean {np.mean(pair_taus):+.3f} "
            f"(pairs: {', '.join(f'{t:+.2f}' for t in pair_taus)})"
        )
    print(f"--- accuracy = mean val accuracy over {seeds} seeds, eval mode (acceptance)")
    for k, (name, *_rest) in enumerate(VARIANTS):
        print(summarise(name, scores[:, k], acc, cells))
    print("--- diagnostic: same trained nets, BatchNorm on the validation batch's statistics")
    for k, (name, *_rest) in enumerate(VARIANTS):
        print(summarise(name, scores[:, k], acc_bs, cells))
    groups = np.array([conv_edge_count(c) for c in cells])
    if len(np.unique(groups)) > 1:
        tau_g, _ = kendalltau(groups, acc)
        tau_gs, _ = kendalltau(groups, scores[:, 0])
        sizes = f"LIF edges per cell vs accuracy tau {tau_g:+.3f}, vs score (sum) tau {tau_gs:+.3f}"
    else:
        sizes = f"every cell has {groups[0]} LIF edges"
    print(f"--- diagnostic: {sizes}; tau within groups of equal LIF-edge count (eval-mode accuracy):")
    for k, (name, *_rest) in enumerate(VARIANTS):
        t, p, per_group = stratified_tau(scores[:, k], acc, groups)
        if not per_group:
            print(f"{name:46s}: no group of >= 3 cells")
            continue
        print(
            f"{name:46s}: weighted tau {t:+.3f} (permutation p = {p:.3g}); by group "
            + ", ".join(f"{g} edges n={n} {tg:+.2f}" for g, n, tg in per_group)
        )
    epochs = rows[0].get("epochs", "?")
    print(
        f"accuracy range {acc.min():.2f} .. {acc.max():.2f} % (median {np.median(acc):.2f} %), {len(rows)} "
        f"candidates, {seeds} seeds x {epochs} epochs each, {seconds:.0f} s"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--candidates", type=int, default=36)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--seeds", type=int, default=3, help="training runs per candidate (accuracy = their mean)")
    ap.add_argument("--width", type=int, default=16, help="channels of the scored and trained networks")
    ap.add_argument("--fc-hidden", type=int, default=128)
    ap.add_argument("--time-steps", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=32, help="training batch size")
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument(
        "--freeze-bn-epochs",
        type=int,
        default=0,
        help="last N epochs with BatchNorm statistics frozen (snnc train --freeze-bn-epochs)",
    )
    ap.add_argument("--seed", type=int, default=0, help="candidate list seed")
    ap.add_argument(
        "--conv-edges",
        type=int,
        default=None,
        help="only candidates with exactly this many conv edges (budgeted search space)",
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--jsonl", type=Path, default=None, help="also write one JSON row per candidate here")
    ap.add_argument(
        "--from-jsonl",
        type=Path,
        default=None,
        help="reprint the summary of rows saved by --jsonl (no scoring or training)",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.from_jsonl is not None:
        rows = [json.loads(line) for line in args.from_jsonl.read_text().splitlines() if line.strip()]
        report(rows, float(rows[-1].get("elapsed_s", float("nan"))))
        return
    t0 = time.perf_counter()
    rows = collect(args)
    report(rows, time.perf_counter() - t0)


if __name__ == "__main__":
    main()
