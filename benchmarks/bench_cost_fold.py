"""The stereo cost layer (24 -> 1 conv3d of nearest x2 spikes) as snnc runs it, against the literal form.

On the preset's real shape at 260x346 (spikes ``(1, 24, 17, 44, 58)`` up-sampled to ``33 x 87 x 116``):
``literal`` is ``F.conv3d(F.interpolate(s, size, mode="nearest"), w, b, padding=1)``; ``fold`` is
:func:`snnc.models.stereo.upsampled_conv3d` (a tap GEMM at the spikes' resolution, the taps summed one
kernel axis and output parity at a time), the function the torch network and every export run. Each
form is timed in torch, onnxruntime and OpenVINO (1 thread, best of ``--reps``), exported once with
``torch.onnx.export`` (CPU seconds and ONNX node counts), and checked: the fold equals the literal form to
float rounding, and exactly with integer-valued weights (what an int8 graph holds).

    .venv/bin/python benchmarks/bench_cost_fold.py [--reps 10] [--no-openvino]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn.functional as F
from bench_resize import best  # the fastest of reps calls after a warm-up, in seconds
from torch import Tensor, nn

from snnc.models.stereo import upsampled_conv3d

SOURCE, SIZE = (1, 24, 17, 44, 58), (33, 87, 116)


class Form(nn.Module):
    """One spelling of the cost layer on fixed weights: ``s -> (1, 1, *SIZE)``."""

    def __init__(self, fold: bool, weight: Tensor, bias: Tensor) -> None:
        super().__init__()
        self.fold = fold
        self.register_buffer("weight", weight)
        self.register_buffer("bias", bias)

    def forward(self, s: Tensor) -> Tensor:
        if self.fold:
            return upsampled_conv3d(s, self.weight, self.bias, SIZE)
        return F.conv3d(F.interpolate(s, size=SIZE, mode="nearest"), self.weight, self.bias, padding=1)


def export(module: nn.Module, s: Tensor, path: Path) -> tuple[float, int]:
    """Write ``module`` to ``path``: the CPU seconds ``torch.onnx.export`` took and the file's node count."""
    t0 = time.process_time()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on Python-int shapes: fixed here
        torch.onnx.export(module, (s,), str(path), input_names=["s"], opset_version=17, dynamo=False)
    return time.process_time() - t0, len(onnx.load(str(path)).graph.node)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--no-openvino", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    s = (torch.rand(SOURCE, generator=g) < 0.2).float()
    weight, bias = 0.1 * torch.randn(1, 24, 3, 3, 3, generator=g), torch.randn(1, generator=g)
    forms = {"literal": Form(False, weight, bias), "fold": Form(True, weight, bias)}
    with torch.no_grad():
        ref, out = forms["literal"](s), forms["fold"](s)
        integer = torch.randint(-127, 128, weight.shape, generator=g).float()
        ibias = torch.randint(-127, 128, bias.shape, generator=g).float()
        exact = torch.equal(Form(True, integer, ibias)(s), Form(False, integer, ibias)(s))
    print(
        f"fold vs literal: max |diff| {float((out - ref).abs().max()):.2e};"
        f" equal with integer weights and bias: {exact}"
    )
    rows: dict[str, dict[str, float]] = {}
    x = s.numpy()
    with tempfile.TemporaryDirectory() as tmp:
        for name, module in forms.items():
            path = Path(tmp) / f"{name}.onnx"
            cpu, nodes = export(module, s, path)
            row = {"export cpu s": cpu, "onnx nodes": float(nodes)}
            with torch.no_grad():
                row["torch ms"] = 1e3 * best(lambda m=module: m(s), args.reps)
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = opts.inter_op_num_threads = 1
            sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            row["onnxruntime ms"] = 1e3 * best(lambda sess=sess: sess.run(None, {"s": x}), args.reps)
            got = sess.run(None, {"s": x})[0]
            assert np.abs(got - ref.numpy()).max() < 1e-4, name
            if not args.no_openvino:
                import openvino as ov

                request = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_NUM_THREADS": 1}).create_infer_request()
                row["openvino ms"] = 1e3 * best(lambda r=request: r.infer({0: x}), args.reps)
                got = next(iter(request.infer({0: x}).values()))
                assert np.abs(got - ref.numpy()).max() < 1e-4, name
            rows[name] = row
    keys = list(rows["fold"])
    print(f"{'':8s}" + "".join(f"{k:>16s}" for k in keys))
    for name, row in rows.items():
        print(f"{name:8s}" + "".join(f"{row[k]:16.2f}" for k in keys))
    print(f"{'fold/lit':8s}" + "".join(f"{rows['fold'][k] / rows['literal'][k]:15.3f}x" for k in keys))


if __name__ == "__main__":
    main()
