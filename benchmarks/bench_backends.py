"""CPU backends side by side: torch, onnxruntime and OpenVINO at 1 and 2 threads, frames interleaved, same run.

Synthesizes one MVSEC-layout recording (full 260 x 346 by default), encodes
its SBT frames once, and for each thread count builds every backend on the
same network and steps them **in turn on each frame** (torch, onnx, openvino,
torch, ...), so a change in a shared machine's load hits every backend alike.
Each backend does the same work per frame: one network step + the sub-pixel
estimator (what ``snnc stream`` reports as ``infer_fps``; energy counting off).
The first frame is a warm-up and is not timed. Per backend and thread count:
wall seconds per frame, process CPU seconds per frame (all threads; at one
thread close to the time an idle machine would take), frames/s, the ratio to
onnxruntime at the same thread count, the 2-thread / 1-thread wall ratio, and
the largest disparity difference to onnxruntime (unscaled px). The load average is printed
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

from snnc.data import layout
from snnc.data.mvsec import MVSECRecording
from snnc.data.synth import synthesize
from snnc.models.stereo import estimate_disparity
from snnc.runtime import make_backend
from snnc.runtime.frames import frame_times, iter_frames
from snnc.runtime.model import load_network


def encode(data: Path) -> list[torch.Tensor]:
    """Every frame's SBT stacks ``(1, 2, C, H, W)`` float32."""
    with MVSECRecording(data) as rec:
        times, clock = frame_times(rec)
        return [torch.from_numpy(f.x).float()[None] for f in iter_frames(rec, times, with_gt=clock == "gt")]


def run_threads(names: list[str], model: str, frames: list[torch.Tensor], threads: int, gain: float) -> list[dict]:
    """All backends at ``threads`` threads, stepped in turn on each frame."""
    torch.set_num_threads(threads)
    net = load_network(model)
    if gain != 1.0:  # stand-in for trained weights: the untrained net is silent
        with torch.no_grad():
            for p in net.model.parameters():
                if p.dim() > 1:
                    p.mul_(gain)
    disp_step = float(getattr(net.model, "disp_step", 2.0))
    rows: dict[str, dict[str, Any]] = {}
    backends = {}
    try:
        for name in names:
            start = time.perf_counter()
            be = make_backend(name, net, torch.device("cpu"), **({} if name == "torch" else {"threads": threads}))
            be.reset(frames[0])
            backends[name] = be
            rows[name] = {"backend": name, "threads": threads, "setup_s": time.perf_counter() - start}
            rows[name].update(wall=[], cpu=[], disparity=[])
        for t, x in enumerate(frames):
            for name, be in backends.items():
                w0, c0 = time.perf_counter(), time.process_time()
                cost = be.step(x)
                disp = estimate_disparity(cost.float(), disp_step=disp_step)[0].numpy() / layout.DISPARITY_SCALE
                w1, c1 = time.perf_counter(), time.process_time()
                if t > 0:
                    rows[name]["wall"].append(w1 - w0)
                    rows[name]["cpu"].append(c1 - c0)
                rows[name]["disparity"].append(disp)
            print(f"  {threads} thread(s), frame {t} done", flush=True)
    finally:
        for be in backends.values():
            be.close()
    out = []
    for r in rows.values():
        wall, cpu = sum(r.pop("wall")), sum(r.pop("cpu"))
        n = len(frames) - 1
        out.append(r | {"frames": n, "wall_s_per_frame": wall / n, "cpu_s_per_frame": cpu / n, "fps": n / wall})
        out[-1]["disparity"] = np.stack(r["disparity"])
    return out


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
    names = args.backends.split(",")
    thread_counts = [int(t) for t in args.threads.split(",")]
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            data, _ = synthesize(
                Path(tmp) / "bench_data.hdf5", frames=args.frames, height=args.height, width=args.width, progress=False
            )
        frames = encode(data)
    size = "x".join(str(s) for s in frames[0].shape[-2:])
    print(
        f"model {args.model}, {size}, {len(frames)} frames (first one warm-up), backends {names} stepped in turn, "
        f"threads {thread_counts}, weight gain {args.gain:g}, energy counting off; "
        f"{os.cpu_count()} CPUs, load average {load_before[0]:.2f}",
        flush=True,
    )
    rows = []
    for threads in thread_counts:
        rows += run_threads(names, args.model, frames, threads, args.gain)
    load_after = os.getloadavg()
    by = {(r["backend"], r["threads"]): r for r in rows}
    print(
        f"\n{'backend':9s} {'threads':>7s} {'frames':>6s} {'setup s':>8s} {'wall s/fr':>9s} {'cpu s/fr':>9s} "
        f"{'fps':>7s} {'vs onnx':>8s} {'vs 1 thr':>8s} {'max |dd| px':>12s}"
    )
    table = []
    for r in rows:
        ref = by.get(("onnx", r["threads"]))
        one = by.get((r["backend"], thread_counts[0]))
        vs_onnx = r["fps"] / ref["fps"] if ref else float("nan")
        scaling = r["fps"] / one["fps"] if one else float("nan")
        diff = float(np.abs(r["disparity"] - ref["disparity"]).max()) if ref else float("nan")
        print(
            f"{r['backend']:9s} {r['threads']:7d} {r['frames']:6d} {r['setup_s']:8.1f} {r['wall_s_per_frame']:9.3f} "
            f"{r['cpu_s_per_frame']:9.3f} {r['fps']:7.3f} {vs_onnx:7.2f}x {scaling:7.2f}x {diff:12.3g}"
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
