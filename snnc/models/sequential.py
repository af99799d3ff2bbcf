"""A plain sequential spiking network (family ``sequential``): the simple deployable net.

Built from a list of layers, each applied in order to one time step's input
``x_t (B, in_channels, image_size, image_size)`` (events or an image)::

    conv     ConvBN(k x k, stride, padding k // 2) -> spiking neuron
    pool     average pooling, kernel = stride = k (no neuron; sizes must divide)
    flatten  (B, C, H, W) -> (B, C*H*W)   (once, before the first dense layer)
    dense    Linear(features, bias) -> spiking neuron

The output of a step is the **spikes of the last layer** (which must be a conv
or dense layer); for classification the class scores are the spike counts over
the ``time_steps`` window. Every layer type maps one-to-one onto NIR and lava-dl
netx (pooling is folded into the next layer's weights for netx, which has no
pooling layer), so this family is the one that deploys on Loihi via Lava.

Neuron layers are named ``blocks.<i>.neuron`` (``i`` = layer index), in layer
order; that is also the state order (``(u, y)`` per LIF layer).

Genotype JSON example::

    {"family": "sequential", "in_channels": 2, "image_size": 16, "time_steps": 8,
     "layers": [{"type": "conv", "channels": 8, "kernel_size": 3},
                {"type": "pool", "kernel_size": 2},
                {"type": "flatten"},
                {"type": "dense", "features": 10}],
     "neuron": {"type": "lif", "decay": 0.5, "vth": 0.5}}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from torch import Tensor, nn

from snnc.errors import PathLike, SnncError, list_items, short_repr
from snnc.models.base import SpikingNet, StepContext
from snnc.models.layers import ConvBN
from snnc.models.limits import check_count, check_limit
from snnc.models.size import check_size
from snnc.neurons import Neuron, NeuronSpec
from snnc.serial import dataclass_from_dict

__all__ = [
    "LAYER_TYPES",
    "SEQUENTIAL_PRESETS",
    "LayerSpec",
    "SequentialGenotype",
    "SequentialNet",
    "build_sequential",
]

#: Layer types of the sequential family.
LAYER_TYPES: tuple[str, ...] = ("conv", "pool", "flatten", "dense")

_LAYER_KEYS: dict[str, tuple[str, ...]] = {
    "conv": ("type", "channels", "kernel_size", "stride", "bn"),
    "pool": ("type", "kernel_size"),
    "flatten": ("type",),
    "dense": ("type", "features", "bias"),
}


def _positive_int(value: Any, what: str, limit: str) -> int:
    """``value`` as a positive int within the bound ``limit`` of :mod:`snnc.models.limits`."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SnncError(f"{what} must be a positive integer, got {short_repr(value)}")
    return int(check_limit(value, limit, what))


@dataclass(frozen=True)
class LayerSpec:
    """One layer of a sequential net (see module docstring).

    Attributes:
        type: ``conv``, ``pool``, ``flatten`` or ``dense``.
        channels: conv output channels.
        features: dense output features.
        kernel_size: conv kernel (odd, padding ``k // 2``) or pool kernel = stride.
        stride: conv stride.
        bn: conv followed by BatchNorm (folded for deployment).
        bias: dense layer has a bias.
    """

    type: str
    channels: int = 0
    features: int = 0
    kernel_size: int = 3
    stride: int = 1
    bn: bool = True
    bias: bool = True

    def to_dict(self) -> dict[str, Any]:
        """The fields that matter for this layer type, ``type`` first."""
        return {k: getattr(self, k) for k in _LAYER_KEYS[self.type]}

    @classmethod
    def from_dict(cls, d: Any, where: str) -> LayerSpec:
        """Parse one layer dict; SnncError names ``where`` (e.g. ``layers[2]``)."""
        if isinstance(d, LayerSpec):
            return d
        if not isinstance(d, Mapping):
            raise SnncError(f"{where} must be an object like {{'type': 'conv', 'channels': 8}}, got {short_repr(d)}")
        kind = d.get("type")
        if kind not in LAYER_TYPES:
            raise SnncError(
                f"{where}: unknown layer type {short_repr(kind)} (expected one of {', '.join(LAYER_TYPES)})"
            )
        unknown = [str(k) for k in d if k not in _LAYER_KEYS[kind]]
        if unknown:
            raise SnncError(
                f"{where}: unknown key(s) {list_items(unknown, fmt=repr, sort=True)} for a {kind} layer "
                f"(expected {', '.join(_LAYER_KEYS[kind])})"
            )
        kw: dict[str, Any] = {"type": kind}
        if kind == "conv":
            kw["channels"] = _positive_int(d.get("channels"), f"{where}.channels", "MAX_CHANNELS")
            kw["kernel_size"] = _positive_int(d.get("kernel_size", 3), f"{where}.kernel_size", "MAX_KERNEL_SIZE")
            if kw["kernel_size"] % 2 == 0:
                raise SnncError(
                    f"{where}.kernel_size must be odd (padding k // 2 keeps the size), got {kw['kernel_size']}"
                )
            kw["stride"] = _positive_int(d.get("stride", 1), f"{where}.stride", "MAX_STRIDE")
            kw["bn"] = d.get("bn", True)
        elif kind == "pool":
            kw["kernel_size"] = _positive_int(d.get("kernel_size", 2), f"{where}.kernel_size", "MAX_KERNEL_SIZE")
        elif kind == "dense":
            kw["features"] = _positive_int(d.get("features"), f"{where}.features", "MAX_CHANNELS")
            kw["bias"] = d.get("bias", True)
        for flag in ("bn", "bias"):
            if flag in kw and not isinstance(kw[flag], bool):
                raise SnncError(f"{where}.{flag} must be true or false, got {short_repr(kw[flag])}")
        return cls(**kw)


def layer_shapes(layers: Sequence[LayerSpec], in_channels: int, image_size: int) -> list[tuple[int, ...]]:
    """Per-sample output shape of every layer; SnncError when the list does not fit together."""
    shape: tuple[int, ...] = (in_channels, image_size, image_size)
    out: list[tuple[int, ...]] = []
    for i, layer in enumerate(layers):
        where = f"layers[{i}] ({layer.type})"
        if layer.type in ("conv", "pool") and len(shape) != 3:
            raise SnncError(f"sequential genotype: {where} needs a (C, H, W) input but follows a flatten")
        if layer.type == "conv":
            size = (shape[1] - 1) // layer.stride + 1
            shape = (layer.channels, size, size)
        elif layer.type == "pool":
            if shape[1] % layer.kernel_size:
                raise SnncError(
                    f"sequential genotype: {where}: size {shape[1]} is not divisible by "
                    f"the pooling kernel {layer.kernel_size}"
                )
            shape = (shape[0], shape[1] // layer.kernel_size, shape[2] // layer.kernel_size)
        elif layer.type == "flatten":
            if len(shape) != 3:
                raise SnncError(f"sequential genotype: {where}: the input is already flat")
            shape = (shape[0] * shape[1] * shape[2],)
        else:
            if len(shape) != 1:
                raise SnncError(f"sequential genotype: {where} needs a flat input: add {{'type': 'flatten'}} before it")
            shape = (layer.features,)
        out.append(shape)
    return out


@dataclass(frozen=True)
class SequentialGenotype:
    """A sequential spiking net (see module docstring); JSON via ``to_dict``/``from_dict``.

    Attributes:
        layers: the layer list.
        in_channels: input channels (2 for ON/OFF event frames).
        image_size: input height = width.
        time_steps: T of the fixed window (training / classification).
        neuron: spec of every neuron layer; neuron_layers: per-layer replacements
            keyed by ``blocks.<i>.neuron``.
    """

    layers: tuple[LayerSpec, ...] = ()
    in_channels: int = 2
    image_size: int = 16
    time_steps: int = 8
    neuron: NeuronSpec = field(default_factory=NeuronSpec)
    neuron_layers: dict[str, NeuronSpec] = field(default_factory=dict, hash=False)
    family: str = "sequential"

    def __post_init__(self) -> None:
        if self.family != "sequential":
            raise SnncError(f"sequential genotype: family must be 'sequential', got {self.family!r}")
        if isinstance(self.layers, (str, bytes)) or not isinstance(self.layers, Sequence) or not self.layers:
            raise SnncError("sequential genotype: layers must be a non-empty list of layer objects")
        check_count(self.layers, "MAX_LAYERS", "sequential genotype: layers")
        layers = tuple(LayerSpec.from_dict(d, f"layers[{i}]") for i, d in enumerate(self.layers))
        object.__setattr__(self, "layers", layers)
        for name, limit in (
            ("in_channels", "MAX_CHANNELS"),
            ("image_size", "MAX_IMAGE_SIZE"),
            ("time_steps", "MAX_TIME_STEPS"),
        ):
            object.__setattr__(self, name, _positive_int(getattr(self, name), f"sequential genotype: {name}", limit))
        if layers[-1].type not in ("conv", "dense"):
            raise SnncError(
                f"sequential genotype: the last layer must be conv or dense (its spikes are the "
                f"output), got {layers[-1].type}"
            )
        layer_shapes(layers, self.in_channels, self.image_size)
        check_size(self, what="sequential genotype")
        object.__setattr__(self, "neuron", NeuronSpec.coerce(self.neuron, "sequential genotype: neuron"))
        if not isinstance(self.neuron_layers, Mapping):
            raise SnncError("sequential genotype: neuron_layers must map neuron layer names to specs")
        object.__setattr__(
            self,
            "neuron_layers",
            {
                str(k): NeuronSpec.coerce(v, f"sequential genotype: neuron_layers[{short_repr(k)}]")
                for k, v in self.neuron_layers.items()
            },
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict, ``family`` first."""
        return {
            "family": self.family,
            "layers": [layer.to_dict() for layer in self.layers],
            "in_channels": self.in_channels,
            "image_size": self.image_size,
            "time_steps": self.time_steps,
            "neuron": self.neuron.to_dict(),
            "neuron_layers": {k: v.to_dict() for k, v in self.neuron_layers.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], path: PathLike | None = None) -> SequentialGenotype:
        """Parse and validate; every problem is a one-line SnncError naming ``path``."""
        return dataclass_from_dict(cls, d, "sequential genotype", path)


class _ConvBlock(nn.Module):
    def __init__(self, c_in: int, layer: LayerSpec, spec: NeuronSpec) -> None:
        super().__init__()
        k = layer.kernel_size
        self.conv = ConvBN(c_in, layer.channels, k, stride=layer.stride, padding=k // 2, bn=layer.bn, bias=not layer.bn)
        self.neuron = Neuron(spec)


class _DenseBlock(nn.Module):
    def __init__(self, f_in: int, layer: LayerSpec, spec: NeuronSpec) -> None:
        super().__init__()
        self.fc = nn.Linear(f_in, layer.features, bias=layer.bias)
        self.neuron = Neuron(spec)


class SequentialNet(SpikingNet):
    """Sequential spiking net built from a :class:`SequentialGenotype` (see module docstring)."""

    def __init__(self, genotype: SequentialGenotype) -> None:
        super().__init__()
        g = genotype
        self.genotype = g
        shapes = layer_shapes(g.layers, g.in_channels, g.image_size)
        self.blocks = nn.ModuleList()
        shape: tuple[int, ...] = (g.in_channels, g.image_size, g.image_size)
        for layer, out_shape in zip(g.layers, shapes, strict=False):
            if layer.type == "conv":
                block: nn.Module = _ConvBlock(shape[0], layer, g.neuron)
            elif layer.type == "pool":
                block = nn.AvgPool2d(layer.kernel_size, layer.kernel_size)
            elif layer.type == "flatten":
                block = nn.Flatten(1)
            else:
                block = _DenseBlock(shape[0], layer, g.neuron)
            self.blocks.append(block)
            shape = out_shape
        self.out_shape = shape
        self.set_neuron_specs(g.neuron_layers)

    def check_input(self, x_t: Tensor) -> None:
        """``x_t`` must be ``(B, in_channels, image_size, image_size)``."""
        g = self.genotype
        want = (g.in_channels, g.image_size, g.image_size)
        if x_t.dim() != 4 or tuple(x_t.shape[1:]) != want:
            raise SnncError(
                f"sequential net expects one step shaped (B, {want[0]}, {want[1]}, {want[2]}), got {tuple(x_t.shape)}"
            )

    def step_with(self, x_t: Tensor, ctx: StepContext) -> Tensor:
        """Spikes of the last layer for one step."""
        x = x_t
        for block in self.blocks:
            if isinstance(block, _ConvBlock):
                x = ctx(block.neuron, block.conv(x))
            elif isinstance(block, _DenseBlock):
                x = ctx(block.neuron, block.fc(x))
            else:
                x = block(x)
        return x


def build_sequential(genotype: SequentialGenotype, **overrides: Any) -> SequentialNet:
    """Build a :class:`SequentialNet`; ``overrides`` replace genotype fields (e.g. ``image_size=8``).

    Raises:
        SnncError: not a sequential genotype, unknown override, invalid result.
    """
    if not isinstance(genotype, SequentialGenotype):
        raise SnncError(f"build_sequential needs a SequentialGenotype, got {type(genotype).__name__}")
    known = {f.name for f in fields(SequentialGenotype)} - {"family"}
    unknown = sorted(k for k in overrides if k not in known)
    if unknown:
        raise SnncError(
            f"sequential: unknown override(s) {list_items(unknown, fmt=repr)} (expected {', '.join(sorted(known))})"
        )
    return SequentialNet(replace(genotype, **overrides) if overrides else genotype)


#: A small event-camera classifier (2 polarity channels, 32 x 32, 10 classes).
SEQUENTIAL_PRESETS: dict[str, SequentialGenotype] = {
    "sequential-dvs": SequentialGenotype(
        layers=(
            LayerSpec("conv", channels=8, kernel_size=3),
            LayerSpec("pool", kernel_size=2),
            LayerSpec("conv", channels=16, kernel_size=3),
            LayerSpec("pool", kernel_size=2),
            LayerSpec("flatten"),
            LayerSpec("dense", features=64),
            LayerSpec("dense", features=10),
        ),
        in_channels=2,
        image_size=32,
        time_steps=8,
        neuron=NeuronSpec(type="lif", decay=0.5, vth=0.5),
    ),
}
