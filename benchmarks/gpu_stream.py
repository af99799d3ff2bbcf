"""GPU streaming of the SpikeDHS-Stereo preset at full MVSEC resolution: eager / CUDA graph x fp32 / tf32 / fp16 / bf16.

Run on a machine with a CUDA device (``benchmarks/gpu_stream.sh`` calls it).
Builds the preset with every weight scaled by ``--gain`` (an untrained net is
silent; the scaled one fires like a trained one), encodes ``--frames`` SBT
frames of a synthetic 260 x 346 recording once on the CPU, and streams them
through :class:`snnc.runtime.torch_backend.TorchBackend` in each mode:

* ``fp32`` strict (TF32 off): the reference;
* ``tf32``: float32 with TF32 convolutions (PyTorch's cuDNN default);
* ``fp16`` / ``bf16``: synaptic layers under autocast, neuron state float32;

each eager and as a CUDA graph. Per mode: frames/s of step + estimator +
disparity to host (what ``snnc stream`` counts as ``infer_fps``; the device is
synchronised every frame, batch 1), median latency, and against fp32 eager
over the same frames: spike mismatches over all layers and steps (each mode
runs its own state, so a flip propagates, as in a real stream), the largest
disparity difference (unscaled px) and the share of pixels differing by more than 1 px.
``--device cpu`` smoke-tests the script (graph modes are refused there; CPU autocast
lowers only the 2-D convolutions).
Prints a table and writes JSON (``--json``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from snnc.data import layout
from snnc.data.mvsec import MVSECRecording
from snnc.data.synth import synthesize
from snnc.models.stereo import estimate_disparity
from snnc.runtime.frames import frame_times, iter_frames
from snnc.runtime.model import load_network
from snnc.runtime.torch_backend import TorchBackend, torch_state_names

MODES = [(d, g) for d in ("fp32", "tf32", "fp16", "bf16") for g in (False, True)]


def set_tf32(on: bool) -> None:
    torch.backends.cuda.matmul.allow_tf32 = on
    torch.backends.cudnn.allow_tf32 = on


def encode(data: Path, frames: int) -> list[torch.Tensor]:
    with MVSECRecording(data) as rec:
        times, _ = frame_times(rec, limit=frames)
        xs = [torch.from_numpy(f.x).float()[None] for f in iter_frames(rec, times, with_gt=False)]
    return [x.pin_memory() for x in xs] if torch.cuda.is_available() else xs


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def run_mode(
    net: Any, xs: list[torch.Tensor], dtype: str, graph: bool, ref: dict[str, Any] | None, dev: torch.device
) -> dict[str, Any]:
    set_tf32(dtype == "tf32")
    be = TorchBackend(net.model, dev, dtype="fp32" if dtype == "tf32" else dtype, cuda_graph=graph)
    names = torch_state_names(net.model)
    spike_idx = [k for k, n in enumerate(names) if n.endswith(".y")]
    be.reset(xs[0].to(dev))
    disparities, spikes, latencies = [], [], []
    mismatches = 0
    total_spikes = 0
    for t, x in enumerate(xs):
        sync(dev)
        t0 = time.perf_counter()
        cost = be.step(x.to(dev, non_blocking=True))
        disp = estimate_disparity(cost, disp_step=net.model.disp_step)[0].cpu().numpy() / layout.DISPARITY_SCALE
        latencies.append(time.perf_counter() - t0)
        disparities.append(disp)
        state = be.state
        step_spikes = [state[k] for k in spike_idx]
        if ref is None:
            spikes.append([s.to(torch.bool).cpu() for s in step_spikes])
        else:
            for a, b in zip(step_spikes, ref["spikes"][t], strict=True):
                mismatches += int((a.to(torch.bool).cpu() != b).sum())
        total_spikes += int(sum(float(s.sum()) for s in step_spikes))
    be.close()
    timed = latencies[2:] if len(latencies) > 4 else latencies  # first frames: cuDNN autotuning / lazy init
    out: dict[str, Any] = {
        "mode": f"{dtype} {'graph' if graph else 'eager'}",
        "frames_timed": len(timed),
        "fps": len(timed) / sum(timed),
        "median_ms": 1e3 * statistics.median(timed),
        "spikes": total_spikes,
        "disparity": np.stack(disparities),
    }
    if ref is None:
        out["spike_list"] = spikes
        out.update(spike_mismatches=0, max_disparity_diff=0.0, px_over_1=0.0)
    else:
        diff = np.abs(out["disparity"] - ref["disparity"])
        out.update(
            spike_mismatches=mismatches,
            max_disparity_diff=float(diff.max()),
            px_over_1=float((diff > 1.0).mean()),
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--height", type=int, default=260)
    parser.add_argument("--width", type=int, default=346)
    parser.add_argument("--gain", type=float, default=3.0)
    parser.add_argument("--data", type=Path, default=None, help="recording to encode (default: synthesize one)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--device", default="cuda", help="cuda; cpu only to smoke-test this script (graphs refused)")
    args = parser.parse_args()
    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_stream.py: no CUDA device (torch sees no GPU)")
    torch.backends.cudnn.benchmark = True
    device_name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    data = args.data
    if data is None:
        data = Path(f"gpu_stream_{args.height}x{args.width}_{args.frames}_data.hdf5")
        if not data.exists():
            synthesize(data, frames=args.frames, height=args.height, width=args.width, progress=False)
    xs = encode(data, args.frames)
    net = load_network("spikedhs-stereo")
    with torch.no_grad():
        for p in net.model.parameters():
            if p.dim() > 1:
                p.mul_(args.gain)
    print(
        f"{device_name}, torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}; "
        f"spikedhs-stereo x{args.gain:g} at {tuple(xs[0].shape[-2:])}, {len(xs)} frames, batch 1",
        flush=True,
    )
    rows: list[dict[str, Any]] = []
    ref: dict[str, Any] | None = None
    for dtype, graph in MODES:
        try:
            row = run_mode(net, xs, dtype, graph, ref, dev)
        except Exception as err:  # a mode that fails is reported, the others still run
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            rows.append({"mode": f"{dtype} {'graph' if graph else 'eager'}", "error": first})
            print(f"  {rows[-1]['mode']:12s} FAILED: {first}", flush=True)
            continue
        if ref is None:
            ref = {"spikes": row.pop("spike_list"), "disparity": row["disparity"]}
        rows.append(row)
        print(f"  {row['mode']:12s} {row['fps']:9.1f} frames/s, {row['median_ms']:.2f} ms median", flush=True)
    set_tf32(False)
    print(
        f"\n{'mode':12s} {'frames/s':>9s} {'median ms':>10s} {'spikes':>12s} {'spike mism.':>12s} "
        f"{'max |dd| px':>12s} {'px > 1 px':>10s}"
    )
    for r in rows:
        if "error" in r:
            print(f"{r['mode']:12s} failed: {r['error']}")
            continue
        print(
            f"{r['mode']:12s} {r['fps']:9.1f} {r['median_ms']:10.2f} {r['spikes']:12d} {r['spike_mismatches']:12d} "
            f"{r['max_disparity_diff']:12.3g} {100 * r['px_over_1']:9.2f}%"
        )
    print("(mismatches and disparity differences against fp32 eager with TF32 off, same frames; target 400 frames/s)")
    if args.json is not None:
        clean = [{k: v for k, v in r.items() if k != "disparity"} for r in rows]
        args.json.write_text(json.dumps({"device": device_name, "frames": len(xs), "rows": clean}, indent=1))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
