"""Search logs (JSON lines) and plots (PNG, matplotlib Agg)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from snnc.models.genotype import PRIMITIVES, edge_endpoints
from snnc.nas.files import atomic_output, write_text_atomic

__all__ = ["json_safe", "write_jsonl", "plot_arch_history", "plot_scores"]


def json_safe(value: Any) -> Any:
    """``value`` with NaN/inf floats replaced by ``None`` (strict JSON), recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write_jsonl(path: Path, entries: Iterable[Mapping[str, Any]]) -> None:
    """Write one JSON object per line, atomically (the whole file is rewritten)."""
    write_text_atomic(path, "".join(json.dumps(json_safe(e), allow_nan=False) + "\n" for e in entries))


def _edge_label(edge: int, nodes: int) -> str:
    src, dst = edge_endpoints(edge, nodes)
    name = {0: "s0", 1: "s1"}.get(src, f"n{src - 2}")
    return f"e{edge}: {name}->n{dst}"


def plot_arch_history(entries: Sequence[Mapping[str, Any]], path: Path, title: str) -> None:
    """Plot softmax(alpha) per edge and the trellis level probabilities over the epochs.

    ``entries[i]["alphas"][group]`` is an ``(edges, ops)`` nested list and
    ``entries[i].get("levels", {})[group]`` a ``(layers, levels)`` one.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    if not entries:
        return
    epochs = [int(e["epoch"]) for e in entries]
    panels: list[tuple[str, dict[str, list[float]]]] = []
    for group in entries[0].get("alphas", {}):
        table = entries[0]["alphas"][group]
        n_edges = len(table)
        nodes = next(n for n in range(1, 10) if 2 * n + n * (n - 1) // 2 == n_edges)
        for edge in range(n_edges):
            series = {op: [e["alphas"][group][edge][k] for e in entries] for k, op in enumerate(PRIMITIVES)}
            panels.append((f"{group} {_edge_label(edge, nodes)}", series))
    colors = {op: f"C{k}" for k, op in enumerate(PRIMITIVES)}
    colors.update({f"level {lv}": f"C{len(PRIMITIVES) + lv}" for lv in range(4)})
    for group in entries[0].get("levels", {}) or {}:
        table = entries[0]["levels"][group]
        for layer in range(len(table)):
            series = {
                f"level {lv}": [e["levels"][group][layer][lv] for e in entries] for lv in range(len(table[layer]))
            }
            panels.append((f"{group} layer {layer}: level share", series))
    ncols = min(7, len(panels))
    nrows = -(-len(panels) // ncols)
    width, height = 2.6 * ncols, 2.1 * nrows
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False)
    # fixed margins in inches (small fixed fonts): tight_layout measured every panel's text, ~2 s for 30 panels
    fig.subplots_adjust(
        left=0.3 / width, right=1 - 0.1 / width, bottom=0.55 / height, top=1 - 0.6 / height, wspace=0.25, hspace=0.4
    )
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    for ax, (name, series) in zip(axes.flat, panels, strict=False):
        for label, ys in series.items():
            ax.plot(epochs, ys, marker="." if len(epochs) < 30 else None, label=label, color=colors.get(label))
        ax.set_title(name, fontsize=7)
        ax.set_ylim(0, 1)
        ax.tick_params(labelsize=6)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    handles: list[Any] = []
    labels: list[str] = []
    for ax in axes.flat[: len(panels)]:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=False):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 7), fontsize=7)
    fig.suptitle(f"{title}: architecture weights over epochs", fontsize=9, y=1 - 0.12 / height)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)


def plot_scores(scores: Sequence[float], path: Path, title: str) -> None:
    """SNASNet: histogram of the candidates' scores and the best score so far."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    finite = [s for s in scores if math.isfinite(s)]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.2))
    if finite:
        ax1.hist(finite, bins=min(50, max(5, len(finite) // 10)))
    ax1.set_xlabel("score log|det K|")
    ax1.set_ylabel("candidates")
    best, running = -math.inf, []
    for s in scores:
        best = max(best, s) if math.isfinite(s) else best
        running.append(best if math.isfinite(best) else float("nan"))
    ax2.plot(range(1, len(running) + 1), running)
    ax2.set_xlabel("candidates scored")
    ax2.set_ylabel("best score")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
