"""The integer 2-D spiking part of an export graph as a network of lava-nc processes.

netx (:mod:`snnc.export.lava_writer`) builds chains only; the stereo feature net
is a DAG (cells whose neurons sum several convolutions, skips from earlier
levels, concatenations lowered to one conv per part, nearest up-sampling).
This module builds that DAG from Lava's own processes:

* every ``conv`` node -> one ``lava.proc.conv.process.Conv`` (PyTorch's
  correlation as Lava's convolution: the kernel flipped, axes (O, kx, ky, I));
* every ``neuron`` node -> one ``lava.proc.lif.process.LIF`` (Loihi's
  bit-accurate CUBA LIF, ``du = 4095`` i.e. no current memory): the a_out
  ports of all its convolutions are connected to its one ``a_in`` port, which
  sums them (Lava adds every message arriving at an InPort); the conv biases of
  all its terms become the LIF's ``bias_mant << bias_exp``;
* a neuron read directly (an identity skip) -> a 1x1 identity ``Conv``;
* a ``resize`` (nearest up-sampling) of spikes -> a ``Sparse`` 0/1 selection
  matrix into a **relay** LIF (threshold 0, no leak memory: it re-emits exactly
  the spikes it receives), whose spikes the next convolution reads;
* the input: graded spikes (``num_message_bits = 8``: integer event counts, as
  Loihi 2's graded spikes), injected with an ``Injector``;
* read-out: an ``Extractor`` per read neuron layer.

Timing (measured on Lava 0.10, ``tests/test_lava_int8.py::test_lava_latency``):
a connection process (``Conv``, ``Dense``, ``Sparse``) *sends the activation it
computed at step t-1, then receives step t's spikes* (its ``run_spk``), so it
delivers one step late; a ``LIF`` receives, updates and sends in the same step;
an ``Injector``'s data reaches its consumers in the step it is sent;
``DelaySparse`` with delay ``d`` delivers ``1 + d`` steps late. snnc's CPU
semantics is one whole feed-forward pass per step (no synaptic delay). Every
spike source therefore has a **latency** ``L`` (Lava step = CPU step + L): the
input 0, a neuron ``1 + max`` over its terms of the latency of the spikes the
term reads. A term whose spikes come earlier than ``L(neuron) - 1`` reads them
through a delay line: a ``DelaySparse`` (identity or the resize's selection,
delay ``L(neuron) - 1 - L(source) - 1``) into a relay LIF, shared by every term
that needs the same source at the same latency. With these, Lava's spikes of
neuron ``n`` at step ``t + L(n)`` are the CPU's at step ``t``, bit for bit; a
stream has a latency of ``L`` of the cut.

The integer network (int8 weights, integer thresholds, 12-bit decay; see
``docs/INT8.md``) is read from the graph by :func:`int_neuron`. Loihi's limits
are checked when planning, each refusal naming the layer: weights in int8, a
13-bit bias mantissa with a 3-bit exponent, a 17-bit threshold, and the
largest input a neuron can receive must keep ``a << 6`` inside Lava's 24-bit
current.

Batch: the shared feature net of a stereo pair runs both cameras. They run in
one Lava network as **channel groups**: every population holds ``B x C``
channels (camera-major) and every convolution is grouped ``B x groups`` with its
kernel repeated per camera, so the cameras never mix (exact).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from snnc.errors import SnncError
from snnc.export.graph import Graph

__all__ = [
    "LavaNeuron",
    "LavaPlan",
    "LavaProcNet",
    "input_peak_of",
    "int_neuron",
    "lava_part",
    "plan_lava",
    "resize_matrix",
]

#: Loihi limits checked before building (bits as in lava.proc.lif/conv's bit-accurate models).
W_MIN, W_MAX = -128, 127
BIAS_MANT_MAX, BIAS_EXP_MAX = 4095, 7
VTH_MAX = 2**17 - 1
DECAY_MAX = 4096
ACT_MAX = 2**17 - 1  # a << 6 stays inside the 24-bit signed current
#: Graded input message bits (the first layer reads integer event counts).
INPUT_MESSAGE_BITS = 8
#: ProcessModels for Lava's Conv (:class:`LavaProcNet`'s ``conv_model``).
CONV_MODELS = ("gemm", "lava")
#: ProcessModels for Lava's LIF (:class:`LavaProcNet`'s ``lif_model``).
LIF_MODELS = ("gated", "lava")
#: Steps one Lava ``run`` call may take: the Injector's and Extractors' channel buffers (Lava's default 50).
RUN_CHUNK = 50
_PART_OPS = ("input", "conv", "neuron", "resize", "sum")


@dataclass(frozen=True)
class LavaNeuron:
    """One integer neuron layer (Lava's LIF parameters).

    Attributes:
        vth: threshold mantissa (spike when ``v > vth << 6``), 0..2^17-1.
        dv: 12-bit voltage decay (``v <- v (4096 - dv) >> 12``), 0..4096.
        bias: per channel, in units of ``v`` (added every step), int64.
    """

    vth: int
    dv: int
    bias: npt.NDArray[np.int64]


def _integral(values: Any, what: str, name: str) -> npt.NDArray[np.int64]:
    arr = np.asarray(values, dtype=np.float64)
    if not np.array_equal(arr, np.rint(arr)):
        raise SnncError(f"cannot build Lava processes: {what} of {name!r} is not integer-valued (export with int8)")
    return np.rint(arr).astype(np.int64)


def int_neuron(graph: Graph, name: str, terms: Sequence[str]) -> LavaNeuron:
    """The LIF parameters of neuron node ``name`` whose currents are the conv nodes ``terms``.

    Reads the neuron's integer neuron (``params["int"]``, a
    :class:`snnc.neurons.integer.IntNeuron`: ``type``, ``vth``, ``dv``; see
    ``docs/INT8.md``) and sums the integer biases of its conv terms (activation
    units; ``v`` gets ``bias << 6`` like the activation).

    Raises:
        SnncError: the neuron carries no integer neuron, is not lif/if, or leaves Loihi's ranges.
    """
    node = graph[name]
    q = node.params.get("int")
    if q is None or not all(hasattr(q, k) for k in ("type", "vth", "dv")):
        raise SnncError(f"cannot build Lava processes: neuron {name!r} has no integer neuron (use --precision int8)")
    if q.type not in ("lif", "if"):
        raise SnncError(f"cannot build Lava processes: neuron {name!r} is an integer {q.type}; Loihi's LIF is lif/if")
    vth, dv = int(q.vth), int(q.dv)
    if not 0 <= vth <= VTH_MAX:
        raise SnncError(f"cannot build Lava processes: threshold {vth} of {name!r} leaves Loihi's 17 bits")
    if not 0 <= dv < DECAY_MAX:
        raise SnncError(f"cannot build Lava processes: decay {dv} of {name!r} is not a 12-bit decay (0..4095)")
    bias = np.zeros(node.shape[0], dtype=np.int64)
    for term in terms:
        b = graph[term].params.get("bias")
        if b is not None:
            bias += _integral(b, "bias", term)
    return LavaNeuron(vth=vth, dv=dv, bias=bias << 6)


def bias_mant_exp(bias: npt.NDArray[np.int64], name: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Per value the smallest exponent ``e`` (0..7) with ``bias = mant << e`` exactly and ``|mant| <= 4095``.

    Raises:
        SnncError: a bias Loihi's 13-bit mantissa and 3-bit exponent cannot hold exactly (layer named).
    """
    mant = np.asarray(bias, dtype=np.int64).copy()
    exp = np.zeros_like(mant)
    for _ in range(BIAS_EXP_MAX):
        big = (np.abs(mant) > BIAS_MANT_MAX) & (mant % 2 == 0)
        if not big.any():
            break
        mant[big] //= 2
        exp[big] += 1
    if (np.abs(mant) > BIAS_MANT_MAX).any():
        worst = int(np.asarray(bias)[np.abs(mant) > BIAS_MANT_MAX][0])
        raise SnncError(f"cannot build Lava processes: bias {worst} of {name!r} does not fit mantissa (13 bits) << exp")
    return mant, exp


def input_peak_of(graph: Graph) -> int:
    """The largest input magnitude of an integer graph (``meta["int8"]["input_max"]``; 1 without it)."""
    meta = graph.meta.get("int8") or {}
    return int(meta.get("input_max", 1))


def lava_part(graph: Graph) -> tuple[list[str], list[str]]:
    """``(nodes, cut neurons)``: the 2-D spiking part from the input that Lava's processes run.

    The part holds the input and every node whose inputs are all in the part
    and whose op is a 2-D ``conv``, a LIF/IF ``neuron``, a nearest ``resize`` or
    a ``sum`` junction; nodes between the last neurons and the rest move out
    (the cut runs through spikes). ``cut`` lists the part's neurons read by
    nodes outside it (or by the graph output).

    Raises:
        SnncError: not even one neuron layer after the input qualifies.
    """
    part: set[str] = set()
    for name in graph.order():
        node = graph[name]
        if node.op not in _PART_OPS or any(s not in part for s in node.inputs):
            continue
        if node.op == "conv" and (node.params["weight"].ndim != 4 or len(node.inputs) != 1):
            continue
        if node.op == "neuron" and getattr(node.params.get("int"), "type", node.params["spec"].type) not in (
            "lif",
            "if",
        ):
            continue
        if node.op == "resize" and (len(node.inputs) != 1 or len(node.shape) != 3):
            continue
        part.add(name)
    consumers = graph.consumers()
    changed = True
    while changed:  # the cut must carry spikes: drop stateless nodes whose readers are all outside
        changed = False
        for name in list(part):
            if graph[name].op in ("conv", "sum", "resize") and all(u not in part for u in consumers[name]):
                part.discard(name)
                changed = True
    order = [n for n in graph.order() if n in part]
    cut = [n for n in order if graph[n].op == "neuron" and any(u not in part for u in consumers[n])]
    if not any(graph[n].op == "neuron" for n in order):
        first = next(iter(consumers[graph.inputs[0]]), graph.inputs[0])
        raise SnncError(f"no layer can run in Lava's processes: {first!r} is not a 2-D conv + LIF/IF layer")
    return order, cut


def resize_matrix(in_shape: tuple[int, ...], out_size: tuple[int, int]) -> Any:
    """Sparse 0/1 matrix of nearest resampling ``(C, h, w) -> (C, H, W)`` on Lava's flat (x, y, c) order.

    The source of every output pixel is what torch's ``interpolate(mode='nearest')``
    picks (computed by resampling an index image with it).
    """
    import scipy.sparse as sp
    import torch
    import torch.nn.functional as F

    c, h, w = in_shape
    big_h, big_w = out_size
    idx = torch.arange(h * w, dtype=torch.float64).reshape(1, 1, h, w)
    src = F.interpolate(idx, size=(big_h, big_w), mode="nearest")[0, 0].numpy().astype(np.int64)  # (H, W)
    ys, xs = src // w, src % w
    out_x, out_y, ch = np.meshgrid(np.arange(big_w), np.arange(big_h), np.arange(c), indexing="ij")
    rows = (out_x * big_h * c + out_y * c + ch).ravel()
    cols = (xs[out_y, out_x] * h * c + ys[out_y, out_x] * c + ch).ravel()
    return sp.csr_matrix((np.ones(rows.size, dtype=np.int32), (rows, cols)), shape=(big_w * big_h * c, w * h * c))


@dataclass
class LavaPlan:
    """What :class:`LavaProcNet` builds, as plain data (no Lava objects).

    Attributes:
        nodes: the part's nodes (:func:`lava_part`), in order.
        cut: its neurons read outside the part.
        terms: neuron -> its conv terms (``sum`` junctions flattened; an identity
            skip is a synthetic term ``<neuron>.identity<i>`` reading the source).
        reads: conv term -> ``(spike view, latency)``: the view is a neuron,
            the input, or a ``resize`` node; latency the Lava latency at which it reads it.
        latency: spike source (input / neuron) -> its latency ``L``.
        ints: neuron -> its :class:`LavaNeuron`.
        views: ``(view, latency)`` pairs realised by a relay (a delay line or a resize).
    """

    nodes: list[str]
    cut: list[str]
    terms: dict[str, list[str]] = field(default_factory=dict)
    reads: dict[str, tuple[str, int]] = field(default_factory=dict)
    latency: dict[str, int] = field(default_factory=dict)
    ints: dict[str, LavaNeuron] = field(default_factory=dict)
    views: list[tuple[str, int]] = field(default_factory=list)

    def base(self, graph: Graph, view: str) -> str:
        """The spike source under a chain of resize nodes."""
        while graph[view].op == "resize":
            view = graph[view].inputs[0]
        return view

    def relay_count(self) -> int:
        """Relays (selection/delay synapse + relay LIF pairs) the plan needs."""
        return len(self.views)


def _flat_terms(graph: Graph, names: Sequence[str]) -> list[str]:
    out: list[str] = []
    for name in names:
        out += _flat_terms(graph, graph[name].inputs) if graph[name].op == "sum" else [name]
    return out


def plan_lava(graph: Graph, input_peak: int | None = None) -> LavaPlan:
    """Plan the Lava process network of the graph's 2-D spiking part (module docstring).

    ``input_peak`` bounds the magnitude of the graded input (default: the integer
    graph's ``meta["int8"]["input_max"]``, else 1), for the worst-case activation check.

    Raises:
        SnncError: a layer's integer parameters leave Loihi's ranges (named), or a neuron's
            worst-case input leaves Lava's 24-bit current.
    """
    nodes, cut = lava_part(graph)
    if input_peak is None:
        input_peak = input_peak_of(graph)
    plan = LavaPlan(nodes=nodes, cut=cut)
    x = graph.inputs[0]
    plan.latency[x] = 0
    views: set[tuple[str, int]] = set()

    def view_latency(view: str) -> int:  # earliest latency at which a view's spikes exist
        return plan.latency[view] if graph[view].op != "resize" else plan.latency[plan.base(graph, view)] + 1

    for name in nodes:
        node = graph[name]
        if node.op != "neuron":
            continue
        terms = []
        for i, t in enumerate(_flat_terms(graph, node.inputs)):
            if graph[t].op == "conv":
                terms.append(t)
            else:  # a neuron / the input / a resize read directly: an identity conv
                terms.append(f"{name}.identity{i}")
                plan.reads[terms[-1]] = (t, 0)
        for t in terms:
            if t not in plan.reads:
                plan.reads[t] = (graph[t].inputs[0], 0)
        lat = 1 + max(view_latency(plan.reads[t][0]) for t in terms)
        plan.latency[name] = lat
        for t in terms:
            view = plan.reads[t][0]
            plan.reads[t] = (view, lat - 1)
            if graph[view].op == "resize" or view_latency(view) != lat - 1:
                if plan.base(graph, view) == x:  # a relay LIF re-emits binary spikes, not graded input
                    what = "the graded input" if view == x else "a resampling of the graded input"
                    raise SnncError(
                        f"cannot build Lava processes: {t!r} reads {what} {lat - 1} step(s) late "
                        f"(a skip from the input); Lava relays only binary spikes"
                    )
                views.add((view, lat - 1))
        plan.terms[name] = terms
        plan.ints[name] = int_neuron(graph, name, [t for t in terms if t in graph.nodes])
        _check_ranges(graph, name, terms, plan, input_peak)
    plan.views = sorted(views, key=lambda v: (v[1], nodes.index(v[0])))
    return plan


def _check_ranges(graph: Graph, name: str, terms: Sequence[str], plan: LavaPlan, input_peak: int) -> None:
    """Refuse weights outside int8 and a worst-case activation Lava's 24-bit current cannot hold."""
    worst = np.zeros(graph[name].shape[0], dtype=np.int64)
    for t in terms:
        if t not in graph.nodes:  # identity skip
            worst += input_peak if plan.base(graph, plan.reads[t][0]) == graph.inputs[0] else 1
            continue
        w = _integral(graph[t].params["weight"], "weight", t)
        if w.min(initial=0) < W_MIN or w.max(initial=0) > W_MAX:
            raise SnncError(f"cannot build Lava processes: weights of {t!r} leave int8 ({w.min()}..{w.max()})")
        src = plan.base(graph, plan.reads[t][0])
        peak = input_peak if graph[src].op == "input" else 1
        worst += np.abs(w).reshape(w.shape[0], -1).sum(axis=1) * peak
    if int(worst.max(initial=0)) > ACT_MAX:
        raise SnncError(
            f"cannot build Lava processes: neuron {name!r} can receive {int(worst.max())} per step, more than "
            f"Lava's 24-bit current holds after the 6-bit shift ({ACT_MAX})"
        )
    bias_mant_exp(plan.ints[name].bias, name)  # refuses a bias Loihi cannot hold


def _lava_kernel(weight: Any, batch: int) -> npt.NDArray[np.int32]:
    """PyTorch correlation kernel (O, I, kh, kw) -> Lava convolution kernel (B*O, kw, kh, I), flipped."""
    w = np.rint(np.asarray(weight, dtype=np.float64)).astype(np.int32)
    lava = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(0, 3, 2, 1))
    return np.concatenate([lava] * batch, axis=0)


def _xy(pair: Sequence[int]) -> tuple[int, int]:
    """(y, x) graph order -> Lava's (x, y)."""
    return int(pair[1]), int(pair[0])


class LavaProcNet:
    """The planned process network, built and run in ``Loihi2SimCfg(select_tag='fixed_pt')``.

    Args:
        graph: the (integer) export graph.
        batch: samples run side by side as channel groups (2 for a stereo pair).
        read: neuron layers to read back (default: the cut).
        input_peak: the largest input magnitude (default :func:`input_peak_of`); graded spikes carry it.
        conv_model: the ProcessModel of every ``Conv``: ``gemm``
            (:class:`snnc.export.lava_models.PyConvModelGemm`, a matrix product per kernel tap, the
            same integers) or ``lava`` (Lava's ``PyConvModelFixed``, scipy per channel pair).
        lif_model: ``gated`` (:class:`snnc.export.lava_models.PyLifModelBitAccBiasFrom`: Lava's
            bit-accurate LIF, each layer's bias held at 0 inside the model until its first real step)
            or ``lava`` (Lava's ``PyLifModelBitAcc``, the bias switched on by ``Var.set`` between steps).

    ``start()`` compiles and launches Lava; ``step(x)`` injects one step's input
    ``(B, C, H, W)`` (integers) and returns ``{layer: spikes (B, C, H, W)}`` that
    Lava emitted in this step, i.e. the CPU's spikes of ``latency[layer]`` steps
    earlier (zeros before); ``run(xs)`` does the same for several steps in as few
    Lava ``run`` calls as the bias schedule allows. ``stop()`` ends the runtime.
    """

    def __init__(
        self,
        graph: Graph,
        batch: int = 1,
        read: Sequence[str] | None = None,
        input_peak: int = 1,
        conv_model: str = "gemm",
        lif_model: str = "gated",
    ) -> None:
        if conv_model not in CONV_MODELS:
            raise SnncError(f"unknown Lava Conv model {conv_model!r} (one of {', '.join(CONV_MODELS)})")
        if lif_model not in LIF_MODELS:
            raise SnncError(f"unknown Lava LIF model {lif_model!r} (one of {', '.join(LIF_MODELS)})")
        self.conv_model = conv_model
        self.lif_model = lif_model
        self.graph = graph
        self.input_peak = int(input_peak)
        self.plan = plan_lava(graph, self.input_peak)
        self.batch = int(batch)
        self.read = list(read) if read is not None else list(self.plan.cut)
        unknown = [n for n in self.read if n not in self.plan.latency or graph[n].op != "neuron"]
        if unknown:
            raise SnncError(f"cannot read {unknown[0]!r} from Lava: not a neuron layer of the Lava part")
        self._procs: list[Any] = []
        self._runtime: Any = None
        self._steps = 0
        self.process_count = 0

    # ------------------------------------------------------------------ building
    def _wh(self, name: str) -> tuple[int, int, int]:
        c, h, w = self.graph[name].shape
        return (w, h, c * self.batch)

    def _build(self) -> None:
        from snnc.export.lava_env import import_lava

        import_lava()
        from lava.proc.conv.process import Conv
        from lava.proc.io.extractor import Extractor
        from lava.proc.io.injector import Injector
        from lava.proc.lif.process import LIF
        from lava.proc.sparse.process import DelaySparse, Sparse

        g, plan, batch = self.graph, self.plan, self.batch
        x = g.inputs[0]
        self._inj = Injector(shape=self._wh(x))
        ports: dict[tuple[str, int], Any] = {(x, 0): self._inj.out_port}
        lifs: dict[str, Any] = {}
        procs: list[Any] = [self._inj]
        self._bias_on: dict[int, list[tuple[Any, npt.NDArray[np.int32]]]] = {}

        def relay(view: str, lat: int) -> Any:
            """Spikes of ``view`` at latency ``lat`` (a selection / delay synapse into a relay LIF)."""
            src = plan.base(g, view)
            chain = []
            v = view
            while g[v].op == "resize":
                chain.append(v)
                v = g[v].inputs[0]
            shape = self._wh(src)
            matrix = None
            for r in reversed(chain):  # compose nearest resamplings (each a 0/1 selection)
                c, h, w = g[g[r].inputs[0]].shape
                step = resize_matrix((c * batch, h, w), tuple(g[r].params["size"]))
                matrix = step if matrix is None else step @ matrix
                shape = self._wh(r)
            n_in = int(np.prod(self._wh(src)))
            if matrix is None:
                import scipy.sparse as sp

                matrix = sp.identity(n_in, dtype=np.int32, format="csr")
            delay = lat - plan.latency[src] - 1
            if delay < 0:
                raise SnncError(f"internal: view {view!r} requested before its spikes exist")
            if delay == 0:
                syn = Sparse(weights=matrix.astype(np.int32))
            else:
                delays = matrix.copy()
                delays.data[:] = delay
                syn = DelaySparse(weights=matrix.astype(np.int32), delays=delays.astype(np.int64))
            cell = LIF(shape=shape, du=4095, dv=0, vth=0, bias_mant=0, bias_exp=0)
            lifs[src].s_out.flatten().connect(syn.s_in)
            syn.a_out.reshape(shape).connect(cell.a_in)
            procs.extend([syn, cell])
            return cell.s_out

        for name in plan.nodes:
            node = g[name]
            if node.op != "neuron":
                continue
            q = plan.ints[name]
            mant, exp = bias_mant_exp(np.tile(q.bias, batch), name)
            shape = self._wh(name)

            def full(a: npt.NDArray[np.int64], shape: tuple[int, int, int] = shape) -> npt.NDArray[np.int32]:
                return np.broadcast_to(a.reshape(1, 1, -1), shape).astype(np.int32)

            # bias off until the neuron's first real step (Lava step L): no charge from bias alone before.
            # bias_from=L gates it inside the LIF model (PyLifModelBitAccBiasFrom); with Lava's own model the
            # bias is switched on by Var.set before step L (slow: the runtime sends a Var element by element)
            gated = self.lif_model == "gated"
            lif = LIF(
                shape=shape,
                du=4095,
                dv=q.dv,
                vth=q.vth,
                bias_mant=full(mant) if gated else 0,
                bias_exp=full(exp),
                bias_from=plan.latency[name],
            )
            if mant.any() and not gated:
                self._bias_on.setdefault(plan.latency[name], []).append((lif, full(mant)))
            procs.append(lif)
            for t in plan.terms[name]:
                view, lat = plan.reads[t]
                key = (view, lat)
                if key not in ports:
                    ports[key] = lifs[view].s_out if (g[view].op == "neuron" and plan.latency[view] == lat) else None
                    if ports[key] is None:
                        ports[key] = relay(view, lat)
                src_shape = self._wh(view)
                if t in g.nodes:
                    p = g[t].params
                    groups = int(p["groups"]) * batch
                    conv = Conv(
                        weight=_lava_kernel(p["weight"], batch),
                        input_shape=src_shape,
                        padding=_xy(p["padding"]),
                        stride=_xy(p["stride"]),
                        dilation=_xy(p["dilation"]),
                        groups=groups,
                        num_message_bits=INPUT_MESSAGE_BITS if plan.base(g, view) == g.inputs[0] else 0,
                    )
                else:  # identity skip
                    c = g[view].shape[0] * batch
                    conv = Conv(
                        weight=np.ones((c, 1, 1, 1), dtype=np.int32),
                        input_shape=src_shape,
                        groups=c,
                        num_message_bits=INPUT_MESSAGE_BITS if plan.base(g, view) == g.inputs[0] else 0,
                    )
                if tuple(conv.a_out.shape) != shape:
                    raise SnncError(f"internal: Lava conv {t!r} gives {conv.a_out.shape}, neuron {name!r} has {shape}")
                ports[key].connect(conv.s_in)
                conv.a_out.connect(lif.a_in)
                procs.append(conv)
            lifs[name] = lif
            ports[(name, plan.latency[name])] = lif.s_out
        self._extractors = {}
        for name in self.read:
            ext = Extractor(shape=self._wh(name))
            lifs[name].s_out.connect(ext.in_port)
            self._extractors[name] = ext
            procs.append(ext)
        self._procs = procs
        self._lifs = lifs
        self.process_count = len(procs)

    def start(self) -> None:
        """Build the processes and start Lava's runtime (fixed point, bit-accurate models)."""
        from snnc.export.lava_env import import_lava

        import_lava()
        from lava.magma.core.run_configs import Loihi2SimCfg
        from lava.proc.io.extractor import Extractor, PyLoihiExtractorModel
        from lava.proc.io.injector import Injector, PyLoihiInjectorModel

        self.stop()
        self._build()
        models: dict[Any, Any] = {Injector: PyLoihiInjectorModel, Extractor: PyLoihiExtractorModel}
        if self.conv_model == "gemm":
            from lava.proc.conv.process import Conv

            from snnc.export.lava_models import PyConvModelGemm

            models[Conv] = PyConvModelGemm
        if self.lif_model == "gated":
            from lava.proc.lif.process import LIF

            from snnc.export.lava_models import PyLifModelBitAccBiasFrom

            models[LIF] = PyLifModelBitAccBiasFrom
        cfg = Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map=models)
        self._inj.create_runtime(run_cfg=cfg)
        self._runtime = self._inj
        self._steps = 0

    def _frame(self, x: npt.ArrayLike | None) -> npt.NDArray[np.float64]:
        """One step's input ``(B, C, H, W)`` (None: zeros) in Lava's (x, y, B*C) order, checked."""
        c, h, w = self.graph[self.graph.inputs[0]].shape
        if x is None:
            return np.zeros((w, h, c * self.batch))
        arr = np.asarray(x, dtype=np.float64)
        if arr.shape != (self.batch, c, h, w):
            raise SnncError(f"Lava input of shape {arr.shape} does not fit {(self.batch, c, h, w)}")
        lim = self.input_peak
        if not np.array_equal(arr, np.rint(arr)) or np.abs(arr).max(initial=0) > lim:
            raise SnncError(f"Lava input must be integer event counts within +-{lim} (graded spikes)")
        return arr.reshape(self.batch * c, h, w).transpose(2, 1, 0)

    def step(self, x: npt.ArrayLike | None) -> dict[str, npt.NDArray[np.float32]]:
        """Inject one step's input (``(B, C, H, W)`` integers; None: zeros) and run one Lava step.

        Raises:
            SnncError: the input is not integer-valued within the graded spikes' 8 bits, or has another shape.
        """
        return self.run([x])[0]

    def run(self, xs: Sequence[npt.ArrayLike | None]) -> list[dict[str, npt.NDArray[np.float32]]]:
        """Run one Lava step per input (as :meth:`step`), several steps per Lava ``run`` call.

        The inputs of a chunk are queued in the Injector, the chunk runs as one
        ``RunSteps(n)`` and every Extractor's spikes of those steps are read after it.
        A chunk ends where a layer's bias is switched on (a ``Var.set`` between steps)
        and after :data:`RUN_CHUNK` steps (the channels' buffers).

        Raises:
            SnncError: an input is not integer-valued within the graded spikes' range, or has another shape.
        """
        from lava.magma.core.run_conditions import RunSteps

        if self._runtime is None:
            raise SnncError("Lava process network not started (call start())")
        frames = [self._frame(x) for x in xs]
        switches = sorted(k for k in self._bias_on if k >= self._steps)
        out: list[dict[str, npt.NDArray[np.float32]]] = []
        done = 0
        while done < len(frames):
            for lif, mant in self._bias_on.get(self._steps, []):
                lif.bias_mant.set(mant)
            later = [k for k in switches if k > self._steps]
            n = min(len(frames) - done, RUN_CHUNK, (later[0] - self._steps) if later else RUN_CHUNK)
            for frame in frames[done : done + n]:
                self._inj.send(frame)
            self._runtime.run(condition=RunSteps(num_steps=n))
            self._steps += n
            done += n
            got = {name: [np.asarray(ext.receive()) for _ in range(n)] for name, ext in self._extractors.items()}
            for k in range(n):
                step_out = {}
                for name, seq in got.items():
                    ch, hh, ww = self.graph[name].shape
                    spikes = seq[k].transpose(2, 1, 0).reshape(self.batch, ch, hh, ww)
                    step_out[name] = spikes.astype(np.float32)
                out.append(step_out)
        return out

    @property
    def steps(self) -> int:
        """Lava steps run since :meth:`start`."""
        return self._steps

    def stop(self) -> None:
        """Stop Lava's runtime (idempotent)."""
        if self._runtime is not None:
            try:
                self._runtime.stop()
            finally:
                self._runtime = None
