"""int8 vs fp32, torch (GraphModule) vs onnxruntime, per layer and step, on a firing stereo net.

    nice .venv/bin/python benchmarks/bench_int8.py [--model spikedhs-stereo] [--gain 3] [--height 260 --width 346]
        [--steps 10] [--rate 0.25] [--threads 1]

Both precisions run the same export Graph in torch and the ONNX file traced from it
(fp32: the folded net's graph; int8: its integer graph, snnc.quant). For each it prints
the spikes that differ between torch and onnxruntime per layer over ``--steps`` steps of
random SBT frames (``--rate`` of the pixels carry an event), where the first flip
happens, how close to the threshold the flipped membranes were (fp32), whether the
integer output is identical, and the seconds per step of each runtime (same run,
same threads). ``--gain`` multiplies every weight of an untrained preset (the stand-in
for trained weights of benchmarks/bench_stream.py: the untrained net is silent).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from snnc.export.lower import graph_inputs, lower
from snnc.export.onnx_writer import export_stream
from snnc.export.runtime import GraphModule
from snnc.quant.network import network_fields
from snnc.runtime.model import load_network


def frames(shape: tuple[int, ...], steps: int, rate: float) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    out = []
    for _ in range(steps):
        events = (torch.rand(shape, generator=gen) < rate).float()
        out.append(events * (torch.randint(0, 2, shape, generator=gen) * 2 - 1).float())
    return out


def compare(model, graph, xs, threads: int, path: Path, int8: bool) -> dict:
    gm = GraphModule(graph).eval()
    info = export_stream(model, tuple(xs[0].shape), path, graph=graph)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    names = info["state_names"]
    ys = [k for k, n in enumerate(names) if n.endswith(".y")]
    t_state = gm.init_state(graph_inputs("spikedhs-stereo", xs[0]))
    o_state = [s.numpy() for s in t_state]
    flips = {names[k][:-2]: 0 for k in ys}
    margins: list[float] = []
    first = None
    t_torch = t_onnx = 0.0
    out_equal = True
    spikes = 0
    for step, x in enumerate(xs):
        t0 = time.perf_counter()
        with torch.no_grad():
            y, t_state = gm.step(graph_inputs("spikedhs-stereo", x), t_state)
        t_torch += time.perf_counter() - t0
        t0 = time.perf_counter()
        out = session.run(None, {"x": x.numpy(), **{f"state_in_{k}": v for k, v in enumerate(o_state)}})
        t_onnx += time.perf_counter() - t0
        o_state = out[1:]
        out_equal = out_equal and np.array_equal(y.numpy(), out[0])
        for k in ys:
            layer = names[k][:-2]
            differ = t_state[k].numpy() != o_state[k]
            n = int(differ.sum())
            spikes += int(t_state[k].sum())
            if n and first is None:
                first = (step, layer)
            flips[layer] += n
            if n and not int8 and first == (step, layer):
                # fp32, the first flipped layer (its inputs still agreed): the torch membrane's distance to vth
                node = graph[layer]
                u = t_state[k - 1].numpy()[differ]
                margins += list(np.abs(u - float(node.params["spec"].vth)))
        # both runtimes continue from their own state (the flips propagate, as in a stream)
    return {
        "flips": flips,
        "spikes": spikes,
        "first": first,
        "margins": margins,
        "margin_max": max(margins) if margins else None,
        "margin_median": float(np.median(margins)) if margins else None,
        "output_equal": out_equal,
        "torch_s": t_torch / len(xs),
        "onnx_s": t_onnx / len(xs),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="spikedhs-stereo")
    ap.add_argument("--gain", type=float, default=3.0)
    ap.add_argument("--height", type=int, default=260)
    ap.add_argument("--width", type=int, default=346)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--rate", type=float, default=0.25)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    net = load_network(args.model)
    if args.gain != 1.0:
        with torch.no_grad():
            for p in net.model.parameters():
                if p.dim() > 1:
                    p.mul_(args.gain)
    shape = (1, 2, 5, args.height, args.width)
    xs = frames(shape, args.steps, args.rate)
    print(
        f"{args.model} (weight gain {args.gain:g}) at {args.height}x{args.width}, {args.steps} steps, "
        f"{args.rate:.0%} input events, {args.threads} thread(s)"
    )
    graphs = {"fp32": lower(net.model, shape)}
    fields = network_fields(net.model, shape, net.meta, None, args.model)
    from snnc.quant import apply_int8

    graphs["int8"] = apply_int8(graphs["fp32"], fields)
    with tempfile.TemporaryDirectory() as tmp:
        for precision, graph in graphs.items():
            r = compare(net.model, graph, xs, args.threads, Path(tmp) / f"{precision}.onnx", precision == "int8")
            total = sum(r["flips"].values())
            print(f"\n{precision}: torch {r['torch_s']:.3f} s/step, onnxruntime {r['onnx_s']:.3f} s/step")
            print(
                f"  spikes differing torch vs onnx: {total} of {r['spikes']} torch spikes "
                f"({len(r['flips'])} layers x {args.steps} steps); output identical: {r['output_equal']}"
            )
            if r["first"] is not None:
                print(f"  first flip: step {r['first'][0]}, layer {r['first'][1]}")
            if r["margin_max"] is not None:
                print(
                    f"  |u - vth| of the torch membrane at the first flips ({len(r['margins'])} spikes, inputs still "
                    f"equal): median {r['margin_median']:.3g}, "
                    f"max {r['margin_max']:.3g}"
                )
            worst = sorted(r["flips"].items(), key=lambda kv: -kv[1])[:5]
            print("  most flips: " + ", ".join(f"{k} {v}" for k, v in worst if v) if total else "  no flips")


if __name__ == "__main__":
    main()
