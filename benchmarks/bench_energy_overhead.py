"""Cost of energy counting on the onnx backend: off, from the step's spikes (now), and a reference torch pass (before).

Three copies of the same folded network step the same frames, interleaved
frame by frame so that machine load hits them alike:

* ``off``: the onnx backend alone;
* ``spikes``: the onnx backend with its :class:`~snnc.energy.meter.ActivityMeter`
  (counts from the state outputs, :mod:`snnc.export.activity`);
* ``reference``: the onnx backend plus what the engine did before for backends
  torch hooks cannot see: a second step of the torch network under an
  :class:`~snnc.energy.meter.EnergyMeter`.

Prints ms per frame (median over the timed frames; the first two are warm-up),
each mode's overhead over ``off``, and checks that both counting modes give the
same ACs and energy::

    nice .venv/bin/python benchmarks/bench_energy_overhead.py [--model stereo-synth] [--height 64 --width 96]
        [--frames 12] [--count rate] [--energy-model paper]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import torch

from snnc.energy.costs import DEFAULT_COSTS
from snnc.energy.meter import EnergyMeter
from snnc.runtime.model import load_network
from snnc.runtime.onnx_backend import OnnxBackend


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="stereo-synth")
    ap.add_argument("--height", type=int, default=64)
    ap.add_argument("--width", type=int, default=96)
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--count", default="rate", choices=["rate", "events"])
    ap.add_argument("--energy-model", default="paper")
    args = ap.parse_args()
    torch.set_num_threads(1)
    net = load_network(args.model)
    c = int(getattr(net.genotype, "in_channels", 5))
    rng = np.random.default_rng(0)
    xs = [
        torch.from_numpy(rng.integers(-1, 2, size=(1, 2, c, args.height, args.width)).astype(np.float32))
        for _ in range(args.frames)
    ]
    cpu = torch.device("cpu")
    off, spikes, ref = (OnnxBackend(net.model, cpu, threads=1) for _ in range(3))
    meter = spikes.activity_meter(costs=DEFAULT_COSTS, count=args.count, energy_model=args.energy_model)
    hooks = EnergyMeter(net.model, costs=DEFAULT_COSTS, count=args.count, energy_model=args.energy_model)
    t0 = time.perf_counter()
    for b in (off, spikes, ref):
        b.reset(xs[0])
    setup_s = time.perf_counter() - t0
    times: dict[str, list[float]] = {"off": [], "spikes": [], "reference": []}
    shadow: tuple[torch.Tensor, ...] = ()
    rep_spikes: Any = None
    rep_ref: Any = None
    counting: list[float] = []  # seconds inside the spikes backend's counting calls, per frame
    plan = spikes._plan  # the backend's ActivityPlan (read here only to time its calls)
    inner_measure, inner_neurons, inner_record = plan.measure, plan.measure_neurons, meter.record
    spent = [0.0]

    def timed(fn: Any) -> Any:
        def call(*a: Any, **kw: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                spent[0] += time.perf_counter() - t

        return call

    plan.measure, plan.measure_neurons, meter.record = timed(inner_measure), timed(inner_neurons), timed(inner_record)
    with hooks, torch.no_grad():
        for k, x in enumerate(xs):
            order = ["spikes", "off", "reference"] if k % 2 else ["off", "spikes", "reference"]  # alternate first
            for mode in order:
                t1 = time.perf_counter()
                if mode == "off":
                    off.step(x)
                elif mode == "spikes":
                    spent[0] = 0.0
                    spikes.step(x)
                    t_frame = time.perf_counter()
                    rep_spikes = meter.frame()
                    spent[0] += time.perf_counter() - t_frame
                    if k >= 2:
                        counting.append(spent[0])
                else:
                    ref.step(x)
                    shadow = shadow or net.model.init_state(x)
                    _, shadow = net.model.step(x, shadow)
                    rep_ref = hooks.frame()
                if k >= 2:
                    times[mode].append(time.perf_counter() - t1)
            assert abs(rep_spikes.ac - rep_ref.ac) <= 1e-9 * max(1.0, abs(rep_ref.ac)), (rep_spikes.ac, rep_ref.ac)
    for b in (off, spikes, ref):
        b.close()
    med = {k: float(np.median(v)) for k, v in times.items()}
    print(
        f"model {args.model} {args.height}x{args.width}, count {args.count}, energy model {args.energy_model}, "
        f"{len(times['off'])} timed frames, setup {setup_s:.1f} s (3 exports)"
    )
    for k in ("off", "spikes", "reference"):
        extra = "" if k == "off" else f"  overhead {100 * (med[k] / med['off'] - 1):+.1f} %"
        print(f"  {k:<10} {1e3 * med[k]:8.1f} ms/frame{extra}")
    c = float(np.median(counting))
    print(
        f"  counting inside 'spikes' (measure + record + frame report): {1e3 * c:.1f} ms/frame = "
        f"{100 * c / (med['spikes'] - c):.1f} % of its step without counting"
    )
    print(f"  per-frame ACs equal in both counting modes (last frame {rep_ref.ac:.4g})")


if __name__ == "__main__":
    main()
