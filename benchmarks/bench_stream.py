"""Frames per second of ``snnc stream`` per backend on the same recording, and the onnx/torch ratio.

Synthesizes one MVSEC-layout recording (reduced resolution by default), then
streams it through every requested backend with the same network, in this
process, one after the other. Energy counting is off, so every backend is
timed on the same work: reading + SBT encoding + the network step + the
sub-pixel estimator. Prints frames/s of the whole pipeline and of the backend
alone, the ratios to torch, and the largest disparity difference to torch.

    .venv/bin/python benchmarks/bench_stream.py [--height 130 --width 173 --frames 12]
        [--model spikedhs-stereo] [--backends torch,onnx,hybrid,lava] [--threads 1] [--gain 3]

The first frame of each backend is a warm-up and is not timed (one-off
export / graph building / Lava compilation is reported separately as setup).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from snnc.data.mvsec import MVSECRecording
from snnc.data.synth import synthesize
from snnc.runtime import make_backend
from snnc.runtime.engine import StreamEngine
from snnc.runtime.frames import frame_times
from snnc.runtime.model import load_network


def run_backend(name: str, model: str, data: Path, threads: int, device: str, gain: float) -> dict:
    net = load_network(model)
    if gain != 1.0:  # stand-in for trained weights: the untrained net is silent and its cost flat
        with torch.no_grad():
            for p in net.model.parameters():
                if p.dim() > 1:
                    p.mul_(gain)
    options = {"threads": threads} if name in ("onnx", "hybrid") else {}
    dev = torch.device(device)
    start = time.perf_counter()
    backend = make_backend(name, net, dev, **options)
    engine = StreamEngine(net, backend, energy=False)
    with MVSECRecording(data) as rec:
        times, clock = frame_times(rec)
        disparities, first = [], None
        for r in engine.run(rec, times, with_gt=clock == "gt"):
            if first is None:
                first = time.perf_counter() - start  # setup + first frame
                read0, infer0 = engine.summary.read_s, engine.summary.infer_s
            disparities.append(r.disparity)
    backend.close()
    s = engine.summary
    timed = s.frames - 1
    read, infer = s.read_s - read0, s.infer_s - infer0
    return {
        "backend": name,
        "frames": timed,
        "setup_s": first,
        "fps": timed / (read + infer),
        "infer_fps": timed / infer,
        "disparity": np.stack(disparities),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=130)
    parser.add_argument("--width", type=int, default=173)
    parser.add_argument("--frames", type=int, default=12, help="depth frames in the recording (first = warm-up)")
    parser.add_argument("--model", default="spikedhs-stereo", help="preset, genotype JSON or checkpoint")
    parser.add_argument("--backends", default="torch,onnx,hybrid,lava")
    parser.add_argument("--threads", type=int, default=1, help="torch / onnxruntime intra-op threads")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (torch and onnx backends)")
    parser.add_argument("--data", type=Path, default=None, help="stream this recording instead of a synthetic one")
    parser.add_argument(
        "--gain",
        type=float,
        default=3.0,
        help="scale every weight (an untrained net is silent: its flat cost makes backends' "
        "argmin ties differ); 1 = the weights as loaded",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            data, _ = synthesize(
                Path(tmp) / "bench_data.hdf5", frames=args.frames, height=args.height, width=args.width, progress=False
            )
        with MVSECRecording(data) as rec:
            size = f"{rec.height}x{rec.width}"
        print(
            f"model {args.model}, recording {data.name} ({size}, {args.frames} frames), "
            f"{args.threads} thread(s), device {args.device}, weight gain {args.gain:g}, energy counting off"
        )
        rows = []
        for name in args.backends.split(","):
            device = args.device if name in ("torch", "onnx") else "cpu"
            rows.append(run_backend(name, args.model, data, args.threads, device, args.gain))
            r = rows[-1]
            print(f"  {name:7s} done: {r['infer_fps']:.3f} frames/s (backend), setup {r['setup_s']:.1f} s", flush=True)
    ref = next((r for r in rows if r["backend"] == "torch"), rows[0])
    print(
        f"\n{'backend':8s} {'frames':>6s} {'setup s':>8s} {'fps':>8s} {'backend fps':>12s} {'vs torch':>9s} "
        f"{'max |d-d_torch|':>16s} {'mean':>9s} {'px > 1e-4':>10s}"
    )
    for r in rows:
        diff = np.abs(r["disparity"] - ref["disparity"])
        print(
            f"{r['backend']:8s} {r['frames']:6d} {r['setup_s']:8.1f} {r['fps']:8.3f} {r['infer_fps']:12.3f} "
            f"{r['infer_fps'] / ref['infer_fps']:8.2f}x {float(diff.max()):16.2e} {float(diff.mean()):9.2e} "
            f"{100 * float((diff > 1e-4).mean()):9.2f}%"
        )
    print(
        "(disparity in px over every frame; a membrane within float rounding of the threshold fires in one "
        "runtime and not the other, and the spiking layers after it amplify that flip)"
    )
    onnx = next((r for r in rows if r["backend"] == "onnx"), None)
    if onnx is not None and ref["backend"] == "torch":
        print(f"\nonnx/torch frames/s ratio (backend alone): {onnx['infer_fps'] / ref['infer_fps']:.2f}")


if __name__ == "__main__":
    main()
