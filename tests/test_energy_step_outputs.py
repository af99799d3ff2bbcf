"""Every backend's energy from its own step outputs equals the hook-based counting pass, frame by frame.

The definition of what is counted is :class:`snnc.energy.ops.OpsRecorder` (forward hooks on the torch
network, :class:`~snnc.energy.meter.EnergyMeter`); the backends count from the spikes in the state their
step returns (:meth:`snnc.export.activity.ActivityPlan.count`), with no hooks and one host read per frame.
Here both run on the same frames of a firing net and every per-layer and total figure must agree.
"""

from __future__ import annotations

import pytest
import torch

from snnc.energy.costs import DEFAULT_COSTS
from snnc.energy.meter import ActivityMeter, EnergyMeter, LayerInput
from snnc.energy.report import EnergyReport
from snnc.neurons import NeuronSpec
from snnc.runtime.torch_backend import TorchBackend

from _export_util import SMALL_STEREO, folded_small

CPU = torch.device("cpu")
STEPS = 4
SETTINGS = [("rate", "paper"), ("events", "memory")]  # the second also counts fan-out events and neuron outputs


@pytest.fixture(scope="module")
def stereo():
    return folded_small("spikedhs-stereo", (1, 2, 5, 24, 32), STEPS, **SMALL_STEREO)


def hook_reports(net, x, **meter_args) -> list[EnergyReport]:
    """Per-frame reports of today's counting: hooks on the network stepping the frames (the literal form)."""
    meter = EnergyMeter(net, costs=DEFAULT_COSTS, **meter_args)
    reports = []
    with torch.no_grad(), meter:
        state = net.init_state(x[0])
        for t in range(x.shape[0]):
            _, state = net.step(x[t], state)
            reports.append(meter.frame())
    return [*reports, meter.total()]


def backend_reports(backend, x, **meter_args) -> tuple[list[EnergyReport], list[torch.Tensor]]:
    meter = backend.activity_meter(costs=DEFAULT_COSTS, **meter_args)
    assert isinstance(meter, ActivityMeter)
    backend.reset(x[0])
    reports, costs = [], []
    for t in range(x.shape[0]):
        costs.append(backend.step(x[t]))
        reports.append(meter.frame())
    return [*reports, meter.total()], costs


def assert_same_reports(got: list[EnergyReport], ref: list[EnergyReport]) -> None:
    """AC, MAC and energy per layer and in total, and the neuron rows, to 1e-12 relative, every frame."""
    assert len(got) == len(ref)
    for a, b in zip(got, ref, strict=True):
        assert [lay.name for lay in a.layers] == [lay.name for lay in b.layers]
        for la, lb in zip(a.layers, b.layers, strict=True):
            for key in ("ac", "mac", "energy_j", "dense_ops", "input_rate", "fanout_events"):
                va, vb = getattr(la, key), getattr(lb, key)
                assert va == (vb if vb is None else pytest.approx(vb, rel=1e-12, abs=0.0)), (la.name, key)
            assert la.input_kind == lb.input_kind, la.name
        assert (a.ac, a.mac) == (b.ac, b.mac)  # integers (or integer sums) to the last digit
        assert a.energy_j == pytest.approx(b.energy_j, rel=1e-12)
        assert a.to_dict()["neuron_rates"] == b.to_dict()["neuron_rates"]


@pytest.mark.parametrize(("count", "energy_model"), SETTINGS)
def test_torch_backend_counts_from_its_state_equal_hooks(stereo, count, energy_model):
    net, x = stereo
    args = {"count": count, "energy_model": energy_model}
    ref = hook_reports(net, x, **args)
    assert ref[-1].ac > 0 and sum(lay.ac > 0 for lay in ref[-1].layers) >= len(ref[-1].layers) - 1  # a firing net
    backend = TorchBackend(net, CPU)
    got, costs = backend_reports(backend, x, **args)
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in net.modules())  # counted without hooks
    assert_same_reports(got, ref)
    off = TorchBackend(net, CPU)  # energy off: the very same computation (the fast matching form), bit for bit
    off.reset(x[0])
    for t in range(STEPS):
        assert torch.equal(off.step(x[t]), costs[t])


@pytest.mark.slow  # the stereo ONNX export takes minutes on a loaded machine
def test_onnx_backend_counts_from_its_outputs_equal_hooks(tmp_path):
    pytest.importorskip("onnxruntime")
    from snnc.runtime.onnx_backend import OnnxBackend

    shape = (1, 2, 5, 12, 16)
    net, x = folded_small("spikedhs-stereo", shape, STEPS, **SMALL_STEREO, feature_stride=1, volume_disparities=3)
    backend = OnnxBackend(net, CPU, threads=1, onnx_path=tmp_path / "s.onnx")
    try:
        for count, energy_model in SETTINGS:  # one file: a spiking net needs no taps under either setting
            ref = hook_reports(net, x, count=count, energy_model=energy_model)
            assert ref[-1].ac > 0
            got, _ = backend_reports(backend, x, count=count, energy_model=energy_model)
            assert_same_reports(got, ref)
    finally:
        backend.close()


def test_torch_backend_without_spikes_in_its_state_counts_by_hooks(stereo):
    """A ReLU layer keeps no output in the state: that network is counted by hooks on the running network."""
    net, _ = stereo
    relu = folded_small("spikedhs-stereo", (1, 2, 5, 24, 32), 1, **SMALL_STEREO)[0]
    relu.set_neuron_specs({"feature.stem1.neuron": NeuronSpec(type="relu")})
    assert TorchBackend(relu, CPU).activity_meter(costs=DEFAULT_COSTS, count="rate", energy_model="paper") is None
    assert TorchBackend(net, CPU).activity_meter(costs=DEFAULT_COSTS, count="rate", energy_model="paper") is not None


def test_deferred_step_is_counted_once_before_the_next_one_and_on_frame():
    meter = ActivityMeter()
    spec = folded_small("spikedhs-stereo", (1, 2, 5, 12, 16), 1, **SMALL_STEREO)[0].feature.stem0.conv.conv
    from snnc.energy.meter import LayerSpec

    meter.bind([LayerSpec("conv", spec, (2, 5, 12, 16), (2, 2, 12, 16))], {}, batch=1)
    calls: list[int] = []

    def step(nonzero: int):
        def count():
            calls.append(nonzero)
            return {"conv": LayerInput(nonzero=nonzero, elements=2 * 5 * 12 * 16)}, None

        return count

    meter.defer(step(10))
    assert calls == []  # nothing counted until the counts are needed
    meter.defer(step(20))
    assert calls == [10]  # the pending step first: a backend may reuse its buffers after the next step
    first = meter.frame()
    assert calls == [10, 20] and first.layers[0].input_rate == pytest.approx(30 / (2 * 2 * 5 * 12 * 16))
    meter.flush()
    assert calls == [10, 20] and meter.ops().layers[0].calls == 2
