"""Bar chart of energy per layer and per frame, stacked into synaptic compute, neuron updates and memory."""

from __future__ import annotations

from pathlib import Path

from snnc.energy.report import EnergyReport
from snnc.energy.units import format_energy

__all__ = ["plot_energy", "stacked_parts"]

#: The stacked parts, bottom to top, with their colours.
PARTS: tuple[tuple[str, str], ...] = (
    ("synaptic compute", "tab:blue"),
    ("neuron updates", "tab:green"),
    ("memory", "tab:orange"),
)


def stacked_parts(report: EnergyReport) -> tuple[list[str], list[list[float]]]:
    """Bar names (synaptic layers, then neuron layers) and, per part of :data:`PARTS`, each bar's joules.

    Neuron updates outside the model's total (the ``paper`` model) are left out, so the
    bars add up to :attr:`EnergyReport.energy_j`.
    """
    names = [layer.name for layer in report.layers] + [n.name for n in report.neurons]
    compute = [layer.compute_j for layer in report.layers] + [0.0] * len(report.neurons)
    neuron = [0.0] * len(report.layers) + [n.compute_j if n.counted else 0.0 for n in report.neurons]
    memory = [layer.memory_j for layer in report.layers] + [n.memory_j if n.counted else 0.0 for n in report.neurons]
    return names, [compute, neuron, memory]


def plot_energy(report: EnergyReport, out_png: Path, *, title: str | None = None, max_layers: int = 60) -> None:
    """Write a PNG: per-layer stacked energy (uJ) and a total SNN vs ANN panel, both split into
    synaptic compute, neuron updates and memory.

    With more than ``max_layers`` bars, the largest ones are shown and the
    rest summed into one ``other`` bar.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names, parts = stacked_parts(report)
    values = [[v * 1e6 for v in part] for part in parts]
    if len(names) > max_layers:
        order = sorted(range(len(names)), key=lambda i: -sum(part[i] for part in values))
        keep = sorted(order[: max_layers - 1])
        rest = [i for i in range(len(names)) if i not in set(keep)]
        names = [names[i] for i in keep] + [f"other ({len(rest)})"]
        values = [[part[i] for i in keep] + [sum(part[i] for i in rest)] for part in values]
    fig, (ax, ax2) = plt.subplots(
        1, 2, figsize=(max(8.0, 0.22 * len(names) + 4), 5), gridspec_kw={"width_ratios": [max(len(names), 4), 3]}
    )
    x = list(range(len(names)))
    bottom = [0.0] * len(names)
    for (label, colour), part in zip(PARTS, values, strict=True):
        ax.bar(x, part, bottom=bottom, color=colour, label=label)
        bottom = [b + v for b, v in zip(bottom, part, strict=True)]
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=90, fontsize=6)
    ax.set_ylabel("energy per frame (uJ)")
    ax.legend(fontsize=8)
    ax.set_title(title or f"energy per layer ({report.energy_model} model, {report.costs.name})")
    neuron_mj = report.neuron_j * 1e3 if report.energy_model != "paper" else 0.0
    snn = [report.compute_j * 1e3, neuron_mj, report.memory_j * 1e3]
    ann_parts = report.ann or {"compute_j": report.ann_energy_j, "neuron_j": 0.0, "memory_j": 0.0}
    ann = [ann_parts["compute_j"] * 1e3, ann_parts["neuron_j"] * 1e3, ann_parts["memory_j"] * 1e3]
    for column, stack in ((0, snn), (1, ann)):
        base = 0.0
        for (_, colour), v in zip(PARTS, stack, strict=True):
            ax2.bar([column], [v], bottom=[base], color=colour)
            base += v
    ax2.set_xticks([0, 1])
    ax2.set_xticklabels(["SNN", "as ANN"])
    ax2.set_ylabel("energy per frame (mJ)")
    ax2.set_title(f"SNN {format_energy(report.energy_j, 3)}\nANN {format_energy(report.ann_energy_j, 3)}", fontsize=9)
    fig.tight_layout()
    fig.savefig(str(out_png), dpi=110, format="png")
    plt.close(fig)
