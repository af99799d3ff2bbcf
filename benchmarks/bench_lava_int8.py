"""Lava frames/s of the int8 stereo feature net (lava_procs) and what dominates a step.

Runs the trained zoo model ``stereo-synth`` quantised to int8 (PTQ) at one or
more sizes: builds the Lava process network of its 2-D feature net
(:class:`snnc.export.lava_procs.LavaProcNet`, both cameras), and measures in the
same run

* start-up (building the processes, compiling, forking one OS process per Lava process);
* wall time per Lava step over ``--steps`` steps (one step = one frame);
* the **compute** inside the processes, timed in this process on the same
  inputs with Lava's own functions: ``lava.proc.conv.utils.conv`` for every
  Conv (scipy ``convolve2d`` per output x input channel) and the LIF update
  (``PyLifModelBitAcc``'s arithmetic);
* the **runtime overhead**: a network with the same number of processes but
  1x1x1 shapes (no compute), per step;
* in a stream (``LavaBackend`` int8): the Lava part per step against the host
  part (cost volume and 3-D matching in snnc's integer torch runtime) per frame.

Usage: ``nice .venv/bin/python benchmarks/bench_lava_int8.py --size 16x24 --size 32x48 --steps 12``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def _frames(shape: tuple[int, ...], n: int, seed: int = 0) -> list[torch.Tensor]:
    rng = np.random.default_rng(seed)
    return [
        torch.from_numpy(rng.choice([-1, 0, 1], size=shape, p=[0.15, 0.7, 0.15]).astype(np.float32)) for _ in range(n)
    ]


def _compute_per_step(net, spikes: dict[str, np.ndarray], frame: np.ndarray) -> dict[str, float]:
    """Serial time of the processes' work for one step, with Lava's own conv function."""
    from lava.proc.conv import utils

    from snnc.export.lava_procs import _lava_kernel, _xy

    g, plan, batch = net.graph, net.plan, net.batch
    x = g.inputs[0]
    lava = lambda a: a.reshape(-1, *a.shape[2:]).transpose(2, 1, 0)  # noqa: E731  (B, C, H, W) -> (W, H, B*C)
    src_val = {x: lava(frame)}
    for name, s in spikes.items():
        src_val[name] = lava(s)
    conv_s = lif_s = 0.0
    for neuron, terms in plan.terms.items():
        for t in terms:
            view = plan.base(g, plan.reads[t][0])
            if t not in g.nodes or view not in src_val:
                continue
            p = g[t].params
            w = _lava_kernel(p["weight"], batch)
            inp = src_val[view]
            if g[plan.reads[t][0]].op == "resize":
                c, h, wd = g[plan.reads[t][0]].shape
                inp = np.zeros((wd, h, c * batch))
            t0 = time.perf_counter()
            utils.conv(
                inp, w, w.shape[1:3], _xy(p["stride"]), _xy(p["padding"]), _xy(p["dilation"]), int(p["groups"]) * batch
            )
            conv_s += time.perf_counter() - t0
        c, h, wd = g[neuron].shape
        v = np.zeros((wd, h, c * batch), dtype=np.int32)
        a = np.ones_like(v)
        t0 = time.perf_counter()
        for _ in range(1):
            d = np.int64(v) * 4000
            d = np.sign(d) * np.right_shift(np.abs(d), 12)
            v2 = np.clip(np.int32(d) + np.left_shift(a, 6), -(2**23) + 1, 2**23 - 1)
            s = v2 > 640
            v2[s] = 0
        lif_s += time.perf_counter() - t0
    return {"conv_s": conv_s, "lif_s": lif_s}


def _overhead(n_procs: int, steps: int) -> float:
    """Seconds per step of a Lava network of ``n_procs`` 1x1x1 processes (Conv -> LIF pairs), no compute."""
    from snnc.export.lava_env import import_lava

    import_lava()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.conv.process import Conv
    from lava.proc.io.injector import Injector, PyLoihiInjectorModel
    from lava.proc.lif.process import LIF

    inj = Injector(shape=(1, 1, 1))
    port = inj.out_port
    for _ in range(max(1, (n_procs - 1) // 2)):
        conv = Conv(weight=np.ones((1, 1, 1, 1), dtype=np.int32), input_shape=(1, 1, 1))
        lif = LIF(shape=(1, 1, 1), du=4095, dv=0, vth=0)
        port.connect(conv.s_in)
        conv.a_out.connect(lif.a_in)
        port = lif.s_out
    cfg = Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map={Injector: PyLoihiInjectorModel})
    inj.create_runtime(run_cfg=cfg)
    try:
        inj.send(np.zeros((1, 1, 1)))
        inj.run(condition=RunSteps(num_steps=1))
        t0 = time.perf_counter()
        for _ in range(steps):
            inj.send(np.zeros((1, 1, 1)))
            inj.run(condition=RunSteps(num_steps=1))
        return (time.perf_counter() - t0) / steps
    finally:
        inj.stop()


def _stream_split(model, shape: tuple[int, ...], frames: list[torch.Tensor], fields) -> tuple[float, float]:
    """(Lava ms/step, host rest ms/frame) of the int8 LavaBackend over ``frames`` (pipeline flushed)."""
    from snnc.runtime.lava_backend import LavaBackend

    be = LavaBackend(model, torch.device("cpu"), fields=fields)
    be.reset(frames[0])
    spent = {"lava": 0.0, "rest": 0.0}

    def timed(fn, key):
        def run(*args):
            t0 = time.perf_counter()
            out = fn(*args)
            spent[key] += time.perf_counter() - t0
            return out

        return run

    be._procnet.step = timed(be._procnet.step, "lava")
    be._rest.step = timed(be._rest.step, "rest")
    try:
        for x in frames:
            be.step(x)
        be.flush()
    finally:
        be.close()
    return spent["lava"] / (len(frames) + be.latency) * 1e3, spent["rest"] / len(frames) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", action="append", default=None, help="HxW (repeatable), default 16x24")
    ap.add_argument("--steps", type=int, default=12)
    args = ap.parse_args()
    from snnc.export.lava_procs import LavaProcNet, lava_part
    from snnc.export.lower import graph_inputs
    from snnc.export.runtime import GraphModule
    from snnc.quant import int8_graph, quantize_network
    from snnc.runtime.model import load_network

    net = load_network("stereo-synth")
    for size in args.size or ["16x24"]:
        h, w = (int(v) for v in size.split("x"))
        shape = (1, 2, 5, h, w)
        frames = _frames(shape, args.steps)
        fields = quantize_network(net.model, shape, frames[:2])
        g = int8_graph(net.model, shape, fields)
        nodes, cut = lava_part(g)
        neurons = [n for n in nodes if g[n].op == "neuron"]
        lp = LavaProcNet(g, batch=2, read=cut)
        t0 = time.perf_counter()
        lp.start()
        start_s = time.perf_counter() - t0
        xs = [graph_inputs("spikedhs-stereo", x)["x"].numpy() for x in frames]
        try:
            lp.step(xs[0])
            t0 = time.perf_counter()
            for x in xs[1:]:
                lp.step(x)
            step_s = (time.perf_counter() - t0) / (len(xs) - 1)
        finally:
            lp.stop()
        gm = GraphModule(g)
        with torch.no_grad():
            values, _ = gm.step_nodes(graph_inputs("spikedhs-stereo", frames[0]), None)
        spikes = {n: values[n].numpy() for n in neurons}
        comp = _compute_per_step(lp, spikes, xs[0])
        over = _overhead(lp.process_count, args.steps)
        print(
            f"{h}x{w}: {lp.process_count} Lava processes ({lp.plan.relay_count()} relays), start-up {start_s:.1f} s, "
            f"{step_s * 1e3:.0f} ms/step = {1 / step_s:.2f} frames/s; serial compute in the processes "
            f"{(comp['conv_s'] + comp['lif_s']) * 1e3:.0f} ms "
            f"(conv {comp['conv_s'] * 1e3:.0f}, LIF {comp['lif_s'] * 1e3:.1f}); "
            f"runtime overhead of {lp.process_count} empty processes {over * 1e3:.0f} ms/step"
        )
        lava_ms, rest_ms = _stream_split(net.model, shape, frames, fields)
        print(
            f"{h}x{w} stream (LavaBackend int8): Lava part {lava_ms:.0f} ms/step, host part (cost volume, "
            f"3-D matching, integer torch) {rest_ms:.0f} ms/frame"
        )


if __name__ == "__main__":
    main()
