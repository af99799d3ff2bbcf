"""A network's size, computed arithmetically from its genotype, before anything is built.

:func:`estimate_size` mirrors the builders (:mod:`snnc.models.spikedhs`,
:mod:`snnc.models.stereo`, :mod:`snnc.models.snasnet`,
:mod:`snnc.models.sequential`) layer by layer with plain integer arithmetic:
parameters (weights, biases and BatchNorm scales/shifts), dense synaptic
operations (MACs, counted as :mod:`snnc.energy.ops` does: output elements x
fan-in) and activations (layer output elements) of one time step for one
example. Its cost is linear in the number of layers and edges, which the
per-field bounds of :mod:`snnc.models.limits` keep small, so it runs inside
genotype validation; :func:`check_size` refuses a genotype whose estimate
exceeds :data:`~snnc.models.limits.MAX_PARAMETERS`,
:data:`~snnc.models.limits.MAX_DENSE_OPS` or
:data:`~snnc.models.limits.MAX_ACTIVATIONS`.

The estimate counts every convolution, linear layer and BatchNorm of the built
network; it leaves out the parameter-free work (pooling, resampling, the cost
volume's concatenation), so it is a lower bound on activations and exact for
parameters (tests compare it with the built presets).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from snnc.errors import SnncError
from snnc.models.families import find, size_estimator
from snnc.models.limits import LIMITS, format_count

__all__ = ["SizeEstimate", "check_size", "check_step_shape", "default_spatial", "estimate_size"]


@dataclass(frozen=True)
class SizeEstimate:
    """Size of a network for one time step and one example.

    Attributes:
        parameters: weights, biases and BatchNorm affine parameters.
        dense_ops: synaptic operations if every input were active (MACs).
        activations: elements of all layer outputs.
    """

    parameters: int
    dense_ops: int
    activations: int


class _Tally:
    """Running sums while walking a network description."""

    def __init__(self) -> None:
        self.parameters = 0
        self.dense_ops = 0
        self.activations = 0

    def conv(
        self,
        c_in: int,
        c_out: int,
        k: int,
        dims: int,
        out_size: Sequence[int],
        bn: bool = True,
        bias: bool = False,
        copies: int = 1,
    ) -> None:
        """A (ConvBN) convolution producing ``c_out x out_size``, run ``copies`` times per step."""
        fan_in = c_in * k**dims
        self.parameters += fan_in * c_out + (2 * c_out if bn else 0) + (c_out if bias else 0)
        out = c_out * math.prod(out_size) * copies
        self.dense_ops += out * fan_in
        self.activations += out

    def linear(self, f_in: int, f_out: int, bias: bool = True) -> None:
        """A Linear layer."""
        self.parameters += f_in * f_out + (f_out if bias else 0)
        self.dense_ops += f_in * f_out
        self.activations += f_out

    def result(self) -> SizeEstimate:
        """The totals."""
        return SizeEstimate(self.parameters, self.dense_ops, self.activations)


def _level_size(size0: Sequence[int], level: int) -> tuple[int, ...]:
    size = tuple(int(s) for s in size0)
    for _ in range(level):
        size = tuple((s + 1) // 2 for s in size)
    return size


def _trellis(
    t: _Tally, cell: Any, path: Sequence[int], fm: int, c_pp: int, c_p: int, size0: Sequence[int], copies: int = 1
) -> int:
    """Cells of a SpikeDHS trellis (cells.Trellis); returns the output channels."""
    dims = cell.dims
    for level in path:
        c_node = fm * 2**level
        size = _level_size(size0, level)
        inputs = {0: c_pp, 1: c_p}
        for edge in cell.edges:
            c_in = inputs.get(edge.src, c_node)
            if edge.op != "skip_connect":
                t.conv(c_in, c_node, 3, dims, size, copies=copies)
            elif c_in != c_node:
                t.conv(c_in, c_node, 1, dims, size, copies=copies)
        t.activations += cell.nodes * c_node * math.prod(size) * copies
        c_pp, c_p = c_p, cell.nodes * c_node
    return c_p


def _upsampler(t: _Tally, from_level: int, c_top: int, dims: int, size0: Sequence[int], copies: int = 1) -> int:
    """cells.Upsampler: per level a spiking 1x1 conv halving the channels; returns the output channels."""
    c = c_top
    for level in range(from_level, 0, -1):
        t.conv(c, c // 2, 1, dims, _level_size(size0, level), copies=copies)
        c //= 2
    return c


def _classifier(g: Any, spatial: Sequence[int]) -> SizeEstimate:
    t = _Tally()
    c_stem = g.cell.nodes * g.filter_multiplier
    t.conv(g.in_channels, c_stem, 3, 2, spatial)
    c_out = _trellis(t, g.cell, g.path, g.filter_multiplier, c_stem, c_stem, spatial)
    t.linear(c_out, g.num_classes)
    return t.result()


def _stereo(g: Any, spatial: Sequence[int]) -> SizeEstimate:
    t = _Tally()
    h, w = (int(s) for s in spatial)
    c = g.feature_cell.nodes * g.feature_filter_multiplier
    s = g.feature_stride
    feat = ((h - 1) // s + 1, (w - 1) // s + 1)
    t.conv(g.in_channels, c // 2, 3, 2, (h, w), copies=2)  # both cameras
    t.conv(c // 2, c, 3, 2, feat, copies=2)
    c_top = _trellis(t, g.feature_cell, g.feature_path, g.feature_filter_multiplier, c // 2, c, feat, copies=2)
    c_up = _upsampler(t, g.feature_path[-1], c_top, 2, feat, copies=2)
    t.conv(c_up, c, 1, 2, feat, copies=2)
    volume = (g.volume_disparities or g.disparities, *feat)
    t.activations += 2 * c * math.prod(volume)
    cm = g.matching_cell.nodes * g.matching_filter_multiplier
    t.conv(2 * c, cm, 3, 3, volume)
    t.conv(cm, cm, 3, 3, volume)
    c_top = _trellis(t, g.matching_cell, g.matching_path, g.matching_filter_multiplier, cm, cm, volume)
    c_up = _upsampler(t, g.matching_path[-1], c_top, 3, volume)
    t.conv(c_up, 1, 3, 3, volume, bn=False, bias=True)
    t.activations += g.disparities * h * w
    return t.result()


def _snasnet(g: Any, spatial: Sequence[int]) -> SizeEstimate:
    t = _Tally()
    c1, c2 = g.channels, 2 * g.channels
    size1 = int(spatial[0]) // g.stem_stride
    size2 = size1 // 2
    size3 = size2 // g.final_pool
    edges = [op for row in g.matrix for op in row if op in (2, 3)]
    t.conv(g.in_channels, c1, 3, 2, (size1, size1))
    for c, size in ((c1, size1), (c2, size2)):
        for op in edges:
            t.conv(c, c, 1 if op == 2 else 3, 2, (size, size))
        t.activations += 4 * c * size * size  # the cell's nodes
        t.parameters += c + 2 * c  # channel_bn: frozen depthwise identity conv + BN
        t.dense_ops += c * size * size
        t.activations += c * size * size
        if c == c1:
            t.conv(c1, c2, 3, 2, (size1, size1))
    t.linear(c2 * size3 * size3, g.fc_hidden, bias=False)
    t.linear(g.fc_hidden, g.num_classes * g.vote)
    return t.result()


def _sequential(g: Any, spatial: Sequence[int]) -> SizeEstimate:
    t = _Tally()
    shape: tuple[int, ...] = (g.in_channels, int(spatial[0]), int(spatial[-1]))
    for layer in g.layers:
        if layer.type == "conv" and len(shape) == 3:
            out = ((shape[1] - 1) // layer.stride + 1, (shape[2] - 1) // layer.stride + 1)
            t.conv(shape[0], layer.channels, layer.kernel_size, 2, out, bn=layer.bn, bias=not layer.bn)
            shape = (layer.channels, *out)
        elif layer.type == "pool" and len(shape) == 3:
            shape = (shape[0], shape[1] // layer.kernel_size, shape[2] // layer.kernel_size)
        elif layer.type == "flatten" and len(shape) == 3:
            shape = (shape[0] * shape[1] * shape[2],)
        elif layer.type == "dense" and len(shape) == 1:
            t.linear(shape[0], layer.features, bias=layer.bias)
            shape = (layer.features,)
        # layers that do not fit together are reported by the genotype's own shape check
    return t.result()


def default_spatial(genotype: Any) -> tuple[int, int]:
    """The input's spatial size a genotype is described at: ``image_size`` or the DAVIS346 frame for
    stereo, else 32 x 32 (CIFAR; what ``snnc info`` uses)."""
    fam = find(getattr(genotype, "family", None))
    if fam is not None and fam.stereo_input:
        from snnc.data.layout import HEIGHT, WIDTH

        return (HEIGHT, WIDTH)
    size = int(getattr(genotype, "image_size", 32))
    return (size, size)


def estimate_size(genotype: Any, spatial: Sequence[int] | None = None) -> SizeEstimate:
    """Parameters, dense ops and activations of ``genotype``'s network for one step and one example.

    Args:
        genotype: a validated genotype of a known family (fields already checked).
        spatial: input height and width; default :func:`default_spatial`.

    Raises:
        SnncError: unknown family.
    """
    family = getattr(genotype, "family", None)
    estimator = size_estimator(family)  # the family registry names each family's estimator
    if estimator is None:
        raise SnncError(f"no size estimate for genotype family {family!r}")
    estimate: SizeEstimate = estimator(genotype, default_spatial(genotype) if spatial is None else tuple(spatial))
    return estimate


def check_size(genotype: Any, spatial: Sequence[int] | None = None, batch: int = 1, what: str = "") -> SizeEstimate:
    """:func:`estimate_size`, refusing a network over :data:`MAX_PARAMETERS`, :data:`MAX_DENSE_OPS`
    or :data:`MAX_ACTIVATIONS` (the last two times ``batch``).

    Raises:
        SnncError: ``"<what>: about 9.7e+10 parameters (estimated from the genotype) exceed the limit
            250000000 (snnc.models.limits.MAX_PARAMETERS)"``.
    """
    size = estimate_size(genotype, spatial)
    where = what or f"{genotype.family} genotype"
    for value, name, noun in (
        (size.parameters, "MAX_PARAMETERS", "parameters"),
        (size.dense_ops * batch, "MAX_DENSE_OPS", "dense synaptic ops per time step"),
        (size.activations * batch, "MAX_ACTIVATIONS", "activations per time step"),
    ):
        if value > LIMITS[name]:
            raise SnncError(
                f"{where}: {format_count(value)} {noun} (estimated from the genotype) exceed "
                f"the limit {LIMITS[name]} (snnc.models.limits.{name})"
            )
    return size


def check_step_shape(genotype: Any, shape: Sequence[int], what: str = "input shape") -> SizeEstimate | None:
    """Bound one time step's input ``shape`` (batch first) for ``genotype``'s network, before a tensor exists.

    Checks the element count and the spatial sides (:func:`snnc.models.limits.check_step_input`),
    then the network's estimated dense ops and activations at that spatial size and batch
    (:func:`check_size`); returns that estimate, or ``None`` when ``genotype`` is not of a known
    family (only the shape is checked then).

    Raises:
        SnncError: naming ``what`` and the bound it exceeds.
    """
    from snnc.models.limits import check_step_input

    shape = tuple(int(s) for s in shape)
    check_step_input(shape, what)
    if find(getattr(genotype, "family", None)) is None:  # e.g. a graph read from NIR: no genotype
        return None
    if len(shape) < 3:
        return estimate_size(genotype)
    return check_size(genotype, spatial=shape[-2:], batch=shape[0], what=f"{what} {'x'.join(map(str, shape))}")
