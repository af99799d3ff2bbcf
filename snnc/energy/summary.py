"""Architecture summary for ``snnc info``: layers, parameters, neurons, dense ops.

Layer rows and op totals come from the one counting pass of
:func:`snnc.energy.ops.count_ops`; nothing is counted twice here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from torch import Tensor, nn

from snnc.energy.ops import count_ops
from snnc.neurons import Neuron

__all__ = ["describe", "format_table"]


def _neurons(model: nn.Module) -> list[tuple[str, Neuron]]:
    """``model.neurons()`` when the model has it, else every :class:`Neuron` submodule."""
    named = getattr(model, "neurons", None)
    if callable(named):
        return list(named())
    return [(n, m) for n, m in model.named_modules() if isinstance(m, Neuron)]


def describe(
    model: nn.Module,
    example_input: Any,
    *,
    run: Callable[[nn.Module, Any], Any] | None = None,
) -> dict[str, Any]:
    """Summarise ``model`` by running it once on ``example_input`` (eval mode, no grad).

    Args:
        model: any ``nn.Module``; an snnc ``SpikingNet`` takes ``x_seq`` (T, B, ...)
            and every step is counted (see ``calls``).
        example_input: tensor or tuple of positional arguments.
        run: optional ``run(model, example_input)`` replacing ``model(example_input)``.

    Returns:
        JSON-serialisable dict with keys ``model`` (class name), ``family``
        (genotype family or ``None``), ``input_shape``, ``parameters`` (all
        parameters, BatchNorm included), ``trainable_parameters``, ``layers``
        (``name``, ``type``, ``output_shape``, ``parameters``, ``dense_ops``,
        ``calls``, one per synaptic layer), ``layer_parameters`` (sum over
        ``layers``), ``dense_ops`` (total over the pass, per example),
        ``neurons`` (``name``, ``type``, ``spec``) and ``neuron_types``
        (count per neuron type).
    """
    report = count_ops(model, example_input, run=run)
    genotype = getattr(model, "genotype", None)
    neurons = _neurons(model)
    layers = [
        {
            "name": layer.name,
            "type": layer.type,
            "output_shape": list(layer.output_shape),
            "parameters": layer.parameters,
            "dense_ops": layer.dense_ops,
            "calls": layer.calls,
        }
        for layer in report.layers
    ]
    return {
        "model": type(model).__name__,
        "family": getattr(genotype, "family", None),
        "input_shape": list(example_input.shape) if isinstance(example_input, Tensor) else None,
        "parameters": sum(p.numel() for p in model.parameters()),
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "layers": layers,
        "layer_parameters": report.parameters,
        "dense_ops": report.dense_ops,
        "neurons": [{"name": n, "type": m.spec.type, "spec": m.spec.to_dict()} for n, m in neurons],
        "neuron_types": dict(Counter(m.spec.type for _, m in neurons)),
    }


def _shape(shape: list[int]) -> str:
    return "x".join(str(s) for s in shape)


def format_table(desc: dict[str, Any]) -> str:
    """Human-readable table of a :func:`describe` result."""
    head = ("layer", "type", "output", "params", "dense ops", "calls")
    rows = [
        (
            r["name"],
            r["type"],
            _shape(r["output_shape"]),
            f"{r['parameters']:,}",
            f"{r['dense_ops']:,}",
            str(r["calls"]),
        )
        for r in desc["layers"]
    ]
    total = ("total", "", "", f"{desc['layer_parameters']:,}", f"{desc['dense_ops']:,}", "")
    widths = [max(len(row[k]) for row in [head, *rows, total]) for k in range(len(head))]
    right = {3, 4, 5}

    def line(row: tuple[str, ...]) -> str:
        cells = [c.rjust(w) if k in right else c.ljust(w) for k, (c, w) in enumerate(zip(row, widths, strict=False))]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    title = desc["model"] + (f" ({desc['family']})" if desc.get("family") else "")
    if desc.get("input_shape"):
        title += f", input {_shape(desc['input_shape'])}"
    out = [title, line(head), rule, *map(line, rows), rule, line(total), ""]
    out.append(
        f"parameters: {desc['parameters']:,} (trainable {desc['trainable_parameters']:,}; "
        f"layers above {desc['layer_parameters']:,}, the rest BatchNorm and other layers)"
    )
    out.append(f"dense synaptic ops per example: {desc['dense_ops']:,} (MACs without bias, summed over calls)")
    types = ", ".join(f"{t}: {n}" for t, n in sorted(desc["neuron_types"].items())) or "none"
    out.append(f"neuron layers: {len(desc['neurons'])} ({types})")
    if desc["neurons"]:
        width = max(len(n["name"]) for n in desc["neurons"])
        for n in desc["neurons"]:
            s = n["spec"]
            out.append(
                f"  {n['name'].ljust(width)}  {n['type']}  decay={s['decay']:g} vth={s['vth']:g} "
                f"{s['surrogate']} b={s['b']:g}"
            )
    return "\n".join(out)
