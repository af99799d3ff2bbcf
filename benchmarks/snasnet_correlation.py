"""Does the SNASNet score predict trained accuracy? Kendall tau on digits (acceptance check).

Takes the first ``--candidates`` distinct cells of the seeded SNASNet candidate
list, scores each untrained (search defaults: batch 64, width 16, FC 128,
T = 5; kernel summed as in the paper and averaged as in the authors' code),
trains each briefly on the digits search split (A + B, Adam lr 0.03 annealed
to 0 (cosine), batch 32, ``--epochs``)
at a small width and measures validation accuracy. Prints every candidate,
Kendall's tau between score and accuracy for both kernel reductions, and
whether the best-scored candidate beats the median candidate. Not named
``bench_*``: it trains every candidate (10-20 minutes on one core), so
``make bench`` does not run it.

    .venv/bin/python benchmarks/snasnet_correlation.py [--candidates 30] [--epochs 6] [--threads 1]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from snnc.models.snasnet import SNASNetGenotype, build_snasnet
from snnc.nas.snasnet_search import SNASNetSearchConfig, candidate_cells, score_batches, score_cell
from snnc.nas.tasks import digits_split
from snnc.train.data_cls import digits_arrays


def distinct_cells(n: int, seed: int) -> list[str]:
    cells: list[str] = []
    pool = candidate_cells(20 * n, seed)
    for c in pool:
        if c not in cells:
            cells.append(c)
        if len(cells) == n:
            break
    return cells


def train_and_eval(cell: str, args: argparse.Namespace, data: dict) -> float:
    """Validation accuracy (%) after ``args.epochs`` epochs of Adam (cosine-annealed lr) on digits."""
    torch.manual_seed(args.seed)
    g = SNASNetGenotype(cell=cell, timesteps=args.time_steps, channels=args.width, in_channels=1, image_size=8,
                        num_classes=10, vote=10, fc_hidden=args.fc_hidden, final_pool=2, dropout=0.0)
    model = build_snasnet(g)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    x, y = data["x_train"], data["y_train"]
    steps = args.epochs * -(-len(y) // args.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    gen = torch.Generator().manual_seed(args.seed)
    for _ in range(args.epochs):
        model.train()
        perm = torch.randperm(len(y), generator=gen)
        for i in range(0, len(y), args.batch_size):
            j = perm[i:i + args.batch_size]
            seq = x[j].unsqueeze(0).expand(args.time_steps, *x[j].shape)
            loss = F.cross_entropy(model(seq).mean(0), y[j])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    with torch.no_grad():
        xv, yv = data["x_val"], data["y_val"]
        logits = model(xv.unsqueeze(0).expand(args.time_steps, *xv.shape)).mean(0)
    return 100.0 * float((logits.argmax(1) == yv).float().mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--candidates", type=int, default=30)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--width", type=int, default=16, help="channels of the trained networks")
    ap.add_argument("--fc-hidden", type=int, default=128)
    ap.add_argument("--time-steps", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from scipy.stats import kendalltau

    images, labels = digits_arrays()
    split = digits_split(labels)
    train = np.concatenate([split["A"], split["B"]])
    data = {"x_train": torch.from_numpy(images[train]), "y_train": torch.from_numpy(labels[train]),
            "x_val": torch.from_numpy(images[split["val"]]), "y_val": torch.from_numpy(labels[split["val"]])}
    cfg = SNASNetSearchConfig.resolve({"seed": args.seed})
    batches = score_batches(cfg, torch.device("cpu"))
    net = cfg.search_genotype()
    cells = distinct_cells(args.candidates, args.seed)
    rows = []
    t0 = time.perf_counter()
    for i, cell in enumerate(cells):
        s_sum = score_cell(cell, batches, net, "sum", seed=i)
        s_mean = score_cell(cell, batches, net, "mean", seed=i)
        acc = train_and_eval(cell, args, data)
        rows.append((cell, s_sum, s_mean, acc))
        print(f"{i:3d} {cell}  score(sum) {s_sum:9.2f}  score(mean) {s_mean:9.2f}  val acc {acc:6.2f} %"
              f"  ({time.perf_counter() - t0:.0f} s)", flush=True)
    acc = np.array([r[3] for r in rows])
    for k, name in ((1, "sum (paper)"), (2, "mean (authors' code)")):
        scores = np.array([r[k] for r in rows])
        tau, p = kendalltau(scores, acc)
        best = int(np.argmax(scores))
        print(f"kernel {name:22s}: Kendall tau {tau:+.3f} (p = {p:.3g}); selected {rows[best][0]} "
              f"acc {acc[best]:.2f} % vs median {np.median(acc):.2f} % (rank {int((acc > acc[best]).sum()) + 1}"
              f"/{len(acc)}) -> {'beats' if acc[best] > np.median(acc) else 'does not beat'} the median")
    print(f"accuracy range {acc.min():.2f} .. {acc.max():.2f} %, {len(rows)} candidates, "
          f"{args.epochs} epochs each, {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
