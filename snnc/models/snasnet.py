"""SNASNet (Kim et al., ECCV 2022): genotype and network with backward connections.

Cell encoding (the authors' public code, ``--cnt_mat``): a 4x4 connection
matrix written as four rows of four digits, e.g. ``'0303 0030 2002 0200'``.
Node 0 is the cell input, node 3 the cell output. Entry ``M[i][j]`` is the
operation on the edge from node ``i`` to node ``j``:

* ``i < j`` (upper triangle): a **forward** edge, ``node_j[t] += op(h_i[t])``.
* ``i > j`` (lower triangle): a **backward** edge, ``node_j[t] += op(h_i[t-1])``;
  its contribution is computed at the end of step ``t-1`` and is zero at
  ``t = 0`` (the authors' ``last_xin / last_x1 / last_x2``).
* the diagonal must be 0; a pair may not have both a forward and a backward edge.

Op codes: 0 none, 1 identity, 2 LIF-conv1x1-BN, 3 LIF-conv3x3-BN,
4 avgpool 3x3 (stride 1, padding 1). Each conv edge owns its own LIF neuron.

Node values at step ``t`` (``fb_l`` = the backward contributions to node ``l``
computed at ``t-1``)::

    h_0 = x_in + fb_0
    h_j = sum_{i<j, M[i][j]>0} op_ij(h_i) + fb_j        (j = 1, 2)
    h_3 = sum_{i<3, M[i][3]>0} op_i3(h_i)               (cell output)
    fb_l <- sum_{m>l, M[m][l]>0} op_ml(h_m)              (state for t+1)

Skeleton (authors' ``model_snn.py``; the paper's prose says
"Conv-BN-LIF + AvgPool(2)" for the reduction, the code is pre-activation):
stem ConvBN(C_in, C, 3) -> cell(C) -> BN -> LIF -> ConvBN(C, 2C, 3) -> AvgPool(2)
-> cell(2C) -> BN -> LIF -> AvgPool(p) -> flatten -> Dropout(0.5, one mask for
all steps) -> Linear(F, 1024, no bias) -> LIF -> Linear(1024, classes * vote)
-> voting (mean of each class's ``vote`` outputs) = logits for this step.
The two BatchNorms that follow no convolution are :func:`channel_bn` layers
(a frozen identity depthwise 1x1 conv + BN) so that ``fold_bn`` can merge them.

Neuron: SNASNet's SpikingJelly ``LIFNode(tau=4/3, v_threshold=1, v_reset=0)``
charges ``H = (1 - 1/tau_m) v + x / tau_m`` and hard-resets to 0. With
``u = tau_m * H`` this is exactly snnc's LIF ``u' = decay u (1 - y) + x`` with
``decay = 1 - 1/tau_m = 0.25`` and ``vth = tau_m * theta = 4/3``: the 1/tau_m
input scale moves into the threshold, so no weight changes (see
:func:`snasnet_neuron`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, cast

import torch
from torch import Tensor, nn

from snnc.errors import PathLike, SnncError, list_items, short_repr
from snnc.models.base import SpikingNet, StepContext
from snnc.models.layers import ConvBN
from snnc.models.limits import check_limit
from snnc.models.size import check_size
from snnc.neurons import Neuron, NeuronSpec
from snnc.serial import dataclass_from_dict

__all__ = [
    "NUM_NODES",
    "OP_NAMES",
    "SNASNET_NEURON",
    "SNASNET_PRESETS",
    "CellOp",
    "SNASNetCell",
    "SNASNetGenotype",
    "SNASNet",
    "backward_edges",
    "build_snasnet",
    "channel_bn",
    "format_cell",
    "forward_edges",
    "parse_cell",
    "snasnet_neuron",
]

#: Nodes per cell (input, two intermediate nodes, output).
NUM_NODES = 4

#: Op code -> name (SNASNet / NAS-Bench-201 operation set).
OP_NAMES: dict[int, str] = {0: "none", 1: "identity", 2: "conv1x1", 3: "conv3x3", 4: "avgpool3x3"}

Matrix = tuple[tuple[int, ...], ...]
Edge = tuple[int, int, int]  # (source node, destination node, op code)


def snasnet_neuron(tau_m: float = 4.0 / 3.0, theta: float = 1.0, b: float = 3.0) -> NeuronSpec:
    """snnc :class:`NeuronSpec` equivalent to SNASNet's SpikingJelly LIF.

    SpikingJelly (``decay_input=True``, ``v_reset=0``):
    ``H[t] = (1 - 1/tau_m) H[t-1] (1 - s[t-1]) + x[t] / tau_m``,
    ``s[t] = H[t] >= theta``. Multiplying by ``tau_m`` gives snnc's LIF on
    ``u = tau_m H`` with decay factor ``decay = 1 - 1/tau_m`` and threshold
    ``vth = tau_m * theta`` (spikes identical except exactly at threshold:
    snnc fires on ``u > vth``, SpikingJelly on ``>=``).

    Surrogate: snnc's ``arctan`` with ``b = 3`` is SpikingJelly's
    ``ATan(alpha=1)`` in ``H`` units (unit area, ``1/2 / (1 + (pi (H-1)/2)^2)``);
    SNASNet uses ``ATan(alpha=2)`` (peak 1, half the width), which snnc's
    threshold-normalised family cannot express at ``theta = 1``; ``b = 6``
    would match its peak instead of its area.

    Args:
        tau_m: membrane time constant (> 1).
        theta: firing threshold (> 0).
        b: arctan surrogate temperature.

    Raises:
        SnncError: ``tau_m <= 1`` or invalid threshold / temperature.
    """
    if not (isinstance(tau_m, (int, float)) and math.isfinite(tau_m) and tau_m >= 1.0):
        raise SnncError(f"snasnet neuron: tau_m must be >= 1, got {tau_m!r}")
    return NeuronSpec(type="lif", decay=1.0 - 1.0 / tau_m, vth=tau_m * theta, surrogate="arctan", b=b)


#: SNASNet's LIF: tau_m = 4/3, theta = 1 (snnc decay 0.25, vth 4/3), arctan surrogate.
SNASNET_NEURON: NeuronSpec = snasnet_neuron()


def parse_cell(cell: str | Sequence[Any], path: PathLike | None = None) -> Matrix:
    """Parse and validate a SNASNet connection matrix.

    Args:
        cell: ``'0303 0030 2002 0200'`` (rows separated by spaces, commas or
            semicolons; ``'0303003020020200'`` also accepted), a list of four
            4-digit strings, or a 4x4 nested list of ints.
        path: file the genotype came from, named in error messages.

    Returns:
        The 4x4 matrix as a tuple of int tuples.

    Raises:
        SnncError: wrong shape, non-digit entries, unknown op codes, a
            self-connection, or both a forward and a backward edge between the
            same pair of nodes.
    """
    rows: list[Any]
    if isinstance(cell, str):
        rows = [r for r in re.split(r"[\s,;]+", cell.strip()) if r]
        if len(rows) == 1 and len(rows[0]) == NUM_NODES * NUM_NODES:
            rows = [rows[0][k : k + NUM_NODES] for k in range(0, NUM_NODES * NUM_NODES, NUM_NODES)]
    elif isinstance(cell, Sequence):
        rows = list(cell)
    else:
        raise SnncError(f"snasnet cell must be a string like '0303 0030 2002 0200', got {type(cell).__name__}", path)
    shown = short_repr(cell)
    if len(rows) != NUM_NODES:
        raise SnncError(
            f"snasnet cell {shown}: expected {NUM_NODES} rows of {NUM_NODES} op codes "
            f"like '0303 0030 2002 0200', got {len(rows)} row(s)",
            path,
        )
    matrix: list[tuple[int, ...]] = []
    for r, row in enumerate(rows):
        if isinstance(row, str):
            entries: list[Any] = list(row)
        elif isinstance(row, Sequence):
            entries = list(row)
        else:
            raise SnncError(f"snasnet cell {shown}: row {r} is not a string or list", path)
        if len(entries) != NUM_NODES:
            raise SnncError(f"snasnet cell {shown}: row {r} has {len(entries)} entries, expected {NUM_NODES}", path)
        values = []
        for c, e in enumerate(entries):
            if isinstance(e, bool) or not (isinstance(e, int) or (isinstance(e, str) and e.isdigit())):
                raise SnncError(
                    f"snasnet cell {shown}: entry at row {r}, column {c} is {short_repr(e)}, not an op code", path
                )
            v = int(e)
            if v not in OP_NAMES:
                raise SnncError(
                    f"snasnet cell {shown}: unknown op code {v} at row {r}, column {c} "
                    f"(expected 0 none, 1 identity, 2 conv1x1, 3 conv3x3, 4 avgpool)",
                    path,
                )
            values.append(v)
        matrix.append(tuple(values))
    for n in range(NUM_NODES):
        if matrix[n][n] != 0:
            raise SnncError(f"snasnet cell {shown}: self-connection at node {n} (the diagonal must be 0)", path)
    for i in range(NUM_NODES):
        for j in range(i + 1, NUM_NODES):
            if matrix[i][j] and matrix[j][i]:
                raise SnncError(
                    f"snasnet cell {shown}: nodes {i} and {j} have both a forward (op {matrix[i][j]}) "
                    f"and a backward (op {matrix[j][i]}) connection; SNASNet allows at most one",
                    path,
                )
    return tuple(matrix)


def format_cell(matrix: Matrix) -> str:
    """Canonical string form ``'0303 0030 2002 0200'`` of a matrix."""
    return " ".join("".join(str(v) for v in row) for row in matrix)


def forward_edges(matrix: Matrix) -> list[Edge]:
    """Forward edges ``(i, j, op)``, ``i < j``, op != 0, in the authors' order (by destination, then source)."""
    return [(i, j, matrix[i][j]) for j in range(1, NUM_NODES) for i in range(j) if matrix[i][j]]


def backward_edges(matrix: Matrix) -> list[Edge]:
    """Backward edges ``(i, j, op)``, ``i > j``, op != 0, in the authors' order (by destination, then source)."""
    return [(i, j, matrix[i][j]) for j in range(NUM_NODES - 1) for i in range(j + 1, NUM_NODES) if matrix[i][j]]


#: Integer fields and the bound of :mod:`snnc.models.limits` that caps each.
_INT_FIELDS: dict[str, str] = {
    "time_steps": "MAX_TIME_STEPS",
    "channels": "MAX_CHANNELS",
    "in_channels": "MAX_CHANNELS",
    "image_size": "MAX_IMAGE_SIZE",
    "num_classes": "MAX_CLASSES",
    "vote": "MAX_CHANNELS",
    "fc_hidden": "MAX_CHANNELS",
    "final_pool": "MAX_STRIDE",
    "stem_stride": "MAX_STRIDE",
}


@dataclass(frozen=True)
class SNASNetGenotype:
    """Everything needed to build a SNASNet network (JSON via ``to_dict``/``from_dict``).

    Attributes:
        family: always ``'snasnet'``.
        cell: connection matrix in canonical form ``'0303 0030 2002 0200'``
            (any form accepted by :func:`parse_cell` is normalised).
        time_steps: time steps T of direct coding (paper: 5 or 8); JSON written by
            snnc 0.1 spells it ``timesteps``, which still reads.
        channels: width C of the first cell; the reduction doubles it.
        in_channels: input image channels (3 for CIFAR, 1 for digits).
        image_size: input height = width (32 for CIFAR, 8 for sklearn digits).
        num_classes: classes of the voting read-out.
        vote: output neurons per class averaged by the voting layer
            (authors: 10 for CIFAR-10, 5 for CIFAR-100).
        fc_hidden: width of the spiking hidden FC layer (1024).
        final_pool: kernel/stride of the average pooling before the classifier
            (paper: 2; the authors' released CIFAR-10 checkpoint: 4).
        stem_stride: stride of the encoder conv (2 for TinyImageNet).
        dropout: dropout probability before the classifier (0.5).
        neuron: spec of every neuron layer (:data:`SNASNET_NEURON`).
        neuron_layers: per-layer replacement specs keyed by the names of
            ``model.neurons()`` (HNS / TPS); names are checked at build time.
    """

    cell: str = "0303 0030 2002 0200"
    time_steps: int = 5
    channels: int = 128
    in_channels: int = 3
    image_size: int = 32
    num_classes: int = 10
    vote: int = 10
    fc_hidden: int = 1024
    final_pool: int = 2
    stem_stride: int = 1
    dropout: float = 0.5
    neuron: NeuronSpec = field(default_factory=lambda: SNASNET_NEURON)
    neuron_layers: dict[str, NeuronSpec] = field(default_factory=dict, hash=False)
    family: str = "snasnet"

    def __post_init__(self) -> None:
        self._validate()

    def _validate(self) -> None:
        """Check and normalise every field (frozen-safe); ``from_dict`` adds the file name."""
        path = None
        if self.family != "snasnet":
            raise SnncError(f"snasnet genotype: family must be 'snasnet', got {self.family!r}", path)
        object.__setattr__(self, "cell", format_cell(parse_cell(self.cell, path)))
        for name, limit in _INT_FIELDS.items():
            v = getattr(self, name)
            if isinstance(v, float) and v.is_integer():
                v = int(v)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise SnncError(f"snasnet genotype: {name} must be a positive integer, got {short_repr(v)}", path)
            object.__setattr__(self, name, check_limit(v, limit, f"snasnet genotype: {name}"))
        d = self.dropout
        if isinstance(d, bool) or not isinstance(d, (int, float)) or not 0.0 <= d < 1.0:
            raise SnncError(f"snasnet genotype: dropout must be in [0, 1), got {short_repr(d)}", path)
        object.__setattr__(self, "dropout", float(d))
        object.__setattr__(self, "neuron", NeuronSpec.coerce(self.neuron, "snasnet genotype: neuron", path))
        layers = self.neuron_layers
        if not isinstance(layers, Mapping):
            raise SnncError(
                f"snasnet genotype: neuron_layers must map neuron layer names to specs, got {type(layers).__name__}",
                path,
            )
        coerced = {}
        for name, spec in layers.items():
            if not isinstance(name, str) or not name:
                raise SnncError(
                    f"snasnet genotype: neuron_layers names must be non-empty strings, got {short_repr(name)}", path
                )
            coerced[name] = NeuronSpec.coerce(spec, f"snasnet genotype: neuron_layers[{short_repr(name)}]", path)
        object.__setattr__(self, "neuron_layers", coerced)
        shrink = self.stem_stride * 2 * self.final_pool
        if self.image_size % shrink:
            raise SnncError(
                f"snasnet genotype: image_size {self.image_size} must be divisible by "
                f"stem_stride * 2 * final_pool = {shrink}",
                path,
            )
        check_size(self, what="snasnet genotype")

    @property
    def matrix(self) -> Matrix:
        """The 4x4 connection matrix."""
        return parse_cell(self.cell)

    @property
    def forward_edges(self) -> list[Edge]:
        """Forward edges ``(i, j, op)`` (see :func:`forward_edges`)."""
        return forward_edges(self.matrix)

    @property
    def backward_edges(self) -> list[Edge]:
        """Backward (t-1) edges ``(i, j, op)`` (see :func:`backward_edges`)."""
        return backward_edges(self.matrix)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict, ``family`` first, specs as nested dicts."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["neuron"] = self.neuron.to_dict()
        d["neuron_layers"] = {k: v.to_dict() for k, v in self.neuron_layers.items()}
        return {"family": d.pop("family"), **d}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], path: PathLike | None = None) -> SNASNetGenotype:
        """Build a genotype from a dict (missing keys take their defaults).

        Raises:
            SnncError: not a mapping, unknown key, wrong family, bad cell or field value.
        """
        if isinstance(d, Mapping) and "timesteps" in d:  # snnc 0.1 spelling
            if "time_steps" in d:
                raise SnncError("snasnet genotype: give time_steps or its old spelling timesteps, not both", path)
            d = {("time_steps" if k == "timesteps" else k): v for k, v in d.items()}
        return dataclass_from_dict(cls, d, "snasnet genotype", path)


#: Published SNASNet-Bw cells (authors' README) with the paper's settings:
#: CIFAR-10 C = 256, CIFAR-100 C = 128 (Sec. 5.1), T = 5, AvgPool(2), FC 1024.
SNASNET_PRESETS: dict[str, SNASNetGenotype] = {
    "snasnet-cifar10": SNASNetGenotype(cell="0303 0030 2002 0200", time_steps=5, channels=256, num_classes=10, vote=10),
    "snasnet-cifar100": SNASNetGenotype(
        cell="0302 0030 3003 0000", time_steps=5, channels=128, num_classes=100, vote=5
    ),
}


def channel_bn(channels: int) -> ConvBN:
    """A stand-alone ``BatchNorm2d`` as a foldable :class:`ConvBN`.

    SNASNet normalises the (real-valued) cell output before a LIF with a
    BatchNorm that follows no convolution. snnc expresses it as a depthwise
    1x1 convolution fixed to the identity (weights 1, ``requires_grad=False``)
    followed by the BatchNorm, so the forward pass is exactly ``BN(x)`` and
    :func:`snnc.models.fold.fold_bn` turns it into a per-channel affine
    (depthwise 1x1 conv with bias). It adds ``channels`` frozen parameters.
    """
    layer = ConvBN(channels, channels, 1, groups=channels, padding=0)
    with torch.no_grad():
        layer.conv.weight.fill_(1.0)
    layer.conv.weight.requires_grad_(False)
    return layer


class CellOp(nn.Module):
    """One edge operation of a SNASNet cell (codes 1-4; code 0 is not built)."""

    def __init__(self, op: int, channels: int, spec: NeuronSpec) -> None:
        super().__init__()
        if op not in (1, 2, 3, 4):
            raise ValueError(f"CellOp needs op code 1-4, got {op}")
        self.op = op
        self.neuron: Neuron | None = None
        self.conv: ConvBN | None = None
        self.pool: nn.AvgPool2d | None = None
        if op in (2, 3):
            self.neuron = Neuron(spec)
            k = 1 if op == 2 else 3
            self.conv = ConvBN(channels, channels, k, padding=k // 2)
        elif op == 4:
            self.pool = nn.AvgPool2d(3, stride=1, padding=1)

    def step_with(self, x: Tensor, ctx: StepContext) -> Tensor:
        """Apply the op to one step's node value (the edge's neuron runs through ``ctx``)."""
        if self.neuron is not None:
            assert self.conv is not None
            y: Tensor = self.conv(ctx(self.neuron, x))
            return y
        if self.pool is not None:
            pooled: Tensor = self.pool(x)
            return pooled
        return x


class SNASNetCell(nn.Module):
    """A SNASNet cell with forward and backward (t-1) edges (see module docstring).

    The edges' neurons are stepped through the :class:`StepContext`; the
    pending backward contributions ``fb_l`` (one tensor per node ``l`` in
    :attr:`feedback_nodes`, ascending) are passed in and out explicitly (the
    network carries them as named state).
    """

    def __init__(self, matrix: Matrix, channels: int, spec: NeuronSpec) -> None:
        super().__init__()
        self.matrix = matrix
        self.fwd_edges = forward_edges(matrix)
        self.bwd_edges = backward_edges(matrix)
        self.fwd = nn.ModuleDict({f"{i}_{j}": CellOp(op, channels, spec) for i, j, op in self.fwd_edges})
        self.bwd = nn.ModuleDict({f"{i}_{j}": CellOp(op, channels, spec) for i, j, op in self.bwd_edges})
        self.feedback_nodes: list[int] = sorted({j for _, j, _ in self.bwd_edges})

    def step_with(
        self, x_in: Tensor, ctx: StepContext, feedback: Sequence[Tensor]
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """One step: ``(cell input, ctx, fb from t-1) -> (cell output h_3, fb for t+1)``."""
        fb = dict(zip(self.feedback_nodes, feedback, strict=True))
        h: dict[int, Tensor] = {0: x_in + fb[0] if 0 in fb else x_in}
        for j in range(1, NUM_NODES):
            total: Tensor | None = None
            for i, jj, _ in self.fwd_edges:
                if jj == j:
                    y = cast(CellOp, self.fwd[f"{i}_{j}"]).step_with(h[i], ctx)
                    total = y if total is None else total + y
            if total is None:
                total = torch.zeros_like(x_in)
            h[j] = total + fb[j] if j in fb else total
        new_fb: dict[int, Tensor] = {}
        for i, j, _ in self.bwd_edges:
            y = cast(CellOp, self.bwd[f"{i}_{j}"]).step_with(h[i], ctx)
            new_fb[j] = y if j not in new_fb else new_fb[j] + y
        return h[NUM_NODES - 1], tuple(new_fb[n] for n in self.feedback_nodes)


class SNASNet(SpikingNet):
    """SNASNet classification network built from a :class:`SNASNetGenotype`.

    ``step(x_t, state)``: ``x_t`` (B, in_channels, S, S) image (direct coding),
    returns voting logits (B, num_classes). ``forward(x_seq)`` with ``x_seq``
    (T, B, in_channels, S, S) returns (T, B, num_classes); the prediction is
    the mean over T.

    State layout (flat tuple): every neuron layer's state in :meth:`neurons`
    order (as for every :class:`SpikingNet`), then the *carry*, SNASNet's
    non-neuron state: ``cell1``'s pending backward contributions (one tensor
    per node in ``cell1.feedback_nodes``), the same for ``cell2``, and, if
    ``dropout > 0``, the dropout code (B, F): 0 = no mask drawn yet,
    1 = dropped, 2 = kept. The mask is drawn at the first training step and
    reused for the whole sequence (SpikingJelly's ``layer.Dropout``); in eval
    mode dropout is the identity and the code passes through unchanged.
    The carry is declared with :meth:`~snnc.models.base.SpikingNet.register_carry`
    and stepped through the :class:`~snnc.models.base.StepContext` like neuron
    state; :meth:`split_state` names it ``cell1.feedback.<node>``,
    ``cell2.feedback.<node>`` and ``dropout.code``.

    The encoder conv runs at every step on the same image (the authors
    compute it once; outputs are identical, BN running statistics in training
    see the batch T times).
    """

    def __init__(self, genotype: SNASNetGenotype) -> None:
        super().__init__()
        g = genotype
        self.genotype = g
        self.time_steps = g.time_steps
        c1, c2 = g.channels, 2 * g.channels
        self.size1 = g.image_size // g.stem_stride
        self.size2 = self.size1 // 2
        self.size3 = self.size2 // g.final_pool
        self.features = c2 * self.size3 * self.size3
        matrix = g.matrix
        spec = g.neuron
        self.stem = ConvBN(g.in_channels, c1, 3, stride=g.stem_stride, padding=1)
        self.cell1 = SNASNetCell(matrix, c1, spec)
        self.reduce_bn = channel_bn(c1)
        self.reduce_neuron = Neuron(spec)
        self.reduce_conv = ConvBN(c1, c2, 3, padding=1)
        self.reduce_pool = nn.AvgPool2d(2, 2)
        self.cell2 = SNASNetCell(matrix, c2, spec)
        self.final_bn = channel_bn(c2)
        self.final_neuron = Neuron(spec)
        self.final_pool = nn.AvgPool2d(g.final_pool, g.final_pool)
        self.fc1 = nn.Linear(self.features, g.fc_hidden, bias=False)
        self.fc_neuron = Neuron(spec)
        self.fc2 = nn.Linear(g.fc_hidden, g.num_classes * g.vote, bias=True)
        self._init_weights()
        self.set_neuron_specs(g.neuron_layers)
        for cell in ("cell1", "cell2"):
            for node in getattr(self, cell).feedback_nodes:
                self.register_carry(f"{cell}.feedback.{node}")
        if g.dropout > 0:
            self.register_carry("dropout.code")

    def _init_weights(self) -> None:
        """The authors' initialisation: convs kaiming-uniform (a=2), BN (1, 0), linear N(0, 0.01), bias 0.

        The frozen identity convs of :func:`channel_bn` keep their weights of 1.
        """
        for m in self.modules():
            if isinstance(m, nn.Conv2d) and m.weight.requires_grad:
                nn.init.kaiming_uniform_(m.weight, a=2)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def check_input(self, x_t: Tensor) -> None:
        """Raise :class:`SnncError` unless ``x_t`` is (B, in_channels, image_size, image_size)."""
        g = self.genotype
        want = (g.in_channels, g.image_size, g.image_size)
        if x_t.dim() != 4 or tuple(x_t.shape[1:]) != want:
            raise SnncError(f"snasnet step input must be (B, {want[0]}, {want[1]}, {want[2]}), got {tuple(x_t.shape)}")

    def run(self, x_seq: Tensor, state: tuple[Tensor, ...] | None = None) -> tuple[Tensor, tuple[Tensor, ...]]:
        """Steps over ``x_seq`` (T, B, C, H, W): ``((T, B, num_classes), final state)``."""
        if x_seq.dim() != 5:
            raise SnncError(f"snasnet input sequence must be (T, B, C, H, W), got {tuple(x_seq.shape)}")
        return super().run(x_seq, state)

    def _dropout(self, z: Tensor, code: Tensor) -> tuple[Tensor, Tensor]:
        if not self.training:
            return z, code
        p = self.genotype.dropout
        fresh = 1.0 + torch.bernoulli(torch.full_like(z, 1.0 - p))
        code = torch.where(code > 0, code, fresh)
        return z * (code == 2).to(z.dtype) / (1.0 - p), code

    def step_with(self, x_t: Tensor, ctx: StepContext) -> Tensor:
        """One time step: image ``x_t`` -> voting logits (B, num_classes); neurons and carries through ``ctx``."""
        g = self.genotype

        def cell_step(name: str, cell: SNASNetCell, x: Tensor) -> Tensor:
            fb_in = [ctx.carry(f"{name}.feedback.{n}", x) for n in cell.feedback_nodes]
            out, fb_out = cell.step_with(x, ctx, fb_in)
            for n, value in zip(cell.feedback_nodes, fb_out, strict=True):
                ctx.put(f"{name}.feedback.{n}", value)
            return out

        x = cell_step("cell1", self.cell1, self.stem(x_t))
        x = ctx(self.reduce_neuron, self.reduce_bn(x))
        x = self.reduce_pool(self.reduce_conv(x))
        x = cell_step("cell2", self.cell2, x)
        x = ctx(self.final_neuron, self.final_bn(x))
        z = self.final_pool(x).flatten(1)
        if g.dropout > 0:
            z, code = self._dropout(z, ctx.carry("dropout.code", z))
            ctx.put("dropout.code", code)
        h = ctx(self.fc_neuron, self.fc1(z))
        votes: Tensor = self.fc2(h)
        return votes.view(x_t.shape[0], g.num_classes, g.vote).mean(dim=2)


def build_snasnet(genotype: SNASNetGenotype, **overrides: Any) -> SNASNet:
    """Build a SNASNet network; ``overrides`` replace genotype fields (e.g. ``image_size=8``).

    Raises:
        SnncError: unknown override name or an invalid resulting genotype.
    """
    if not isinstance(genotype, SNASNetGenotype):
        raise SnncError(f"build_snasnet needs a SNASNetGenotype, got {type(genotype).__name__}")
    known = {f.name for f in fields(SNASNetGenotype)} - {"family"}
    unknown = sorted(k for k in overrides if k not in known)
    if unknown:
        raise SnncError(
            f"snasnet: unknown override(s) {list_items(unknown, fmt=repr)} (expected {', '.join(sorted(known))})"
        )
    if overrides:
        genotype = replace(genotype, **overrides)
    return SNASNet(genotype)
