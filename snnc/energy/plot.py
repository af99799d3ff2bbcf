"""Bar chart of energy per layer and per frame: the SNN (AC and MAC parts) against the ANN."""

from __future__ import annotations

from pathlib import Path

from snnc.energy.report import EnergyReport

__all__ = ["plot_energy"]


def plot_energy(report: EnergyReport, out_png: Path, *, title: str | None = None, max_layers: int = 60) -> None:
    """Write a PNG: per-layer stacked AC/MAC energy (uJ) and a total SNN vs ANN panel.

    With more than ``max_layers`` layers, the largest ones are shown and the
    rest summed into one ``other`` bar.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = list(report.layers)
    names = [layer.name for layer in layers]
    ac = [layer.ac * report.costs.ac_j * 1e6 for layer in layers]
    mac = [layer.mac * report.costs.mac_j * 1e6 for layer in layers]
    if len(layers) > max_layers:
        order = sorted(range(len(layers)), key=lambda i: -(ac[i] + mac[i]))
        keep = sorted(order[: max_layers - 1])
        rest = [i for i in range(len(layers)) if i not in set(keep)]
        names = [names[i] for i in keep] + [f"other ({len(rest)})"]
        ac = [ac[i] for i in keep] + [sum(ac[i] for i in rest)]
        mac = [mac[i] for i in keep] + [sum(mac[i] for i in rest)]
    fig, (ax, ax2) = plt.subplots(
        1, 2, figsize=(max(8.0, 0.22 * len(names) + 4), 5), gridspec_kw={"width_ratios": [max(len(names), 4), 3]}
    )
    x = range(len(names))
    ax.bar(x, ac, color="tab:blue", label=f"AC ({report.costs.ac_pj:g} pJ)")
    ax.bar(x, mac, bottom=ac, color="tab:orange", label=f"MAC ({report.costs.mac_pj:g} pJ)")
    ax.set_xticks(list(x))
    ax.set_xticklabels(names, rotation=90, fontsize=6)
    ax.set_ylabel("energy per frame (uJ)")
    ax.legend(fontsize=8)
    ax.set_title(title or "energy per layer")
    totals = [report.ac * report.costs.ac_j * 1e3, report.mac * report.costs.mac_j * 1e3]
    ax2.bar([0], [totals[0]], color="tab:blue")
    ax2.bar([0], [totals[1]], bottom=[totals[0]], color="tab:orange")
    ax2.bar([1], [report.ann_energy_j * 1e3], color="tab:gray")
    ax2.set_xticks([0, 1])
    ax2.set_xticklabels(["SNN", "as ANN"])
    ax2.set_ylabel("energy per frame (mJ)")
    ax2.set_title(f"SNN {report.energy_j * 1e3:.3g} mJ\nANN {report.ann_energy_j * 1e3:.3g} mJ", fontsize=9)
    fig.tight_layout()
    fig.savefig(str(out_png), dpi=110, format="png")
    plt.close(fig)
