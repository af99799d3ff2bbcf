"""SNASNet search throughput on CPU: candidates scored per second, and the time for 5000.

Scores the same seeded candidate list (:func:`snnc.nas.snasnet_search.candidate_cells`)
with the search defaults (digits 8x8, T = 5, width 16, FC 128, batch 64) and a
few variations, single- and multi-threaded, and prints candidates/s, the
projected time of a 5000-candidate search and the share of one candidate spent
building the network vs. running it with the kernel hooks.

    .venv/bin/python benchmarks/bench_snasnet_search.py [--candidates 60] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from snnc.models.snasnet import build_snasnet
from snnc.nas.snasnet_search import SNASNetSearchConfig, candidate_cells, score_batches, score_cell, score_network


def rate(cells: list[str], overrides: dict, threads: int) -> tuple[float, float]:
    """(candidates/s, fraction of time spent building) for ``overrides`` of the search config."""
    torch.set_num_threads(threads)
    cfg = SNASNetSearchConfig.resolve(overrides)
    batches = score_batches(cfg, torch.device("cpu"))
    net = cfg.search_genotype()
    score_cell(cells[0], batches, net)  # warm-up (first meta-probe imports)
    t0 = time.perf_counter()
    for i, c in enumerate(cells):
        score_cell(c, batches, net, seed=i)
    total = time.perf_counter() - t0
    t0 = time.perf_counter()
    for c in cells:
        build_snasnet(net, cell=c, dropout=0.0)
    build = time.perf_counter() - t0
    return len(cells) / total, build / total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--candidates", type=int, default=60)
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the first rows")
    args = ap.parse_args()
    cells = candidate_cells(args.candidates, seed=0)
    rows = [
        ("defaults (batch 64, width 16, FC 128, T 5)", {}, args.threads),
        ("batch 32", {"batch_size": 32}, args.threads),
        ("batch 128", {"batch_size": 128}, args.threads),
        ("width 32, FC 256", {"width": 32, "fc_hidden": 256}, args.threads),
        ("defaults, torch default threads", {}, torch.get_num_threads()),
    ]
    print(f"{'setting':45s} {'cand/s':>8s} {'5000 cand.':>11s} {'build share':>11s}")
    base = None
    for name, overrides, threads in rows:
        r, build = rate(cells, overrides, threads)
        base = base or r
        print(f"{name:45s} {r:8.1f} {5000 / r / 60:9.1f} min {100 * build:10.1f}% (x{r / base:.2f}, {threads} threads)")
    # the kernel alone: one hook call's work at the default batch on a 1024-neuron layer
    torch.set_num_threads(args.threads)
    spikes = (torch.rand(64, 1024) > 0.8).float()
    from snnc.nas.snasnet_search import sah_kernel

    t0 = time.perf_counter()
    for _ in range(200):
        sah_kernel(spikes)
    print(f"sah_kernel (64 samples x 1024 neurons): {(time.perf_counter() - t0) / 200 * 1e6:.0f} us per call")
    _ = score_network  # re-exported for interactive use


if __name__ == "__main__":
    main()
