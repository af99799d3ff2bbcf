"""CPU backends side by side: frames/s of torch, onnxruntime and OpenVINO at 1 and 2 threads, same run.

Synthesizes one MVSEC-layout recording (full 260 x 346 by default) and streams
it through each backend at each thread count, in this process, one run after
the other (threads outer, backends inner, so a change in the machine's load
hits every backend of a thread count alike). Energy counting is off, so every
backend does the same work: reading + SBT encoding + one network step + the
estimator. The first frame of each run is a warm-up (export / compilation) and
is not timed. Prints, per run, frames/s of the backend alone and of the whole
pipeline, the ratio to onnxruntime at the same thread count, the 2-thread /
1-thread ratio per backend, and the largest disparity difference to onnxruntime
(the same ONNX file in two runtimes). The machine's load average is printed
before and after: on a shared machine the thread scaling is a lower bound.

    nice .venv/bin/python benchmarks/bench_backends.py [--height 260 --width 346 --frames 4]
        [--backends torch,onnx,openvino] [--threads 1,2] [--gain 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from snnc.data.mvsec import MVSECRecording
from snnc.data.synth import synthesize
from snnc.runtime import make_backend
from snnc.runtime.engine import StreamEngine
from snnc.runtime.frames import frame_times
from snnc.runtime.model import load_network


def run_backend(name: str, model: str, data: Path, threads: int, gain: float) -> dict[str, Any]:
    """Stream ``data`` through backend ``name`` at ``threads`` threads; frames/s without the warm-up frame."""
    torch.set_num_threads(threads)
    net = load_network(model)
    if gain != 1.0:  # stand-in for trained weights: the untrained net is silent
        with torch.no_grad():
            for p in net.model.parameters():
                if p.dim() > 1:
                    p.mul_(gain)
    options = {} if name == "torch" else {"threads": threads}
    start = time.perf_counter()
    backend = make_backend(name, net, torch.device("cpu"), **options)
    engine = StreamEngine(net, backend, energy=False)
    disparities, first = [], None
    read0 = infer0 = 0.0
    try:
        with MVSECRecording(data) as rec:
            times, clock = frame_times(rec)
            for r in engine.run(rec, times, with_gt=clock == "gt"):
                if first is None:
                    first = time.perf_counter() - start
                    read0, infer0 = engine.summary.read_s, engine.summary.infer_s
                disparities.append(r.disparity)
    finally:
        backend.close()
    s = engine.summary
    timed = s.frames - 1
    read, infer = s.read_s - read0, s.infer_s - infer0
    return {
        "backend": name,
        "threads": threads,
        "frames": timed,
        "setup_s": first,
        "fps": timed / (read + infer),
        "infer_fps": timed / infer,
        "infer_s_per_frame": infer / timed,
        "disparity": np.stack(disparities),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=260)
    parser.add_argument("--width", type=int, default=346)
    parser.add_argument("--frames", type=int, default=4, help="depth frames in the recording (first = warm-up)")
    parser.add_argument("--model", default="spikedhs-stereo", help="preset, genotype JSON or checkpoint")
    parser.add_argument("--backends", default="torch,onnx,openvino")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--data", type=Path, default=None, help="stream this recording instead of a synthetic one")
    parser.add_argument("--gain", type=float, default=3.0, help="scale every weight (an untrained net is silent)")
    parser.add_argument("--json", type=Path, default=None, help="also write the table as JSON here")
    args = parser.parse_args()
    backends = args.backends.split(",")
    thread_counts = [int(t) for t in args.threads.split(",")]
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            data, _ = synthesize(
                Path(tmp) / "bench_data.hdf5", frames=args.frames, height=args.height, width=args.width, progress=False
            )
        with MVSECRecording(data) as rec:
            size = f"{rec.height}x{rec.width}"
        print(
            f"model {args.model}, recording {data.name} ({size}, {args.frames} frames, first one warm-up), "
            f"threads {thread_counts}, weight gain {args.gain:g}, energy counting off; "
            f"{os.cpu_count()} CPUs, load average {load_before[0]:.2f}",
            flush=True,
        )
        rows = []
        for threads in thread_counts:
            for name in backends:
                rows.append(run_backend(name, args.model, data, threads, args.gain))
                r = rows[-1]
                print(
                    f"  {name:8s} {threads} thread(s): {r['infer_fps']:.3f} frames/s (backend), "
                    f"setup {r['setup_s']:.1f} s",
                    flush=True,
                )
    load_after = os.getloadavg()
    by = {(r["backend"], r["threads"]): r for r in rows}
    print(
        f"\n{'backend':9s} {'threads':>7s} {'frames':>6s} {'setup s':>8s} {'s/frame':>8s} {'fps':>7s} "
        f"{'backend fps':>11s} {'vs onnx':>8s} {'vs 1 thr':>8s} {'max |d-d_onnx|':>15s}"
    )
    table = []
    for r in rows:
        ref = by.get(("onnx", r["threads"]))
        one = by.get((r["backend"], thread_counts[0]))
        vs_onnx = r["infer_fps"] / ref["infer_fps"] if ref else float("nan")
        scaling = r["infer_fps"] / one["infer_fps"] if one else float("nan")
        diff = float(np.abs(r["disparity"] - ref["disparity"]).max()) if ref else float("nan")
        print(
            f"{r['backend']:9s} {r['threads']:7d} {r['frames']:6d} {r['setup_s']:8.1f} {r['infer_s_per_frame']:8.3f} "
            f"{r['fps']:7.3f} {r['infer_fps']:11.3f} {vs_onnx:7.2f}x {scaling:7.2f}x {diff:15.2e}"
        )
        table.append(
            {k: v for k, v in r.items() if k != "disparity"}
            | {"vs_onnx": vs_onnx, "vs_first_thread_count": scaling, "max_disparity_diff_to_onnx": diff}
        )
    print(
        f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} on {os.cpu_count()} CPUs "
        "(a shared machine: other work takes cores, so the thread scaling is a lower bound)"
    )
    if args.json is not None:
        args.json.write_text(
            json.dumps({"size": size, "load_before": load_before, "load_after": load_after, "rows": table}, indent=1)
        )


if __name__ == "__main__":
    main()
