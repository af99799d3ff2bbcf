"""Upper bounds on network descriptions, checked before anything is built.

A genotype file (or a NIR graph, or ``--input-shape``) decides how much memory
and time snnc spends, so every size it declares is bounded here, in one place,
and checked while the description is validated, at a cost linear in its size:
no layer is built and no tensor allocated for a description that breaks one.
The message names the bound, e.g. ``filter_multiplier 1000000 exceeds the limit
4096 (snnc.models.limits.MAX_CHANNELS)``.

The bounds are far above every network of the papers (methods.md; the presets
in ``snnc/presets``, ``SNASNET_PRESETS`` and ``SEQUENTIAL_PRESETS``), see the
comment of each constant. Besides the per-field bounds, the whole network's
parameter count, dense synaptic operations and activations per time step are
estimated arithmetically from the genotype (:mod:`snnc.models.size`) and
bounded by :data:`MAX_PARAMETERS`, :data:`MAX_DENSE_OPS` and
:data:`MAX_ACTIVATIONS`, so that e.g. 200 layers of 4096 channels are refused
before allocation even though each field is allowed on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from snnc.errors import SnncError

__all__ = [
    "LIMITS",
    "MAX_ACTIVATIONS",
    "MAX_CELL_EDGES",
    "MAX_CELL_NODES",
    "MAX_CHANNELS",
    "MAX_CLASSES",
    "MAX_DENSE_OPS",
    "MAX_DISPARITIES",
    "MAX_GENOTYPE_JSON_BYTES",
    "MAX_IMAGE_SIZE",
    "MAX_INPUT_ELEMENTS",
    "MAX_JSON_DEPTH",
    "MAX_KERNEL_SIZE",
    "MAX_LAYERS",
    "MAX_NIR_ARRAY_ELEMENTS",
    "MAX_NIR_NODES",
    "MAX_PARAMETERS",
    "MAX_STRIDE",
    "MAX_TIME_STEPS",
    "check_count",
    "check_limit",
    "check_step_input",
    "format_count",
]

#: Size of a genotype JSON file (characters). The presets are under 1 kB; a
#: 256-layer genotype with per-layer neuron specs is about 60 kB.
MAX_GENOTYPE_JSON_BYTES = 1_000_000
#: Nesting of a genotype JSON document (objects and arrays). Genotypes nest 4
#: deep (genotype -> cell -> edges -> row).
MAX_JSON_DEPTH = 32
#: Layers of a trellis path (``path``, ``feature_path``, ``matching_path``) or of
#: a sequential net. The papers use 8 (CLA), 2 and 4 (stereo); DARTS-style
#: evaluation nets have 20.
MAX_LAYERS = 256
#: Nodes of a SpikeDHS cell. The papers use 3 or 4 (DARTS: 4, up to 7 in variants).
MAX_CELL_NODES = 16
#: Edge rows of a SpikeDHS cell: every possible edge of a MAX_CELL_NODES cell (2n + n(n-1)/2).
MAX_CELL_EDGES = 2 * MAX_CELL_NODES + MAX_CELL_NODES * (MAX_CELL_NODES - 1) // 2
#: Any declared width: filter multipliers, input channels, conv channels, dense
#: features, SNASNet's C and FC width, votes per class. The papers' widest is
#: SNASNet's FC 1024 and C = 256 (CLA stem 144, node width 48).
MAX_CHANNELS = 4096
#: Classifier outputs (ImageNet-21k has 21841 classes; the papers use 10 and 100).
MAX_CLASSES = 100_000
#: Time steps T of a window (the papers: 5, 6, 8).
MAX_TIME_STEPS = 1024
#: Disparity bins D and feature-volume shifts of a stereo net (the paper: 33;
#: large stereo benchmarks use up to 256).
MAX_DISPARITIES = 1024
#: Image side (``image_size``, and the two spatial axes of ``--input-shape``).
#: CIFAR 32, ImageNet 224, DAVIS346 346 x 260.
MAX_IMAGE_SIZE = 4096
#: Kernel side of a sequential conv or pooling layer (the presets: 2 and 3).
MAX_KERNEL_SIZE = 31
#: Strides and pooling factors (``stride``, ``feature_stride``, ``stem_stride``, ``final_pool``; the papers: 1-4).
MAX_STRIDE = 64
#: Elements of one time step's input, batch included (a stereo step is 2 x 5 x 260 x 346 = 0.9 M).
MAX_INPUT_ELEMENTS = 1 << 26
#: Parameters of a whole network (estimated from the genotype). The papers'
#: largest is CLA-large, 58 M; 250 M float32 weights are 1 GB.
MAX_PARAMETERS = 250_000_000
#: Dense synaptic operations (MACs) of one time step for one example (estimated from
#: the genotype). The presets: SpikeDHS-Stereo on a DAVIS346 frame 2.9e10,
#: SNASNet-CIFAR10 5.3e9, SpikeDHS-CLA on CIFAR 2.0e9.
MAX_DENSE_OPS = 2_000_000_000_000
#: Activations (layer output elements) of one time step for one example, i.e.
#: the memory of a forward pass (2e9 float32 values are 8 GB). SpikeDHS-Stereo
#: on a DAVIS346 frame has 5.7e7 (2.4e8 at D = 128 disparities), SNASNet-CIFAR10 5e6.
MAX_ACTIVATIONS = 2_000_000_000
#: Nodes of a NIR graph read by snnc (an exported sequential or SpikeDHS net has under 200).
MAX_NIR_NODES = 10_000
#: Elements of all arrays of a NIR graph together (weights, biases, neuron parameters).
MAX_NIR_ARRAY_ELEMENTS = MAX_PARAMETERS

#: Every bound by name (the name is what the messages cite).
LIMITS: dict[str, int] = {
    name: value for name, value in globals().items() if name.startswith("MAX_") and isinstance(value, int)
}


def format_count(value: int) -> str:
    """``value`` as digits, or ``'about 1.2e+30'`` for numbers too long to print in full."""
    if abs(value) < 10**15:
        return str(value)
    try:
        return f"about {float(value):.2g}"
    except OverflowError:
        return f"a {value.bit_length()}-bit number"


def check_limit(value: Any, name: str, what: str) -> Any:
    """Return ``value`` unless it exceeds the bound ``name`` (a key of :data:`LIMITS`).

    Non-integer values pass through unchanged (the caller's own type check names them).

    Raises:
        SnncError: ``"<what> <value> exceeds the limit <bound> (snnc.models.limits.<name>)"``.
    """
    limit = LIMITS[name]
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > limit:
        shown = format_count(int(value)) if value != float("inf") else "inf"
        raise SnncError(f"{what} {shown} exceeds the limit {limit} (snnc.models.limits.{name})")
    return value


def check_count(items: Any, name: str, what: str) -> None:
    """Raise unless ``len(items)`` is within the bound ``name`` (``what``: ``"path"``, ``"cell: edges"``...).

    Objects without a length pass (the caller's type check reports them).

    Raises:
        SnncError: ``"<what> has <n> entries, more than the limit <bound> (snnc.models.limits.<name>)"``.
    """
    try:
        n = len(items)
    except TypeError:
        return
    limit = LIMITS[name]
    if n > limit:
        raise SnncError(f"{what} has {n} entries, more than the limit {limit} (snnc.models.limits.{name})")


def check_step_input(shape: Sequence[int], what: str = "input shape", spatial_dims: int = 2) -> None:
    """Bound one time step's input shape: its element count and its last ``spatial_dims`` sides.

    Raises:
        SnncError: more than :data:`MAX_INPUT_ELEMENTS` elements or a side over :data:`MAX_IMAGE_SIZE`.
    """
    total = 1
    for s in shape:
        total *= int(s)
    shown = "x".join(str(int(s)) for s in shape[:8]) + ("x..." if len(shape) > 8 else "")
    if total > MAX_INPUT_ELEMENTS:
        raise SnncError(
            f"{what} {shown} has {format_count(total)} elements, more than the limit "
            f"{MAX_INPUT_ELEMENTS} (snnc.models.limits.MAX_INPUT_ELEMENTS)"
        )
    for s in shape[-spatial_dims:]:
        check_limit(int(s), "MAX_IMAGE_SIZE", f"{what} {shown}: side")
