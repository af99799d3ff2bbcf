"""Cost of energy counting on every CPU backend: off against on (counted from the step's own outputs), same run.

Per backend (``--backends torch,onnx,openvino``) two instances of the same folded
network step the same frames: ``off`` (no meter) and ``on`` (the backend's
:meth:`~snnc.runtime.base.Backend.activity_meter`, counting from the spikes in the
state the step returns, :meth:`snnc.export.activity.ActivityPlan.count`). With
``--before`` the previous ways run too: ``hooks`` (torch: an
:class:`~snnc.energy.meter.EnergyMeter`'s forward hooks on the running network,
which also force the literal matching form) and ``reference`` (onnx: a second step
of the torch network under hooks, what the engine did for backends hooks cannot see).
Every instance steps each frame in turn (the order rotates frame by frame, so machine
load hits them alike); a step and its frame report (``meter.frame()``, which runs the
deferred counting) are timed together, as the stream engine's ``fps`` counts them.

Prints ms per frame (median over the timed frames; the first two are warm-up), the
on/off ratio per backend in wall time (medians, and the fastest frames: interference
only adds time) and in process CPU time (all threads; polluted by any backend's worker
threads that spin between frames), the counting time measured directly (``meter.frame()``), and
the per-frame ACs of every counting mode against the torch hooks (the definition,
:class:`~snnc.energy.ops.OpsRecorder`)::

    nice .venv/bin/python benchmarks/bench_energy_overhead.py [--model stereo-synth] [--height 64 --width 96]
        [--frames 12] [--backends torch,onnx,openvino] [--before] [--count rate] [--energy-model paper] [--gain 1]
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from snnc.energy.costs import DEFAULT_COSTS
from snnc.energy.meter import EnergyMeter
from snnc.runtime import make_backend
from snnc.runtime.base import Backend
from snnc.runtime.model import load_network


@dataclass
class Mode:
    """One backend instance and how a frame of it is run."""

    label: str
    backend: Backend
    meter: Any = None  # ActivityMeter / EnergyMeter whose frame() closes each frame
    extra: Callable[[torch.Tensor], None] | None = None  # the reference torch pass
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # process CPU seconds (all threads): robust to a busy machine
    counting: list[float] = field(default_factory=list)
    ac: list[float] = field(default_factory=list)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="stereo-synth")
    ap.add_argument("--height", type=int, default=64)
    ap.add_argument("--width", type=int, default=96)
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--backends", default="torch,onnx,openvino")
    ap.add_argument("--before", action="store_true", help="also time torch hooks and the onnx reference pass")
    ap.add_argument("--count", default="rate", choices=["rate", "events"])
    ap.add_argument("--energy-model", default="paper")
    ap.add_argument("--gain", type=float, default=1.0, help="scale every weight (an untrained preset is silent)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    net = load_network(args.model)
    if args.gain != 1.0:
        with torch.no_grad():
            for p in net.model.parameters():
                if p.dim() > 1:
                    p.mul_(args.gain)
    c = int(getattr(net.genotype, "in_channels", 5))
    rng = np.random.default_rng(0)
    xs = [
        torch.from_numpy(rng.integers(-1, 2, size=(1, 2, c, args.height, args.width)).astype(np.float32))
        for _ in range(args.frames)
    ]
    cpu = torch.device("cpu")
    meter_args = {"costs": DEFAULT_COSTS, "count": args.count, "energy_model": args.energy_model}
    names = [n for n in args.backends.split(",") if n]
    modes: list[Mode] = []
    t0 = time.perf_counter()
    for name in names:
        opts: dict[str, Any] = {} if name == "torch" else {"threads": 1}
        for label in ("off", "on"):
            own = copy.deepcopy(net)  # hooks of another mode must never see this instance's network
            be = make_backend(name, own, cpu, **opts)
            meter = be.activity_meter(**meter_args) if label == "on" else None
            if label == "on" and meter is None:  # a backend that does not count from its outputs: its live hooks
                meter = EnergyMeter(own.model, **meter_args).__enter__()
            modes.append(Mode(f"{name} {label}", be, meter))
        if args.before and name == "torch":
            own = copy.deepcopy(net)
            be = make_backend(name, own, cpu)
            modes.append(Mode("torch hooks", be, EnergyMeter(own.model, **meter_args).__enter__()))
        if args.before and name == "onnx":
            ref = copy.deepcopy(net).model
            hooks = EnergyMeter(ref, **meter_args).__enter__()
            shadow: list[tuple[torch.Tensor, ...]] = []

            def reference_step(x: torch.Tensor, ref: Any = ref, shadow: list[Any] = shadow) -> None:
                with torch.no_grad():
                    state = shadow.pop() if shadow else ref.init_state(x)
                    shadow.append(ref.step(x, state)[1])

            modes.append(Mode("onnx reference", make_backend(name, copy.deepcopy(net), cpu, threads=1), hooks))
            modes[-1].extra = reference_step
    for m in modes:
        m.backend.reset(xs[0])
    setup_s = time.perf_counter() - t0
    try:
        with torch.no_grad():
            for k, x in enumerate(xs):
                shift = k % len(modes)
                for m in modes[shift:] + modes[:shift]:  # rotate who goes first
                    c1, t1 = time.process_time(), time.perf_counter()
                    m.backend.step(x)
                    if m.extra is not None:
                        m.extra(x)
                    t2 = time.perf_counter()
                    rep = m.meter.frame() if m.meter is not None else None
                    t3, c3 = time.perf_counter(), time.process_time()
                    if k >= 2:
                        m.wall.append(t3 - t1)
                        m.cpu.append(c3 - c1)
                        m.counting.append(t3 - t2)
                    if rep is not None:
                        m.ac.append(rep.ac)
    finally:
        for m in modes:
            if isinstance(m.meter, EnergyMeter):
                m.meter.__exit__(None, None, None)
            m.backend.close()
    med = {m.label: float(np.median(m.wall)) for m in modes}
    low = {m.label: float(np.min(m.wall)) for m in modes}  # interference only adds time: the least-disturbed frame
    cpu = {m.label: float(np.median(m.cpu)) for m in modes}
    print(
        f"model {args.model} {args.height}x{args.width} (weight gain {args.gain:g}), 1 thread, count {args.count}, "
        f"energy model {args.energy_model}, {len(modes[0].wall)} timed frames, setup {setup_s:.1f} s"
    )
    truth = next((m.ac for m in modes if m.label == "torch hooks"), None)
    for m in modes:
        name, label = m.label.split(" ", 1)
        off = med[f"{name} off"]
        line = f"  {m.label:<16} {1e3 * med[m.label]:9.1f} ms/frame"
        if label != "off":
            cnt = float(np.median(m.counting))
            line += f"  on/off {med[m.label] / off:.3f} ({100 * (med[m.label] / off - 1):+5.1f} %)"
            line += f"  fastest frames {low[m.label] / low[name + ' off']:.3f}"
            line += f"  cpu {cpu[m.label] / cpu[name + ' off']:.3f}"
            line += f"  counting {1e3 * cnt:7.1f} ms = {100 * cnt / off:4.1f} % of off"
            line += f" (fastest {1e3 * min(m.counting):.1f} ms = {100 * min(m.counting) / low[name + ' off']:.1f} %)"
            kind = type(m.meter).__name__
            line += f"  [{'step outputs' if kind == 'ActivityMeter' else 'hooks'}]"
            if truth is not None and m.ac:
                rel = max(abs(a - b) / max(abs(b), 1.0) for a, b in zip(m.ac, truth, strict=False))
                line += f"  max |AC - hooks| / AC {rel:.1e}"
        print(line)
    if truth is None:
        print("  (run with --before for the torch hooks' ACs to compare against)")


if __name__ == "__main__":
    main()
