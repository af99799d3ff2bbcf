"""Per-stage time shares of one stereo step, for ``bench_stream.py`` (no hooks: the network runs as streamed).

torch: the stage functions and modules are wrapped with a wall-clock timer that keeps
exclusive times (a stage's time excludes the stages it calls); everything is synchronous
on the CPU. onnxruntime: its own node profile (``enable_profiling``), grouped by operator
type: ``Conv`` split into 3-D and 2-D by the input's rank, element-wise operators (the LIF
updates), data movement (``Concat``/``Slice``/``Pad``/...: volume assembly), ``Gather``/
``Expand`` and the 0/1-selection ``MatMul`` nodes (nearest resize as the export spells it:
:func:`selection_matmuls`), the other ``MatMul`` (the cost layer's tap GEMM). The trilinear
``Resize`` (the cost's up-sampling to full resolution) is ``other``, as in torch.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

STAGES = ("conv3d", "conv2d", "LIF", "cost volume + stem0 conv", "cost layer 24->1", "resize", "estimator", "other")


class StageTimer:
    """Exclusive wall time per stage label (nested stages are subtracted from their caller)."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self._stack: list[float] = []
        self.active = False

    def wrap(self, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            if not self.active:
                return fn(*args, **kwargs)
            t0 = time.perf_counter()
            self._stack.append(0.0)
            try:
                return fn(*args, **kwargs)
            finally:
                dt = time.perf_counter() - t0
                inner = self._stack.pop()
                self.totals[label] += dt - inner
                if self._stack:
                    self._stack[-1] += dt

        return timed


@contextmanager
def patched(obj: Any, name: str, value: Any) -> Iterator[None]:
    old = obj.__dict__.get(name, None) if not isinstance(obj, type) else obj.__dict__.get(name)
    had = name in obj.__dict__
    setattr(obj, name, value)
    try:
        yield
    finally:
        if had:
            setattr(obj, name, old)
        else:
            delattr(obj, name)


@contextmanager
def torch_stages(timer: StageTimer, model: Any) -> Iterator[None]:
    """Wrap the stereo net's stages (class methods and module functions) while active."""
    from contextlib import ExitStack

    from torch import nn

    import snnc.models.cells as cells
    import snnc.models.stereo as stereo
    import snnc.runtime.engine as engine
    from snnc.models.layers import Conv3d
    from snnc.neurons import Neuron

    with ExitStack() as stack:
        enter = stack.enter_context
        enter(patched(Neuron, "forward", timer.wrap("LIF", Neuron.forward)))
        conv3d = Conv3d._conv_forward

        def conv3d_stage(self: Any, *args: Any) -> Any:  # the literal form's stem0 / cost-layer convs are marked
            return timer.wrap(getattr(self, "_bench_stage", "conv3d"), conv3d)(self, *args)

        enter(patched(Conv3d, "_conv_forward", conv3d_stage))
        enter(patched(nn.Conv2d, "_conv_forward", timer.wrap("conv2d", nn.Conv2d._conv_forward)))
        for mod in (cells, stereo):
            enter(patched(mod, "resize_nearest", timer.wrap("resize", mod.resize_nearest)))
        for fn in ("cost_volume", "cost_conv"):
            enter(patched(stereo, fn, timer.wrap("cost volume + stem0 conv", getattr(stereo, fn))))
        enter(patched(stereo, "upsampled_conv3d", timer.wrap("cost layer 24->1", stereo.upsampled_conv3d)))
        m = model.matching  # an attribute survives the backends' copies of the model; harmless otherwise
        m.stem0.conv.conv._bench_stage = "cost volume + stem0 conv"
        m.out.conv._bench_stage = "cost layer 24->1"
        enter(patched(engine, "estimate_disparity", timer.wrap("estimator", engine.estimate_disparity)))
        yield


def shares(totals: dict[str, float], total_s: float) -> dict[str, float]:
    """Fractions of ``total_s`` per stage; ``other`` is what no stage claimed."""
    out = {s: totals.get(s, 0.0) / total_s for s in STAGES if s != "other"}
    out["other"] = max(0.0, 1.0 - sum(out.values()))
    return out


ORT_GROUPS = {
    "LIF": {
        "Add",
        "Sub",
        "Mul",
        "Div",
        "Greater",
        "GreaterOrEqual",
        "Less",
        "Cast",
        "Where",
        "Neg",
        "Clip",
        "Min",
        "Max",
    },
    "cost volume + stem0 conv": {"Concat", "Slice", "Pad", "Unsqueeze", "Squeeze", "Transpose", "Reshape", "Identity"},
    "resize": {"Gather", "Expand", "Tile"},
    "cost layer 24->1": {"MatMul", "FusedMatMul", "Gemm"},
}


def selection_matmuls(onnx_path: Path) -> set[str]:
    """Names of the ``MatMul`` nodes whose second input is a 0/1 matrix with one 1 per column: the nearest
    resize's innermost axis as ``GraphModule`` spells it (``snnc.export.runtime``), not a synaptic product."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    inits = {t.name: t for t in graph.initializer}
    inits.update(
        {n.output[0]: a.t for n in graph.node if n.op_type == "Constant" for a in n.attribute if a.name == "value"}
    )
    found = set()
    for node in graph.node:
        if node.op_type == "MatMul" and len(node.input) == 2 and node.input[1] in inits:
            m = numpy_helper.to_array(inits[node.input[1]])
            if m.ndim == 2 and np.isin(m, (0.0, 1.0)).all() and (m.sum(axis=0) == 1).all():
                found.add(node.name)
    return found


def ort_stage_shares(onnx_path: Path, threads: int, steps: int = 3) -> dict[str, float]:
    """onnxruntime's own node profile of ``steps`` steps of the streaming file, grouped (module docstring)."""
    import onnxruntime as ort

    from snnc.export.ort_options import session_options

    opts = session_options(threads)
    opts.enable_profiling = True
    opts.profile_file_prefix = str(onnx_path.with_suffix("")) + "-profile"
    sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    shapes = json.loads(meta["snnc.state_shapes"])
    inputs = sess.get_inputs()
    rng = np.random.default_rng(0)
    state = [np.zeros(s, dtype=np.float32) for s in shapes]
    x_shape = [int(d) for d in inputs[0].shape]
    for _ in range(steps):
        x = rng.integers(-1, 2, x_shape).astype(np.float32)
        out = sess.run(None, {inputs[0].name: x, **{i.name: s for i, s in zip(inputs[1:], state, strict=True)}})
        state = out[1:]
    events = json.loads(Path(sess.end_profiling()).read_text())
    selects = selection_matmuls(onnx_path)
    per: dict[str, float] = defaultdict(float)
    for e in events:
        if e.get("cat") != "Node" or not str(e.get("name", "")).endswith("_kernel_time"):
            continue
        args = e.get("args", {})
        op = str(args.get("op_name", ""))
        if op == "Conv":
            shape = args.get("input_type_shape", [{}])[0]
            rank = len(next(iter(shape.values()))) if shape else 0
            group = "conv3d" if rank == 5 else "conv2d"
        elif op == "MatMul" and str(e["name"])[: -len("_kernel_time")] in selects:
            group = "resize"
        else:
            group = next((g for g, ops in ORT_GROUPS.items() if op in ops), "other")
        per[group] += float(e.get("dur", 0.0))
    total = sum(per.values()) or 1.0
    return {s: per.get(s, 0.0) / total for s in STAGES if s != "estimator"}
