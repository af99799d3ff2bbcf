"""Nearest resampling spellings on the stereo net's real shapes, in torch, onnxruntime and OpenVINO (1 thread).

Each spelling is a small ONNX graph written with ``onnx.helper`` (``gm``: the graph ``GraphModule``
exports for a resize of spikes, the one snnc uses); every result is checked against
``F.interpolate(x, size, mode="nearest")`` on 0/1 data (``exact``). Times are the best of ``--reps``
runs in this process (OpenVINO: the sum of its per-node counters, so input/output copies are left out).

    .venv/bin/python benchmarks/bench_resize.py [--reps 5] [--no-openvino]

Spellings: ``expand`` (one Reshape + Expand interleaving every repeated axis, Gather for odd sizes:
what snnc wrote before), ``resize`` (ONNX Resize nearest x2, asymmetric/floor, then Slice), ``convT``
(depthwise ConvTranspose with a ones kernel, stride 2), ``flat_gather`` (one Gather over a flattened
index), ``gm`` (per axis: a MatMul by a 0/1 selection on the innermost axis, Gathers of rows outside).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper

# (source, destination) of the stereo net at 260x346: matching up path / trellis (3-D) and feature net (2-D)
SHAPES = [
    ((1, 24, 17, 44, 58), (1, 24, 33, 87, 116)),
    ((1, 32, 9, 22, 29), (1, 32, 17, 44, 58)),
    ((2, 16, 44, 58), (2, 16, 87, 116)),
    ((1, 24, 33, 87, 116), (1, 24, 17, 44, 58)),
]


def nearest_index(n: int, m: int) -> np.ndarray:
    """torch's nearest source index of each of ``m`` outputs from ``n`` elements."""
    ramp = torch.arange(n, dtype=torch.float64).reshape(1, 1, n)
    return F.interpolate(ramp, size=m, mode="nearest").reshape(m).round().long().numpy()


class Builder:
    """Nodes and constants of one small graph ``x -> y``."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.k = 0

    def const(self, value: Any, dtype: Any = np.int64) -> str:
        self.k += 1
        name = f"c{self.k}"
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def op(self, kind: str, inputs: list[str], **attrs: Any) -> str:
        self.k += 1
        out = f"t{self.k}"
        self.nodes.append(helper.make_node(kind, inputs, [out], **attrs))
        return out

    def model(self, src: tuple[int, ...], dst: tuple[int, ...]) -> bytes:
        self.nodes[-1].output[0] = "y"
        graph = helper.make_graph(
            self.nodes,
            "resize",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(src))],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(dst))],
            initializer=self.inits,
        )
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        onnx.checker.check_model(m)
        return m.SerializeToString()


def _truncate(b: Builder, x: str, dst: tuple[int, ...]) -> str:
    axes = list(range(2, len(dst)))
    return b.op("Slice", [x, b.const([0] * len(axes)), b.const(list(dst[2:])), b.const(axes)])


def expand(src: tuple[int, ...], dst: tuple[int, ...]) -> bytes:
    b, x = Builder(), "x"
    doubled = [m == 2 * n for n, m in zip(src[2:], dst[2:], strict=True)]
    for axis, (n, m) in enumerate(zip(src[2:], dst[2:], strict=True)):
        if not doubled[axis] and n != m:
            x = b.op("Gather", [x, b.const(nearest_index(n, m))], axis=2 + axis)
    view, grown = list(src[:2]), list(src[:2])
    for n, m, d in zip(src[2:], dst[2:], doubled, strict=True):
        c = n if d else m
        view += [c, 1]
        grown += [c, 2 if d else 1]
    x = b.op("Expand", [b.op("Reshape", [x, b.const(view)]), b.const(grown)])
    b.op("Reshape", [x, b.const(list(dst))])
    return b.model(src, dst)


def resize(src: tuple[int, ...], dst: tuple[int, ...]) -> bytes:
    b = Builder()
    up = [*src[:2], *(2 * n for n in src[2:])]
    x = b.op(
        "Resize",
        ["x", "", "", b.const(up)],
        mode="nearest",
        coordinate_transformation_mode="asymmetric",
        nearest_mode="floor",
    )
    if up != list(dst):
        _truncate(b, x, dst)
    return b.model(src, dst)


def conv_transpose(src: tuple[int, ...], dst: tuple[int, ...]) -> bytes:
    b, c, d = Builder(), src[1], len(src) - 2
    w = b.const(np.ones((c, 1) + (2,) * d), np.float32)
    x = b.op("ConvTranspose", ["x", w], group=c, strides=[2] * d, kernel_shape=[2] * d)
    if [2 * n for n in src[2:]] != list(dst[2:]):
        _truncate(b, x, dst)
    return b.model(src, dst)


def flat_gather(src: tuple[int, ...], dst: tuple[int, ...]) -> bytes:
    b = Builder()
    grids = np.meshgrid(*[nearest_index(n, m) for n, m in zip(src[2:], dst[2:], strict=True)], indexing="ij")
    flat = np.ravel_multi_index(grids, src[2:]).reshape(-1)
    x = b.op("Reshape", ["x", b.const([src[0], src[1], int(np.prod(src[2:]))])])
    b.op("Reshape", [b.op("Gather", [x, b.const(flat)], axis=2), b.const(list(dst))])
    return b.model(src, dst)


def graph_module(src: tuple[int, ...], dst: tuple[int, ...]) -> bytes:
    """What snnc writes: GraphModule's resize of a LIF's spikes, traced (the LIF nodes are pruned here)."""
    from snnc.export.graph import Graph
    from snnc.export.onnx_writer import export_graph_stream
    from snnc.export.runtime import GraphModule
    from snnc.neurons import NeuronSpec

    g = Graph()
    g.add("x", "input", shape=src[1:])
    spikes = g.add("lif", "neuron", ["x"], spec=NeuronSpec(type="binary", vth=0.5))
    g.add("y", "output", [g.add("up", "resize", [spikes], size=dst[2:])])
    gm = GraphModule(g)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gm.onnx"
        export_graph_stream(gm, {"x": torch.zeros(src)}, path)
        proto = onnx.load(str(path))
    # feed spikes directly: replace the neuron's Greater/Cast by the graph input
    nodes = [n for n in proto.graph.node if n.op_type not in ("Greater", "Cast")]
    spike = next(n.output[0] for n in proto.graph.node if n.op_type == "Cast")
    for n in nodes:
        n.input[:] = ["x" if i == spike else i for i in n.input]
    del proto.graph.node[:]
    proto.graph.node.extend(nodes)
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


SPELLINGS: dict[str, Callable[[tuple[int, ...], tuple[int, ...]], bytes]] = {
    "expand": expand,
    "resize": resize,
    "convT": conv_transpose,
    "flat_gather": flat_gather,
    "gm": graph_module,
}


def best(run: Callable[[], Any], reps: int) -> float:
    run()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--no-openvino", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    core = None
    if not args.no_openvino:
        import openvino as ov

        core = ov.Core()
    rng = np.random.default_rng(0)
    for src, dst in SHAPES:
        x = (rng.random(src) < 0.3).astype(np.float32)
        want = F.interpolate(torch.from_numpy(x), size=dst[2:], mode="nearest").numpy()
        t_torch = best(lambda x=x, dst=dst: F.interpolate(torch.from_numpy(x), size=dst[2:], mode="nearest"), args.reps)
        print(f"{src} -> {dst}: torch F.interpolate {t_torch * 1e3:.2f} ms")
        for name, spell in SPELLINGS.items():
            if name in ("resize", "convT") and any(
                m not in (2 * n, 2 * n - 1) for n, m in zip(src[2:], dst[2:], strict=True)
            ):
                continue  # x2 up-sampling spellings only
            blob = spell(src, dst)
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1
            opts.log_severity_level = 3  # the traced file's unused constant is not news
            sess = ort.InferenceSession(blob, opts, providers=["CPUExecutionProvider"])
            exact = np.array_equal(sess.run(None, {"x": x})[0], want)
            t_ort = best(lambda s=sess, x=x: s.run(None, {"x": x}), args.reps)
            line = f"  {name:12s} onnxruntime {t_ort * 1e3:8.2f} ms ({t_ort / t_torch:5.1f}x torch) exact={exact}"
            if core is not None:
                cfg = {"INFERENCE_NUM_THREADS": 1, "INFERENCE_PRECISION_HINT": "f32", "PERF_COUNT": True}
                request = core.compile_model(core.read_model(blob), "CPU", cfg).create_infer_request()
                request.infer({0: x})
                ov_exact = np.array_equal(request.get_output_tensor(0).data, want)
                t_ov = float("inf")
                for _ in range(args.reps):
                    request.infer({0: x})
                    t_ov = min(t_ov, sum(p.real_time.total_seconds() for p in request.profiling_info))
                line += f"   openvino {t_ov * 1e3:8.2f} ms exact={ov_exact}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
