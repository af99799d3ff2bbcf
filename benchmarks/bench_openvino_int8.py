"""The OpenVINO int8 step (``snnc stream --backend openvino --precision int8``) per graph spelling, in one run.

Builds the int8 graph of the weight-scaled preset (the ``bench_stream.py`` / ``bench_int8.py`` stand-in for
trained weights: PTQ, SBT input exact at scale 1) at full resolution, writes its one-step streaming file once per
``GraphModule`` target with the Q/DQ int8 convolutions (``export_stream(qdq=True, target=...)``:
``onnxruntime`` is the spelling the openvino backend wrote before, ``openvino`` the one it writes now), compiles
each with the backend's CPU properties (``openvino_config``) and steps them **alternately** on the same SBT-like
frames (25 % events), the state fed back, so a shared machine's load hits every form alike. Prints per form the
step time (wall and process CPU, best and median), the ratios of the medians to the first form's, whether every
output and state value equals the first form's (values compared, so uint8 spikes equal float32 ones), and
OpenVINO's per-node performance counters grouped by layer type (``--no-profile`` skips them).

    nice .venv/bin/python benchmarks/bench_openvino_int8.py [--height 260 --width 346] [--rounds 10]
        [--targets onnxruntime,openvino] [--threads 1] [--gain 3] [--model spikedhs-stereo]
"""

from __future__ import annotations

import argparse
import collections
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from snnc.export.onnx_writer import export_stream
from snnc.quant import int8_graph
from snnc.quant.network import network_fields
from snnc.runtime.model import load_network
from snnc.runtime.openvino_backend import openvino_config, require_openvino

#: OpenVINO layer types per group of the step (Convolution is split by rank below).
GROUPS: dict[str, set[str]] = {
    "element-wise (neurons, rounding, quantize)": {
        "Subgraph",
        "Eltwise",
        "Math",
        "Select",
        "Round",
        "Convert",
        "FakeQuantize",
    },
    "layout reorders": {"Reorder", "Transpose"},
    "volume assembly (concat, slice, pad)": {"Concatenation", "Concat", "Slice", "StridedSlice", "Pad", "Split"},
    "resampling (gather)": {"Gather", "Interpolate", "Broadcast", "Tile"},
    "cost layer, resize selections (matmul)": {"MatMul", "FullyConnected"},
}
ORDER = ["3-D convolutions", "2-D convolutions", *GROUPS, "other"]


def load(now: str) -> str:
    """``uptime``'s load averages, labelled."""
    one, five, fifteen = os.getloadavg()
    return f"load average {now}: {one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} cores)"


def frames(shape: tuple[int, ...], count: int, seed: int = 0) -> list[np.ndarray]:
    """SBT-like stereo frames: values in {-1, 0, 1}, 25 % events."""
    rng = np.random.default_rng(seed)
    return [(rng.integers(0, 2, shape) * 2 - 1) * (rng.random(shape) < 0.25) for _ in range(count)]


class Stepper:
    """One compiled file stepped with its state fed back (the outputs copied into the next inputs, untimed)."""

    def __init__(self, core: Any, path: Path, config: dict[str, Any]) -> None:
        self.compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
        self.request = self.compiled.create_infer_request()
        self.names = [i.get_any_name() for i in self.compiled.inputs]
        self.feed = {
            n: np.zeros(tuple(i.get_shape()), i.get_element_type().to_dtype())
            for n, i in zip(self.names, self.compiled.inputs, strict=True)
        }
        self.n_state = len(self.names) - 1

    def step(self, x: np.ndarray) -> tuple[float, float, list[np.ndarray]]:
        """``(wall s, process CPU s, outputs)`` of one inference on ``x``."""
        self.feed[self.names[0]] = x.astype(self.feed[self.names[0]].dtype)
        t, c = time.perf_counter(), time.process_time()
        result = self.request.infer(self.feed)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        outs = [np.array(result[o], copy=True) for o in self.compiled.outputs]
        for k in range(self.n_state):
            self.feed[self.names[1 + k]] = outs[len(outs) - self.n_state + k]
        return wall, cpu, outs

    def counters(self) -> dict[tuple[str, str], float]:
        """This request's last inference: seconds per ``(node, group)`` (needs ``PERF_COUNT``)."""
        rank = {
            op.get_friendly_name(): len(op.get_output_partial_shape(0)) if op.get_output_size() else 0
            for op in self.compiled.get_runtime_model().get_ordered_ops()
        }
        per: dict[tuple[str, str], float] = {}
        for info in self.request.profiling_info:
            kind = info.node_type
            if kind == "Convolution":
                group = "3-D convolutions" if rank.get(info.node_name, 0) == 5 else "2-D convolutions"
            else:
                group = next((g for g, kinds in GROUPS.items() if kind in kinds), "other")
            per[(info.node_name, group)] = info.real_time.total_seconds()
        return per


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=260)
    parser.add_argument("--width", type=int, default=346)
    parser.add_argument("--rounds", type=int, default=10, help="timed steps per form (after 2 warm-up steps)")
    parser.add_argument("--targets", default="onnxruntime,openvino", help="GraphModule targets to compare")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--gain", type=float, default=3.0, help="scale every weight (the untrained net is silent)")
    parser.add_argument("--model", default="spikedhs-stereo")
    parser.add_argument("--no-profile", action="store_true", help="skip OpenVINO's per-node counters")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ov = require_openvino()
    targets = [t.strip() for t in args.targets.split(",")]
    print(load("at start"), flush=True)
    net = load_network(args.model)
    with torch.no_grad():
        for p in net.model.parameters():
            if p.dim() > 1:
                p.mul_(args.gain)
    shape = (1, 2, int(net.genotype.in_channels), args.height, args.width)
    fields = network_fields(net.model, shape, net.meta, None, args.model)
    graph = int8_graph(net.model, shape, fields)
    core = ov.Core()
    config = openvino_config(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for target in targets:
            paths[target] = Path(tmp) / f"int8-{target}.onnx"
            start = time.perf_counter()
            export_stream(net.model, shape, paths[target], graph=graph, qdq=True, target=target)
            print(f"  wrote the {target} spelling in {time.perf_counter() - start:.1f} s", flush=True)
        steppers = {t: Stepper(core, paths[t], config) for t in targets}
        profilers = (
            {} if args.no_profile else {t: Stepper(core, paths[t], {**config, "PERF_COUNT": True}) for t in targets}
        )
    xs = frames(shape, args.rounds + 2)
    wall: dict[str, list[float]] = collections.defaultdict(list)
    cpu: dict[str, list[float]] = collections.defaultdict(list)
    differing: dict[str, int] = collections.defaultdict(int)
    for i, x in enumerate(xs):
        order = targets if i % 2 == 0 else targets[::-1]  # alternate which form runs first
        outs = {}
        for target in order:
            w, c, outs[target] = steppers[target].step(x)
            if i >= 2:
                wall[target].append(w)
                cpu[target].append(c)
        ref = outs[targets[0]]
        for target in targets[1:]:
            differing[target] += sum(
                int(np.count_nonzero(a.astype(np.float32) != b.astype(np.float32)))
                for a, b in zip(ref, outs[target], strict=True)
            )
    shares: dict[str, dict[str, float]] = {}
    for target, prof in profilers.items():  # each node's fastest of 5 steps after a warm-up: load-robust
        best: dict[tuple[str, str], float] = {}
        for i, x in enumerate(xs[:6]):
            prof.step(x)
            if i:
                for key, seconds in prof.counters().items():
                    best[key] = min(best.get(key, seconds), seconds)
        groups: dict[str, float] = collections.defaultdict(float)
        for (_, group), seconds in best.items():
            groups[group] += seconds
        shares[target] = dict(groups)
    print(load("at end"))
    first = targets[0]
    print(
        f"\n{args.model} int8 at {args.height}x{args.width}, {args.threads} thread(s), weight gain {args.gain:g}, "
        f"{args.rounds} alternated steps per form (OpenVINO {ov.__version__.split('-')[0]})"
    )
    print(
        f"{'target':12s} {'wall best':>10s} {'median':>8s} {'cpu best':>9s} {'median':>8s} "
        f"{'ratio wall':>10s} {'cpu':>6s}  same values"
    )
    for target in targets:
        w, c = np.array(wall[target]), np.array(cpu[target])
        ratio = np.median(w) / np.median(np.array(wall[first]))
        ratio_cpu = np.median(c) / np.median(np.array(cpu[first]))
        same = "(reference)" if target == first else f"{differing[target]} values differ"
        print(
            f"{target:12s} {w.min():9.3f}s {np.median(w):7.3f}s {c.min():8.3f}s {np.median(c):7.3f}s "
            f"{ratio:9.3f}x {ratio_cpu:5.3f}x  {same}"
        )
    if shares:
        print("\nOpenVINO per-node counters (ms per step: each node's best of 5 steps; share of the sum)")
        print(f"{'group':44s} " + " ".join(f"{t:>18s}" for t in targets))
        for group in ORDER:
            cells = []
            for t in targets:
                total = sum(shares[t].values()) or 1.0
                ms = shares[t].get(group, 0.0)
                cells.append(f"{1e3 * ms:8.1f} ms {100 * ms / total:5.1f}%")
            print(f"{group:44s} " + " ".join(f"{c:>18s}" for c in cells))
        print(f"{'sum of the counters':44s} " + " ".join(f"{1e3 * sum(shares[t].values()):15.1f} ms" for t in targets))


if __name__ == "__main__":
    main()
