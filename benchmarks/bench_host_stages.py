"""Host work of one streamed frame around the backend step: before against now, alternated in one run (issue 18).

The stages ``snnc stream --backend openvino --precision int8`` runs on the host per frame, each timed alone on
the same data, the code of revision ``--before`` (the modules' text at that revision, read with ``git show`` and
loaded under other names) and the working tree's taking turns (the order flips every repetition, so machine
load hits both alike):

* ``sbt``: both cameras' SBT encoding of a frame (:func:`snnc.data.sbt.encode_sbt_counted`, the rectification
  maps of a synthetic recording), over the recording's frames;
* ``head``: the int8 host head (:func:`snnc.quant.apply_head`, output scale and the resize to 33 x H x W) on an
  integer cost; the same code before and now unless ``snnc/quant/head.py`` changed;
* ``estimator``: :func:`snnc.models.stereo.estimate_disparity` on that head's output;
* ``energy``: one step's counting (:meth:`snnc.export.activity.ActivityPlan.count`) and the frame report
  (:meth:`snnc.energy.meter.ActivityMeter.frame`), on random spikes (``--spikes uint8``: OpenVINO's spike state;
  ``float32``: onnxruntime's and torch's) and a ternary frame; the counting work does not depend on the values.
  ``snnc/energy/ops.py``'s ``LayerOps.copy`` / ``NeuronActivity.minus`` of ``--before`` are swapped in for the
  before runs.

Every stage's outputs are checked equal between before and now (the SBT stacks and counts, the disparity bit
for bit, every layer's counts and the frame's AC/MAC). Prints min / median ms per frame and the now/before
ratio of the medians::

    nice .venv/bin/python benchmarks/bench_host_stages.py [--height 260 --width 346] [--reps 12]
        [--before bd1f81c] [--spikes uint8|float32] [--model spikedhs-stereo] [--churn 64]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from snnc.data.mvsec import MVSECRecording
from snnc.data.synth import synthesize
from snnc.energy.costs import resolve_costs
from snnc.energy.meter import ActivityMeter
from snnc.energy.ops import LayerOps, NeuronActivity
from snnc.quant import apply_head, int8_graph
from snnc.quant.network import network_fields
from snnc.runtime.frames import frame_times
from snnc.runtime.model import load_network

ROOT = Path(__file__).resolve().parents[1]


def module_at(rev: str, path: str) -> types.ModuleType:
    """The module ``path`` (``snnc/...py``) as it was at git revision ``rev``, under its own name."""
    text = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    name = f"_before_{rev}_" + path.replace("/", "_").removesuffix(".py")
    module = types.ModuleType(name)
    module.__file__ = f"{rev}:{path}"
    sys.modules[name] = module  # dataclasses look their module up
    exec(compile(text, module.__file__, "exec"), module.__dict__)
    return module


@contextmanager
def methods_of(ops: types.ModuleType) -> Iterator[None]:
    """``LayerOps.copy`` and ``NeuronActivity.minus`` of the ``ops`` module while active (the frame report)."""
    saved = LayerOps.copy, NeuronActivity.minus
    LayerOps.copy = ops.LayerOps.copy  # type: ignore[method-assign]
    NeuronActivity.minus = ops.NeuronActivity.minus  # type: ignore[method-assign]
    try:
        yield
    finally:
        LayerOps.copy, NeuronActivity.minus = saved  # type: ignore[method-assign]


#: MB allocated and freed before every timed call (``--churn``)
CHURN_MB = 0


def alternate(before: Callable[[], Any], now: Callable[[], Any], reps: int) -> tuple[list[float], list[float], Any]:
    """Seconds per call of both (one warm-up each; the order flips every repetition) and their last results."""
    out: dict[str, list[float]] = {"before": [], "now": []}
    last: dict[str, Any] = {"before": before(), "now": now()}
    for k in range(reps):
        for name in ("before", "now") if k % 2 == 0 else ("now", "before"):
            fn = before if name == "before" else now
            if CHURN_MB:
                np.ones(CHURN_MB << 20, dtype=np.uint8)  # allocated, written and freed: the heap's state changes
            t0 = time.perf_counter()
            last[name] = fn()
            out[name].append(time.perf_counter() - t0)
    return out["before"], out["now"], (last["before"], last["now"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--height", type=int, default=260)
    ap.add_argument("--width", type=int, default=346)
    ap.add_argument("--reps", type=int, default=12)
    ap.add_argument("--before", default="bd1f81c", help="git revision of the 'before' host code")
    ap.add_argument("--spikes", default="uint8", choices=["uint8", "float32"], help="dtype of the spike values")
    ap.add_argument("--model", default="spikedhs-stereo")
    ap.add_argument(
        "--churn",
        type=int,
        default=0,
        help="MB to allocate and free before every timed call (a stand-in for the step's and the other stages' "
        "allocations: fresh full-size arrays then pay their page faults, as in a stream)",
    )
    args = ap.parse_args()
    global CHURN_MB
    CHURN_MB = int(args.churn)
    torch.set_num_threads(1)
    h, w = args.height, args.width
    old_sbt = module_at(args.before, "snnc/data/sbt.py")
    old_stereo = module_at(args.before, "snnc/models/stereo.py")
    old_activity = module_at(args.before, "snnc/export/activity.py")
    old_ops = module_at(args.before, "snnc/energy/ops.py")
    old_head = module_at(args.before, "snnc/quant/head.py")
    import snnc.data.sbt as new_sbt
    from snnc.export.activity import ActivityPlan
    from snnc.models.stereo import estimate_disparity

    rows: list[tuple[str, list[float], list[float]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "bench_data.hdf5"
        synthesize(data, frames=6, height=h, width=w, progress=False)
        with MVSECRecording(data) as rec:
            times, _ = frame_times(rec)
            maps = {c: rec.rect_maps(c) for c in ("left", "right")}
            windows = [(rec.events_between(c, float(t) - 0.05, float(t)), float(t), c) for t in times for c in maps]
        events = int(np.mean([len(e) for e, _, _ in windows]))

        def sbt(mod: types.ModuleType) -> Callable[[], list[Any]]:
            return lambda: [mod.encode_sbt_counted(e, t, height=h, width=w, rect_maps=maps[c]) for e, t, c in windows]

        b, n, (rb, rn) = alternate(sbt(old_sbt), sbt(new_sbt), args.reps)
        assert all(np.array_equal(x[0], y[0]) and vars(x[1]) == vars(y[1]) for x, y in zip(rb, rn, strict=True))
        per = 2 / len(windows)  # seconds per frame (two cameras)
        rows.append(("sbt (2 cameras)", [s * per for s in b], [s * per for s in n]))

    net = load_network(args.model)
    with torch.no_grad():
        for p in net.model.parameters():
            if p.dim() > 1:
                p.mul_(3.0)  # as bench_stream.py: an untrained net is silent
    shape = (1, 2, int(net.genotype.in_channels), h, w)
    fields = network_fields(net.model, shape, net.meta, None, args.model)
    graph = int8_graph(net.model, shape, fields)
    meta = graph.meta["int8"]
    g = torch.Generator().manual_seed(0)
    out_shape = tuple(int(s) for s in graph[graph.outputs[0]].shape)  # the integer cost, batch left out
    y = torch.randint(-2000, 2000, (1, *out_shape), generator=g).float()
    b, n, (cb, cn) = alternate(lambda: old_head.apply_head(meta, y), lambda: apply_head(meta, y), args.reps)
    assert torch.equal(cb, cn)
    rows.append(("head", b, n))
    cost = cn.float()
    b, n, (db, dn) = alternate(
        lambda: old_stereo.estimate_disparity(cost, disp_step=2.0),
        lambda: estimate_disparity(cost, disp_step=2.0),
        args.reps,
    )
    assert torch.equal(db, dn)
    rows.append(("estimator", b, n))

    plans = {"before": old_activity.ActivityPlan(graph, net.model, 2), "now": ActivityPlan(graph, net.model, 2)}
    meters = {}
    for key, plan in plans.items():
        meter = meters[key] = ActivityMeter(costs=resolve_costs("45nm-int8"))
        meter.bind(plan.specs(), plan.neurons, batch=1)
        plan.prepare(meter.events, meter.neurons)
    dtype = np.uint8 if args.spikes == "uint8" else np.float32
    rng = np.random.default_rng(0)
    values: dict[str, np.ndarray] = {}
    spikes = 0
    for root in plans["now"].roots:
        node = graph[root]
        size = (plans["now"].map_shape(root)[0], *node.shape)  # the value's batch: 2 (both views) or 1
        if node.op == "input":
            values[root] = rng.integers(-1, 2, size=size).astype(np.float32)
        else:
            values[root] = (rng.random(size, dtype=np.float32) < 0.2).astype(dtype)
            spikes += values[root].size

    def energy(key: str) -> Callable[[], Any]:
        plan, meter = plans[key], meters[key]

        def run() -> Any:
            meter.defer(lambda: plan.count(values, meter.events, meter.neurons))
            if key == "before":
                with methods_of(old_ops):
                    return meter.frame()
            return meter.frame()

        return run

    b, n, (eb, en) = alternate(energy("before"), energy("now"), args.reps)
    assert (eb.ac, eb.mac, eb.energy_j) == (en.ac, en.mac, en.energy_j)
    assert plans["before"].count(values)[0] == plans["now"].count(values)[0]
    rows.append((f"energy ({args.spikes} spikes)", b, n))

    print(
        f"host stages of one {h}x{w} frame, 1 thread, {args.reps} alternated repetitions, before = {args.before}; "
        f"{events} events per camera window, {spikes / 1e6:.1f} M spike values, churn {CHURN_MB} MB"
    )
    print(f"{'stage':24s} {'before min/med ms':>18s} {'now min/med ms':>16s} {'now/before (med)':>17s}")
    tb = tn = 0.0
    for name, b, n in rows:
        mb, mn = float(np.median(b)), float(np.median(n))
        tb, tn = tb + mb, tn + mn
        print(f"{name:24s} {1e3 * min(b):8.2f} {1e3 * mb:8.2f} {1e3 * min(n):7.2f} {1e3 * mn:8.2f} {mn / mb:16.2f}")
    print(f"{'total (medians)':24s} {'':8s} {1e3 * tb:8.2f} {'':7s} {1e3 * tn:8.2f} {tn / tb:16.2f}")
    print("(every stage's outputs are equal before and now: SBT stacks and counts, disparity bits, layer counts)")


if __name__ == "__main__":
    main()
