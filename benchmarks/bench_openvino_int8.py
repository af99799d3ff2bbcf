"""The OpenVINO int8 step (``snnc stream --backend openvino --precision int8``) per graph spelling and runtime.

Builds the int8 graph of the weight-scaled preset (the ``bench_stream.py`` / ``bench_int8.py`` stand-in for
trained weights: PTQ, SBT input exact at scale 1) at full resolution, writes its one-step streaming file once per
``GraphModule`` target with the Q/DQ int8 convolutions (``export_stream(qdq=True, target=...)``: ``onnxruntime``
is the spelling the openvino backend wrote before, ``openvino`` the one it writes now), compiles each with the
backend's CPU properties (``openvino_config``), carries the state as the backend did before (``pingpong``: two
infer requests feeding each other's state outputs back as inputs) or does now (``stateful``: OpenVINO variables,
``make_stateful``), and steps every form **alternately** on the same SBT-like frames (25 % events), so a shared
machine's load hits every form alike. Prints per form the step time (wall and process CPU, best and median), the
ratios of the medians to the first form's, whether the output and every state value equal the first form's
(values compared, so uint8 spikes equal float32 ones), and OpenVINO's per-node performance counters grouped by
layer type (``--no-profile`` skips them).

    nice .venv/bin/python benchmarks/bench_openvino_int8.py [--height 260 --width 346] [--rounds 10]
        [--forms onnxruntime/pingpong,openvino/pingpong,openvino/stateful] [--threads 1] [--gain 3]
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
from snnc.runtime.openvino_backend import make_stateful, openvino_config, require_openvino

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
    """One file stepped with its state carried, the way a runtime of the openvino backend carries it.

    ``pingpong`` (the backend before): two infer requests alternate, each reading its state inputs from the
    other's state output tensors (``set_tensor``). ``stateful`` (the backend now, :func:`make_stateful`): the
    state in OpenVINO's variables, the spikes as outputs. :meth:`step` returns the output ``y`` and every state
    tensor after the step (read back from the variables, untimed, for ``stateful``).
    """

    def __init__(self, core: Any, path: Path, config: dict[str, Any], runtime: str) -> None:
        import json

        import onnx

        self.runtime = runtime
        meta = {q.key: q.value for q in onnx.load(str(path), load_external_data=False).metadata_props}
        names = json.loads(meta["snnc.state_names"])
        self.state_in = [f"state_in_{k}" for k in range(len(names))]
        self.state_out = [f"state_out_{k}" for k in range(len(names))]
        model = core.read_model(str(path))
        if runtime == "stateful":
            after = [f"spikes.{k}" if name.endswith(".y") else None for k, name in enumerate(names)]
            model = make_stateful(require_openvino(), model, self.state_in, after, [None] * len(names))
        self.compiled = core.compile_model(model, "CPU", config)
        self.requests = [self.compiled.create_infer_request() for _ in range(2 if runtime == "pingpong" else 1)]
        if runtime == "pingpong":
            for k, request in enumerate(self.requests):
                for a, b in zip(self.state_in, self.state_out, strict=True):
                    request.set_tensor(a, self.requests[1 - k].get_tensor(b))
            for b in self.state_out:
                self.requests[1].get_tensor(b).data[...] = 0
        self.turn = 0
        self.request = self.requests[0]
        self.variables = [f"{a}{b}" for a, b in zip(self.state_in, self.state_out, strict=True)]

    def step(self, x: np.ndarray) -> tuple[float, float, list[np.ndarray]]:
        """``(wall s, process CPU s, [y, state...])`` of one inference on ``x``."""
        self.request = self.requests[self.turn]
        self.turn = (self.turn + 1) % len(self.requests)
        feed = {"x": np.ascontiguousarray(x, dtype=np.float32)}
        t, c = time.perf_counter(), time.process_time()
        self.request.infer(feed, share_inputs=True)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        y = np.array(self.request.get_tensor("y").data, copy=True)
        if self.runtime == "pingpong":
            return wall, cpu, [y, *(np.array(self.request.get_tensor(b).data, copy=True) for b in self.state_out)]
        by_name = {v.name: v for v in self.request.query_state()}
        return wall, cpu, [y, *(np.array(by_name[v].state.data, copy=True) for v in self.variables)]

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
    parser.add_argument(
        "--forms",
        default="onnxruntime/pingpong,openvino/pingpong,openvino/stateful",
        help="SPELLING/RUNTIME pairs: GraphModule target, and how the state is carried (pingpong, stateful)",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--gain", type=float, default=3.0, help="scale every weight (the untrained net is silent)")
    parser.add_argument("--model", default="spikedhs-stereo")
    parser.add_argument("--no-profile", action="store_true", help="skip OpenVINO's per-node counters")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ov = require_openvino()
    targets = [t.strip() for t in args.forms.split(",")]
    spellings = list(dict.fromkeys(t.split("/")[0] for t in targets))
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
        for spelling in spellings:
            paths[spelling] = Path(tmp) / f"int8-{spelling}.onnx"
            start = time.perf_counter()
            export_stream(net.model, shape, paths[spelling], graph=graph, qdq=True, target=spelling)
            print(f"  wrote the {spelling} spelling in {time.perf_counter() - start:.1f} s", flush=True)

        def stepper(form: str, cfg: dict[str, Any]) -> Stepper:
            spelling, runtime = form.split("/")
            return Stepper(core, paths[spelling], cfg, runtime)

        steppers = {t: stepper(t, config) for t in targets}
        profilers = {} if args.no_profile else {t: stepper(t, {**config, "PERF_COUNT": True}) for t in targets}
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
        f"{'form':22s} {'wall best':>10s} {'median':>8s} {'cpu best':>9s} {'median':>8s} "
        f"{'ratio wall':>10s} {'cpu':>6s}  same values"
    )
    for target in targets:
        w, c = np.array(wall[target]), np.array(cpu[target])
        ratio = np.median(w) / np.median(np.array(wall[first]))
        ratio_cpu = np.median(c) / np.median(np.array(cpu[first]))
        same = "(reference)" if target == first else f"{differing[target]} values differ"
        print(
            f"{target:22s} {w.min():9.3f}s {np.median(w):7.3f}s {c.min():8.3f}s {np.median(c):7.3f}s "
            f"{ratio:9.3f}x {ratio_cpu:5.3f}x  {same}"
        )
    if shares:
        print("\nOpenVINO per-node counters (ms per step: each node's best of 5 steps; share of the sum)")
        print(f"{'group':44s} " + " ".join(f"{t:>22s}" for t in targets))
        for group in ORDER:
            cells = []
            for t in targets:
                total = sum(shares[t].values()) or 1.0
                ms = shares[t].get(group, 0.0)
                cells.append(f"{1e3 * ms:8.1f} ms {100 * ms / total:5.1f}%")
            print(f"{group:44s} " + " ".join(f"{c:>22s}" for c in cells))
        print(f"{'sum of the counters':44s} " + " ".join(f"{1e3 * sum(shares[t].values()):19.1f} ms" for t in targets))


if __name__ == "__main__":
    main()
