"""Hybrid export: the NIR-expressible spiking front to NIR, the rest to ONNX, plus a JSON manifest.

:func:`split_graph` divides an export graph in two:

* **front** — the largest set of NIR-expressible nodes (:func:`snnc.export.nir_writer.nir_blocker`)
  whose inputs all lie in the front (it starts at the graph input ``x``),
  trimmed so that the cut runs through neuron outputs where possible (a
  stateless node whose consumers are all in the rest moves to the rest);
* **rest** — everything else, with one graph input per *cut tensor* (a front
  node read by the rest, named like that node).

:func:`write_partition` writes ``<stem>.front.nir`` (the front; each cut
tensor leaves through an Output node ``out.<node>``), ``<stem>.rest.onnx`` (the
rest as a one-step streaming graph: inputs ``<node>`` per cut tensor and
``state_in_k``, outputs ``y``, ``tap.<node>`` per manifest ``taps`` entry (values energy
counting needs that the state lacks) and ``state_out_k``) and the manifest ``PATH``
(JSON)::

    {"format": "snnc-partition/1", "family": ..., "genotype": {...},
     "input_shape": [...], "input_layout": "...", "dt": 1e-4,
     "pieces": [
       {"name": "front", "format": "nir", "file": "net.front.nir",
        "inputs": ["x"], "outputs": ["out.<node>", ...], "nodes": N},
       {"name": "rest", "format": "onnx", "file": "net.rest.onnx", "opset": 17,
        "inputs": ["<node>", ...], "outputs": ["y"],
        "state_inputs": ["state_in_0", ...], "state_outputs": ["state_out_0", ...],
        "state_names": [...], "state_layout": [[node, field], ...], "taps": ["<node>", ...],
        "nodes": M, "reason": "<first node NIR cannot express>"}],
     "connections": [{"from": "front:out.<node>", "to": "rest:<node>"}, ...],
     "schedule": "every time step: run front, then rest",
     "set_id": "<hex>"}

Each piece also records its file's ``size`` and ``sha256``: the three files
are written and renamed as one set (manifest last), and a manifest whose
pieces are missing or differ (a stale or partial set) is refused on read.

Each piece keeps its own state (the front's neurons in the NIR runtime, the
rest's as explicit ONNX state). A graph NIR expresses entirely gives a
manifest with the front piece only. :class:`PartitionedNet` runs a manifest
(snnc's NIR importer for the front, onnxruntime for the rest).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from snnc.errors import SnncError
from snnc.export.graph import Graph
from snnc.export.nir_writer import DEFAULT_DT, nir_blocker
from snnc.fileio import file_sha256

__all__ = [
    "PARTITION_FORMAT",
    "copy_nodes",
    "split_graph",
    "partition_paths",
    "write_partition",
    "write_rest_piece",
    "check_partition_set",
    "PartitionedNet",
]

#: ``format`` value of the manifest.
PARTITION_FORMAT = "snnc-partition/1"


def copy_nodes(dst: Graph, src: Graph, names: Sequence[str]) -> None:
    """Copy nodes ``names`` of ``src`` into ``dst`` (inputs must already be in ``dst`` or be among ``names``)."""
    wanted = set(names)
    delays = []
    for name in src.order():
        if name not in wanted:
            continue
        node = src[name]
        if node.op == "delay":
            dst.add(name, "delay", [], shape=node.shape, **node.params)
            delays.append(name)
        else:
            dst.add(name, node.op, node.inputs, shape=node.shape, **node.params)
    for name in delays:
        dst.connect(name, src[name].inputs)


def split_graph(graph: Graph) -> tuple[Graph, Graph | None, list[str], str | None]:
    """``(front, rest, cut tensors, first node NIR cannot express)``; ``rest`` is None when all fits NIR.

    Raises:
        SnncError: not even the first layer after the input can be written to NIR.
    """
    order = graph.order()
    blocker = next((n for n in order if nir_blocker(graph, n) is not None), None)
    if blocker is None:
        return graph, None, [], None
    front = {n for n in graph.nodes if nir_blocker(graph, n) is None}
    changed = True
    while changed:
        changed = False
        for name in list(front):
            if any(src not in front for src in graph[name].inputs):
                front.discard(name)
                changed = True
    consumers = graph.consumers()
    changed = True
    while changed:  # move stateless, non-input nodes read only by the rest into the rest
        changed = False
        for name in list(front):
            node = graph[name]
            users = consumers[name]
            if node.op not in ("input", "neuron", "delay", "output") and users and all(u not in front for u in users):
                front.discard(name)
                changed = True
    if not any(graph[n].op not in ("input",) for n in front):
        raise SnncError(
            f"nothing after the input can be written to NIR: node {blocker!r} is "
            f"{nir_blocker(graph, blocker)}; export the whole network to ONNX instead"
        )
    rest_names = [n for n in graph.nodes if n not in front]
    cuts = [n for n in graph.nodes if n in front and any(u not in front for u in consumers[n])]
    meta = dict(graph.meta)
    fg = Graph(meta)
    copy_nodes(fg, graph, [n for n in graph.nodes if n in front])
    for cut in cuts:
        fg.add(f"out.{cut}", "output", [cut])
    fg.check()
    rg = Graph(meta)
    for cut in cuts:
        rg.add(cut, "input", shape=graph[cut].shape)
    copy_nodes(rg, graph, rest_names)
    rg.check()
    return fg, rg, cuts, blocker


def partition_paths(manifest: Path) -> tuple[Path, Path]:
    """``(front .nir, rest .onnx)`` written beside ``manifest``: ``<stem>.front.nir``, ``<stem>.rest.onnx``."""
    manifest = Path(manifest)
    stem = manifest.name[: -len(manifest.suffix)] if manifest.suffix else manifest.name
    return manifest.with_name(f"{stem}.front.nir"), manifest.with_name(f"{stem}.rest.onnx")


def _example_inputs(graph: Graph, front: Graph, cuts: Sequence[str]) -> dict[str, Tensor]:
    """Zero-valued cut tensors of the right batch size, by running the front once."""
    from snnc.export.lower import graph_inputs
    from snnc.export.runtime import GraphModule

    shape = tuple(graph.meta["input_shape"])
    x = graph_inputs(graph.meta["family"], torch.zeros(shape))
    gm = GraphModule(front)
    with torch.no_grad():
        values, _ = gm.step_nodes(x, None)
    return {c: torch.zeros_like(values[c]) for c in cuts}


def write_partition(
    graph: Graph, manifest: Path, dt: float = DEFAULT_DT, opset: int = 17, taps: Sequence[str] = ()
) -> dict[str, Any]:
    """Write front NIR + rest ONNX + manifest (module docstring) as one set; returns the manifest dict.

    The pieces and the manifest are written to temporary files and renamed
    together, the manifest last (:func:`snnc.fileio.atomic_output_set`): a
    failure leaves the earlier set untouched. The manifest records a ``set_id``
    and each piece's ``size`` and ``sha256``, so a stale or partial set (a piece
    of another export beside this manifest) is refused when read
    (:class:`PartitionedNet`). The caller checks that the paths may be written (``--force``).

    Raises:
        SnncError: the network cannot be split, or a file cannot be written (full or read-only disk).
    """
    from snnc.fileio import atomic_output_set

    manifest = Path(manifest)
    front, rest, cuts, blocker = split_graph(graph)
    front_path, rest_path = partition_paths(manifest)
    finals = [manifest, front_path] + ([rest_path] if rest is not None else [])
    with atomic_output_set(finals) as temps:
        doc = _write_pieces(
            graph, (front, rest, cuts, blocker), (front_path.name, rest_path.name), temps[1:], dt, opset, taps
        )
        for piece, tmp in zip(doc["pieces"], temps[1:], strict=False):
            piece["size"], piece["sha256"] = tmp.stat().st_size, file_sha256(tmp)
        doc["set_id"] = uuid.uuid4().hex
        temps[0].write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return doc


def write_rest_piece(
    graph: Graph,
    split: tuple[Graph, Graph | None, list[str], str | None],
    path: Path,
    name: str,
    opset: int = 17,
    taps: Sequence[str] = (),
) -> dict[str, Any]:
    """Write the rest of ``split`` (:func:`split_graph` of ``graph``) to ``path`` as a one-step ONNX graph;
    returns its manifest piece (``name`` is the file name it records). ``taps``: nodes output as
    ``tap.<node>`` (those not in the rest are dropped). An integer graph's rest is its integer graph."""
    from snnc.export.onnx_writer import export_graph_stream
    from snnc.export.runtime import GraphModule

    front, rest, cuts, blocker = split
    assert rest is not None and blocker is not None
    rest_taps = [t for t in dict.fromkeys(taps) if t in rest.nodes and t not in rest.outputs]
    info = export_graph_stream(
        GraphModule(rest),
        _example_inputs(graph, front, cuts),
        path,
        opset,
        meta={"snnc.family": str(graph.meta.get("family")), "snnc.piece": "rest"},
        taps=rest_taps,
    )
    n_state = len(info["state_names"])
    return {
        "name": "rest",
        "format": "onnx",
        "file": name,
        "opset": opset,
        "inputs": list(cuts),
        "outputs": rest.outputs,
        "state_inputs": [f"state_in_{k}" for k in range(n_state)],
        "state_outputs": [f"state_out_{k}" for k in range(n_state)],
        "state_names": info["state_names"],
        "state_layout": [list(e) for e in info["state_layout"]],
        "taps": rest_taps,
        "nodes": len(rest),
        "reason": f"{blocker}: {nir_blocker(graph, blocker)} has no NIR node type",
    }


def _write_pieces(
    graph: Graph,
    split: tuple[Graph, Graph | None, list[str], str | None],
    names: tuple[str, str],
    paths: Sequence[Path],
    dt: float,
    opset: int,
    taps: Sequence[str] = (),
) -> dict[str, Any]:
    """Write the front (and rest) to ``paths``; the manifest dict naming them ``names``."""
    from snnc.export.nir_writer import write_nir

    front, rest, cuts, _ = split
    write_nir(front, paths[0], dt)
    meta = graph.meta
    pieces: list[dict[str, Any]] = [
        {
            "name": "front",
            "format": "nir",
            "file": names[0],
            "inputs": front.inputs,
            "outputs": front.outputs,
            "nodes": len(front),
        }
    ]
    connections = []
    if rest is not None:
        pieces.append(write_rest_piece(graph, split, paths[1], names[1], opset, taps))
        connections = [{"from": f"front:out.{c}", "to": f"rest:{c}"} for c in cuts]
    return {
        "format": PARTITION_FORMAT,
        "family": meta.get("family"),
        "genotype": meta.get("genotype"),
        "input_shape": meta.get("input_shape"),
        "input_layout": meta.get("input_layout"),
        "dt": dt,
        "pieces": pieces,
        "connections": connections,
        "schedule": "every time step: run front (NIR, its own neuron state), then rest (ONNX: feed "
        "state_out_k back as state_in_k); the network output is the last piece's 'y'",
    }


def check_partition_set(manifest: Path, doc: dict[str, Any]) -> None:
    """Refuse a manifest whose pieces are missing or are not the files it was written with.

    Manifests of earlier snnc versions (no ``sha256``) are only checked for presence.

    Raises:
        SnncError: naming the piece: missing, or size / SHA-256 differ (a stale or partial set).
    """
    pieces = doc.get("pieces")
    if (
        not isinstance(pieces, list)
        or not pieces
        or not all(isinstance(p, dict) and isinstance(p.get("file"), str) for p in pieces)
    ):
        raise SnncError("partition manifest has no valid 'pieces' list", manifest)
    names = [p.get("name") for p in pieces]
    if "front" not in names:
        raise SnncError("partition manifest has no 'front' piece", manifest)
    for piece in pieces:
        path = manifest.with_name(Path(piece["file"]).name)
        if not path.is_file():
            raise SnncError(
                f"piece {piece.get('name')!r} of partition manifest {manifest.name} is missing: "
                f"the set is partial; export it again",
                path,
            )
        if "sha256" not in piece:
            continue
        if path.stat().st_size != piece.get("size") or file_sha256(path) != piece["sha256"]:
            raise SnncError(
                f"is not the {piece.get('name')!r} piece written with manifest {manifest.name} "
                f"(size or SHA-256 differ): the set is stale or partial; export it again",
                path,
            )


class PartitionedNet:
    """Runs a partition manifest step by step: front via :func:`~snnc.export.nir_reader.import_nir`,
    rest via onnxruntime. ``step(x_t, state) -> (y, state)`` with ``x_t`` the network's own input."""

    def __init__(self, manifest: Path, threads: int = 1) -> None:
        from snnc.export.nir_reader import import_nir

        manifest = Path(manifest)
        try:
            self.doc = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise SnncError(f"cannot read partition manifest: {err}", manifest) from None
        if not isinstance(self.doc, dict) or self.doc.get("format") != PARTITION_FORMAT:
            fmt = self.doc.get("format") if isinstance(self.doc, dict) else None
            raise SnncError(f"not an snnc partition manifest (format {fmt!r})", manifest)
        check_partition_set(manifest, self.doc)
        pieces = {p["name"]: p for p in self.doc["pieces"]}
        rest = pieces.get("rest")
        self._open(
            import_nir(manifest.with_name(pieces["front"]["file"])),
            None if rest is None else (manifest.with_name(rest["file"]), rest),
            str(self.doc.get("family", "")),
            threads,
        )

    @classmethod
    def of_pieces(
        cls, front: Any, rest: tuple[Path, dict[str, Any]] | None, family: str, threads: int = 1
    ) -> PartitionedNet:
        """The same runner over pieces given directly: ``front`` a :class:`~snnc.export.runtime.GraphModule`
        (e.g. an integer graph's front, which a NIR file cannot carry bit-exactly), ``rest`` the
        ``(ONNX file, manifest piece)`` of :func:`write_rest_piece` or None."""
        net = cls.__new__(cls)
        net.doc = {}
        net._open(front, rest, family, threads)
        return net

    def _open(self, front: Any, rest: tuple[Path, dict[str, Any]] | None, family: str, threads: int) -> None:
        self.front = front
        self.rest = None
        if rest is not None:
            import onnxruntime as ort

            from snnc.export.ort_options import session_options

            self.rest_piece = rest[1]
            self.rest = ort.InferenceSession(str(rest[0]), session_options(threads), providers=["CPUExecutionProvider"])
        self.family = family

    def init_state(self, x_t: Tensor) -> tuple[tuple[Tensor, ...], list[NDArray[Any]]]:
        """``(front state, rest state)`` at rest for one step's input ``x_t``."""
        from snnc.export.lower import graph_inputs

        front_state = self.front.init_state(graph_inputs(self.family, x_t))
        rest_state: list[NDArray[Any]] = []
        if self.rest is not None:
            shapes = json.loads(self.rest.get_modelmeta().custom_metadata_map["snnc.state_shapes"])
            rest_state = [np.zeros(s, dtype=np.float32) for s in shapes]
        return front_state, rest_state

    def step(self, x_t: Tensor, state: Any) -> tuple[Tensor, Any]:
        """One step of the whole network: ``(y, new state)``."""
        y, new_state, _ = self.step_values(x_t, state, values=False)
        return y, new_state

    def step_values(
        self, x_t: Tensor, state: Any, values: bool = True
    ) -> tuple[Tensor, Any, dict[str, Tensor | np.ndarray[Any, Any]]]:
        """One step: ``(y, new state, node values)``; the values (``values=True``) are every front node's
        and, of the rest, its graph inputs, neuron spikes (``y`` state outputs), delay outputs and taps
        (:func:`snnc.export.activity.step_values`): what energy counting reads."""
        from snnc.export.activity import step_values
        from snnc.export.lower import graph_inputs

        front_state, rest_state = state
        inputs = graph_inputs(self.family, x_t)
        with torch.no_grad():
            if values:
                nodes, front_state = self.front.step_nodes(inputs, front_state)
                outs = {n: nodes[n] for n in self.front.output_names}
            else:
                outs, front_state = self.front.step_all(inputs, front_state)
                nodes = {}
        if self.rest is None:
            return outs[self.front.output_names[0]], (front_state, rest_state), dict(nodes)
        feed = {c: outs[f"out.{c}"].numpy() for c in self.rest_piece["inputs"]}
        feed.update(dict(zip(self.rest_piece["state_inputs"], rest_state, strict=False)))
        res = self.rest.run(None, feed)
        taps = list(self.rest_piece.get("taps", []))
        n_out = len(self.rest_piece["outputs"]) + len(taps)
        new_rest = list(res[n_out:])
        found: dict[str, Tensor | np.ndarray[Any, Any]] = dict(nodes)
        if values:
            layout = [(str(n), str(f)) for n, f in self.rest_piece.get("state_layout", [])]
            tapped = dict(zip(taps, res[n_out - len(taps) : n_out], strict=True))
            found.update(step_values({}, layout, rest_state, new_rest, tapped))
        return torch.from_numpy(res[0]), (front_state, new_rest), found
