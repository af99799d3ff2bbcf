"""NIR file -> runnable snnc module (:class:`~snnc.export.runtime.GraphModule`).

:func:`import_nir` reads a NIR graph (``nir.read``) and rebuilds an export
graph, which :class:`GraphModule` runs one time step at a time with explicit
state. Supported node types: Input, Output, Affine, Linear, Scale, Conv2d,
AvgPool2d (zero padding counted), SumPool2d, Flatten (dims over the unbatched
type), LIF and IF with ``v_leak = v_reset = 0`` and one value per parameter
array, and Delay (a whole number of time steps). The continuous neurons are
mapped back to snnc's discrete ones with the time step ``dt`` from the graph
metadata (or the ``dt`` argument): LIF ``beta = 1 - dt/tau``, input gain
``r dt / tau``; IF gain ``r dt``. A neuron node's ``snnc.spec`` metadata (written
by :mod:`snnc.export.nir_writer`) restores its surrogate settings when it agrees
with the NIR parameters.

Several edges into a node are summed; an Output with several edges gets a
``sum`` node in front, and an identity ``Linear`` that feeds only Outputs (how
:mod:`snnc.export.nir_writer` spells a summing junction there) is read as that
``sum`` node (no matrix product, no ops counted). Cycles must pass through a Delay node.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from snnc.errors import SnncError
from snnc.export.graph import Graph
from snnc.export.runtime import GraphModule
from snnc.neurons import NeuronSpec, leak_factor

if TYPE_CHECKING:
    from snnc.export.nir_model import NirModel

__all__ = ["SUPPORTED_NODE_TYPES", "read_nir", "import_nir", "load_nir_model"]

#: NIR node types the importer understands.
SUPPORTED_NODE_TYPES: tuple[str, ...] = (
    "Input",
    "Output",
    "Affine",
    "Linear",
    "Scale",
    "Conv2d",
    "AvgPool2d",
    "SumPool2d",
    "Flatten",
    "LIF",
    "IF",
    "Delay",
)


def _prescan(path: Path) -> None:
    """Check the file is a NIR graph of supported node types before ``nir.read`` (clear errors)."""
    import h5py

    if not path.is_file():
        raise SnncError("NIR file not found", path)
    try:
        f = h5py.File(path, "r")
    except OSError:
        raise SnncError("not a NIR file: not an HDF5 file", path) from None
    with f:
        node = f.get("node")
        if not isinstance(node, h5py.Group) or "type" not in node or "nodes" not in node:
            raise SnncError("not a NIR file: no 'node' graph group (was it written by nir.write?)", path)
        kind = node["type"][()]
        kind = kind.decode() if isinstance(kind, bytes) else str(kind)
        if kind != "NIRGraph":
            raise SnncError(f"not a NIR graph file: top node has type {kind!r}", path)
        from snnc.errors import short_repr
        from snnc.models.limits import MAX_NIR_ARRAY_ELEMENTS, MAX_NIR_NODES, format_count

        if len(node["nodes"]) > MAX_NIR_NODES:
            raise SnncError(
                f"NIR graph has {len(node['nodes'])} nodes, more than the limit {MAX_NIR_NODES} "
                f"(snnc.models.limits.MAX_NIR_NODES)",
                path,
            )
        for name, sub in node["nodes"].items():
            t = sub["type"][()] if isinstance(sub, h5py.Group) and "type" in sub else b"?"
            t = t.decode() if isinstance(t, bytes) else str(t)
            if t not in SUPPORTED_NODE_TYPES:
                raise SnncError(
                    f"NIR node {short_repr(name)} has type {short_repr(t)}, which snnc cannot import "
                    f"(supported: {', '.join(SUPPORTED_NODE_TYPES)})",
                    path,
                )
        elements = [0]  # declared sizes of every array, before nir.read allocates them
        node.visititems(
            lambda _, obj: (
                elements.__setitem__(0, elements[0] + (obj.size or 0)) if isinstance(obj, h5py.Dataset) else None
            )
        )
        if elements[0] > MAX_NIR_ARRAY_ELEMENTS:
            raise SnncError(
                f"NIR graph declares {format_count(elements[0])} array elements, more than the limit "
                f"{MAX_NIR_ARRAY_ELEMENTS} (snnc.models.limits.MAX_NIR_ARRAY_ELEMENTS)",
                path,
            )


def _uniform(node_name: str, key: str, a: Any, path: Path) -> float:
    arr = np.asarray(a, dtype=np.float64)
    if arr.size == 0:
        raise SnncError(f"NIR node {node_name!r}: parameter {key} is empty", path)
    first = float(arr.reshape(-1)[0])
    if not np.all(arr == first):
        raise SnncError(
            f"NIR node {node_name!r}: parameter {key} varies across neurons; snnc neurons share one value per layer",
            path,
        )
    return first


def _ints(v: Any, n: int = 2) -> tuple[int, ...]:
    arr = np.asarray(v).reshape(-1)
    vals = tuple(int(x) for x in arr)
    return vals * n if len(vals) == 1 else vals


def _neuron_spec(name: str, node: Any, dt: float, path: Path) -> tuple[NeuronSpec, float]:
    """(spec, input gain) of a NIR LIF/IF node under the discrete mapping with step ``dt``."""
    kind = type(node).__name__
    vth = _uniform(name, "v_threshold", node.v_threshold, path)
    v_reset = _uniform(name, "v_reset", node.v_reset, path)
    if v_reset != 0.0:
        raise SnncError(f"NIR node {name!r}: v_reset = {v_reset} (snnc neurons reset to 0)", path)
    if kind == "IF":
        gain = _uniform(name, "r", node.r, path) * dt
        beta = 1.0
    else:
        v_leak = _uniform(name, "v_leak", node.v_leak, path)
        if v_leak != 0.0:
            raise SnncError(f"NIR node {name!r}: v_leak = {v_leak} (snnc neurons leak to 0)", path)
        tau = _uniform(name, "tau", node.tau, path)
        if not tau > 0:
            raise SnncError(f"NIR node {name!r}: tau must be positive, got {tau}", path)
        beta = 1.0 - dt / tau
        gain = _uniform(name, "r", node.r, path) * dt / tau
        if not -1e-9 <= beta <= 1.0:
            raise SnncError(
                f"NIR node {name!r}: tau = {tau} < dt = {dt} gives a leak factor {beta:.4g} outside [0, 1]", path
            )
    beta = min(1.0, max(0.0, round(beta, 12)))
    if abs(gain - 1.0) < 1e-9:
        gain = 1.0
    if vth <= 0:
        raise SnncError(f"NIR node {name!r}: v_threshold must be positive, got {vth}", path)
    saved = (node.metadata or {}).get("snnc.spec") if isinstance(node.metadata, dict) else None
    if saved is not None:
        try:
            spec = NeuronSpec.from_dict(json.loads(saved))
            eff = leak_factor(spec)
            if abs(eff - beta) < 1e-9 and abs(spec.vth - vth) <= 1e-6 * max(1.0, vth):
                return spec, gain
        except (ValueError, SnncError):
            pass
    if beta >= 1.0:
        return NeuronSpec(type="if", vth=vth), gain
    return NeuronSpec(type="lif", decay=beta, vth=vth), gain


def read_nir(path: str | Path, dt: float | None = None) -> Graph:
    """Read a NIR file into an export graph.

    Args:
        path: a file written by ``nir.write``.
        dt: time step for the neuron mapping; defaults to the graph metadata's ``dt``.

    Raises:
        SnncError: not a NIR file, unknown/unsupported node type (named), no
            ``dt``, or parameters snnc's neurons cannot represent.
    """
    import nir

    path = Path(path)
    _prescan(path)
    try:
        ngraph = nir.read(str(path))
    except Exception as err:
        raise SnncError(f"nir.read cannot load this file: {type(err).__name__}: {err}", path) from None
    meta = dict(ngraph.metadata or {})
    if dt is None:
        if "dt" not in meta:
            raise SnncError(
                "NIR graph has no 'dt' in its metadata (not written by snnc export; SpikingJelly's "
                "and snnTorch's exporters write none): pass the time step it was exported with "
                "(--dt SECONDS; their default is 1e-4) to map its neurons to discrete steps",
                path,
            )
        dt = float(meta["dt"])
    if not dt > 0:
        raise SnncError(f"dt must be positive, got {dt!r}", path)
    preds: dict[str, list[str]] = {name: [] for name in ngraph.nodes}
    succs: dict[str, list[str]] = {name: [] for name in ngraph.nodes}
    for src, dst in ngraph.edges:
        preds[dst].append(src)
        succs[src].append(dst)
    output_junctions = {
        name
        for name, node in ngraph.nodes.items()
        if succs[name]
        and all(type(ngraph.nodes[d]).__name__ == "Output" for d in succs[name])
        and _is_identity_linear(node)
    }

    def as_json(key: str) -> Any:
        try:
            return json.loads(meta[key]) if key in meta else None
        except (TypeError, ValueError, RecursionError):  # RecursionError: nested too deeply
            return None

    graph = Graph(
        {
            "family": meta.get("snnc.family") or None,
            "genotype": as_json("snnc.genotype"),
            "input_shape": as_json("snnc.input_shape"),
            "input_layout": meta.get("snnc.input_layout"),
            "dt": dt,
            "source": str(path),
        }
    )
    added: set[str] = set()
    pending = list(ngraph.nodes)
    delays = [n for n in pending if type(ngraph.nodes[n]).__name__ == "Delay"]
    for name in delays:  # delays first: they close cycles
        node = ngraph.nodes[name]
        steps_f = _uniform(name, "delay", node.delay, path) / dt
        from snnc.models.limits import MAX_TIME_STEPS  # each delay step is one state tensor

        if not steps_f <= MAX_TIME_STEPS:  # NaN and inf too
            raise SnncError(
                f"NIR node {name!r}: a delay of {steps_f:g} time steps exceeds the limit "
                f"{MAX_TIME_STEPS} (snnc.models.limits.MAX_TIME_STEPS)",
                path,
            )
        steps = round(steps_f)
        if steps < 1 or abs(steps_f - steps) > 1e-4:
            raise SnncError(
                f"NIR node {name!r}: delay {steps_f * dt} s is not a whole number (>= 1) of time steps dt = {dt}", path
            )
        graph.add(name, "delay", [], shape=tuple(int(s) for s in np.asarray(node.delay).shape), steps=steps)
        added.add(name)
    pending = [n for n in pending if n not in added]
    while pending:
        ready = [n for n in pending if all(p in added for p in preds[n])]
        if not ready:
            raise SnncError(f"NIR graph has a cycle without a Delay node through {pending[0]!r}", path)
        for name in ready:
            if name in output_junctions:  # snnc's spelling of a summing junction in front of an Output
                graph.add(name, "sum", preds[name])
            else:
                _add_node(graph, name, ngraph.nodes[name], preds[name], dt, path)
            added.add(name)
        pending = [n for n in pending if n not in added]
    for name in delays:
        graph.connect(name, preds[name])
    try:
        graph.check()
    except SnncError as err:
        raise SnncError(str(err), path) from None
    return graph


def _is_identity_linear(node: Any) -> bool:
    """A ``Linear`` whose weight is the identity matrix (it only sums its incoming edges)."""
    if type(node).__name__ != "Linear":
        return False
    w = np.asarray(node.weight)
    return w.ndim == 2 and w.shape[0] == w.shape[1] and bool(np.array_equal(w, np.eye(w.shape[0], dtype=w.dtype)))


def _add_node(graph: Graph, name: str, node: Any, inputs: list[str], dt: float, path: Path) -> None:
    kind = type(node).__name__
    try:
        if kind == "Input":
            graph.add(name, "input", [], shape=tuple(int(s) for s in np.asarray(node.input_type["input"])))
        elif kind == "Output":
            if len(inputs) > 1:
                inputs = [graph.add(f"{name}.sum", "sum", inputs)]
            graph.add(name, "output", inputs)
        elif kind in ("Affine", "Linear"):
            bias = np.asarray(node.bias, dtype=np.float32) if kind == "Affine" else None
            graph.add(name, "affine", inputs, weight=np.asarray(node.weight, dtype=np.float32), bias=bias)
        elif kind == "Scale":
            scale = np.asarray(node.scale, dtype=np.float32)
            if np.all(scale == 1.0):
                graph.add(name, "sum", inputs)
            else:
                graph.add(name, "scale", inputs, scale=scale)
        elif kind == "Conv2d":
            w = np.asarray(node.weight, dtype=np.float32)
            padding = node.padding
            if isinstance(padding, (str, bytes)):
                padding = padding.decode() if isinstance(padding, bytes) else padding
                if padding == "valid":
                    padding = (0, 0)
                elif padding == "same" and all(k % 2 for k in w.shape[2:]) and _ints(node.stride) == (1, 1):
                    padding = tuple(d * (k - 1) // 2 for d, k in zip(_ints(node.dilation), w.shape[2:], strict=False))
                else:
                    raise SnncError(
                        f"NIR node {name!r}: padding {padding!r} is supported only for odd kernels at stride 1"
                    )
            graph.add(
                name,
                "conv",
                inputs,
                weight=w,
                bias=np.asarray(node.bias, dtype=np.float32),
                stride=_ints(node.stride),
                padding=_ints(padding),
                dilation=_ints(node.dilation),
                groups=int(np.asarray(node.groups)),
            )
        elif kind in ("AvgPool2d", "SumPool2d"):
            graph.add(
                name,
                "avgpool" if kind == "AvgPool2d" else "sumpool",
                inputs,
                kernel=_ints(node.kernel_size),
                stride=_ints(node.stride),
                padding=_ints(node.padding),
            )
        elif kind == "Flatten":  # negative dims count from the end of the unbatched input type
            ndim = len(graph[inputs[0]].shape) if inputs else 0
            start, end = int(node.start_dim), int(node.end_dim)
            start = start + ndim if start < 0 else start
            end = end + ndim if end < 0 else end
            if not 0 <= start <= end < ndim:
                raise SnncError(
                    f"NIR node {name!r}: Flatten dims {node.start_dim}..{node.end_dim} do not fit an "
                    f"input of {ndim} axes"
                )
            graph.add(name, "flatten", inputs, start_dim=start, end_dim=end)
        elif kind in ("LIF", "IF"):
            spec, gain = _neuron_spec(name, node, dt, path)
            added = graph.add(name, "neuron", inputs, spec=spec, gain=gain)
            want = tuple(int(s) for s in np.asarray(node.v_threshold).shape)
            if graph[added].shape != want:
                raise SnncError(
                    f"NIR node {name!r}: {kind} of shape {want} receives inputs of shape {graph[added].shape}"
                )
        else:  # pragma: no cover - _prescan rejects these first
            raise SnncError(f"NIR node {name!r} has type {kind!r}, which snnc cannot import")
    except SnncError as err:
        raise SnncError(str(err), path) from None


def import_nir(path: str | Path, dt: float | None = None) -> GraphModule:
    """Read a NIR file (:func:`read_nir`) as a runnable :class:`GraphModule`."""
    return GraphModule(read_nir(path, dt))


def load_nir_model(path: str | Path, dt: float | None = None) -> NirModel:
    """Open a NIR file (snnc's, SpikingJelly's, snnTorch's...) as a runnable model plus its description.

    Args:
        path: a NIR file.
        dt: seconds per step; required when the file's metadata has no ``dt`` (other
            libraries' exporters write none), otherwise it overrides the metadata.

    Returns:
        A :class:`snnc.export.nir_model.NirModel` (module, graph, dt, input shape, ``info``
        for ``snnc info``).

    Raises:
        SnncError: see :func:`read_nir`; a graph with other than one input.
    """
    from snnc.export.nir_model import NirModel, describe_graph

    path = Path(path)
    graph = read_nir(path, dt)
    if len(graph.inputs) != 1:
        raise SnncError(f"NIR graph has {len(graph.inputs)} Input nodes; snnc runs graphs with one input", path)
    used_dt = float(graph.meta["dt"])
    module = GraphModule(graph).eval()
    writer = "snnc" if graph.meta.get("family") else "foreign"
    shape = (1, *graph[graph.inputs[0]].shape)
    return NirModel(
        module=module,
        graph=graph,
        dt=used_dt,
        input_shape=shape,
        path=path,
        info=describe_graph(graph, used_dt),
        writer=writer,
    )
