"""``snnc export --to nir --for sinabs|rockpool --check-hardware``: does the network fit the chip?

The answer comes from the chip vendors' own tools, run on the exported network:

* **Speck** (``--for sinabs``): sinabs' ``DynapcnnNetwork`` pipeline (``sinabs.backend.dynapcnn``):
  its graph extractor and ``DynapcnnLayer`` conversion (supported layer and neuron types,
  per-layer kernel / neuron / bias memory), then its core assignment
  (``DynapcnnConfigBuilder.map_layers_to_cores``: the chip's per-core memory table and sinabs'
  flow-graph mapping). The network is given to sinabs as a torch module of ``nn.Conv2d`` /
  ``nn.Linear`` / ``nn.AvgPool2d`` / ``nn.Flatten`` layers and sinabs neurons
  (``IAFSqueeze`` for IF, ``LIFSqueeze`` for leaky neurons), wired like the export graph.
* **Xylo Audio 2** (``--for rockpool``): rockpool's Xylo mapper
  (``rockpool.devices.xylo.syns61201.mapper``: its design-rule checks, hidden / output neuron
  allocation, input-channel warnings). Xylo is one recurrent population: the network is given
  as rockpool's ``LinearTorch -> LIFTorch (recurrent) -> LinearTorch -> LIFTorch`` with every
  neuron layer but the output one in the hidden population and the synapses between them
  (convolutions and pools unrolled to the dense matrices Xylo stores) as its recurrent weights.

Neither library's hardware package imports without ``samna``, SynSense's device runtime,
which PyPI does not ship (its ``samna`` package there is a stub that installs the real one from
SynSense's own index at import time): ``sinabs.backend.dynapcnn`` and ``rockpool.devices.xylo``
import it at package level although the mapping code does not use it. The checks load the
mapping modules without those package ``__init__`` files; where a module imports ``samna`` only
to name it (sinabs' ``config_builder``), a placeholder module that raises on any use stands in for
the import. What needs the real ``samna`` (building and validating the device configuration:
sinabs' ``make_config``, rockpool's ``config_from_specification``) is reported as not checked.
"""

from __future__ import annotations

import contextlib
import sys
import types
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from snnc.errors import SnncError
from snnc.export.graph import Graph
from snnc.neurons import leak_factor

__all__ = ["HARDWARE", "HardwareReport", "check_hardware", "check_speck", "check_xylo"]

#: ``--for`` consumer -> the chip ``--check-hardware`` checks.
HARDWARE: dict[str, str] = {"sinabs": "Speck (sinabs DynapcnnNetwork)", "rockpool": "Xylo Audio 2 (rockpool mapper)"}

_NOT_CHECKED = (
    "building and validating the device configuration needs samna (SynSense's runtime; not on PyPI), not checked"
)


@dataclass
class HardwareReport:
    """The vendor tool's verdict on one network.

    Attributes:
        chip: the chip and tool.
        fits: whether the tool accepted the network.
        reason: the tool's own words when it did not (one line), else ``""``.
        details: what the tool reported (layers, memory, neurons, warnings), one item per line.
        not_checked: what the tool could not check here.
    """

    chip: str
    fits: bool
    reason: str = ""
    details: list[str] = field(default_factory=list)
    not_checked: str = _NOT_CHECKED

    def line(self) -> str:
        """One line for the CLI."""
        verdict = "fits" if self.fits else f"does not fit: {self.reason}"
        return f"{self.chip}: {verdict}"


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    cause = err.__cause__
    if cause is not None and str(cause).strip():
        text += " (" + " ".join(str(cause).split()) + ")"
    text = text if len(text) <= 400 else text[:397] + "..."
    return f"{type(err).__name__}: {text}"


@contextlib.contextmanager
def _package_without_init(name: str) -> Iterator[None]:
    """Import submodules of package ``name`` without running its ``__init__`` (which imports samna)."""
    import importlib.util

    if name in sys.modules:
        yield
        return
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SnncError(f"{name} is not installed")
    pkg = types.ModuleType(name)
    pkg.__path__ = list(spec.submodule_search_locations)
    sys.modules[name] = pkg
    try:
        yield
    finally:
        for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
            del sys.modules[key]  # the next import of the real package runs its __init__ again


class _Unavailable(types.ModuleType):
    """Stands in for ``samna`` in an import that only names it; any use raises."""

    def __getattr__(self, attr: str) -> Any:
        raise ImportError(f"samna is not installed (needed for samna.{attr})")


@contextlib.contextmanager
def _samna_placeholder() -> Iterator[None]:
    try:
        import samna  # type: ignore[import-not-found]  # noqa: F401  (the real runtime, where installed)

        yield
        return
    except ImportError:
        pass
    sys.modules["samna"] = _Unavailable("samna")
    try:
        yield
    finally:
        sys.modules.pop("samna", None)


# ----------------------------------------------------------------------------------- Speck (sinabs)
class _GraphNet(nn.Module):
    """A torch module wired like an export graph (sums of edges through ``sinabs.layers.Merge``)."""

    def __init__(self, graph: Graph, layers: dict[str, nn.Module]) -> None:
        import sinabs.layers as sl

        super().__init__()
        self.graph = graph
        self.order = [n for n in graph.order() if graph[n].op not in ("input", "output")]
        self.keys = {n: n.replace(".", "_") for n in self.order}
        self.layers = nn.ModuleDict({self.keys[n]: layers[n] for n in self.order if n in layers})
        self.merges = nn.ModuleDict(
            {f"{self.keys[n]}_in{k}": sl.Merge() for n in self.order for k in range(1, len(graph[n].inputs))}
        )

    def forward(self, x: Tensor) -> Tensor:
        values = {self.graph.inputs[0]: x}
        for name in self.order:
            node = self.graph[name]
            v = values[node.inputs[0]]
            for k, src in enumerate(node.inputs[1:], start=1):
                v = self.merges[f"{self.keys[name]}_in{k}"](v, values[src])
            values[name] = self.layers[self.keys[name]](v) if self.keys[name] in self.layers else v
        return values[self.graph[self.graph.outputs[0]].inputs[0]]


def _sinabs_layer(name: str, node: Any, batch: int) -> nn.Module | None:
    import sinabs.layers as sl

    p = node.params
    if node.op == "conv":
        w = torch.as_tensor(p["weight"], dtype=torch.float32)
        if w.dim() != 4:
            raise SnncError(f"node {name!r}: a 3-D convolution, which sinabs' Speck backend does not take")
        conv = nn.Conv2d(
            w.shape[1] * int(p["groups"]),
            w.shape[0],
            (int(w.shape[2]), int(w.shape[3])),
            stride=tuple(p["stride"]),
            padding=tuple(p["padding"]),
            dilation=tuple(p["dilation"]),
            groups=int(p["groups"]),
            bias=p["bias"] is not None,
        )
        with torch.no_grad():
            conv.weight.copy_(w)
            if p["bias"] is not None:
                conv.get_parameter("bias").copy_(torch.as_tensor(p["bias"], dtype=torch.float32))
        return conv
    if node.op == "affine":
        w = torch.as_tensor(p["weight"], dtype=torch.float32)
        lin = nn.Linear(w.shape[1], w.shape[0], bias=p["bias"] is not None)
        with torch.no_grad():
            lin.weight.copy_(w)
            if p["bias"] is not None:
                lin.get_parameter("bias").copy_(torch.as_tensor(p["bias"], dtype=torch.float32))
        return lin
    if node.op == "avgpool":
        return nn.AvgPool2d(tuple(p["kernel"]), tuple(p["stride"]), tuple(p["padding"]))
    if node.op == "sumpool":
        pool: nn.Module = sl.SumPool2d(tuple(p["kernel"]), tuple(p["stride"]))
        return pool
    if node.op == "flatten":  # dims of the unbatched type; -1 stays the last axis
        end = int(p["end_dim"])
        return nn.Flatten(int(p["start_dim"]) + 1, end + 1 if end >= 0 else -1)
    if node.op == "neuron":
        spec = p["spec"]
        neuron: nn.Module
        if leak_factor(spec) >= 1.0:
            neuron = sl.IAFSqueeze(batch_size=batch, spike_threshold=float(spec.vth), min_v_mem=None)
        else:  # sinabs' tau_mem is in time steps
            tau = 1.0 / (1.0 - leak_factor(spec))
            neuron = sl.LIFSqueeze(tau_mem=tau, batch_size=batch, spike_threshold=float(spec.vth), norm_input=False)
        return neuron
    if node.op in ("input", "sum", "output"):
        return None
    raise SnncError(f"node {name!r}: a {node.op} node has no sinabs layer")


def check_speck(graph: Graph) -> HardwareReport:
    """Speck: sinabs' DynapcnnNetwork conversion and core mapping of ``graph`` (see module docstring).

    Raises:
        SnncError: sinabs is not installed, or the graph has a node with no sinabs layer.
    """
    chip = HARDWARE["sinabs"]
    try:
        import sinabs  # noqa: F401
    except ImportError:
        raise SnncError("--check-hardware for sinabs needs sinabs installed (pip install sinabs)") from None
    batch = 1
    layers = {}
    for name in graph.order():
        if graph[name].op == "delay":
            return HardwareReport(
                chip,
                False,
                f"a feedback loop (Delay node {name!r}): sinabs has no layer for a delay, so its Speck "
                f"backend takes no feedback",
            )
        made = _sinabs_layer(name, graph[name], batch)
        if made is not None:
            layers[name] = made
    net = _GraphNet(graph, layers).eval()
    shape = tuple(graph[graph.inputs[0]].shape)
    with warnings.catch_warnings(record=True) as caught, _package_without_init("sinabs.backend.dynapcnn"):
        warnings.simplefilter("always")
        from sinabs.backend.dynapcnn.nir_graph_extractor import GraphExtractor
        from sinabs.backend.dynapcnn.utils import COMPLETELY_IGNORED_LAYER_TYPES, IGNORED_LAYER_TYPES

        try:
            extractor = GraphExtractor(
                net, torch.zeros((batch, *shape)), None, ignore_node_types=COMPLETELY_IGNORED_LAYER_TYPES
            )
            extractor.remove_nodes_by_class(IGNORED_LAYER_TYPES)
            module = extractor.get_dynapcnn_network_module(discretize=True)
            module.setup_dynapcnnlayer_graph(index_layers_topologically=True)
        except Exception as err:  # sinabs' own verdict on the network
            return HardwareReport(chip, False, f"sinabs' DynapcnnNetwork conversion: {_one_line(err)}")
        dyn_layers = module.dynapcnn_layers
        details = [
            f"layer {k}: kernel {int(v.memory_summary()['kernel'])}, neuron {int(v.memory_summary()['neuron'])}, "
            f"bias {int(v.memory_summary()['bias'])} (memory entries)"
            for k, v in dyn_layers.items()
        ]
        with _samna_placeholder(), _package_without_init("sinabs.backend.dynapcnn.chips"):
            from sinabs.backend.dynapcnn.chips.dynapcnn import DynapcnnConfigBuilder

            try:
                cores = DynapcnnConfigBuilder.map_layers_to_cores(dyn_layers)
            except Exception as err:
                return HardwareReport(chip, False, f"sinabs' core mapping: {_one_line(err)}", details)
    details.append(f"layers -> cores: {dict(cores)}")
    details += [f"sinabs warning: {' '.join(str(w.message).split())[:200]}" for w in caught[:3]]
    return HardwareReport(chip, True, "", details)


# ----------------------------------------------------------------------------------- Xylo (rockpool)
_LINEAR = ("conv", "affine", "avgpool", "sumpool", "flatten", "scale", "sum", "delay")


def _linear_apply(node: Any, x: Tensor, bias: bool) -> Tensor:
    import torch.nn.functional as F

    p = node.params
    if node.op == "conv":
        w = torch.as_tensor(p["weight"], dtype=torch.float64)
        b = torch.as_tensor(p["bias"], dtype=torch.float64) if bias and p["bias"] is not None else None
        return F.conv2d(x, w, b, tuple(p["stride"]), tuple(p["padding"]), tuple(p["dilation"]), int(p["groups"]))
    if node.op == "affine":
        w = torch.as_tensor(p["weight"], dtype=torch.float64)
        b = torch.as_tensor(p["bias"], dtype=torch.float64) if bias and p["bias"] is not None else None
        return F.linear(x, w, b)
    if node.op == "avgpool":
        return F.avg_pool2d(x, tuple(p["kernel"]), tuple(p["stride"]), tuple(p["padding"]))
    if node.op == "sumpool":
        k = tuple(p["kernel"])
        return F.avg_pool2d(x, k, tuple(p["stride"]), tuple(p["padding"]), divisor_override=1)
    if node.op == "flatten":
        end = int(p["end_dim"])
        return x.flatten(int(p["start_dim"]) + 1, end + 1 if end >= 0 else -1)
    if node.op == "scale":
        return x * torch.as_tensor(p["scale"], dtype=torch.float64)
    return x  # sum, delay: their input sum (a delay's one-step lag is a recurrent synapse on Xylo)


def _propagate(graph: Graph, source: str | None) -> dict[str, Tensor]:
    """Per neuron node, the dense map from ``source``'s elements (None: the biases) to its input current."""
    order = graph.order()
    values: dict[str, Tensor] = {}
    out: dict[str, Tensor] = {}
    if source is None:
        seeds = {n: torch.zeros((1, *graph[n].shape), dtype=torch.float64) for n in order if graph[n].op == "input"}
    else:
        n_src = int(np.prod(graph[source].shape))
        seeds = {source: torch.eye(n_src, dtype=torch.float64).reshape(n_src, *graph[source].shape)}
    pending = list(order) + [n for n in order if graph[n].op == "delay"]  # delays: a second pass closes cycles
    for name in pending:
        node = graph[name]
        if name in seeds:
            values[name] = seeds[name]
            continue
        ins = [values[s] for s in node.inputs if s in values]
        if not ins or node.op in ("input", "output"):
            continue
        x = ins[0]
        for extra in ins[1:]:
            x = x + extra
        if node.op == "neuron":
            gain = float(node.params.get("gain", 1.0))
            out[name] = (x * gain).reshape(x.shape[0], -1)
            continue
        if node.op not in _LINEAR:
            raise SnncError(f"node {name!r}: a {node.op} node has no place on Xylo (dense synapses and LIF neurons)")
        values[name] = _linear_apply(node, x, bias=source is None)
    return out


def check_xylo(graph: Graph, dt: float = 1e-3) -> HardwareReport:
    """Xylo Audio 2: rockpool's mapper on ``graph`` as one recurrent population (see module docstring).

    Raises:
        SnncError: rockpool is not installed, or a node that is neither a linear map nor a neuron.
    """
    chip = HARDWARE["rockpool"]
    try:
        import rockpool  # noqa: F401
    except ImportError:
        raise SnncError("--check-hardware for rockpool needs rockpool installed (pip install rockpool)") from None
    neurons = [n for n in graph.order() if graph[n].op == "neuron"]
    out_node = graph[graph.outputs[0]]
    readout = [n for n in out_node.inputs if graph[n].op == "neuron"]
    if not readout:
        return HardwareReport(chip, False, "the network output is not a neuron layer (Xylo's output is LIF neurons)")
    hidden = [n for n in neurons if n not in readout]
    size = {n: int(np.prod(graph[n].shape)) for n in neurons}
    offset, at = {}, 0
    for n in hidden:
        offset[n], at = at, at + size[n]
    n_hidden, n_in = at, int(np.prod(graph[graph.inputs[0]].shape))
    n_out = sum(size[n] for n in readout)
    out_off, at = {}, 0
    for n in readout:
        out_off[n], at = at, at + size[n]
    w_in = np.zeros((n_in, n_hidden))
    w_rec = np.zeros((n_hidden, n_hidden))
    w_out = np.zeros((n_hidden, n_out))
    for dst, m in _propagate(graph, graph.inputs[0]).items():
        if dst in readout:
            return HardwareReport(chip, False, f"input reaches output neurons {dst!r} directly (Xylo: input -> hidden)")
        w_in[:, offset[dst] : offset[dst] + size[dst]] = m.numpy()
    for src in hidden:
        for dst, m in _propagate(graph, src).items():
            cols = m.numpy()
            if dst in readout:
                w_out[offset[src] : offset[src] + size[src], out_off[dst] : out_off[dst] + size[dst]] = cols
            else:
                w_rec[offset[src] : offset[src] + size[src], offset[dst] : offset[dst] + size[dst]] = cols
    bias = _propagate(graph, None)
    tau = {n: -dt / float(np.log(min(max(leak_factor(graph[n].params["spec"]), 1e-9), 1 - 1e-9))) for n in neurons}
    details = [
        f"{n_in} input channels, {n_hidden} hidden neurons, {n_out} output neurons, "
        f"{int(np.count_nonzero(w_in) + np.count_nonzero(w_rec) + np.count_nonzero(w_out))} synapses"
    ]
    with warnings.catch_warnings(record=True) as caught, _package_without_init("rockpool.devices.xylo"):
        warnings.simplefilter("always")
        from rockpool.devices.xylo.syns61201 import mapper
        from rockpool.nn.combinators import Sequential
        from rockpool.nn.modules import LIFTorch, LinearTorch

        def lif(names: list[str], n: int, **kw: Any) -> Any:
            taus = np.concatenate([np.full(size[k], tau[k]) for k in names]) if names else np.zeros(0)
            vth = np.concatenate([np.full(size[k], float(graph[k].params["spec"].vth)) for k in names])
            b = np.concatenate([bias[k].numpy().reshape(-1) if k in bias else np.zeros(size[k]) for k in names])
            return LIFTorch(
                n,
                tau_mem=torch.as_tensor(taus, dtype=torch.float32),
                threshold=torch.as_tensor(vth, dtype=torch.float32),
                bias=torch.as_tensor(b, dtype=torch.float32),
                dt=dt,
                **kw,
            )

        try:
            net = Sequential(
                LinearTorch((n_in, n_hidden), weight=torch.as_tensor(w_in, dtype=torch.float32), has_bias=False),
                lif(hidden, n_hidden, has_rec=True, w_rec=torch.as_tensor(w_rec, dtype=torch.float32)),
                LinearTorch((n_hidden, n_out), weight=torch.as_tensor(w_out, dtype=torch.float32), has_bias=False),
                lif(readout, n_out),
            )
            spec = mapper(net.as_graph(), weight_dtype="float", threshold_dtype="float", dash_dtype="float")
        except Exception as err:  # rockpool's own verdict
            notes = [f"rockpool warning: {' '.join(str(w.message).split())[:200]}" for w in caught[:3]]
            return HardwareReport(chip, False, f"rockpool's Xylo mapper: {_one_line(err)}", details + notes)
    details.append(
        "mapped: " + ", ".join(f"{k} {tuple(np.shape(v))}" for k, v in spec.items() if str(k).startswith("weights"))
    )
    details += [f"rockpool warning: {' '.join(str(w.message).split())[:200]}" for w in caught[:3]]
    warned = [d for d in details if d.startswith("rockpool warning")]
    if warned:  # a DRC warning (e.g. more than 16 input channels) is a constraint the chip does not meet
        return HardwareReport(chip, False, warned[0][len("rockpool warning: ") :], details)
    return HardwareReport(chip, True, "", details)


def check_hardware(graph: Graph, consumer: str, dt: float = 1e-3) -> HardwareReport:
    """The chip check of ``--for consumer`` (:data:`HARDWARE`).

    Raises:
        SnncError: a consumer without a chip, or see :func:`check_speck` / :func:`check_xylo`.
    """
    if consumer == "sinabs":
        return check_speck(graph)
    if consumer == "rockpool":
        return check_xylo(graph, dt)
    raise SnncError(
        f"--check-hardware checks a chip's constraints with its vendor's tools: use it with --for "
        f"{' or --for '.join(HARDWARE)}, not --for {consumer}"
    )
