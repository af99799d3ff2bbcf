"""One op-counting pass over any network, by forward hooks (energy.md).

Every synaptic layer (``Conv1d/2d/3d``, ``ConvTranspose1d/2d/3d``,
``Linear``; average/max pooling on request) gets a forward hook. Whatever the
caller runs while an :class:`OpsRecorder` is active (``model(x)``, a loop of
``SpikingNet.step``, a whole evaluation set) is counted: each call adds its
ops, so a layer run at every one of T steps reports T steps' worth.

Per layer (all counts **per example**: divided by the batch size, the first
axis of the layer's input; unbatched conv input counts as one example):

* ``dense_ops``: synaptic operations = MACs without bias (fvcore / thop
  convention). ``Conv``: output elements x (C_in / groups) x kernel volume;
  ``ConvTranspose``: input elements x (C_out / groups) x kernel volume;
  ``Linear``: output elements x in_features; pooling: output elements x
  kernel volume (additions / comparisons, off unless ``include_pooling``).
* ``bias_ops``: output elements when the layer has a bias and
  ``count_bias`` is set (ptflops convention adds these to the MACs).
* ``fanout_events`` (optional): the stricter count neuromorphic hardware
  performs, ``sum over nonzero inputs of the synapses they reach``, padding
  positions excluded. ``fanout='input'`` counts the inputs actually seen;
  ``fanout='ones'`` counts as if every input element were nonzero (the
  topology bound).
* ``input_rate``: fraction of nonzero input elements (the firing rate when
  the input is spikes), over every call; ``input_is_binary``: every input
  element seen was 0 or 1; ``input_is_ternary``: every input element was -1,
  0 or 1 (binary spikes, or signed events such as an SBT stack: each nonzero
  input is one accumulate, an add or a subtract).
* ``active_ops``: sum over calls of ``dense ops of the call x fraction of
  nonzero inputs of the call`` = ``input_rate x steps x dense ops`` (the
  papers' AC formula, exact even when the rate varies from call to call).
* ``input_count`` / ``active_inputs`` / ``output_count``: per-example
  element counts summed over calls, and the layer's geometry
  (:class:`LayerGeometry`): what the memory and Lemaire energy models
  (:mod:`snnc.energy.models`) need beyond the op counts.

**Examples.** While an snnc network's ``step`` runs (``forward`` is a loop
of ``step``), the number of examples is the batch of the network's input
``x_t``, not the first axis of each layer's input: the stereo net runs its
feature net on both views stacked as one batch of ``2B``, which is two
views' worth of work per example (SpikingJelly's counters agree,
``tests/test_energy_spikingjelly.py``). Other modules count per layer batch.

:meth:`OpsRecorder.snapshot` copies the counts so far and
:meth:`OpsReport.minus` subtracts two snapshots: the counts of one frame of a
stream, from the same pass.

Fixtures (energy.md): Conv2d(3, 64, 3, padding=1) on 1x3x32x32 -> 1,769,472
dense (1,835,008 with bias, 1,696,512 fan-out events of an all-ones input).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.conv import _ConvNd  # the typed common base of every conv and transposed conv

from snnc.errors import SnncError

__all__ = ["FANOUT_MODES", "LayerGeometry", "LayerOps", "NeuronActivity", "OpsReport", "OpsRecorder", "count_ops"]

#: Accepted values of the ``fanout`` option (``None`` = do not count events).
FANOUT_MODES: tuple[str | None, ...] = (None, "input", "ones")

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_CONVT = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_POOL = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)
_CONV_FN = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONVT_FN = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


@dataclass(frozen=True)
class LayerGeometry:
    """Static shape facts of one synaptic layer (for the Lemaire model's fan-out terms).

    Attributes:
        fan_out: synapses one input element reaches at most: ``C_out / groups x
            kernel volume`` for a conv, ``out_features`` for a dense layer.
        reach: output channels per group x ``prod(ceil(k / s))``, the outputs one
            input of a strided conv updates on average (Lemaire et al.'s
            synaptic-op count; ``out_features`` for a dense layer).
        out_channels_per_group: ``C_out / groups`` (``out_features`` for a dense layer).
        kernel_volume: weights per output channel and input channel (1 for dense).
        out_channels: ``C_out`` (``out_features``).
        has_bias: the layer adds a bias.
        transposed: a transposed convolution.
    """

    fan_out: int = 1
    reach: int = 1
    out_channels_per_group: int = 1
    kernel_volume: int = 1
    out_channels: int = 1
    has_bias: bool = False
    transposed: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict."""
        return asdict(self)


@dataclass
class LayerOps:
    """Counts for one layer, accumulated over every call in the pass (per example).

    Attributes:
        name: qualified module name (``model.named_modules()``).
        type: module class name (``Conv2d``, ``Linear``...).
        input_shape: shape of the first call's input (batch included).
        output_shape: shape of the first call's output (batch included).
        parameters: parameters of this layer alone (weight + bias).
        calls: how many times the layer ran.
        dense_ops: synaptic ops (MACs) without bias, summed over calls.
        bias_ops: bias additions summed over calls (0 unless ``count_bias``).
        fanout_events: padding-excluded synaptic events (``None`` unless requested
            or for pooling layers).
        input_rate: fraction of nonzero input elements over all calls.
        input_is_binary: every input element seen was 0 or 1.
        input_is_ternary: every input element seen was -1, 0 or 1.
        active_ops: ``sum over calls of dense ops x nonzero input fraction``.
        input_count: input elements per example, summed over calls.
        active_inputs: nonzero input elements per example, summed over calls.
        output_count: output elements per example, summed over calls.
        geometry: the layer's :class:`LayerGeometry`.
    """

    name: str
    type: str
    input_shape: list[int]
    output_shape: list[int]
    parameters: int
    calls: int = 0
    dense_ops: int = 0
    bias_ops: int = 0
    fanout_events: float | None = None
    input_rate: float = 0.0
    input_is_binary: bool = True
    input_is_ternary: bool = True
    active_ops: float = 0.0
    input_count: float = 0.0
    active_inputs: float = 0.0
    output_count: float = 0.0
    geometry: LayerGeometry = field(default_factory=LayerGeometry)
    _nonzero: int = field(default=0, repr=False)
    _elements: int = field(default=0, repr=False)

    @property
    def synaptic_ops(self) -> int:
        """``dense_ops + bias_ops``."""
        return self.dense_ops + self.bias_ops

    def to_dict(self) -> dict[str, Any]:
        """Public fields as a JSON-serialisable dict."""
        d = asdict(self)
        d.pop("_nonzero")
        d.pop("_elements")
        return d

    def copy(self) -> LayerOps:
        """An independent copy (shapes copied too; the frozen geometry shared).

        Field by field, as ``dataclasses.replace`` would (no ``__post_init__`` to run), about 5x faster: a stream
        copies every layer twice per frame for its per-frame report.
        """
        out = object.__new__(type(self))
        out.__dict__.update(self.__dict__)
        out.input_shape = list(self.input_shape)
        out.output_shape = list(self.output_shape)
        return out

    def minus(self, before: LayerOps | None) -> LayerOps:
        """Counts accumulated since ``before`` (an earlier copy of this layer, or ``None``).

        Additive counts (calls, ops, events, nonzero/element tallies) are
        subtracted and ``input_rate`` is recomputed over the difference; the
        binary/ternary flags are those of the later copy (they only ever turn
        False, so they describe every call up to now).
        """
        out = self.copy()
        if before is None:
            return out
        out.calls -= before.calls
        out.dense_ops -= before.dense_ops
        out.bias_ops -= before.bias_ops
        out.active_ops -= before.active_ops
        out.input_count -= before.input_count
        out.active_inputs -= before.active_inputs
        out.output_count -= before.output_count
        if out.fanout_events is not None:
            out.fanout_events -= before.fanout_events or 0.0
        out._nonzero -= before._nonzero
        out._elements -= before._elements
        out.input_rate = out._nonzero / out._elements if out._elements else 0.0
        return out


@dataclass
class NeuronActivity:
    """Output activity of one neuron layer (:class:`snnc.neurons.Neuron`) over a pass.

    Attributes:
        name: qualified module name.
        type: neuron type of the layer's spec (``lif``, ``relu``...) at its first call.
        calls: how many times the layer ran.
        elements: output elements seen (batch included).
        nonzero: nonzero output elements (spikes, for spiking types).
        total: sum of the outputs (equal to ``nonzero`` for 0/1 spikes).
        updates: neuron updates per example (output elements per example, summed over
            calls: one membrane update per neuron and step).
        spikes: nonzero outputs per example, summed over calls.
    """

    name: str
    type: str
    calls: int = 0
    elements: int = 0
    nonzero: int = 0
    total: float = 0.0
    updates: float = 0.0
    spikes: float = 0.0

    @property
    def rate(self) -> float:
        """Fraction of nonzero outputs per element and step (the firing rate of a spiking layer)."""
        return self.nonzero / self.elements if self.elements else 0.0

    def minus(self, before: NeuronActivity | None) -> NeuronActivity:
        """Activity since the earlier copy ``before`` (or all of it for ``None``)."""
        out = object.__new__(type(self))  # a field-by-field copy, as dataclasses.replace (no __post_init__), faster
        out.__dict__.update(self.__dict__)
        if before is not None:
            out.calls = self.calls - before.calls
            out.elements = self.elements - before.elements
            out.nonzero = self.nonzero - before.nonzero
            out.total = self.total - before.total
            out.updates = self.updates - before.updates
            out.spikes = self.spikes - before.spikes
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (with ``rate``)."""
        return {**asdict(self), "rate": self.rate}


@dataclass
class OpsReport:
    """Result of one counting pass: per-layer :class:`LayerOps` and the options used.

    ``neurons`` holds each neuron layer's output activity when the recorder was
    asked for it (``neurons=True``), else it is empty.
    """

    layers: list[LayerOps]
    count_bias: bool = False
    fanout: str | None = None
    include_pooling: bool = False
    neurons: list[NeuronActivity] = field(default_factory=list)

    @property
    def dense_ops(self) -> int:
        """Total dense synaptic ops (MACs without bias) per example."""
        return sum(layer.dense_ops for layer in self.layers)

    @property
    def bias_ops(self) -> int:
        """Total bias additions per example (0 unless ``count_bias``)."""
        return sum(layer.bias_ops for layer in self.layers)

    @property
    def fanout_events(self) -> float | None:
        """Total fan-out events per example, or ``None`` when not counted."""
        if self.fanout is None:
            return None
        return float(sum(layer.fanout_events or 0.0 for layer in self.layers))

    @property
    def parameters(self) -> int:
        """Parameters of the counted layers (BatchNorm etc. not included)."""
        return sum(layer.parameters for layer in self.layers)

    @property
    def active_ops(self) -> float:
        """Total rate-weighted dense ops (``input_rate x steps x dense ops``) per example."""
        return float(sum(layer.active_ops for layer in self.layers))

    def by_name(self) -> dict[str, LayerOps]:
        """Layers keyed by name."""
        return {layer.name: layer for layer in self.layers}

    def minus(self, before: OpsReport | None) -> OpsReport:
        """Counts accumulated since the snapshot ``before`` (see :meth:`LayerOps.minus`).

        Layers first seen after ``before`` are kept whole; layers with no call in
        between are kept with zero counts.
        """
        old = before.by_name() if before is not None else {}
        layers = [layer.minus(old.get(layer.name)) for layer in self.layers]
        old_n = {a.name: a for a in before.neurons} if before is not None else {}
        neurons = [a.minus(old_n.get(a.name)) for a in self.neurons]
        return OpsReport(layers, self.count_bias, self.fanout, self.include_pooling, neurons)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict with layers and totals."""
        return {
            "count_bias": self.count_bias,
            "fanout": self.fanout,
            "include_pooling": self.include_pooling,
            "dense_ops": self.dense_ops,
            "bias_ops": self.bias_ops,
            "fanout_events": self.fanout_events,
            "layers": [layer.to_dict() for layer in self.layers],
            **({"neurons": [a.to_dict() for a in self.neurons]} if self.neurons else {}),
        }


def _tuple(v: Any, n: int) -> tuple[int, ...]:
    return tuple(v) if isinstance(v, (tuple, list)) else (int(v),) * n


def _dims_of(module: nn.Module) -> int:
    """Spatial dimensionality of a conv / pooling module (1, 2 or 3)."""
    for group in (_CONV, _CONVT, _POOL):
        for cls in group:
            if isinstance(module, cls):
                return int(cls.__name__[-2])
    raise TypeError(type(module).__name__)


def _exporting() -> bool:
    """Whether the current call is traced for export (its shapes are symbolic; nothing is computed)."""
    tracing = torch.jit.is_tracing()  # type: ignore[no-untyped-call]  # torch leaves it untyped
    return bool(tracing or torch.onnx.is_in_onnx_export())


def _is_counted(module: nn.Module, include_pooling: bool) -> bool:
    if isinstance(module, _CONV + _CONVT + (nn.Linear,)):
        return True
    return include_pooling and isinstance(module, _POOL)


def _batched(x: Tensor, module: nn.Module) -> Tensor:
    """Add a batch axis to unbatched conv / pool input."""
    if isinstance(module, nn.Linear):
        return x
    return x.unsqueeze(0) if x.dim() == _dims_of(module) + 1 else x


def _examples(x: Tensor, module: nn.Module) -> int:
    """Batch size of one call (1 for unbatched input)."""
    if isinstance(module, nn.Linear):
        return x.shape[0] if x.dim() >= 2 else 1
    return x.shape[0] if x.dim() == _dims_of(module) + 2 else 1


def _dense_ops(module: nn.Module, x: Tensor, y: Tensor) -> tuple[int, int]:
    """(MACs without bias, bias additions) of one call, whole batch."""
    if isinstance(module, nn.Linear):
        macs = y.numel() * module.in_features
        return macs, y.numel() if module.bias is not None else 0
    if isinstance(module, _CONV):
        k = math.prod(module.kernel_size)
        macs = y.numel() * (module.in_channels // module.groups) * k
        return macs, y.numel() if module.bias is not None else 0
    if isinstance(module, _CONVT):
        k = math.prod(module.kernel_size)
        macs = x.numel() * (module.out_channels // module.groups) * k
        return macs, y.numel() if module.bias is not None else 0
    k = math.prod(_tuple(module.kernel_size, _dims_of(module)))
    return y.numel() * k, 0


def _geometry(module: nn.Module) -> LayerGeometry:
    """The :class:`LayerGeometry` of a counted module (pooling: kernel volume only)."""
    if isinstance(module, nn.Linear):
        n = module.out_features
        return LayerGeometry(n, n, n, 1, n, module.bias is not None, False)
    if isinstance(module, _CONV + _CONVT):
        k = math.prod(module.kernel_size)
        cpg = module.out_channels // module.groups
        reach = cpg * math.prod(-(-kk // ss) for kk, ss in zip(module.kernel_size, module.stride, strict=True))
        return LayerGeometry(
            cpg * k, reach, cpg, k, module.out_channels, module.bias is not None, isinstance(module, _CONVT)
        )
    k = math.prod(_tuple(module.kernel_size, _dims_of(module)))
    return LayerGeometry(1, 1, 1, k, 1, False, False)


def _fanout_events(module: nn.Module, x: Tensor, ones: bool) -> float:
    """Synapses reached by the nonzero inputs of one call, padding excluded (whole batch).

    Each output position of a conv reads the (in-bounds) inputs of its
    receptive field, so ``events = (C_out / groups) * sum over output positions
    of the active inputs in the field``: a conv of the per-group count of
    active inputs with an all-ones kernel. Zero padding contributes nothing;
    non-zero padding modes (reflect, replicate, circular) copy real inputs and
    are counted as such. Counting runs in float64 so totals stay exact.
    """
    xb = _batched(x, module)
    if isinstance(module, nn.Linear):
        active_count = xb.numel() if ones else int(torch.count_nonzero(xb).item())
        return float(active_count * module.out_features)
    if not isinstance(module, _ConvNd):  # every conv and transposed conv
        raise TypeError(type(module).__name__)
    active = torch.ones_like(xb, dtype=torch.float64) if ones else (xb != 0).to(torch.float64)
    d = _dims_of(module)
    g = module.groups
    b, c = active.shape[0], active.shape[1]
    per_group = active.reshape(b, g, c // g, *active.shape[2:]).sum(dim=2)
    ones_k = torch.ones(g, 1, *module.kernel_size, dtype=torch.float64, device=active.device)
    if isinstance(module, _CONV):
        if module.padding_mode != "zeros":
            src = F.pad(per_group, module._reversed_padding_repeated_twice, mode=module.padding_mode)
            hits = _CONV_FN[d](src, ones_k, None, module.stride, 0, module.dilation, g)
        else:
            hits = _CONV_FN[d](per_group, ones_k, None, module.stride, module.padding, module.dilation, g)
    else:
        assert not isinstance(module.padding, str)  # torch allows string padding for Conv*d only
        hits = _CONVT_FN[d](
            per_group, ones_k, None, module.stride, module.padding, module.output_padding, g, module.dilation
        )
    return float(hits.sum().item()) * (module.out_channels // g)


class OpsRecorder:
    """Context manager that counts ops of every synaptic layer of ``model`` while active.

    Example::

        with OpsRecorder(net, fanout="input") as rec:
            state = net.init_state(x[0])
            for x_t in x:
                y, state = net.step(x_t, state)
        report = rec.report()

    Args:
        model: any ``nn.Module``.
        count_bias: also count bias additions (``bias_ops``).
        fanout: ``None`` (off), ``'input'`` (events of the inputs seen) or
            ``'ones'`` (as if every input element were nonzero).
        include_pooling: also count average / max pooling layers.
        neurons: also record every :class:`snnc.neurons.Neuron` layer's output
            activity (:class:`NeuronActivity`, in ``report().neurons``).

    Raises:
        SnncError: unknown ``fanout`` mode.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        count_bias: bool = False,
        fanout: str | None = None,
        include_pooling: bool = False,
        neurons: bool = False,
    ) -> None:
        if fanout not in FANOUT_MODES:
            raise SnncError(f"unknown fan-out mode {fanout!r} (expected one of {FANOUT_MODES})")
        self.model = model
        self.count_bias = count_bias
        self.fanout = fanout
        self.include_pooling = include_pooling
        self.record_neurons = neurons
        self._layers: dict[str, LayerOps] = {}
        self._neurons: dict[str, NeuronActivity] = {}
        self._handles: list[Any] = []
        self._batch: int | None = None
        self._step_wrapped = False

    def _wrap_step(self) -> None:
        """While active, take the number of examples from each ``step`` input of an snnc network.

        The wrapper is an instance attribute over the class's ``step`` (removed on exit);
        ``forward`` and ``run`` call ``self.step``, so they pass through it too.
        """
        from snnc.models.base import SpikingNet

        if not isinstance(self.model, SpikingNet) or "step" in vars(self.model):
            return
        net = self.model
        step = type(net).step

        def counted_step(x_t: Tensor, state: Any) -> Any:
            outer = self._batch
            self._batch = int(x_t.shape[0]) if isinstance(x_t, Tensor) and x_t.dim() >= 1 else None
            try:
                return step(net, x_t, state)
            finally:
                self._batch = outer

        object.__setattr__(net, "step", counted_step)
        self._step_wrapped = True

    def __enter__(self) -> OpsRecorder:
        from snnc.neurons import Neuron

        self._wrap_step()
        for name, module in self.model.named_modules():
            if _is_counted(module, self.include_pooling):
                self._handles.append(module.register_forward_hook(self._hook(name or type(module).__name__)))
            elif self.record_neurons and isinstance(module, Neuron):
                self._handles.append(module.register_forward_hook(self._neuron_hook(name or "neuron")))
        return self

    def _neuron_hook(self, name: str) -> Callable[[nn.Module, tuple[Any, ...], Any], None]:
        def hook(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
            y = output[0] if isinstance(output, (tuple, list)) else output
            if not isinstance(y, Tensor) or y.device.type == "meta" or _exporting():
                return
            act = self._neurons.get(name)
            if act is None:
                act = self._neurons[name] = NeuronActivity(name, str(getattr(module.spec, "type", "?")))
            n = self._batch or (y.shape[0] if y.dim() >= 2 else 1)
            with torch.no_grad():
                nonzero = int(torch.count_nonzero(y).item())
                act.calls += 1
                act.elements += y.numel()
                act.nonzero += nonzero
                act.total += float(y.detach().sum().item())
                act.updates += y.numel() / n
                act.spikes += nonzero / n

        return hook

    def __exit__(self, *exc: Any) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        if self._step_wrapped:
            del self.model.__dict__["step"]
            self._step_wrapped = False

    def _hook(self, name: str) -> Callable[[nn.Module, tuple[Any, ...], Any], None]:
        def hook(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
            x = inputs[0]
            y = output[0] if isinstance(output, (tuple, list)) else output
            if not isinstance(x, Tensor) or not isinstance(y, Tensor) or x.device.type == "meta":
                return  # not a tensor call, or SpikingNet's shape probe on meta tensors
            if _exporting():
                return  # a trace for export (ONNX) computes nothing: not counted
            with torch.no_grad():
                self._record(name, module, x.detach(), y.detach())

        return hook

    def _record(self, name: str, module: nn.Module, x: Tensor, y: Tensor) -> None:
        layer = self._layers.get(name)
        if layer is None:
            layer = LayerOps(
                name=name,
                type=type(module).__name__,
                input_shape=list(x.shape),
                output_shape=list(y.shape),
                parameters=sum(p.numel() for p in module.parameters(recurse=False)),
                geometry=_geometry(module),
            )
            self._layers[name] = layer
        n = self._batch or _examples(x, module)
        macs, bias = _dense_ops(module, x, y)
        layer.calls += 1
        layer.dense_ops += macs // n
        if self.count_bias:
            layer.bias_ops += bias // n
        is_pool = isinstance(module, _POOL)
        if self.fanout is not None and not is_pool:
            events = _fanout_events(module, x, ones=self.fanout == "ones") / n
            layer.fanout_events = (layer.fanout_events or 0.0) + events
        nonzero = int(torch.count_nonzero(x).item())
        layer.input_count += x.numel() / n
        layer.active_inputs += nonzero / n
        layer.output_count += y.numel() / n
        layer._nonzero += nonzero
        layer._elements += x.numel()
        layer.input_rate = layer._nonzero / layer._elements if layer._elements else 0.0
        if x.numel():
            layer.active_ops += (macs // n) * (nonzero / x.numel())
            if layer.input_is_ternary:
                layer.input_is_ternary = bool(((x == 0) | (x.abs() == 1)).all().item())
                if not layer.input_is_ternary:
                    layer.input_is_binary = False
            if layer.input_is_binary:
                layer.input_is_binary = bool((x >= 0).all().item())

    def report(self) -> OpsReport:
        """Counts so far, layers in ``named_modules`` order (layers never called are left out)."""
        order = {name: k for k, (name, _) in enumerate(self.model.named_modules())}
        layers = sorted(self._layers.values(), key=lambda layer: order.get(layer.name, len(order)))
        neurons = sorted(self._neurons.values(), key=lambda a: order.get(a.name, len(order)))
        return OpsReport(layers, self.count_bias, self.fanout, self.include_pooling, neurons)

    def snapshot(self) -> OpsReport:
        """Like :meth:`report`, but a copy that later calls do not change."""
        live = self.report()
        return OpsReport(
            [layer.copy() for layer in live.layers],
            self.count_bias,
            self.fanout,
            self.include_pooling,
            [replace(a) for a in live.neurons],
        )


def count_ops(
    model: nn.Module,
    example_input: Any,
    *,
    run: Callable[[nn.Module, Any], Any] | None = None,
    count_bias: bool = False,
    fanout: str | None = None,
    include_pooling: bool = False,
    neurons: bool = False,
) -> OpsReport:
    """Run ``model`` once on ``example_input`` (eval mode, no grad) and count its ops.

    Args:
        model: any ``nn.Module`` (an snnc ``SpikingNet`` is run with ``forward``,
            i.e. one ``step`` per time step, unless ``run`` says otherwise).
        example_input: a tensor, or a tuple of positional arguments.
        run: ``run(model, example_input)`` to call instead of ``model(example_input)``
            (e.g. a streaming ``step`` loop).
        count_bias, fanout, include_pooling, neurons: see :class:`OpsRecorder`.

    Returns:
        :class:`OpsReport`; the model's train/eval flags are restored afterwards.
    """
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        with (
            torch.no_grad(),
            OpsRecorder(
                model, count_bias=count_bias, fanout=fanout, include_pooling=include_pooling, neurons=neurons
            ) as rec,
        ):
            if run is not None:
                run(model, example_input)
            elif isinstance(example_input, tuple):
                model(*example_input)
            else:
                model(example_input)
    finally:
        for m, training in modes.items():
            m.training = training
    return rec.report()
