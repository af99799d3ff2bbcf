"""Lava frames/s of the int8 stereo feature net (lava_procs) and what dominates a step.

Runs the trained zoo model ``stereo-synth`` quantised to int8 (PTQ) at one or
more sizes: builds the Lava process network of its 2-D feature net
(:class:`snnc.export.lava_procs.LavaProcNet`, both cameras) with Lava's own
ProcessModels (``lava``) and snnc's (``snnc``: ``PyConvModelGemm``,
``PyLifModelBitAccBiasFrom``), and measures in the same run, per model set and
with one Lava ``run`` call per step or all steps in one call:

* start-up (building the processes; compiling and forking one OS process per Lava process);
* the first steps (where each layer's bias is switched on) and the wall time per later step;
* the **CPU** per step of this process and of Lava's processes (from /proc), and inside the
  processes (``time.thread_time`` in wrapped ProcessModel methods, summed over processes in
  shared memory): the convolutions, the LIF updates, the relays (Sparse / DelaySparse), the
  multi-input summing in ``PyInPort.recv``; the rest of the processes' CPU is Lava's runtime and
  message passing (protocol loop, channel copies, synchronisation);
* the runtime overhead of as many empty 1x1x1 processes;
* in a stream (``LavaBackend`` int8, per model set): frames/s, the Lava part per step against
  the host part (cost volume and 3-D matching in snnc's integer torch runtime) per frame.

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


#: --models: name -> (Conv model, LIF model) of LavaProcNet. lava: Lava's own ProcessModels (PyConvModelFixed,
#: PyLifModelBitAcc with the bias switched on by Var.set); snnc: snnc's (PyConvModelGemm, PyLifModelBitAccBiasFrom).
MODELS = {"lava": ("lava", "lava"), "snnc": ("gemm", "gated")}

#: What the children's CPU time inside run_spk is split into (seconds summed over all Lava processes).
_SLOTS = (
    "conv_compute",  # the convolution itself (Lava's utils.conv / snnc's conv_gemm)
    "conv_other",  # the rest of Conv.run_spk without its ports (clamp, casts)
    "lif_compute",  # LIF.run_spk without its ports (Loihi bit-accurate update)
    "relay_compute",  # Sparse / DelaySparse (resampling and delay-line relays) without their ports
    "io_compute",  # Injector / Extractor models without their ports
    "inport_sum",  # PyInPort.recv without the channel reads: the sum of several inputs (and reshapes)
    "channel_recv",  # reading a message from a channel (copy out of shared memory; waiting is no CPU)
    "outport_send",  # writing a message into a channel (copy into shared memory)
)

_MAX_ROWS = 1024


class ChildProfile:
    """CPU time (``time.thread_time``) inside Lava's forked processes, per kind of work (shared-memory counters).

    Install before ``start()`` (Lava forks its processes from this one, so the
    wrapped functions are what the children run); read :meth:`snapshot` between steps.
    """

    def __init__(self) -> None:
        import multiprocessing as mp

        from snnc.export.lava_env import import_lava

        import_lava()  # Lava fixes the start method ('fork') on import: before the shared memory
        self.acc = mp.RawArray("d", _MAX_ROWS * len(_SLOTS))  # one row per Lava process, written lock-free
        self._next = mp.Value("i", 0)  # the only lock: taken once per process, to claim its row
        self._row = -1
        self._undo: list[tuple[object, str, object]] = []
        self._cur: list[str] = []

    def _add(self, slot: str, dt: float) -> None:
        if self._row < 0:  # first use in this (forked) process
            with self._next.get_lock():
                self._row = self._next.value
                self._next.value += 1
            if self._row >= _MAX_ROWS:
                raise RuntimeError(f"more than {_MAX_ROWS} Lava processes")
        self.acc[self._row * len(_SLOTS) + _SLOTS.index(slot)] += dt

    def _patch(self, owner: object, attr: str, wrap) -> None:
        orig = getattr(owner, attr)
        self._undo.append((owner, attr, orig))
        setattr(owner, attr, wrap(orig))

    def install(self) -> None:
        from lava.magma.compiler.channels.pypychannel import CspRecvPort, CspSendPort
        from lava.magma.core.model.py.ports import PyInPortVectorDense
        from lava.proc.conv import models as conv_models
        from lava.proc.conv import utils
        from lava.proc.io.extractor import PyLoihiExtractorModel
        from lava.proc.io.injector import PyLoihiInjectorModel
        from lava.proc.lif.models import PyLifModelBitAcc
        from lava.proc.sparse.models import PyDelaySparseModelBitAcc, PySparseModelBitAcc

        from snnc.export import lava_models

        prof = self
        io_time = [0.0]  # port time inside the current run_spk (subtracted from it)

        def model(kind):
            def wrap(orig):
                def run_spk(self_):
                    prof._cur.append(kind)
                    io0 = io_time[0]
                    t0 = time.thread_time()
                    try:
                        return orig(self_)
                    finally:
                        dt = time.thread_time() - t0 - (io_time[0] - io0)
                        prof._cur.pop()
                        prof._add(f"{kind}_other" if kind == "conv" else f"{kind}_compute", dt)

                return run_spk

            return wrap

        def conv_fn(orig):
            def conv(*args, **kw):
                t0 = time.thread_time()
                try:
                    return orig(*args, **kw)
                finally:
                    dt = time.thread_time() - t0
                    prof._add("conv_compute", dt)
                    prof._add("conv_other", -dt)

            return conv

        in_inport = [False]

        def inport(orig):  # PyInPort.recv: channel reads + the sum of several inputs
            def recv(self_):
                if not prof._cur:
                    return orig(self_)
                in_inport[0] = True
                t0 = time.thread_time()
                try:
                    return orig(self_)
                finally:
                    in_inport[0] = False
                    dt = time.thread_time() - t0
                    prof._add("inport_sum", dt)
                    io_time[0] += dt

            return recv

        def channel(slot):  # a channel read or write: moved out of the enclosing port's or model's time
            def wrap(orig):
                def call(self_, *args):
                    if not prof._cur:  # the runtime's command channels, outside a step's work
                        return orig(self_, *args)
                    t0 = time.thread_time()
                    try:
                        return orig(self_, *args)
                    finally:
                        dt = time.thread_time() - t0
                        prof._add(slot, dt)
                        if in_inport[0]:
                            prof._add("inport_sum", -dt)
                        else:
                            io_time[0] += dt

                return call

            return wrap

        for cls in (conv_models.PyConvModelFixed, lava_models.PyConvModelGemm):
            self._patch(cls, "run_spk", model("conv"))
        self._patch(PyLifModelBitAcc, "run_spk", model("lif"))
        for cls in (PySparseModelBitAcc, PyDelaySparseModelBitAcc):
            self._patch(cls, "run_spk", model("relay"))
        for cls in (PyLoihiInjectorModel, PyLoihiExtractorModel):
            self._patch(cls, "run_spk", model("io"))
        self._patch(utils, "conv", conv_fn)
        self._patch(lava_models, "conv_gemm", conv_fn)
        self._patch(PyInPortVectorDense, "recv", inport)
        self._patch(CspRecvPort, "recv", channel("channel_recv"))
        self._patch(CspSendPort, "send", channel("outport_send"))

    def uninstall(self) -> None:
        for owner, attr, orig in reversed(self._undo):
            setattr(owner, attr, orig)
        self._undo = []

    def snapshot(self) -> dict[str, float]:
        vals = np.frombuffer(self.acc, dtype=np.float64).reshape(_MAX_ROWS, len(_SLOTS)).sum(axis=0)
        return dict(zip(_SLOTS, vals.tolist(), strict=True))


def _children_cpu() -> float:
    """CPU seconds (user + system) of this process's child processes (Lava's forked processes), from /proc."""
    import os

    me, total = os.getpid(), 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _profile_net(g, cut, xs, models: str, chunk: bool) -> dict[str, float]:
    """Start-up and per-step split of one LavaProcNet run over ``xs`` (both cameras)."""
    from snnc.export.lava_procs import LavaProcNet

    conv_model, lif_model = MODELS[models]
    lp = LavaProcNet(g, batch=2, read=cut, conv_model=conv_model, lif_model=lif_model)
    prof = ChildProfile()
    prof.install()
    res: dict[str, float] = {}
    try:
        t0 = time.perf_counter()
        lp._build()
        res["build_s"] = time.perf_counter() - t0
        orig_build = lp._build
        lp._build = lambda: None  # start() builds again otherwise; compile + fork only
        t0 = time.perf_counter()
        lp.start()
        res["compile_s"] = time.perf_counter() - t0
        lp._build = orig_build
        res["processes"] = lp.process_count
        warm = max(lp.plan.latency.values()) + 1  # past every bias switch
        t0 = time.perf_counter()
        lp.run(xs[:1] * warm)  # the steps that switch biases on (Var.set with Lava's LIF model)
        res["first_steps_ms"] = (time.perf_counter() - t0) / warm * 1e3
        host = {"inject": 0.0, "run": 0.0, "read": 0.0}
        inj, rt = lp._inj, lp._runtime
        exts = list(lp._extractors.values())

        def timed(obj, attr, key):
            orig = getattr(obj, attr)

            def call(*a, **k):
                t = time.perf_counter()
                try:
                    return orig(*a, **k)
                finally:
                    host[key] += time.perf_counter() - t

            setattr(obj, attr, call)

        timed(inj, "send", "inject")
        timed(rt, "run", "run")
        for e in exts:
            timed(e, "receive", "read")
        before, cpu0, pcpu0 = prof.snapshot(), _children_cpu(), time.process_time()
        t0 = time.perf_counter()
        if chunk:
            lp.run(xs)
        else:
            for x in xs:
                lp.run([x])
        wall = time.perf_counter() - t0
        after, cpu1, pcpu1 = prof.snapshot(), _children_cpu(), time.process_time()
    finally:
        lp.stop()
        prof.uninstall()
    n = len(xs)
    res["wall_ms"] = wall / n * 1e3
    res["children_cpu_ms"] = (cpu1 - cpu0) / n * 1e3
    res["parent_cpu_ms"] = (pcpu1 - pcpu0) / n * 1e3
    for k in _SLOTS:
        res[k + "_ms"] = (after[k] - before[k]) / n * 1e3
    for k, v in host.items():
        res["host_" + k + "_ms"] = v / n * 1e3
    return res


def _report(tag: str, r: dict[str, float]) -> None:
    """Print one profiled run: wall per step and the CPU shares of the children's work."""
    work = sum(r[k + "_ms"] for k in ("conv_compute", "conv_other", "lif_compute", "relay_compute", "io_compute"))
    summing = r["inport_sum_ms"]
    runtime = max(0.0, r["children_cpu_ms"] - work - summing)  # protocol loop, channel copies, sync, scheduling
    cpu = r["children_cpu_ms"] + r["parent_cpu_ms"]
    share = lambda v: f"{v:.0f} ms ({100 * v / cpu:.0f}%)" if cpu > 0 else f"{v:.0f} ms"  # noqa: E731
    print(
        f"  {tag}: {r['processes']:.0f} processes; build {r['build_s']:.1f} s, compile+fork {r['compile_s']:.1f} s "
        f"(one-off); first steps {r['first_steps_ms']:.0f} ms/step (bias switch-on); then {r['wall_ms']:.0f} "
        f"ms/step wall = {1e3 / r['wall_ms']:.2f} steps/s; CPU per step "
        f"{cpu:.0f} ms (Lava processes {r['children_cpu_ms']:.0f}, this process {r['parent_cpu_ms']:.0f})"
    )
    print(
        f"    CPU shares: Conv compute {share(r['conv_compute_ms'] + r['conv_other_ms'])}, "
        f"LIF {share(r['lif_compute_ms'])}, relays (Sparse/DelaySparse) {share(r['relay_compute_ms'])}, "
        f"multi-input summing {share(summing)}, Injector/Extractor models {share(r['io_compute_ms'])}, "
        f"Lava runtime + message passing (rest of the processes' CPU) {share(runtime)}, "
        f"host side (send, run call, read-back) {share(r['parent_cpu_ms'])}"
    )
    print(
        f"    host wall per step: inject {r['host_inject_ms']:.1f} ms, run() {r['host_run_ms']:.0f} ms, "
        f"read-back {r['host_read_ms']:.1f} ms; of the runtime share: channel reads {share(r['channel_recv_ms'])}, "
        f"channel writes {share(r['outport_send_ms'])}"
    )


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


def _stream_split(model, shape: tuple[int, ...], frames: list[torch.Tensor], fields, models: str) -> dict[str, float]:
    """The int8 LavaBackend over ``frames`` (pipeline flushed) with the given Conv model: Lava ms/step,
    host rest ms/frame, everything else (quantising, head) ms/frame, frames/s (wall of step + flush)."""
    from snnc.export import lava_procs
    from snnc.runtime.lava_backend import LavaBackend

    base = lava_procs.LavaProcNet

    class WithModel(base):  # LavaBackend builds its LavaProcNet with the default model
        def __init__(self, *args, **kwargs):
            super().__init__(*args, conv_model=MODELS[models][0], lif_model=MODELS[models][1], **kwargs)

    lava_procs.LavaProcNet = WithModel
    try:
        be = LavaBackend(model, torch.device("cpu"), fields=fields)
        be.reset(frames[0])
    finally:
        lava_procs.LavaProcNet = base
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
        t0 = time.perf_counter()
        answered = sum(be.step(x) is not None for x in frames) + len(be.flush())
        total = time.perf_counter() - t0
    finally:
        be.close()
    n = len(frames)
    assert answered == n
    steps = n + be.latency
    return {
        "lava_ms_step": spent["lava"] / steps * 1e3,
        "steps": steps,
        "rest_ms": spent["rest"] / n * 1e3,
        "other_ms": (total - spent["lava"] - spent["rest"]) / n * 1e3,
        "fps": n / total,
        "lava_share": spent["lava"] / total,
        "rest_share": spent["rest"] / total,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", action="append", default=None, help="HxW (repeatable), default 16x24")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--models", default="lava,snnc", help="ProcessModel sets to compare (lava, snnc; see MODELS)")
    ap.add_argument("--no-stream", action="store_true", help="skip the LavaBackend stream split")
    ap.add_argument("--no-profile", action="store_true", help="only the LavaBackend stream split")
    args = ap.parse_args()
    from snnc.export.lava_procs import lava_part
    from snnc.export.lower import graph_inputs
    from snnc.quant import int8_graph, quantize_network
    from snnc.runtime.model import load_network

    torch.set_num_threads(1)  # the host part as `snnc stream --threads 1` runs it
    net = load_network("stereo-synth")
    for size in args.size or ["16x24"]:
        h, w = (int(v) for v in size.split("x"))
        shape = (1, 2, 5, h, w)
        frames = _frames(shape, args.steps)
        fields = quantize_network(net.model, shape, frames[:2])
        g = int8_graph(net.model, shape, fields)
        _, cut = lava_part(g)
        xs = [graph_inputs("spikedhs-stereo", x)["x"].numpy() for x in frames]
        print(f"{h}x{w}, {args.steps} steps (both cameras):")
        walls = {}
        for model in [] if args.no_profile else args.models.split(","):
            for chunk in (False, True):
                tag = f"{model} models, " + ("all steps in one run() call" if chunk else "one run() per step")
                r = _profile_net(g, cut, xs, model, chunk)
                walls[(model, chunk)] = r["wall_ms"]
                _report(tag, r)
        base = walls.get(("lava", False))
        if base:
            print(
                "  speed-up against Lava's own models, one run() per step: "
                + ", ".join(f"{m}{' chunked' if c else ''} {base / v:.2f}x" for (m, c), v in walls.items())
            )
        if walls:
            over = _overhead(r["processes"], args.steps)
            print(f"  runtime overhead of {r['processes']:.0f} empty 1x1x1 processes: {over * 1e3:.0f} ms/step")
        if not args.no_stream:
            for model in args.models.split(","):
                r = _stream_split(net.model, shape, frames, fields, model)
                print(
                    f"  stream (LavaBackend int8, {model} models, {len(frames)} frames = {r['steps']} Lava "
                    f"steps with the pipeline flush): {r['fps']:.2f} frames/s; Lava part {r['lava_ms_step']:.0f} "
                    f"ms/step ({100 * r['lava_share']:.0f}% of the wall), host part (cost volume, 3-D matching, "
                    f"integer torch) {r['rest_ms']:.0f} ms/frame ({100 * r['rest_share']:.0f}%), quantising input "
                    f"+ head {r['other_ms']:.0f} ms/frame"
                )


if __name__ == "__main__":
    main()
