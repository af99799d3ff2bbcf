"""1 vs N processes (gloo, this machine): digits training samples/s and SNASNet candidates/s.

Runs the real CLI in subprocesses, ``snnc train`` / ``snnc search`` without and
with ``--nproc N``, and reads the rates the runs record: training samples/s
= epochs x training images / ``metrics.json``'s ``train_time_s`` (the epochs'
wall time on rank 0, without process start-up, evaluation or folding); SNASNet
candidates/s as the search reports it (``scored / seconds``; several processes:
wall time of the scoring rounds). Training is measured for both ``--bn-sync``
modes. Prints one table and the N/1 ratios; ``--json FILE`` also writes them.

Usage::

    python benchmarks/bench_distributed.py [--nproc 2] [--epochs 1] [--candidates 40] [--json out.json]

The numbers depend on how busy the machine is: on a shared 2-core machine two
processes compete with everything else for the same cores.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DIGITS_TRAIN = 1437  # sklearn digits, 80 % of 1797 (the default split)


def _snnc(args: list[str], timeout: float) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "snnc", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        raise SystemExit(f"snnc {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return proc.stdout


def train_rate(folder: Path, nproc: int, epochs: int, bn_sync: str, timeout: float) -> dict[str, Any]:
    """Samples/s of a short digits training run on ``nproc`` processes."""
    out = folder / f"train_{nproc}_{bn_sync}"
    args = [
        "train",
        "--arch",
        "spikedhs-cla",
        "--data",
        "digits",
        "--width",
        "4",
        "--steps",
        "2",
        "--epochs",
        str(epochs),
        "--lr",
        "0.1",
        "--threads",
        "1",
        "--quiet",
        "--out",
        str(out),
    ]
    if nproc > 1:
        args += ["--nproc", str(nproc), "--bn-sync", bn_sync]
    t0 = time.perf_counter()
    _snnc(args, timeout)
    wall = time.perf_counter() - t0
    metrics = json.loads((out / "metrics.json").read_text())
    return {
        "what": "train",
        "nproc": nproc,
        "bn_sync": bn_sync if nproc > 1 else "-",
        "world_size": metrics["world_size"],
        "train_time_s": metrics["train_time_s"],
        "rate": epochs * DIGITS_TRAIN / metrics["train_time_s"],
        "unit": "samples/s",
        "test_accuracy": metrics["test_accuracy"],
        "command_wall_s": wall,
    }


def search_rate(folder: Path, nproc: int, candidates: int, timeout: float) -> dict[str, Any]:
    """Candidates/s of a SNASNet search on ``nproc`` processes."""
    out = folder / f"snas_{nproc}.json"
    args = [
        "search",
        "--method",
        "snasnet",
        "--data",
        "digits",
        "--candidates",
        str(candidates),
        "--width",
        "8",
        "--fc-hidden",
        "32",
        "--batch-size",
        "32",
        "--time-steps",
        "2",
        "--quiet",
        "--out",
        str(out),
    ]
    if nproc > 1:
        args += ["--nproc", str(nproc)]
    t0 = time.perf_counter()
    text = _snnc(args, timeout)
    wall = time.perf_counter() - t0
    match = re.search(r"best cell (\S+ \S+ \S+ \S+) \(score ([-\d.inf]+)\) from (\d+) candidates in ([\d.]+) s", text)
    if match is None:
        raise SystemExit(f"unexpected snnc search output:\n{text}")
    seconds = float(match.group(4))
    return {
        "what": "snasnet",
        "nproc": nproc,
        "bn_sync": "-",
        "best": match.group(1),
        "rate": int(match.group(3)) / seconds,
        "unit": "candidates/s",
        "seconds": seconds,
        "command_wall_s": wall,
    }


def main() -> None:
    """Run the measurements and print the table and ratios."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nproc", type=int, default=2)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--candidates", type=int, default=40)
    p.add_argument("--timeout", type=float, default=1800.0)
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="snnc_bench_dist_") as tmp:
        folder = Path(tmp)
        rows.append(train_rate(folder, 1, a.epochs, "-", a.timeout))
        for mode in ("batch", "running"):
            rows.append(train_rate(folder, a.nproc, a.epochs, mode, a.timeout))
        rows.append(search_rate(folder, 1, a.candidates, a.timeout))
        rows.append(search_rate(folder, a.nproc, a.candidates, a.timeout))
    print(f"{'what':8} {'procs':>5} {'bn-sync':>8} {'rate':>10} {'unit':13} {'command s':>9}  notes")
    for r in rows:
        note = (
            f"test acc {r['test_accuracy']:.4f}, world_size {r['world_size']}"
            if r["what"] == "train"
            else f"best {r['best']}"
        )
        print(
            f"{r['what']:8} {r['nproc']:>5} {r['bn_sync']:>8} {r['rate']:>10.2f} {r['unit']:13} "
            f"{r['command_wall_s']:>9.1f}  {note}"
        )
    base_train, base_search = rows[0]["rate"], rows[3]["rate"]
    ratios = {
        f"train {a.nproc}/1 (bn-sync batch)": rows[1]["rate"] / base_train,
        f"train {a.nproc}/1 (bn-sync running)": rows[2]["rate"] / base_train,
        f"snasnet {a.nproc}/1": rows[4]["rate"] / base_search,
    }
    for name, value in ratios.items():
        print(f"ratio {name}: {value:.2f}x")
    print(f"cpu cores: {os.cpu_count()}, load average at the end: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    if a.json is not None:
        a.json.write_text(
            json.dumps({"rows": rows, "ratios": ratios, "cpus": os.cpu_count(), "loadavg": os.getloadavg()}, indent=2)
            + "\n"
        )


if __name__ == "__main__":
    main()
