"""SpikeDHS genotypes as data: validated dataclasses, JSON load/save, presets.

A *genotype* is everything needed to build a network: the searched cell(s),
the searched path through the layer trellis, channel widths, the neuron
hyper-parameters (optionally per neuron layer) and task sizes. It is a frozen
dataclass with ``family``, ``to_dict()`` and ``from_dict()``; every
construction is validated, so an invalid genotype cannot exist.

Cell (methods.md §3, §9; SpikeDHS/DARTS convention)
    A cell is a DAG of ``nodes`` spiking nodes. Its inputs are state 0 (``s0``,
    the output of the cell two layers back) and state 1 (``s1``, the previous
    cell); node ``k`` is state ``2 + k``. Node ``k`` may receive an edge from
    every earlier state, so the edges are numbered node by node::

        node0 <- {0: s0, 1: s1}
        node1 <- {2: s0, 3: s1, 4: node0}
        node2 <- {5: s0, 6: s1, 7: node0, 8: node1}        (9 edges for 3 nodes)

    A genotype row is ``[edge_index, op]`` (the authors' format; ``op`` is a
    name or an index into :data:`PRIMITIVES`). JSON may instead use explicit
    rows ``{"from": state, "to": node, "op": name}``. Every node must have at
    least one incoming edge. The cell output is the concatenation of all its
    nodes, so the block multiplier (channels out / node width) is ``nodes``.
    ``dims`` is 2 for image cells (conv3x3) and 3 for the stereo matching
    cells (conv3x3x3); the op names are the same in both.

Ops (:data:`PRIMITIVES`, index 0, 1, 2)
    ``skip_connect`` identity (a 1x1 ConvBN projection when the channel count
    differs, i.e. from a cell input), ``snn_b3`` / ``snn_b5`` conv3x3 (3x3x3)
    + BatchNorm whose candidate surrogate temperature is b = 3 / 5. How the
    temperature is used depends on ``mixing`` (see :mod:`snnc.models.spikedhs`).

Path (layer level, AutoDeepLab / LEAStereo trellis)
    ``path[i]`` is the resolution level of layer (cell) ``i``: level ``l`` has
    spatial size ``1/2**l`` of level 0 (the stem output) and node width
    ``filter_multiplier * 2**l``. Levels are 0..3, the first layer is at level 0
    or 1 and consecutive layers differ by at most one level. The classification
    path ``[0,0,1,1,1,2,2,2]`` makes cells 2 and 5 the reduction cells.

Neurons
    ``neuron`` is the default :class:`~snnc.neurons.NeuronSpec` of every neuron
    layer (LIF decay 0.2, vth 0.5, Dspike b 3); ``neuron_layers`` maps neuron
    layer names (those of ``model.neurons()``) to replacement specs, so HNS can
    make one layer ``relu`` or TPS give it its own ``decay``. Names are checked
    when the network is built.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from snnc.errors import PathLike, SnncError, list_items, short_repr
from snnc.models import limits
from snnc.models.limits import check_count, check_limit
from snnc.neurons import NeuronSpec

__all__ = [
    "PRIMITIVES",
    "OP_SURROGATE_B",
    "MIXINGS",
    "NUM_LEVELS",
    "CellEdge",
    "CellGenotype",
    "SpikeDHSClassifierGenotype",
    "SpikeDHSStereoGenotype",
    "edge_count",
    "edge_endpoints",
    "edge_index",
    "genotype_from_dict",
    "genotype_time_steps",
    "load_genotype",
    "save_genotype",
    "preset_names",
]

#: Candidate operations of the SpikeDHS search space (index = published op code).
PRIMITIVES: tuple[str, ...] = ("skip_connect", "snn_b3", "snn_b5")
#: Surrogate temperature that belongs to each spiking candidate op.
OP_SURROGATE_B: dict[str, float] = {"snn_b3": 3.0, "snn_b5": 5.0}
#: Where edge operations meet the node: at the membrane (``mm``) or at spikes (``ms``).
MIXINGS: tuple[str, ...] = ("mm", "ms")
#: Number of resolution levels of the trellis (downsampling 1, 2, 4, 8 after the stems).
NUM_LEVELS = 4

Genotype = Any  # a SpikeDHS genotype or snnc.models.snasnet.SNASNetGenotype


# --------------------------------------------------------------------------- edges
def edge_count(nodes: int) -> int:
    """Number of possible edges in a cell of ``nodes`` nodes (9 for 3, 14 for 4)."""
    return 2 * nodes + nodes * (nodes - 1) // 2


def _node_offset(node: int) -> int:
    return 2 * node + node * (node - 1) // 2


def edge_endpoints(index: int, nodes: int) -> tuple[int, int]:
    """``(source state, destination node)`` of DARTS edge ``index``.

    Raises:
        SnncError: ``index`` is not in ``0 .. edge_count(nodes) - 1``.
    """
    if not 0 <= index < edge_count(nodes):
        raise SnncError(f"edge index {index} out of range for a {nodes}-node cell (valid 0..{edge_count(nodes) - 1})")
    node = 0
    while _node_offset(node + 1) <= index:
        node += 1
    return index - _node_offset(node), node


def edge_index(src: int, dst: int) -> int:
    """DARTS edge index of the edge from state ``src`` into node ``dst``."""
    return _node_offset(dst) + src


@dataclass(frozen=True)
class CellEdge:
    """One kept edge: state ``src`` (0 = s0, 1 = s1, 2 + k = node k) -> node ``dst`` via ``op``."""

    src: int
    dst: int
    op: str

    @property
    def index(self) -> int:
        """The DARTS edge index (see module docstring)."""
        return edge_index(self.src, self.dst)

    def describe(self) -> str:
        """Human-readable ``'s1 -> node0 (snn_b3)'``."""
        src = {0: "s0", 1: "s1"}.get(self.src, f"node{self.src - 2}")
        return f"{src} -> node{self.dst} ({self.op})"


# --------------------------------------------------------------------------- small validators
def _int(value: Any, what: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise SnncError(f"{what} must be an integer, got {short_repr(value)}")
    if value < minimum:
        raise SnncError(f"{what} must be >= {minimum}, got {value}")
    return int(value)


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise SnncError(f"{what} must be a positive number, got {short_repr(value)}")
    return float(value)


def _op_name(op: Any, where: str) -> str:
    if isinstance(op, bool):
        raise SnncError(f"{where}: op must be a name or an index, got {short_repr(op)}")
    if isinstance(op, int):
        if not 0 <= op < len(PRIMITIVES):
            raise SnncError(f"{where}: op index {op} out of range (0..{len(PRIMITIVES) - 1} = {', '.join(PRIMITIVES)})")
        return PRIMITIVES[op]
    if not isinstance(op, str) or op not in PRIMITIVES:
        raise SnncError(f"{where}: unknown op {short_repr(op)} (expected one of {', '.join(PRIMITIVES)})")
    return op


def _check_keys(d: Mapping[str, Any], known: Iterable[str], what: str, required: Iterable[str] = ()) -> None:
    known = list(known)
    unknown = [str(k) for k in d if k not in known]
    if unknown:
        raise SnncError(
            f"{what}: unknown key(s) {list_items(unknown, fmt=repr, sort=True)} (expected {', '.join(known)})"
        )
    missing = [k for k in required if k not in d]
    if missing:
        raise SnncError(f"{what}: missing key(s) {list_items(missing, fmt=repr)}")


def _mapping(d: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(d, Mapping):
        raise SnncError(f"{what} must be a JSON object, got {type(d).__name__}")
    return d


# --------------------------------------------------------------------------- cell
def _find_cycle(nodes: int, edges: Sequence[CellEdge]) -> list[int] | None:
    """A node cycle as ``[n0, n1, ..., n0]`` if the node graph has one, else ``None``."""
    succ: dict[int, list[int]] = {k: [] for k in range(nodes)}
    for e in edges:
        if e.src >= 2:
            succ[e.src - 2].append(e.dst)
    color = [0] * nodes  # 0 new, 1 on stack, 2 done
    stack: list[int] = []

    def visit(n: int) -> list[int] | None:
        color[n] = 1
        stack.append(n)
        for m in succ[n]:
            if color[m] == 1:
                return [*stack[stack.index(m) :], m]
            if color[m] == 0:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        color[n] = 2
        return None

    for n in range(nodes):
        if color[n] == 0:
            found = visit(n)
            if found:
                return found
    return None


@dataclass(frozen=True)
class CellGenotype:
    """A derived SpikeDHS cell (see module docstring).

    Attributes:
        nodes: number of spiking nodes (>= 1; the papers use 3 or 4).
        edges: kept incoming edges, in genotype order.
        dims: 2 (image cells) or 3 (stereo matching cells).
    """

    nodes: int
    edges: tuple[CellEdge, ...]
    dims: int = 2

    def __post_init__(self) -> None:
        nodes = check_limit(_int(self.nodes, "cell: nodes"), "MAX_CELL_NODES", "cell: nodes")
        object.__setattr__(self, "nodes", nodes)
        if self.dims not in (2, 3):
            raise SnncError(f"cell: dims must be 2 or 3, got {short_repr(self.dims)}")
        check_count(self.edges, "MAX_CELL_EDGES", "cell: edges")
        edges = tuple(self.edges)
        object.__setattr__(self, "edges", edges)
        if not edges:
            raise SnncError("cell: no edges")
        seen: set[tuple[int, int]] = set()
        for e in edges:
            if not isinstance(e, CellEdge):
                raise SnncError(f"cell: edges must be CellEdge, got {type(e).__name__}")
            _op_name(e.op, f"cell: edge {e.src}->{e.dst}")
            if not 0 <= e.dst < nodes:
                raise SnncError(f"cell: edge into node {e.dst}, but the cell has {nodes} node(s) (0..{nodes - 1})")
            if not 0 <= e.src < 2 + nodes:
                raise SnncError(
                    f"cell: edge from state {e.src} into node {e.dst}, but the cell has states 0..{nodes + 1} "
                    f"(0 = s0, 1 = s1, 2.. = nodes)"
                )
            if (e.src, e.dst) in seen:
                raise SnncError(f"cell: edge {e.describe()} listed twice")
            seen.add((e.src, e.dst))
        cycle = _find_cycle(nodes, edges)
        if cycle:
            raise SnncError(f"cell: edges form a cycle {' -> '.join(f'node{n}' for n in cycle)}")
        for e in edges:
            if e.src >= 2 + e.dst:
                raise SnncError(
                    f"cell: edge {e.describe()} goes backwards; nodes must be numbered in topological order"
                )
        missing = [k for k in range(nodes) if not any(e.dst == k for e in edges)]
        if missing:
            raise SnncError(
                f"cell: node(s) {list_items(missing)} have no incoming edge "
                f"(the cell declares {nodes} nodes; wrong node count?)"
            )

    # ------------------------------------------------------------------ queries
    def inputs_of(self, node: int) -> list[CellEdge]:
        """The edges into ``node``, ordered by source state."""
        return sorted((e for e in self.edges if e.dst == node), key=lambda e: e.src)

    # ------------------------------------------------------------------ I/O
    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[Any]], nodes: int = 3, dims: int = 2) -> CellGenotype:
        """Build from the published ``[[edge_index, op], ...]`` rows (op as index or name)."""
        return cls.from_dict({"nodes": nodes, "dims": dims, "edges": [list(r) for r in rows]})

    def to_dict(self) -> dict[str, Any]:
        """``{"nodes", "dims", "edges": [[edge_index, op_name], ...]}``."""
        return {"nodes": self.nodes, "dims": self.dims, "edges": [[e.index, e.op] for e in self.edges]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], path: PathLike | None = None, where: str = "cell") -> CellGenotype:
        """Parse and validate a cell; errors name ``path`` and the field ``where``.

        Raises:
            SnncError: unknown key or op, edge index out of range, edge to a
                node that does not exist, cycle, backward edge, duplicate edge,
                node without input (wrong node count), bad ``nodes``/``dims``.
        """
        try:
            d = _mapping(d, where)
            _check_keys(d, ("nodes", "dims", "edges"), where, required=("nodes", "edges"))
            nodes = check_limit(_int(d["nodes"], f"{where}: nodes"), "MAX_CELL_NODES", f"{where}: nodes")
            rows = d["edges"]
            if not isinstance(rows, list) or not rows:
                raise SnncError(f"{where}: edges must be a non-empty list of [edge_index, op] rows")
            check_count(rows, "MAX_CELL_EDGES", f"{where}: edges")
            edges, bad = [], []
            for i, row in enumerate(rows):
                try:
                    edges.append(_parse_edge(row, i, nodes, where))
                except SnncError as err:
                    bad.append(err)
            if len(bad) == 1:
                raise bad[0]
            if bad:
                shown = list_items(str(e)[len(where) + 2 :] if str(e).startswith(f"{where}: ") else str(e) for e in bad)
                raise SnncError(f"{where}: {len(bad)} of {len(rows)} edges invalid: {shown}")
            cell = cls(nodes=nodes, edges=tuple(edges), dims=d.get("dims", 2))
        except SnncError as err:
            raise _with_context(err, where, path) from None
        return cell


def _parse_edge(row: Any, i: int, nodes: int, where: str) -> CellEdge:
    at = f"{where}: edges[{i}]"
    if isinstance(row, Mapping):
        _check_keys(row, ("from", "to", "op"), at, required=("from", "to", "op"))
        src = _int(row["from"], f"{at}: from", minimum=0)
        dst = _int(row["to"], f"{at}: to", minimum=0)
        return CellEdge(src, dst, _op_name(row["op"], at))
    if not isinstance(row, (list, tuple)) or len(row) != 2:
        raise SnncError(f"{at} must be [edge_index, op] or {{'from', 'to', 'op'}}, got {short_repr(row)}")
    index = _int(row[0], f"{at}: edge index", minimum=0)
    try:
        src, dst = edge_endpoints(index, nodes)
    except SnncError as err:
        raise SnncError(f"{at}: {err}") from None
    return CellEdge(src, dst, _op_name(row[1], at))


def _with_context(err: SnncError, where: str, path: PathLike | None) -> SnncError:
    """``err`` with the field context ``where`` (replacing the generic ``cell:``) and the file path."""
    if err.path is not None:
        return err
    msg = str(err)
    if msg.startswith("cell: "):
        msg = msg[len("cell: ") :]
    if not msg.startswith(where):
        msg = f"{where}: {msg}"
    return SnncError(msg, path)


# --------------------------------------------------------------------------- path
def _validate_path(path: Any, what: str) -> tuple[int, ...]:
    if isinstance(path, (str, bytes)) or not isinstance(path, (list, tuple)) or len(path) == 0:
        raise SnncError(f"{what} must be a non-empty list of levels, got {short_repr(path)}")
    check_count(path, "MAX_LAYERS", what)
    levels = []
    for i, level in enumerate(path):
        level = _int(level, f"{what}[{i}]", minimum=0)
        if level >= NUM_LEVELS:
            raise SnncError(f"{what}[{i}] = {level} but the trellis has levels 0..{NUM_LEVELS - 1}")
        levels.append(level)
    if levels[0] > 1:
        raise SnncError(f"{what}[0] = {levels[0]}: the first layer must be at level 0 or 1 (stem is level 0)")
    for i in range(1, len(levels)):
        if abs(levels[i] - levels[i - 1]) > 1:
            raise SnncError(
                f"{what}: layer {i} jumps from level {levels[i - 1]} to {levels[i]} (at most one level per layer)"
            )
    return tuple(levels)


# --------------------------------------------------------------------------- networks
def _coerce_cell(value: Any, what: str) -> CellGenotype:
    if isinstance(value, CellGenotype):
        return value
    return CellGenotype.from_dict(value, where=what)


def _coerce_layers(value: Any) -> dict[str, NeuronSpec]:
    if not isinstance(value, Mapping):
        raise SnncError(f"neuron_layers must map neuron layer names to neuron specs, got {type(value).__name__}")
    out = {}
    for name, spec in value.items():
        if not isinstance(name, str) or not name:
            raise SnncError(f"neuron_layers: layer names must be non-empty strings, got {short_repr(name)}")
        out[name] = NeuronSpec.coerce(spec, f"neuron_layers[{short_repr(name)}]")
    return out


#: Which bound of :mod:`snnc.models.limits` caps each integer field of the SpikeDHS genotypes.
_FIELD_LIMITS: dict[str, str] = {
    "filter_multiplier": "MAX_CHANNELS",
    "feature_filter_multiplier": "MAX_CHANNELS",
    "matching_filter_multiplier": "MAX_CHANNELS",
    "in_channels": "MAX_CHANNELS",
    "num_classes": "MAX_CLASSES",
    "time_steps": "MAX_TIME_STEPS",
    "disparities": "MAX_DISPARITIES",
    "feature_stride": "MAX_STRIDE",
}


def _check_size(genotype: Any) -> None:
    """Refuse a genotype whose estimated network is too large (:func:`snnc.models.size.check_size`)."""
    from snnc.models.size import check_size

    check_size(genotype)


class _GenotypeIO:
    """Shared JSON conversion for the flat network genotype dataclasses."""

    family: ClassVar[str]
    _cell_fields: ClassVar[tuple[str, ...]] = ()
    _path_fields: ClassVar[tuple[str, ...]] = ()

    def _validate_common(self) -> None:
        for name in self._cell_fields:
            object.__setattr__(self, name, _coerce_cell(getattr(self, name), name))
        for name in self._path_fields:
            object.__setattr__(self, name, _validate_path(getattr(self, name), name))
        if self.mixing not in MIXINGS:  # type: ignore[attr-defined]
            raise SnncError(f"mixing must be one of {', '.join(MIXINGS)}, got {short_repr(self.mixing)}")  # type: ignore[attr-defined]
        object.__setattr__(self, "neuron", NeuronSpec.coerce(self.neuron, "neuron"))  # type: ignore[attr-defined]
        object.__setattr__(self, "neuron_layers", _coerce_layers(self.neuron_layers))  # type: ignore[attr-defined]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict, ``family`` first."""
        out: dict[str, Any] = {"family": self.family}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if isinstance(value, (CellGenotype, NeuronSpec)):
                value = value.to_dict()
            elif f.name == "neuron_layers":
                value = {k: v.to_dict() for k, v in value.items()}
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], path: PathLike | None = None):  # type: ignore[no-untyped-def]
        """Parse and validate; every problem is a one-line :class:`SnncError` naming ``path``."""
        try:
            d = _mapping(d, "genotype")
            names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
            required = [f.name for f in fields(cls) if f.name in cls._cell_fields + cls._path_fields]  # type: ignore[arg-type]
            _check_keys(d, ["family", *names], f"{cls.family} genotype", required=required)
            family = d.get("family", cls.family)
            if family != cls.family:
                raise SnncError(f"genotype family is {family!r}, expected {cls.family!r}")
            kwargs = {k: v for k, v in d.items() if k != "family"}
            return cls(**kwargs)
        except SnncError as err:
            raise (err if err.path is not None else SnncError(str(err), path)) from None


@dataclass(frozen=True)
class SpikeDHSClassifierGenotype(_GenotypeIO):
    """SpikeDHS-CLA: spiking stem, cells on ``path``, global pooling and a linear classifier.

    Attributes:
        cell: the (shared) searched cell, 2-D.
        path: level of each cell; a level increase makes that cell a reduction cell.
        filter_multiplier: node width at level 0 (48 in the paper's CIFAR
            networks; the stem has ``nodes * filter_multiplier`` channels).
        in_channels: image channels (3).
        num_classes: classifier outputs (10 for CIFAR-10, the paper's tables).
        time_steps: T used for training/evaluation (direct coding, 6 in the paper).
        mixing: ``"mm"`` (default) or ``"ms"``, see :mod:`snnc.models.spikedhs`.
        neuron: default neuron spec; neuron_layers: per-layer replacements.
    """

    family: ClassVar[str] = "spikedhs-cla"
    _cell_fields: ClassVar[tuple[str, ...]] = ("cell",)
    _path_fields: ClassVar[tuple[str, ...]] = ("path",)

    cell: CellGenotype
    path: tuple[int, ...]
    filter_multiplier: int = 48
    in_channels: int = 3
    num_classes: int = 10
    time_steps: int = 6
    mixing: str = "mm"
    neuron: NeuronSpec = field(default_factory=NeuronSpec)
    neuron_layers: dict[str, NeuronSpec] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        self._validate_common()
        if self.cell.dims != 2:
            raise SnncError(f"cell must be 2-D (dims 2) for {self.family}, got dims {self.cell.dims}")
        for name in ("filter_multiplier", "in_channels", "num_classes", "time_steps"):
            object.__setattr__(self, name, check_limit(_int(getattr(self, name), name), _FIELD_LIMITS[name], name))
        _check_size(self)


@dataclass(frozen=True)
class SpikeDHSStereoGenotype(_GenotypeIO):
    """SpikeDHS-Stereo: shared spiking feature net, cost volume, spiking 3-D matching net.

    Attributes:
        feature_cell, feature_path: 2-D cell and trellis path of the feature net.
        matching_cell, matching_path: 3-D cell and trellis path of the matching net.
        feature_filter_multiplier, matching_filter_multiplier: node widths at
            level 0 (8 and 8: feature output ``nodes * 8 = 24`` channels).
        in_channels: SBT frames per stack and camera (5).
        disparities: D, the number of cost bins (paper Table 7, D = 33).
        disp_step: disparity of one cost bin, ``D(d) = disp_step * d`` (2).
        time_steps: stacks per training window (8 = 2 burn-in + 6 labelled).
        feature_stride: stride of the feature net's second stem: features, the
            feature volume and the matching net work at ``1/feature_stride`` of the
            input resolution (3 as in the paper and LEAStereo).
        volume_disparities: shifts of the feature volume, one feature pixel each;
            0 (the paper's layout) means ``disparities`` shifts. When it differs
            from ``disparities`` the matching cost is resampled along the disparity
            axis to ``disparities`` bins (LEAStereo's trilinear upsampling), so a
            volume shift can stand for the disparity it really measures.
        mixing, neuron, neuron_layers: as for the classifier.
    """

    family: ClassVar[str] = "spikedhs-stereo"
    _cell_fields: ClassVar[tuple[str, ...]] = ("feature_cell", "matching_cell")
    _path_fields: ClassVar[tuple[str, ...]] = ("feature_path", "matching_path")

    feature_cell: CellGenotype
    feature_path: tuple[int, ...]
    matching_cell: CellGenotype
    matching_path: tuple[int, ...]
    feature_filter_multiplier: int = 8
    matching_filter_multiplier: int = 8
    in_channels: int = 5
    disparities: int = 33
    disp_step: float = 2.0
    time_steps: int = 8
    mixing: str = "mm"
    neuron: NeuronSpec = field(default_factory=NeuronSpec)
    neuron_layers: dict[str, NeuronSpec] = field(default_factory=dict, hash=False)
    feature_stride: int = 3
    volume_disparities: int = 0

    def __post_init__(self) -> None:
        self._validate_common()
        if self.feature_cell.dims != 2:
            raise SnncError(f"feature_cell must be 2-D (dims 2), got dims {self.feature_cell.dims}")
        if self.matching_cell.dims != 3:
            raise SnncError(f"matching_cell must be 3-D (dims 3), got dims {self.matching_cell.dims}")
        for name in (
            "feature_filter_multiplier",
            "matching_filter_multiplier",
            "in_channels",
            "disparities",
            "time_steps",
            "feature_stride",
        ):
            object.__setattr__(self, name, check_limit(_int(getattr(self, name), name), _FIELD_LIMITS[name], name))
        object.__setattr__(self, "disp_step", _number(self.disp_step, "disp_step"))
        shifts = _int(self.volume_disparities, "volume_disparities", minimum=0)
        check_limit(shifts, "MAX_DISPARITIES", "volume_disparities")
        if shifts == 1:
            raise SnncError("volume_disparities must be 0 (same as disparities) or >= 2, got 1")
        object.__setattr__(self, "volume_disparities", shifts)
        _check_size(self)

    @property
    def volume_shifts(self) -> int:
        """Shifts of the feature volume (``volume_disparities``, or ``disparities`` when 0)."""
        return self.volume_disparities or self.disparities


#: Presets defined in Python by other modules: (module, dict of name -> genotype).
_EXTERNAL_PRESETS: tuple[tuple[str, str], ...] = (
    ("snnc.models.snasnet", "SNASNET_PRESETS"),
    ("snnc.models.sequential", "SEQUENTIAL_PRESETS"),
)


def _external_presets() -> dict[str, Genotype]:
    import importlib

    found: dict[str, Genotype] = {}
    for module_name, attr in _EXTERNAL_PRESETS:
        try:
            found.update(getattr(importlib.import_module(module_name), attr))
        except (ImportError, AttributeError):
            continue
    return found


def genotype_from_dict(d: Mapping[str, Any], path: PathLike | None = None) -> Genotype:
    """The genotype of ``d["family"]``'s class (:mod:`snnc.models.families`).

    Raises:
        SnncError: not an object, no or unknown family, or the family's own errors.
    """
    if not isinstance(d, Mapping):
        raise SnncError(f"genotype must be a JSON object, got {type(d).__name__}", path)
    from snnc.models.families import family, genotype_class

    cls: Any = genotype_class(family(d.get("family"), path).name)
    try:
        return cls.from_dict(d, path)
    except SnncError as err:
        raise (err if err.path is not None else SnncError(str(err), path)) from None


# --------------------------------------------------------------------------- files and presets
def _preset_dir() -> Any:
    return resources.files("snnc") / "presets"


def _json_preset_names() -> list[str]:
    directory = _preset_dir()
    if not directory.is_dir():
        return []
    return sorted(p.name[:-5] for p in directory.iterdir() if p.name.endswith(".json"))


def genotype_time_steps(genotype: Any) -> int | None:
    """A genotype's time steps T (every family's ``time_steps``); None for an object without one."""
    value = getattr(genotype, "time_steps", None)
    return None if value is None else int(value)


def preset_names() -> list[str]:
    """Names of the genotype presets: ``snnc/presets/*.json`` plus ``SNASNET_PRESETS``."""
    return sorted(set(_json_preset_names()) | set(_external_presets()))


def _json_depth_exceeds(value: Any, limit: int) -> bool:
    """Whether ``value`` (parsed JSON) nests objects/arrays deeper than ``limit``; iterative, linear."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def _read_json(text: str, path: PathLike) -> Any:
    """Parse a genotype JSON document within :data:`~snnc.models.limits.MAX_GENOTYPE_JSON_BYTES` and
    :data:`~snnc.models.limits.MAX_JSON_DEPTH`; every failure is a one-line SnncError naming ``path``."""
    if len(text) > limits.MAX_GENOTYPE_JSON_BYTES:
        raise SnncError(
            f"genotype JSON of {len(text)} characters exceeds the limit {limits.MAX_GENOTYPE_JSON_BYTES} "
            f"(snnc.models.limits.MAX_GENOTYPE_JSON_BYTES)",
            path,
        )
    too_deep = SnncError(
        f"JSON nested deeper than the limit {limits.MAX_JSON_DEPTH} (snnc.models.limits.MAX_JSON_DEPTH)", path
    )
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise SnncError(f"invalid JSON: {err.msg} at line {err.lineno} column {err.colno}", path) from None
    except RecursionError:
        raise too_deep from None
    except ValueError as err:  # Python refuses integer literals of more than sys.get_int_max_str_digits()
        reason = "a number has too many digits" if "digits" in str(err) else str(err)
        raise SnncError(f"invalid JSON: {reason}", path) from None
    if _json_depth_exceeds(value, limits.MAX_JSON_DEPTH):
        raise too_deep
    return value


def load_genotype(name_or_path: str | PathLike) -> Genotype:
    """Resolve a preset name (``spikedhs-cla``, ``spikedhs-stereo``, ``snasnet-cifar10``, ``snasnet-cifar100``) or a
    JSON file.

    A value ending in ``.json`` (or a :class:`~pathlib.Path`) is read as a file;
    anything else must be a preset name, even when a file of that name exists
    (snnc decides a file's type by its extension: :mod:`snnc.models.loading`).

    Raises:
        SnncError: unknown preset (the valid names are listed), missing or
            unreadable file, malformed JSON (file, line and column), or an
            invalid genotype (file and problem).
    """
    candidate = Path(name_or_path)
    if str(name_or_path).lower().endswith(".json") or isinstance(name_or_path, Path):
        if not candidate.is_file():
            raise SnncError("genotype file not found", candidate)
        try:
            with open(candidate, encoding="utf-8") as f:  # never more than the limit (+1 to tell) into memory
                text = f.read(limits.MAX_GENOTYPE_JSON_BYTES + 1)
        except (OSError, UnicodeDecodeError) as err:
            raise SnncError(f"cannot read genotype file: {err}", candidate) from None
        if len(text) > limits.MAX_GENOTYPE_JSON_BYTES:
            raise SnncError(
                f"genotype file of {candidate.stat().st_size} bytes exceeds the limit "
                f"{limits.MAX_GENOTYPE_JSON_BYTES} characters (snnc.models.limits.MAX_GENOTYPE_JSON_BYTES)",
                candidate,
            )
        return genotype_from_dict(_read_json(text, candidate), candidate)
    name = str(name_or_path)
    if name not in _json_preset_names():
        external = _external_presets()
        if name in external:
            return external[name]
        names = preset_names()
        if candidate.exists() or "/" in name:
            raise SnncError(
                "is not a preset name, and a genotype file must end in .json (snnc decides a "
                "file's type by its extension)",
                name,
            )
        raise SnncError(
            f"unknown genotype preset {name!r} (valid presets: {', '.join(names) or 'none installed'}; "
            f"or pass a .json file)"
        )
    resource = _preset_dir() / f"{name}.json"
    label = f"preset {name}"
    return genotype_from_dict(_read_json(resource.read_text(encoding="utf-8"), label), label)


def save_genotype(genotype: Genotype, path: PathLike) -> None:
    """Write ``genotype.to_dict()`` as indented JSON to ``path``.

    Raises:
        SnncError: the file cannot be written.
    """
    try:
        Path(path).write_text(json.dumps(genotype.to_dict(), indent=2) + "\n", encoding="utf-8")
    except OSError as err:
        raise SnncError(f"cannot write genotype file: {err}", path) from None


def with_overrides(genotype: Genotype, overrides: Mapping[str, Any]) -> Genotype:
    """``dataclasses.replace`` with validation; unknown field names raise :class:`SnncError`."""
    if not overrides:
        return genotype
    names = [f.name for f in fields(genotype)]
    unknown = sorted(k for k in overrides if k not in names)
    if unknown:
        raise SnncError(
            f"{genotype.family}: unknown override(s) {list_items(unknown, fmt=repr)} (fields: {', '.join(names)})"
        )
    return replace(genotype, **dict(overrides))
