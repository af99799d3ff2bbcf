"""The integer neuron step in onnxruntime: exact float32 split (what snnc uses) vs float64 vs int64 ops.

    nice .venv/bin/python benchmarks/bench_int8_neuron.py [--shape 2,24,260,346] [--threads 1] [--repeat 20]

Three spellings of ``v' = clamp(trunc(v (1 - y) keep / 4096) + 64 a, +-(2**23 - 1)); y' = v' > thr``,
each exported to ONNX (opset 17) and timed in onnxruntime on the same tensors in the same run;
all three must give the same integers (checked).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from snnc.neurons.integer import V_MAX, IntNeuron, int_neuron_step

SPEC = IntNeuron("lif", 100, 4096 - 64 * 13)


class F32(nn.Module):
    def forward(self, a: torch.Tensor, v: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
        _, (v2, y2) = int_neuron_step(SPEC, a, (v, y))
        return v2, y2


class F64(nn.Module):
    def forward(self, a: torch.Tensor, v: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
        p = (v * (1.0 - y)).double() * float(SPEC.keep) / 4096.0
        kept = (torch.sign(p) * torch.floor(torch.abs(p))).float()
        v2 = torch.clamp(kept + a * 64.0, -V_MAX, V_MAX)
        return v2, (v2 > SPEC.threshold).float()


class I64(nn.Module):
    def forward(self, a: torch.Tensor, v: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
        p = (v * (1.0 - y)).long() * SPEC.keep
        kept = torch.sign(p) * torch.div(torch.abs(p), 4096, rounding_mode="floor")
        v2 = torch.clamp(kept.float() + a * 64.0, -V_MAX, V_MAX)
        return v2, (v2 > SPEC.threshold).float()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default="2,24,260,346")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    shape = tuple(int(s) for s in args.shape.split(","))
    rng = np.random.default_rng(0)
    a = rng.integers(-2000, 2000, size=shape).astype(np.float32)
    v = rng.integers(-(2**22), 2**22, size=shape).astype(np.float32)
    y = (rng.random(shape) < 0.3).astype(np.float32)
    feeds = {"a": a, "v": v, "y": y}
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, module in (("float32 split", F32()), ("float64", F64()), ("int64", I64())):
            path = Path(tmp) / f"{name.replace(' ', '_')}.onnx"
            torch.onnx.export(
                module,
                tuple(torch.from_numpy(x) for x in (a, v, y)),
                str(path),
                input_names=["a", "v", "y"],
                output_names=["v2", "y2"],
                opset_version=17,
                dynamo=False,
            )
            session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            out = session.run(None, feeds)
            start = time.perf_counter()
            for _ in range(args.repeat):
                session.run(None, feeds)
            results[name] = ((time.perf_counter() - start) / args.repeat, out)
    base = results["float32 split"]
    print(f"integer neuron step on {shape} ({int(np.prod(shape))} neurons), onnxruntime, {args.threads} thread(s)")
    for name, (sec, out) in results.items():
        same = all(np.array_equal(o, b) for o, b in zip(out, base[1], strict=True))
        print(f"  {name:14s} {sec * 1e3:8.2f} ms/step  ({sec / base[0]:.2f}x)  same integers: {same}")


if __name__ == "__main__":
    main()
