"""Frames per second of ``snnc stream`` per backend on the same recording, the roofline ratio and stage shares.

Synthesizes one MVSEC-layout recording (reduced resolution by default), then
streams it through every requested backend with the same network, in this
process, one after the other. Energy counting is off, so every backend is
timed on the same work: reading + SBT encoding + the network step + the
sub-pixel estimator. Prints frames/s of the whole pipeline and of the backend
alone, the ratios to torch, and the largest disparity difference to torch.

Roofline ratio (issue 18): ``dense MAC per frame x fps / GEMM MAC/s``, where the dense MACs
are the network's own count at this resolution (the op-counting pass; 29.37 G for the
published net at 260x346) and the GEMM rate is a 1-thread fp32 ``torch.mm`` measured in
the same run (before and after the backends; the better is used): 1.0 means as fast as a
perfect dense implementation of the paper's layout. ``--forms rewritten,literal`` runs every
backend with the matching rewrite (default) and with ``literal_matching`` (the volume and
every layer as written): before/after in one run. Stage shares (``stage_profile.py``): torch
by exclusive wall time per stage, onnxruntime by its node profile grouped by operator type.

    .venv/bin/python benchmarks/bench_stream.py [--height 130 --width 173 --frames 12]
        [--model spikedhs-stereo] [--backends torch,onnx,hybrid,lava] [--threads 1] [--gain 3]
        [--forms rewritten,literal] [--no-profile]

The first frame of each backend is a warm-up and is not timed (one-off
export / graph building / Lava compilation is reported separately as setup).
"""

from __future__ import annotations

import argparse
import sys
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

sys.path.insert(0, str(Path(__file__).parent))
from stage_profile import STAGES, StageTimer, ort_stage_shares, shares, torch_stages


def gemm_rate(n: int = 1024, reps: int = 5) -> float:
    """Best 1-thread fp32 ``torch.mm`` MAC/s of ``reps`` n x n products (threads restored after)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    a, b = torch.randn(n, n), torch.randn(n, n)
    best = float("inf")
    for _ in range(reps + 1):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    torch.set_num_threads(threads)
    return n**3 / best


def dense_macs(model: str, height: int, width: int) -> float:
    """The network's dense MACs of one frame at this resolution (the op-counting pass, literal form)."""
    from snnc.energy.ops import OpsRecorder

    net = load_network(model).model
    x = torch.zeros(1, 2, net.genotype.in_channels, height, width)
    with OpsRecorder(net) as rec, torch.no_grad():
        net.step(x, net.init_state(x))
    return float(rec.report().dense_ops)


def run_backend(
    name: str, model: str, data: Path, threads: int, device: str, gain: float, literal: bool, profile: bool, tmp: Path
) -> dict:
    net = load_network(model)
    if gain != 1.0:  # stand-in for trained weights: the untrained net is silent and its cost flat
        with torch.no_grad():
            for p in net.model.parameters():
                if p.dim() > 1:
                    p.mul_(gain)
    net.model.literal_matching = literal
    options: dict = {"threads": threads} if name in ("onnx", "hybrid", "openvino") else {}
    onnx_path = tmp / f"bench-{name}-{'literal' if literal else 'rewritten'}.onnx"
    if name == "onnx":
        options["onnx_path"] = onnx_path
    dev = torch.device(device)
    start = time.perf_counter()
    backend = make_backend(name, net, dev, **options)
    engine = StreamEngine(net, backend, energy=False)
    timer = StageTimer()
    with MVSECRecording(data) as rec, torch_stages(timer, net.model):
        times, clock = frame_times(rec)
        disparities, first = [], None
        for r in engine.run(rec, times, with_gt=clock == "gt"):
            if first is None:
                first = time.perf_counter() - start  # setup + first frame
                read0, infer0 = engine.summary.read_s, engine.summary.infer_s
                timer.active = profile  # stages of the timed frames only
            disparities.append(r.disparity)
    backend.close()
    s = engine.summary
    timed = s.frames - 1
    read, infer = s.read_s - read0, s.infer_s - infer0
    stage = None
    if profile and name == "torch":
        stage = shares(timer.totals, infer)
    elif profile and name == "onnx":
        est = timer.totals.get("estimator", 0.0) / infer
        stage = {k: v * (1.0 - est) for k, v in ort_stage_shares(onnx_path, threads).items()}
        stage["estimator"] = est
    return {
        "backend": name,
        "form": "literal" if literal else "rewritten",
        "frames": timed,
        "setup_s": first,
        "fps": timed / (read + infer),
        "infer_fps": timed / infer,
        "disparity": np.stack(disparities),
        "stages": stage,
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
    parser.add_argument("--forms", default="rewritten", help="rewritten, literal or both (comma-separated)")
    parser.add_argument("--no-profile", action="store_true", help="skip the per-stage shares")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    forms = [f.strip() for f in args.forms.split(",")]
    if any(f not in ("rewritten", "literal") for f in forms):
        parser.error(f"--forms takes rewritten and/or literal, got {args.forms!r}")
    gemm = [gemm_rate()]
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            data, _ = synthesize(
                Path(tmp) / "bench_data.hdf5", frames=args.frames, height=args.height, width=args.width, progress=False
            )
        with MVSECRecording(data) as rec:
            size = f"{rec.height}x{rec.width}"
            macs = dense_macs(args.model, rec.height, rec.width)
        print(
            f"model {args.model}, recording {data.name} ({size}, {args.frames} frames), "
            f"{args.threads} thread(s), device {args.device}, weight gain {args.gain:g}, energy counting off, "
            f"{macs / 1e9:.2f} G dense MAC/frame"
        )
        rows = []
        for form in forms:
            for name in args.backends.split(","):
                device = args.device if name in ("torch", "onnx") else "cpu"
                rows.append(
                    run_backend(
                        name,
                        args.model,
                        data,
                        args.threads,
                        device,
                        args.gain,
                        form == "literal",
                        not args.no_profile,
                        Path(tmp),
                    )
                )
                r = rows[-1]
                print(
                    f"  {name:7s} {form:9s} done: {r['infer_fps']:.3f} frames/s (backend), setup {r['setup_s']:.1f} s",
                    flush=True,
                )
    gemm.append(gemm_rate())
    peak = max(gemm)
    print(f"\n1-thread fp32 GEMM (torch.mm 1024^3) in this run: {gemm[0] / 1e9:.1f} and {gemm[1] / 1e9:.1f} GMAC/s")
    ref = next((r for r in rows if r["backend"] == "torch" and r["form"] == forms[0]), rows[0])
    print(
        f"\n{'backend':8s} {'form':9s} {'frames':>6s} {'setup s':>8s} {'fps':>8s} {'backend fps':>12s} "
        f"{'vs torch':>9s} {'roofline':>9s} {'max |d-d_torch|':>16s} {'mean':>9s} {'px > 1e-4':>10s}"
    )
    for r in rows:
        diff = np.abs(r["disparity"] - ref["disparity"])
        print(
            f"{r['backend']:8s} {r['form']:9s} {r['frames']:6d} {r['setup_s']:8.1f} {r['fps']:8.3f} "
            f"{r['infer_fps']:12.3f} {r['infer_fps'] / ref['infer_fps']:8.2f}x {macs * r['fps'] / peak:9.3f} "
            f"{float(diff.max()):16.2e} {float(diff.mean()):9.2e} {100 * float((diff > 1e-4).mean()):9.2f}%"
        )
    print(
        "(roofline = dense MAC/frame x fps / the GEMM rate above; disparity in px over every frame: a membrane "
        "within float rounding of the threshold fires in one runtime and not the other, and the spiking layers "
        "after it amplify that flip)"
    )
    profiled = [r for r in rows if r["stages"] is not None]
    if profiled:
        print("\nshare of the backend time per stage (fps column: backend frames/s)")
        print(f"{'stage':26s} " + " ".join(f"{r['backend'] + '/' + r['form']:>18s}" for r in profiled))
        for stage in STAGES:
            print(f"{stage:26s} " + " ".join(f"{100 * r['stages'].get(stage, 0.0):17.1f}%" for r in profiled))
        print(f"{'seconds per frame':26s} " + " ".join(f"{1 / r['infer_fps']:17.3f}s" for r in profiled))
        print(
            "(torch: exclusive wall time per stage; onnx: onnxruntime's node profile by operator type: LIF = "
            "element-wise ops (the rewritten stages' sums too), cost volume = data movement, resize = Gather/"
            "Expand, cost layer = MatMul, conv2d includes the rewritten stage's 2-D convolutions)"
        )
    onnx = next((r for r in rows if r["backend"] == "onnx"), None)
    if onnx is not None and ref["backend"] == "torch":
        print(f"\nonnx/torch frames/s ratio (backend alone): {onnx['infer_fps'] / ref['infer_fps']:.2f}")


if __name__ == "__main__":
    main()
