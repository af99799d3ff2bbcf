"""Throughput of SBT encoding: vectorised ``encode_sbt`` vs the per-event ``encode_sbt_reference``.

Generates N random events (default 3 M) inside one 50 ms window at MVSEC
resolution with realistic (jittered) rectification maps, times ``encode_sbt``
on all of them (best of ``--repeats``) and the reference on a subset (it is
~1000x slower), checks both agree on the subset, and prints events/s for both
and the speed-up ratio.

    .venv/bin/python benchmarks/bench_sbt.py [--events 3000000] [--ref-events 100000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from snnc.data import layout
from snnc.data.sbt import encode_sbt, encode_sbt_reference


def make_events(n: int, t_end: float, window: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.sort(t_end - window * rng.random(n))
    x = rng.integers(0, layout.WIDTH, n).astype(np.float64)
    y = rng.integers(0, layout.HEIGHT, n).astype(np.float64)
    p = rng.choice([-1.0, 1.0], n)
    return np.stack([x, y, t, p], axis=1)


def make_maps(seed: int = 1):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : layout.HEIGHT, 0 : layout.WIDTH].astype(np.float64)
    xmap = xx + 3.0 + rng.normal(0, 0.7, xx.shape)
    ymap = yy - 2.0 + rng.normal(0, 0.7, yy.shape)
    return xmap.astype(np.float32), ymap.astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=3_000_000)
    ap.add_argument("--ref-events", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    t_end, window = 1.5e9 + 10.0, 0.05
    events = make_events(args.events, t_end, window)
    maps = make_maps()

    fast_times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        out = encode_sbt(events, t_end, window=window, rect_maps=maps)
        fast_times.append(time.perf_counter() - t0)
    fast = min(fast_times)
    shuffled = events[np.random.default_rng(2).permutation(len(events))]
    unsorted_times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        out_u = encode_sbt(shuffled, t_end, window=window, rect_maps=maps)
        unsorted_times.append(time.perf_counter() - t0)
    fast_unsorted = min(unsorted_times)

    sub = events[: args.ref_events]
    t0 = time.perf_counter()
    ref = encode_sbt_reference(sub, t_end, window=window, rect_maps=maps)
    slow = time.perf_counter() - t0
    agree = np.array_equal(ref, encode_sbt(sub, t_end, window=window, rect_maps=maps))

    fast_rate = args.events / fast
    slow_rate = len(sub) / slow
    print(
        f"encode_sbt           : {args.events:>10,d} events in {fast * 1e3:9.1f} ms "
        f"-> {fast_rate / 1e6:8.2f} M events/s (best of {args.repeats})"
    )
    print(
        f"encode_sbt, unsorted : {args.events:>10,d} events in {fast_unsorted * 1e3:9.1f} ms "
        f"-> {args.events / fast_unsorted / 1e6:8.2f} M events/s (same events shuffled; equal: "
        f"{np.array_equal(out, out_u)})"
    )
    print(
        f"encode_sbt_reference : {len(sub):>10,d} events in {slow * 1e3:9.1f} ms -> {slow_rate / 1e6:8.4f} M events/s"
    )
    print(
        f"speed-up (per event) : {fast_rate / slow_rate:8.1f}x sorted, "
        f"{args.events / fast_unsorted / slow_rate:.1f}x unsorted"
    )
    print(f"outputs agree on the subset: {agree}; nonzero pixels in full SBT: {int(np.count_nonzero(out)):,d}")


if __name__ == "__main__":
    main()
