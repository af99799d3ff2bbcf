"""Peak memory of ``snnc stream`` against recording length: it must not grow with the recording.

Synthesizes recordings of increasing length at a reduced resolution (the
synthetic generator holds all events in memory while *writing*, which is fine
at these sizes and happens in this parent process, not in the measured one),
then streams each one in a fresh child process (``snnc stream --out`` with
energy counting on, the full per-frame pipeline) and reads the child's peak
resident set size (``ru_maxrss``). Prints events, file sizes, frames and peak
RSS per length, and the RSS ratio longest / shortest.

    .venv/bin/python benchmarks/bench_stream_memory.py [--lengths 20,160,640] [--height 64 --width 86]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(argv: list[str]) -> None:
    """Run ``snnc stream ARGV`` in this process and print peak RSS (MiB) as JSON on the last line."""
    from snnc.cli import cli

    cli.main(args=argv, prog_name="snnc", standalone_mode=False)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_rss_mib": peak}))


def small_genotype(folder: Path) -> Path:
    from snnc.models.genotype import load_genotype

    d = load_genotype("spikedhs-stereo").to_dict()
    d.update(feature_filter_multiplier=2, matching_filter_multiplier=2, disparities=9)
    path = folder / "small_stereo.json"
    path.write_text(json.dumps(d))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="20,160,640", help="depth frames (20 Hz) per recording")
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--width", type=int, default=86)
    parser.add_argument("--model", default=None, help="network (default: a small SpikeDHS-Stereo genotype)")
    parser.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child)
        return
    from snnc.data.synth import synthesize

    lengths = [int(v) for v in args.lengths.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = args.model or str(small_genotype(tmp))
        for n in lengths:
            data, gt = synthesize(
                tmp / f"len{n}_data.hdf5", frames=n, height=args.height, width=args.width, progress=False
            )
            import h5py

            with h5py.File(data, "r") as f:
                events = int(f["davis/left/events"].shape[0] + f["davis/right/events"].shape[0])
            out = tmp / f"len{n}_results.h5"
            cmd = [
                sys.executable,
                __file__,
                "--child",
                "stream",
                str(data),
                "--model",
                model,
                "--out",
                str(out),
                "--json",
                "--threads",
                "1",
                "--force",
            ]
            env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if proc.returncode != 0:
                raise SystemExit(f"stream of {n} frames failed:\n{proc.stderr[-2000:]}")
            lines = proc.stdout.strip().splitlines()
            summary, rss = json.loads(lines[-2]), json.loads(lines[-1])["peak_rss_mib"]
            rows.append(
                (
                    n,
                    events,
                    data.stat().st_size / 2**20,
                    out.stat().st_size / 2**20,
                    summary["frames"],
                    summary["fps"],
                    rss,
                )
            )
            data.unlink()
            gt.unlink()
            print(f"  {n} frames done: peak RSS {rss:.1f} MiB", flush=True)
    print(
        f"\n{args.height}x{args.width}, model {'small SpikeDHS-Stereo' if args.model is None else args.model}, "
        f"torch backend, 1 thread, energy + metrics + results.h5 on"
    )
    print(
        f"{'frames':>7s} {'seconds':>8s} {'events':>10s} {'data MiB':>9s} {'out MiB':>8s} {'fps':>7s} "
        f"{'peak RSS MiB':>13s}"
    )
    for n, ev, dmb, omb, frames, fps, rss in rows:
        print(f"{frames:7d} {n / 20:8.1f} {ev:10d} {dmb:9.1f} {omb:8.1f} {fps:7.2f} {rss:13.1f}")
    print(
        f"\npeak RSS longest / shortest: {rows[-1][-1] / rows[0][-1]:.3f} "
        f"(recording {rows[-1][0] / rows[0][0]:.0f}x longer, {rows[-1][1] / max(rows[0][1], 1):.0f}x the events)"
    )


if __name__ == "__main__":
    main()
