"""ONNX export (opset 17 by default, ``torch.onnx.export(..., dynamo=False)``), checked with onnx.checker.

Two graphs:

**Streaming (one step)** — :func:`export_stream`: one time step of the folded
network with its state as explicit inputs and outputs, for frame-by-frame
inference in onnxruntime (feed ``state_out_k`` back as ``state_in_k``; start
from zeros)::

    inputs   x            one step's input (B, C, H, W); stereo (B, 2, C, H, W), index 0 = left
             state_in_0 .. state_in_{N-1}
    outputs  y            the step's output (classification logits / last-layer spikes;
                          stereo matching cost (B, D, H, W), lower = better)
             state_out_0 .. state_out_{N-1}

The state is the network's flat state (``model.init_state``): for every
neuron layer in ``model.neurons()`` order its membrane potential ``u`` and last
spikes ``y`` (ALIF also ``a``), then SNASNet's carried backward-edge values and
dropout code. The file's metadata property ``snnc.state_names`` lists what
each ``state_in_k`` is (``stem.neuron.u``, ``stem.neuron.y``, ...), and
``snnc.state_shapes`` their shapes; spikes of layer L at this step are the
``<L>.y`` entries of the state outputs.

**Fixed window** — :func:`export_window` (classification): input ``x`` one
image (B, C, H, W), direct coding for ``T`` steps from the resting state,
output ``y_mean`` = the mean of the per-step outputs (the prediction scores).

Shapes are static (the exported input shape, batch included). The metadata
properties also hold ``snnc.format`` (``snnc-onnx/1``), ``snnc.mode``,
``snnc.family``, ``snnc.genotype`` (JSON) and ``snnc.opset``.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from snnc.errors import SnncError

__all__ = ["DEFAULT_OPSET", "ONNX_FORMAT", "state_names", "export_stream", "export_window", "export_graph_stream"]

#: Opset of the exported graphs (Greater/Cast spikes, Resize for interpolation).
DEFAULT_OPSET = 17
#: ``snnc.format`` metadata value.
ONNX_FORMAT = "snnc-onnx/1"


def state_names(model: nn.Module, x_t: Tensor) -> list[str]:
    """Name of each tensor of ``model.init_state(x_t)`` (``<neuron layer>.u`` / ``.y`` / ``.a``, carry names)."""
    from snnc.neurons import state_fields

    parts = model.split_state(model.init_state(x_t))
    neurons = dict(model.neurons())
    names: list[str] = []
    for name, tensors in parts.items():
        if name not in neurons:  # non-neuron state (SNASNet feedback): one tensor named after its layer
            names += [name] if len(tensors) == 1 else [f"{name}.{i}" for i in range(len(tensors))]
        else:
            names += [f"{name}.{s}" for s in state_fields(neurons[name].spec)]
    return names


class _Step(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        y, new_state = self.model.step(x, tuple(state))
        return (y, *new_state)


class _Window(nn.Module):
    def __init__(self, model: nn.Module, shapes: Sequence[torch.Size], steps: int) -> None:
        super().__init__()
        self.model = model
        self.shapes = [tuple(s) for s in shapes]
        self.steps = steps

    def forward(self, x: Tensor) -> Tensor:
        state = tuple(x.new_zeros(s) for s in self.shapes)
        total: Tensor | None = None
        for _ in range(self.steps):
            y, state = self.model.step(x, state)
            total = y if total is None else total + y
        assert total is not None
        return total / self.steps


class _GraphStep(nn.Module):
    def __init__(self, gm: nn.Module, n_inputs: int) -> None:
        super().__init__()
        self.gm = gm
        self.n_inputs = n_inputs

    def forward(self, *args: Tensor) -> tuple[Tensor, ...]:
        inputs = dict(zip(self.gm.input_names, args[: self.n_inputs], strict=False))
        outs, new_state = self.gm.step_all(inputs, tuple(args[self.n_inputs :]))
        return (*[outs[n] for n in self.gm.output_names], *new_state)


def _export(
    module: nn.Module,
    args: tuple[Tensor, ...],
    path: Path,
    input_names: list[str],
    output_names: list[str],
    opset: int,
    meta: dict[str, str],
    doc: str,
) -> None:
    import onnx

    module.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                module,
                args,
                str(path),
                input_names=input_names,
                output_names=output_names,
                opset_version=opset,
                dynamo=False,
                do_constant_folding=True,
            )
        except (RuntimeError, ValueError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise SnncError(f"torch.onnx.export failed: {first}", path) from None
    proto = onnx.load(str(path))
    got_in = [i.name for i in proto.graph.input]
    if got_in != input_names:
        raise SnncError(f"internal: ONNX inputs came out as {got_in}, expected {input_names}", path)
    proto.doc_string = doc
    meta = {"snnc.format": ONNX_FORMAT, "snnc.opset": str(opset), **meta}
    del proto.metadata_props[:]
    for key, value in meta.items():
        prop = proto.metadata_props.add()
        prop.key, prop.value = key, value
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(path))


def _model_meta(model: nn.Module, mode: str) -> dict[str, str]:
    from snnc.export.lower import family_of

    genotype = getattr(model, "genotype", None)
    return {
        "snnc.mode": mode,
        "snnc.family": family_of(model),
        "snnc.genotype": json.dumps(genotype.to_dict() if genotype is not None else None),
    }


def export_stream(
    model: nn.Module, step_shape: Sequence[int], path: Path, opset: int = DEFAULT_OPSET
) -> dict[str, Any]:
    """Write the one-step streaming graph of ``model`` (eval, folded) for inputs of ``step_shape``.

    Returns:
        ``{"inputs": [...], "outputs": [...], "state_names": [...]}``.

    Raises:
        SnncError: the input shape does not fit, or export / checking fails.
    """
    model = model.eval()
    x = torch.zeros(tuple(step_shape))
    try:
        state = model.init_state(x)
    except SnncError as err:
        raise SnncError(f"input shape {tuple(step_shape)} does not fit the network: {err}") from None
    names = state_names(model, x)
    n = len(state)
    ins = ["x"] + [f"state_in_{k}" for k in range(n)]
    outs = ["y"] + [f"state_out_{k}" for k in range(n)]
    meta = _model_meta(model, "stream")
    meta["snnc.state_names"] = json.dumps(names)
    meta["snnc.state_shapes"] = json.dumps([list(s.shape) for s in state])
    doc = (
        "snnc one-step streaming graph: inputs x, state_in_0..; outputs y, state_out_0..; feed state_out_k "
        "back as state_in_k each step, start from zeros. state_k = metadata snnc.state_names[k]."
    )
    _export(_Step(model), (x, *state), Path(path), ins, outs, opset, meta, doc)
    return {"inputs": ins, "outputs": outs, "state_names": names}


def export_window(
    model: nn.Module, step_shape: Sequence[int], time_steps: int, path: Path, opset: int = DEFAULT_OPSET
) -> dict[str, Any]:
    """Write the fixed-window graph (classification): image ``x`` -> ``y_mean`` over ``time_steps`` steps.

    Raises:
        SnncError: not a classification network, ``time_steps < 1``, or export failure.
    """
    from snnc.export.lower import family_of

    family = family_of(model)
    if family == "spikedhs-stereo":
        raise SnncError(
            "the fixed-window ONNX graph is for classification networks; stream the stereo net "
            "(export without --window)"
        )
    if time_steps < 1:
        raise SnncError(f"--window must be >= 1 time steps, got {time_steps}")
    model = model.eval()
    x = torch.zeros(tuple(step_shape))
    try:
        shapes = [s.shape for s in model.init_state(x)]
    except SnncError as err:
        raise SnncError(f"input shape {tuple(step_shape)} does not fit the network: {err}") from None
    meta = _model_meta(model, "window")
    meta["snnc.time_steps"] = str(time_steps)
    doc = (
        f"snnc fixed-window graph: input x (one image, direct coding for {time_steps} steps from rest), "
        f"output y_mean = mean of the per-step outputs."
    )
    _export(_Window(model, shapes, time_steps), (x,), Path(path), ["x"], ["y_mean"], opset, meta, doc)
    return {"inputs": ["x"], "outputs": ["y_mean"], "time_steps": time_steps}


def export_graph_stream(
    gm: nn.Module,
    example: dict[str, Tensor],
    path: Path,
    opset: int = DEFAULT_OPSET,
    meta: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One-step streaming ONNX graph of a :class:`~snnc.export.runtime.GraphModule` (a partition's rest).

    Inputs are the graph's input names then ``state_in_k``; outputs the graph's
    output names then ``state_out_k``; ``snnc.state_names`` lists the state.
    """
    gm = gm.eval()
    state = gm.init_state(example)
    n = len(state)
    ins = list(gm.input_names) + [f"state_in_{k}" for k in range(n)]
    outs = list(gm.output_names) + [f"state_out_{k}" for k in range(n)]
    props = {
        "snnc.mode": "stream",
        "snnc.state_names": json.dumps(gm.state_names()),
        "snnc.state_shapes": json.dumps([list(s.shape) for s in state]),
        **(meta or {}),
    }
    doc = (
        "snnc one-step streaming graph of a network part: inputs "
        + ", ".join(gm.input_names)
        + ", state_in_0..; outputs "
        + ", ".join(gm.output_names)
        + ", state_out_0.."
    )
    args = tuple(example[n_] for n_ in gm.input_names) + tuple(state)
    _export(_GraphStep(gm, len(gm.input_names)), args, Path(path), ins, outs, opset, props, doc)
    return {"inputs": ins, "outputs": outs, "state_names": gm.state_names()}
