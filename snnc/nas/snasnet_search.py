"""SNASNet: training-free search by the sparsity-aware Hamming kernel (Kim et al., ECCV 2022; methods.md §7).

Candidates (:func:`sample_cell`, the authors' ``connection_matrix_gen`` and checks)
    A 4x4 matrix (node 0 = cell input, node 3 = output). For every pair
    ``i < j`` draw a forward op ``U`` and a backward op ``L`` uniformly from
    the codes 0..4 (none, identity, conv1x1, conv3x3, avgpool) and a fair coin:
    the pair gets ``M[i][j] = U`` (forward) or ``M[j][i] = L`` (backward, node
    ``j`` at ``t-1`` feeds node ``i`` at ``t``), never both. With
    ``backward=False`` only forward edges are drawn. Then the intermediate
    nodes 1 and 2 that are not on any path input -> output (following the
    edges in either time direction) are disconnected, and a candidate is
    accepted only with a direct input -> output edge ``M[0][3] != 0``
    (the authors' sanity checks; otherwise it is drawn again). An optional
    budget ``conv_edges`` keeps only cells with exactly that many conv edges
    (:func:`candidate_cells`): the summed score grows with the number of LIF
    layers (see Score), so a budget compares cells of equal size and cost.

Score (:func:`sah_kernel`, :class:`KernelCollector`, :func:`score_network`)
    Forward hooks on every :class:`~snnc.neurons.Neuron` of the untrained
    network (train mode, no gradients) see one layer's binary spikes at one
    time step: ``c`` (N samples x N_A neurons). With ``r_i`` the sparsity
    (fraction of zeros) of sample ``i`` and ``d_H`` the Hamming distance,
    ``d_SAH(i, j) = alpha / (r_i (1 - r_j) + (1 - r_i) r_j) * d_H(i, j)``
    (alpha = 0.5, eq. 9), ``K = N_A - d_SAH`` (eq. 4), summed over all layers
    and time steps, and ``s = log|det K|`` (eq. 5, ``slogdet``). Vectorised:
    ``d_H = n_i + n_j - 2 c c^T`` (``n`` = spikes per sample), one matrix
    product per hook call. Where the denominator is 0 (both patterns all
    zeros or both all ones) ``d_H`` is 0 as well and ``d_SAH`` is set to 0
    (the authors add 1e-3 to the denominator instead). ``reduce="mean"``
    divides K by the number of hook calls before the determinant, as the
    authors' code does; the paper's formula (the default) sums. The two
    differ by exactly ``N log(calls)``, so the summed score also grows with
    the number of LIF layers (conv edges) of a cell. The authors' code
    measures the firing rate instead of the sparsity; the denominator is
    symmetric under ``r -> 1 - r``, so the kernel is the same.

    The authors' code scores on 2 random batches of 256 drawn afresh per
    candidate, with the classifier's dropout active (train mode); see Search
    below for the fixed batches and dropout used here.

Search (:func:`run_snasnet_search`)
    ``candidates`` cells are drawn from one seeded generator; each is built
    at a small search width and scored on the same fixed digits batches
    (``repeat`` batches of ``batch_size``, mean score); the best score wins
    (the paper: best of 5000). Dropout is off while scoring (the score then
    depends on the cell and its initialisation only). The winner is written
    as a :class:`~snnc.models.snasnet.SNASNetGenotype` for 8x8 one-channel
    digits at the retrain width.

    Under ``torchrun`` / ``--nproc`` (:mod:`snnc.train.distributed`) the
    candidates are sharded: in rounds of ``world x`` :data:`ROUND_PER_RANK`
    candidates, rank ``r`` scores the ones with ``index % world == r`` and the
    entries are gathered in index order on every rank. A candidate's score
    depends only on its cell, the batches and its seed (``seed * 100003 +
    index``), not on the rank, so the log and the winner are those of one
    process. Rank 0 reads the state, prints and writes the files.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from snnc.errors import SnncError
from snnc.models.snasnet import NUM_NODES, SNASNetGenotype, build_snasnet, format_cell, parse_cell
from snnc.neurons import Neuron

__all__ = [
    "SAH_ALPHA",
    "KernelCollector",
    "SNASNetSearchConfig",
    "candidate_cells",
    "check_conv_edges",
    "conv_edge_count",
    "prune_cell",
    "run_snasnet_search",
    "sah_kernel",
    "sample_cell",
    "score_cell",
    "score_batches",
    "score_network",
]

#: alpha of eq. 9 (the paper: "similar sparsity scale in LIF neuron as a ReLU neuron").
SAH_ALPHA = 0.5
_N_OPS = 5
#: Candidates each rank scores between two gathers of a distributed search.
ROUND_PER_RANK = 4
Matrix = tuple[tuple[int, ...], ...]


# --------------------------------------------------------------------------- candidates
def _reach(matrix: np.ndarray) -> np.ndarray:
    """Transitive closure of the directed graph ``i -> j`` where ``M[i][j] != 0``."""
    reach = matrix != 0
    for k in range(NUM_NODES):
        reach = reach | (reach[:, k : k + 1] & reach[k : k + 1, :])
    return reach


def prune_cell(matrix: Sequence[Sequence[int]]) -> Matrix:
    """Disconnect nodes 1 and 2 unless they lie on a path input -> output (see module docstring)."""
    m = np.array(matrix, dtype=np.int64)
    reach = _reach(m)
    for node in (1, 2):
        if not (reach[0, node] and reach[node, NUM_NODES - 1]):
            m[node, :] = 0
            m[:, node] = 0
    return tuple(tuple(int(v) for v in row) for row in m)


def sample_cell(rng: np.random.Generator, backward: bool = True, max_tries: int = 10_000) -> Matrix:
    """One random SNASNet cell (see module docstring); always valid for :func:`parse_cell`."""
    upper = np.triu_indices(NUM_NODES, 1)
    for _ in range(max_tries):
        m = np.zeros((NUM_NODES, NUM_NODES), dtype=np.int64)
        fwd = rng.integers(0, _N_OPS, size=len(upper[0]))
        bwd = rng.integers(0, _N_OPS, size=len(upper[0]))
        forward = rng.integers(0, 2, size=len(upper[0])) == 1 if backward else np.ones(len(upper[0]), bool)
        for k, (i, j) in enumerate(zip(*upper, strict=False)):
            if forward[k]:
                m[i, j] = fwd[k]
            else:
                m[j, i] = bwd[k]
        cell = prune_cell(m.tolist())
        if cell[0][NUM_NODES - 1] != 0:
            return parse_cell([list(r) for r in cell])
    raise SnncError(f"no valid SNASNet cell in {max_tries} draws")


# --------------------------------------------------------------------------- kernel
def sah_kernel(patterns: Tensor, alpha: float = SAH_ALPHA) -> Tensor:
    """``N_A - d_SAH`` for binary ``patterns`` (N samples x N_A neurons), float64 (N x N)."""
    c = patterns.reshape(patterns.shape[0], -1).to(torch.float32)
    n_a = c.shape[1]
    # float32 counts are exact integers below 2**24 neurons; the small N x N part runs in float64
    ones = c.sum(1).to(torch.float64)
    gram = (c @ c.T).to(torch.float64)
    d_h = ones[:, None] + ones[None, :] - 2.0 * gram
    r = 1.0 - ones / n_a
    denom = r[:, None] * (1.0 - r[None, :]) + (1.0 - r[:, None]) * r[None, :]
    d = torch.where(denom > 0, alpha * d_h / denom.clamp_min(1e-300), torch.zeros_like(d_h))
    return n_a - d


class KernelCollector:
    """Forward hooks on every :class:`Neuron` of a network that accumulate the SAH kernel.

    Use as a context manager around the forward pass; :attr:`kernel` is the
    sum over hook calls (layers x time steps), :attr:`calls` their number.
    """

    def __init__(self, model: nn.Module, alpha: float = SAH_ALPHA) -> None:
        self.model = model
        self.alpha = alpha
        self.kernel: Tensor | None = None
        self.calls = 0
        self._handles: list[Any] = []

    def _hook(self, module: nn.Module, inputs: Any, output: Any) -> None:
        spikes = output[0] if isinstance(output, tuple) else output
        k = sah_kernel((spikes > 0).reshape(spikes.shape[0], -1), self.alpha)
        self.kernel = k if self.kernel is None else self.kernel + k
        self.calls += 1

    def __enter__(self) -> KernelCollector:
        self._handles = [m.register_forward_hook(self._hook) for m in self.model.modules() if isinstance(m, Neuron)]
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []


def _logdet(kernel: Tensor) -> float:
    sign, logabsdet = torch.linalg.slogdet(kernel)
    return float(logabsdet) if float(sign) != 0 and math.isfinite(float(logabsdet)) else -math.inf


@torch.no_grad()
def score_network(model: nn.Module, x_seq: Tensor, reduce: str = "sum", alpha: float = SAH_ALPHA) -> float:
    """``log|det K|`` of ``model`` on ``x_seq`` (T, N, ...) (see module docstring)."""
    if reduce not in ("sum", "mean"):
        raise SnncError(f"kernel reduce must be 'sum' or 'mean', got {reduce!r}")
    with KernelCollector(model, alpha) as col:
        model(x_seq)
    if col.kernel is None:
        return -math.inf
    k = col.kernel / col.calls if reduce == "mean" else col.kernel
    return _logdet(k)


def score_cell(
    cell: Any, batches: Sequence[Tensor], genotype: SNASNetGenotype, reduce: str = "sum", seed: int = 0
) -> float:
    """Mean score of the untrained SNASNet with ``cell`` over the image ``batches`` (N, C, S, S).

    The network is ``genotype`` with the cell replaced and dropout off, initialised
    from ``seed``, in train mode (BatchNorm on batch statistics, like the authors).
    """
    with torch.random.fork_rng(devices=[]):  # the caller's global RNG stays untouched
        torch.manual_seed(seed)
        model = build_snasnet(
            genotype, cell=format_cell(parse_cell(cell)) if not isinstance(cell, str) else cell, dropout=0.0
        )
    model.train()
    t = genotype.time_steps
    scores = [score_network(model, images.unsqueeze(0).expand(t, *images.shape), reduce) for images in batches]
    return float(np.mean(scores)) if all(math.isfinite(s) for s in scores) else -math.inf


# --------------------------------------------------------------------------- search driver
class SNASNetSearchConfig(Mapping[str, Any]):
    """Read-only mapping configuration of an SNASNet search (``dict(cfg)`` is stored in the state).

    Immutable: :meth:`resolve` builds a new one; nothing can change a config after it is validated.
    """

    DEFAULTS: ClassVar[dict[str, Any]] = {
        "task": "cls",
        "data": "digits",
        "candidates": 5000,
        "batch_size": 64,
        "repeat": 1,
        "time_steps": 5,
        "width": 16,
        "fc_hidden": 128,
        "retrain_width": 64,
        "backward": True,
        "reduce": "sum",
        "seed": 0,
        "conv_edges": None,
    }

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values: dict[str, Any] = dict(values)

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"SNASNetSearchConfig({self._values!r})"

    @classmethod
    def resolve(cls, given: Mapping[str, Any], stored: Mapping[str, Any] | None = None) -> SNASNetSearchConfig:
        """Defaults + given (fresh) or stored + given (resume; every given value must match, except candidates)."""
        unknown = sorted(k for k in given if k not in cls.DEFAULTS)
        if unknown:
            raise SnncError(
                f"option(s) {', '.join('--' + k.replace('_', '-') for k in unknown)} do not apply to --method snasnet"
            )
        if stored is not None:
            conflicts = [
                f"--{k.replace('_', '-')} {v!r} (search state has {stored.get(k)!r})"
                for k, v in given.items()
                if k != "candidates" and stored.get(k) != v
            ]
            if conflicts:
                raise SnncError(
                    "--resume: options differ from the stored search: "
                    + "; ".join(conflicts)
                    + " (omit them to use the stored values, or start over with --force)"
                )
            cfg = cls({**stored, **({"candidates": given["candidates"]} if "candidates" in given else {})})
        else:
            cfg = cls({**cls.DEFAULTS, **given})
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Raise :class:`SnncError` on invalid values."""
        if self["task"] != "cls" or self["data"] != "digits":
            raise SnncError("--method snasnet searches classification cells: use --task cls --data digits")
        for key in ("candidates", "batch_size", "repeat", "time_steps", "width", "fc_hidden", "retrain_width"):
            if int(self[key]) < 1:
                raise SnncError(f"--{key.replace('_', '-')} must be >= 1, got {self[key]}")
        if self["batch_size"] < 2:
            raise SnncError("--batch-size must be >= 2 for a kernel between samples")
        if self.get("conv_edges") is not None:
            check_conv_edges(self["conv_edges"])
        if self["reduce"] not in ("sum", "mean"):
            raise SnncError(f"kernel reduce must be 'sum' or 'mean', got {self['reduce']!r}")

    def search_genotype(self) -> SNASNetGenotype:
        """The small network every candidate is scored in (8x8 one-channel digits)."""
        return SNASNetGenotype(
            time_steps=self["time_steps"],
            channels=self["width"],
            in_channels=1,
            image_size=8,
            num_classes=10,
            vote=10,
            fc_hidden=self["fc_hidden"],
            final_pool=2,
        )

    def output_genotype(self, cell: str) -> SNASNetGenotype:
        """The winner for retraining on digits (retrain width, the paper's FC 1024)."""
        return SNASNetGenotype(
            cell=cell,
            time_steps=self["time_steps"],
            channels=self["retrain_width"],
            in_channels=1,
            image_size=8,
            num_classes=10,
            vote=10,
            final_pool=2,
        )


def conv_edge_count(cell: Any) -> int:
    """Conv edges (op 2 or 3, forward and backward) of a cell; each owns one LIF layer."""
    return sum(op in (2, 3) for row in parse_cell(cell) for op in row)


def check_conv_edges(edges: Any) -> None:
    """Raise :class:`SnncError` unless ``edges`` is a conv-edge budget a cell can have (0 .. node pairs)."""
    pairs = NUM_NODES * (NUM_NODES - 1) // 2
    if isinstance(edges, bool) or not isinstance(edges, int) or not 0 <= edges <= pairs:
        raise SnncError(f"--conv-edges must be in 0..{pairs} (one edge per node pair), got {edges!r}")


def candidate_cells(n: int, seed: int, backward: bool = True, conv_edges: int | None = None) -> list[str]:
    """The first ``n`` candidates of the search with ``seed`` (the same list on every call).

    ``conv_edges`` keeps only cells with exactly that many conv edges (a
    compute budget: the cell's LIF layers and synaptic operations), drawing
    from the same generator until ``n`` are found.

    Raises:
        SnncError: ``conv_edges`` outside 0..6 (a cell has 6 node pairs), or too rare to fill ``n``.
    """
    rng = np.random.default_rng(seed)
    if conv_edges is None:
        return [format_cell(sample_cell(rng, backward)) for _ in range(n)]
    check_conv_edges(conv_edges)
    cells: list[str] = []
    for _ in range(20_000 * max(n, 1)):
        if len(cells) == n:
            break
        cell = format_cell(sample_cell(rng, backward))
        if conv_edge_count(cell) == conv_edges:
            cells.append(cell)
    if len(cells) < n:
        raise SnncError(
            f"only {len(cells)} of {n} random cells have exactly {conv_edges} conv edges; choose another --conv-edges"
        )
    return cells


def score_batches(cfg: Mapping[str, Any], device: torch.device) -> list[Tensor]:
    """The fixed digits batches every candidate is scored on (from the search part of the split)."""
    from snnc.data.images import digits_arrays
    from snnc.nas.tasks import digits_split

    images, labels = digits_arrays()
    split = digits_split(labels)
    pool = np.concatenate([split["A"], split["B"]])
    rng = np.random.default_rng(cfg["seed"] + 1)
    need = cfg["batch_size"] * cfg["repeat"]
    if need > len(pool):
        raise SnncError(f"--batch-size x repeat = {need} exceeds the {len(pool)} digits available")
    chosen = rng.choice(pool, size=need, replace=False)
    x = torch.from_numpy(images[chosen]).to(device)
    return list(x.split(cfg["batch_size"]))


def run_snasnet_search(
    given: Mapping[str, Any],
    out: Path,
    *,
    device: str = "cpu",
    resume: bool = False,
    force: bool = False,
    progress: bool = True,
    echo: Callable[[str], None] = print,
    stop_after: int | None = None,
    save_every_s: float = 20.0,
    plot: bool = True,
) -> dict[str, Any]:
    """Score random candidates and write the best (see module docstring).

    Writes ``out`` (the winner's genotype), ``OUT.search.jsonl`` (one line per
    candidate: index, cell, score, seconds), ``OUT.search.png`` (score
    histogram and best-so-far) and ``ARCH.search_state.pt`` (resumable; saved at
    least every ``save_every_s`` seconds and at the end). ``stop_after``
    scores at most that many candidates in this call (then returns unfinished);
    ``plot=False`` skips the PNG.
    """
    from snnc.models.genotype import save_genotype
    from snnc.nas.files import atomic_output, prepare_search_output, save_search_state
    from snnc.nas.report import plot_scores, write_jsonl
    from snnc.nas.spikedhs_search import STATE_VERSION, output_paths
    from snnc.train import distributed

    rank = distributed.current()
    main = rank.main
    if not main:
        echo, progress = (lambda _: None), False
    paths = output_paths(out)
    out = paths["out"]
    stored = distributed.broadcast_object(
        distributed.agree(
            lambda: prepare_search_output(paths, "snasnet", STATE_VERSION, force, resume) if main else None
        )
    )
    cfg = distributed.agree(lambda: SNASNetSearchConfig.resolve(given, stored["config"] if stored else None))
    dev = rank.device if rank.active else torch.device(device)
    cells = distributed.agree(
        lambda: candidate_cells(cfg["candidates"], cfg["seed"], cfg["backward"], cfg.get("conv_edges"))
    )
    batches = distributed.agree(lambda: score_batches(cfg, dev))
    net = cfg.search_genotype()
    log: list[dict[str, Any]] = list(stored["log"]) if stored else []
    seconds = float(stored.get("seconds", 0.0)) if stored else 0.0

    def save() -> None:
        if not main:
            return
        save_search_state(
            {
                "state_version": STATE_VERSION,
                "method": "snasnet",
                "config": dict(cfg),
                "out": out.name,
                "log": log,
                "seconds": seconds,
            },
            paths["state"],
        )
        write_jsonl(paths["log"], log)

    def score(index: int) -> dict[str, Any]:
        t0 = time.perf_counter()
        s = score_cell(cells[index], batches, net, cfg["reduce"], seed=cfg["seed"] * 100_003 + index)
        return {"index": index, "cell": cells[index], "score": s, "seconds": time.perf_counter() - t0}

    from tqdm import tqdm

    bar = tqdm(total=len(cells), initial=len(log), desc="snasnet", unit="cand", disable=not progress, leave=False)
    last_save = time.perf_counter()
    ran = 0
    step = 1 if not rank.active else rank.world * ROUND_PER_RANK
    try:
        while len(log) < len(cells) and (stop_after is None or ran < stop_after):
            t0 = time.perf_counter()
            stop = min(len(cells), len(log) + (step if stop_after is None else min(step, stop_after - ran)))
            if rank.active:  # this rank's share of the round, then everyone's in index order
                mine = [score(i) for i in range(len(log), stop) if i % rank.world == rank.rank]
                entries = sorted(
                    (e for part in distributed.all_gather_objects(mine) for e in part), key=lambda e: e["index"]
                )
                seconds += time.perf_counter() - t0  # wall time: the ranks score at the same time
            else:
                entries = [score(i) for i in range(len(log), stop)]
                seconds += sum(e["seconds"] for e in entries)
            log.extend(entries)
            ran += len(entries)
            best = max(log, key=lambda e: e["score"])
            bar.update(len(entries))
            bar.set_postfix(best=f"{best['score']:.2f}")
            if time.perf_counter() - last_save > save_every_s:
                save()
                last_save = time.perf_counter()
    finally:
        bar.close()
        if ran:
            save()
    if not log:
        raise SnncError("no candidate was scored")
    best = max(log, key=lambda e: e["score"])
    finished = len(log) >= len(cells)
    rate = len(log) / seconds if seconds > 0 else float("nan")
    echo(
        f"scored {len(log)}/{len(cells)} candidates ({rate:.1f}/s); best {best['cell']} "
        f"score {best['score']:.3f} (candidate {best['index']})"
    )
    genotype = cfg.output_genotype(best["cell"])

    def write() -> None:
        if not main:
            return
        if plot:
            plot_scores([e["score"] for e in log], paths["plot"], f"SNASNet search, {len(log)} candidates")
        if finished:
            with atomic_output(out) as tmp:
                save_genotype(genotype, tmp)

    distributed.agree(write, "rank 0 writing the genotype")
    return {
        "genotype": genotype,
        "paths": paths,
        "finished": finished,
        "best": best,
        "scored": len(log),
        "seconds": seconds,
        "candidates_per_second": rate,
    }
