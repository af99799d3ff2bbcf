"""Time one step of the streaming ONNX graph (``export_stream``) in onnxruntime, with a per-op-type profile.

Exports the folded network for one frame shape, runs ``--steps`` steps in
onnxruntime (1 thread by default, state fed back, ternary event input) after a
warm-up, and prints ms per step plus the share of time per ONNX op type
(onnxruntime's profiler), so that two versions of the exporter can be compared
on the same machine (run it once per checkout, e.g. with ``PYTHONPATH``)::

    .venv/bin/python benchmarks/bench_onnx_graph.py [--model stereo-synth] [--height 64 --width 96]
        [--steps 20] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from snnc.export.onnx_writer import export_stream
from snnc.runtime.model import load_network


def profile_shares(path: Path, feed_fn, threads: int, steps: int) -> dict[str, float]:
    """Share of node time per op type over ``steps`` profiled runs."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.enable_profiling = True
    with tempfile.TemporaryDirectory() as tmp:
        opts.profile_file_prefix = str(Path(tmp) / "prof")
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        for _ in range(steps):
            sess.run(None, feed_fn())
        events = json.loads(Path(sess.end_profiling()).read_text())
    per: dict[str, float] = defaultdict(float)
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
            per[e["args"]["op_name"]] += e["dur"]
    total = sum(per.values()) or 1.0
    return {k: v / total for k, v in sorted(per.items(), key=lambda kv: -kv[1])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="stereo-synth")
    ap.add_argument("--height", type=int, default=64)
    ap.add_argument("--width", type=int, default=96)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(1)
    net = load_network(args.model)
    c = int(getattr(net.genotype, "in_channels", 5))
    shape = (1, 2, c, args.height, args.width)
    rng = np.random.default_rng(0)
    xs = [rng.integers(-1, 2, size=shape).astype(np.float32) for _ in range(args.steps + 2)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stream.onnx"
        t0 = time.perf_counter()
        info = export_stream(net.model, shape, path)
        export_s = time.perf_counter() - t0
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = args.threads
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        state_in = [n for n in info["inputs"] if n != "x"]
        shapes = [i.shape for i in sess.get_inputs()][1:]
        state = [np.zeros(s, dtype=np.float32) for s in shapes]
        n_state = len(state)
        times = []
        for k, x in enumerate(xs):
            t1 = time.perf_counter()
            out = sess.run(None, {"x": x, **dict(zip(state_in, state, strict=True))})
            if k >= 2:
                times.append(time.perf_counter() - t1)
            state = out[len(out) - n_state :]
        it = iter(xs)
        shares = profile_shares(
            path, lambda: {"x": next(it), **dict(zip(state_in, state, strict=True))}, args.threads, 5
        )
    print(
        f"model {args.model} frame {shape}: export {export_s:.1f} s, {len(state_in)} state tensors, "
        f"ort {args.threads} thread(s): {1e3 * float(np.median(times)):.1f} ms/step (median of {len(times)})"
    )
    print("op-type shares: " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in list(shares.items())[:8]))


if __name__ == "__main__":
    main()
