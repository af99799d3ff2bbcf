"""Build an ONNX export once per test module and reuse it: :func:`reuse_exports`.

Several int8 / OpenVINO test files prove the same exported file twice: a fixture exports a network
through a backend and compares every layer against it, then ``snnc stream`` (the CLI under test)
exports the very same graph again for the same shape, taps and spelling (~5-10 s of CPU each,
almost all of it ``torch.onnx.export``'s tracing). Inside :func:`reuse_exports`, a call of
:func:`snnc.export.onnx_writer.export_stream` or :func:`~snnc.export.onnx_writer.export_graph_stream`
whose whole input equals an earlier call's (every graph node's op, inputs, shape and parameter
bytes, the graph's metadata, the shape or example values, taps, Q/DQ, target, opset, metadata) gets
that call's file copied to its path and a copy of its returned info; anything else is exported as
usual. The runtimes under test (onnxruntime, OpenVINO, the hybrid backend) still read and run the
file; only the second, identical trace is skipped.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch


def _encode(value: Any, h: Any) -> None:
    """Feed ``value`` (arrays, tensors, containers, dataclasses, scalars) into the hash ``h``, unambiguously."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        h.update(f"nd{value.dtype.str}{value.shape}".encode())
        h.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, dict):
        h.update(f"d{len(value)}".encode())
        for k in sorted(value, key=repr):
            _encode(k, h)
            _encode(value[k], h)
    elif isinstance(value, list | tuple):
        h.update(f"{type(value).__name__}{len(value)}".encode())
        for v in value:
            _encode(v, h)
    else:  # scalars, strings, None, NeuronSpec / IntNeuron (dataclasses: their repr lists every field)
        h.update(f"{type(value).__qualname__}:{value!r};".encode())


def graph_digest(graph: Any) -> str:
    """A digest of everything an export reads from an export Graph: metadata, inputs, outputs and every node."""
    h = hashlib.sha256()
    _encode(json.loads(json.dumps(graph.meta, default=repr)), h)
    _encode([list(graph.inputs), list(graph.outputs)], h)
    for name, node in graph.nodes.items():
        _encode([name, node.op, list(node.inputs), tuple(node.shape), node.params], h)
    return h.hexdigest()


@dataclass
class ExportLedger:
    """What :func:`reuse_exports` did: ``exported`` traced calls, ``reused`` calls answered from an earlier one."""

    exported: int = 0
    reused: int = 0
    _files: dict[str, tuple[Path, dict[str, Any]]] = field(default_factory=dict)


@contextmanager
def reuse_exports() -> Iterator[ExportLedger]:
    """Within the block, an export whose whole input equals an earlier one's reuses its file (module docstring)."""
    import snnc.export.onnx_writer as writer

    ledger = ExportLedger()
    store = Path(tempfile.mkdtemp(prefix="snnc-test-exports-"))
    real_stream, real_graph_stream = writer.export_stream, writer.export_graph_stream

    def answer(key: str, path: Any, run: Any) -> dict[str, Any]:
        path = Path(path)
        if key in ledger._files:
            kept, info = ledger._files[key]
            shutil.copyfile(kept, path)
            ledger.reused += 1
            return copy.deepcopy(info)
        info = run()
        kept = store / f"{len(ledger._files)}.onnx"
        shutil.copyfile(path, kept)
        ledger._files[key] = (kept, copy.deepcopy(info))
        ledger.exported += 1
        return info

    def export_stream(model, step_shape, path, opset=writer.DEFAULT_OPSET, taps=(), graph=None, **kw):
        def run() -> dict[str, Any]:
            return real_stream(model, step_shape, path, opset, taps, graph, **kw)

        if graph is None:  # lowered inside: the network itself would have to be the key
            return run()
        h = hashlib.sha256(b"export_stream")
        _encode([graph_digest(graph), [int(s) for s in step_shape], int(opset), list(taps), kw], h)
        return answer(h.hexdigest(), path, run)

    def export_graph_stream(gm, example, path, opset=writer.DEFAULT_OPSET, meta=None, taps=()):
        h = hashlib.sha256(b"export_graph_stream")
        dtypes = sorted({str(b.dtype) for b in gm.buffers()})
        _encode([graph_digest(gm.graph), gm.qdq, gm.target, dtypes, example, int(opset), meta, list(taps)], h)
        return answer(h.hexdigest(), path, lambda: real_graph_stream(gm, example, path, opset, meta, taps))

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(writer, "export_stream", export_stream)
        mp.setattr(writer, "export_graph_stream", export_graph_stream)
        try:
            yield ledger
        finally:
            shutil.rmtree(store, ignore_errors=True)
