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
by exclusive wall time per stage, onnxruntime by its node profile grouped by operator type,
OpenVINO by its per-node performance counters grouped by layer type.

``--precision fp32,int8`` also streams the int8 network (``--precision int8``: the PTQ of the
weight-scaled preset, SBT input exact at scale 1, as ``bench_int8.py`` does) on the backends that
run it (torch, onnx, openvino: its spike-fed convolutions as OpenVINO int8 convolutions), and
``--energy off,on`` times every backend without and with energy counting (``fps`` is then the
wall time per frame, counting included). int8 disparities are compared with the first int8 row.

    .venv/bin/python benchmarks/bench_stream.py [--height 130 --width 173 --frames 12]
        [--model spikedhs-stereo] [--backends torch,onnx,hybrid,lava] [--threads 1] [--gain 3]
        [--forms rewritten,literal] [--precision fp32,int8] [--energy off,on] [--no-profile]

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
from snnc.energy.costs import resolve_costs
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


def ov_stage_shares(onnx_path: Path, threads: int, steps: int = 3) -> dict[str, float]:
    """OpenVINO's per-node performance counters over ``steps`` steps of the streaming file, grouped like
    onnxruntime's (``Convolution`` by its input's rank; ``Reorder``, the layout conversions, is ``other``)."""
    import json

    import openvino as ov

    from snnc.runtime.openvino_backend import openvino_config

    core = ov.Core()
    compiled = core.compile_model(
        core.read_model(str(onnx_path)), "CPU", {**openvino_config(threads), "PERF_COUNT": True}
    )
    rank = {
        op.get_friendly_name(): len(op.get_output_partial_shape(0)) if op.get_output_size() else 0
        for op in compiled.get_runtime_model().get_ordered_ops()
    }
    request = compiled.create_infer_request()
    names = [i.get_any_name() for i in compiled.inputs]
    shapes = {n: tuple(i.get_shape()) for n, i in zip(names, compiled.inputs, strict=True)}
    n_state = len(json.loads(ov_meta(onnx_path)["snnc.state_shapes"]))
    # in the dtypes the file declares (the openvino spelling holds spike states as uint8)
    feed = {
        n: np.zeros(shapes[n], dtype=i.get_element_type().to_dtype())
        for n, i in zip(names, compiled.inputs, strict=True)
    }
    rng = np.random.default_rng(0)
    groups = {
        "LIF": {"Subgraph", "Eltwise", "Math", "Select", "Round"},
        "cost volume + stem0 conv": {"Concatenation", "Concat", "Slice", "StridedSlice", "Pad", "Split", "Transpose"},
        "resize": {"Gather", "Broadcast", "Interpolate", "Tile"},
        "cost layer 24->1": {"MatMul", "FullyConnected"},
    }
    per: dict[str, float] = {}
    for step in range(steps + 1):
        feed[names[0]] = rng.integers(-1, 2, shapes[names[0]]).astype(np.float32)
        result = request.infer(feed)
        outs = [result[o] for o in compiled.outputs]
        for k in range(n_state):
            feed[names[1 + k]] = np.array(outs[len(outs) - n_state + k], copy=True)
        if step == 0:
            continue  # warm-up
        for info in request.profiling_info:
            kind = info.node_type
            if kind == "Convolution":
                group = "conv3d" if rank.get(info.node_name, 0) == 5 else "conv2d"
            else:
                group = next((g for g, kinds in groups.items() if kind in kinds), "other")
            per[group] = per.get(group, 0.0) + info.real_time.total_seconds()
    total = sum(per.values()) or 1.0
    return {s: per.get(s, 0.0) / total for s in STAGES if s != "estimator"}


def ov_meta(path: Path) -> dict[str, str]:
    """An ONNX file's metadata properties."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in proto.metadata_props}


def run_backend(
    name: str,
    model: str,
    data: Path,
    threads: int,
    device: str,
    gain: float,
    literal: bool,
    profile: bool,
    tmp: Path,
    precision: str = "fp32",
    energy: bool = False,
) -> dict:
    net = load_network(model)
    if gain != 1.0:  # stand-in for trained weights: the untrained net is silent and its cost flat
        with torch.no_grad():
            for p in net.model.parameters():
                if p.dim() > 1:
                    p.mul_(gain)
    net.model.literal_matching = literal
    options: dict = {"threads": threads} if name in ("onnx", "hybrid", "openvino") else {}
    onnx_path = tmp / f"bench-{name}-{precision}-{'literal' if literal else 'rewritten'}.onnx"
    if name == "onnx" and precision == "fp32":
        options["onnx_path"] = onnx_path
    dev = torch.device(device)
    start = time.perf_counter()
    costs = resolve_costs("45nm-int8" if precision == "int8" else None)
    if precision == "int8":
        from snnc.quant.network import network_fields
        from snnc.runtime.int8_backend import make_precision_backend

        with MVSECRecording(data) as rec:
            shape = (1, 2, int(net.genotype.in_channels), rec.height, rec.width)
        fields = network_fields(net.model, shape, net.meta, None, model)
        backend = make_precision_backend(name, net, dev, fields, options)
    else:
        backend = make_backend(name, net, dev, **options)
    engine = StreamEngine(net, backend, energy=energy, costs=costs)
    timer = StageTimer()
    with MVSECRecording(data) as rec, torch_stages(timer, net.model):
        times, clock = frame_times(rec)
        disparities, first = [], None
        for r in engine.run(rec, times, with_gt=clock == "gt"):
            if first is None:
                first = time.perf_counter() - start  # setup + first frame
                t0 = time.perf_counter()
                infer0 = engine.summary.infer_s
                timer.active = profile and precision == "fp32"  # stages of the timed frames only
            disparities.append(r.disparity)
        wall = time.perf_counter() - t0
    s = engine.summary
    timed = s.frames - 1
    infer = s.infer_s - infer0
    stage = None
    path = getattr(backend, "_path", None) or onnx_path  # the file the onnx / openvino backend wrote
    if profile and name == "torch" and precision == "fp32":
        stage = shares(timer.totals, infer)
    elif profile and name in ("onnx", "openvino"):
        est = timer.totals.get("estimator", 0.0) / infer if precision == "fp32" else 0.0
        grouped = ort_stage_shares(path, threads) if name == "onnx" else ov_stage_shares(path, threads)
        stage = {k: v * (1.0 - est) for k, v in grouped.items()}
        stage["estimator"] = est
    backend.close()
    return {
        "backend": name,
        "form": "literal" if literal else "rewritten",
        "precision": precision,
        "energy": "on" if energy else "off",
        "frames": timed,
        "setup_s": first,
        "fps": timed / wall,  # wall time per frame: reading, the step, the estimator, energy counting
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
    parser.add_argument("--precision", default="fp32", help="fp32, int8 or both (comma-separated)")
    parser.add_argument("--energy", default="off", help="off, on or both (comma-separated): energy counting")
    parser.add_argument("--no-profile", action="store_true", help="skip the per-stage shares")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    forms = [f.strip() for f in args.forms.split(",")]
    if any(f not in ("rewritten", "literal") for f in forms):
        parser.error(f"--forms takes rewritten and/or literal, got {args.forms!r}")
    precisions = [p.strip() for p in args.precision.split(",")]
    energies = [e.strip() for e in args.energy.split(",")]
    if any(p not in ("fp32", "int8") for p in precisions) or any(e not in ("off", "on") for e in energies):
        parser.error("--precision takes fp32 and/or int8, --energy off and/or on")
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
            f"{args.threads} thread(s), device {args.device}, weight gain {args.gain:g}, "
            f"energy counting {args.energy}, "
            f"{macs / 1e9:.2f} G dense MAC/frame"
        )
        rows = []
        runs = [(p, f, n, e) for p in precisions for f in forms for n in args.backends.split(",") for e in energies]
        for precision, form, name, energy in runs:
            if precision == "int8" and name not in ("torch", "onnx", "openvino"):
                continue
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
                    not args.no_profile and energy == energies[0],
                    Path(tmp),
                    precision,
                    energy == "on",
                )
            )
            r = rows[-1]
            print(
                f"  {name:8s} {precision} {form:9s} energy {energy:3s} done: {r['fps']:.3f} frames/s "
                f"({r['infer_fps']:.3f} backend), setup {r['setup_s']:.1f} s",
                flush=True,
            )
    gemm.append(gemm_rate())
    peak = max(gemm)
    print(f"\n1-thread fp32 GEMM (torch.mm 1024^3) in this run: {gemm[0] / 1e9:.1f} and {gemm[1] / 1e9:.1f} GMAC/s")
    ref = next((r for r in rows if r["backend"] == "torch" and r["form"] == forms[0]), rows[0])
    print(
        f"\n{'backend':8s} {'prec':4s} {'form':9s} {'energy':6s} {'frames':>6s} {'setup s':>8s} {'fps':>8s} "
        f"{'backend fps':>12s} {'vs torch':>9s} {'roofline':>9s} {'max |d-d_ref|':>14s} {'mean':>9s} {'px > 1e-4':>10s}"
    )
    for r in rows:
        same = next(q for q in rows if q["precision"] == r["precision"])  # the first row of this precision
        diff = np.abs(r["disparity"] - same["disparity"])
        print(
            f"{r['backend']:8s} {r['precision']:4s} {r['form']:9s} {r['energy']:6s} {r['frames']:6d} "
            f"{r['setup_s']:8.1f} {r['fps']:8.3f} {r['infer_fps']:12.3f} {r['infer_fps'] / ref['infer_fps']:8.2f}x "
            f"{macs * r['fps'] / peak:9.3f} {float(diff.max()):14.2e} {float(diff.mean()):9.2e} "
            f"{100 * float((diff > 1e-4).mean()):9.2f}%"
        )
    print(
        "(roofline = dense MAC/frame x fps / the GEMM rate above; disparity in px over every frame: a membrane "
        "within float rounding of the threshold fires in one runtime and not the other, and the spiking layers "
        "after it amplify that flip)"
    )
    profiled = [r for r in rows if r["stages"] is not None]
    if profiled:
        print("\nshare of the backend time per stage (fps column: backend frames/s)")
        print(f"{'stage':26s} " + " ".join(f"{r['backend'] + '/' + r['precision']:>18s}" for r in profiled))
        for stage in STAGES:
            print(f"{stage:26s} " + " ".join(f"{100 * r['stages'].get(stage, 0.0):17.1f}%" for r in profiled))
        print(f"{'seconds per frame':26s} " + " ".join(f"{1 / r['infer_fps']:17.3f}s" for r in profiled))
        print(
            "(torch: exclusive wall time per stage; onnx: onnxruntime's node profile by operator type: LIF = "
            "element-wise ops (the rewritten stages' sums too), cost volume = data movement, resize = Gather/"
            "Expand, cost layer = MatMul, conv2d includes the rewritten stage's 2-D convolutions; openvino: its "
            "performance counters by layer type, the same groups, Reorder (layout changes) in other; int8 rows "
            "leave the estimator out)"
        )
    onnx = next((r for r in rows if r["backend"] == "onnx"), None)
    if onnx is not None and ref["backend"] == "torch":
        print(f"\nonnx/torch frames/s ratio (backend alone): {onnx['infer_fps'] / ref['infer_fps']:.2f}")


if __name__ == "__main__":
    main()
