"""Neuron dynamics, state handling, the module wrapper and NeuronSpec."""

from __future__ import annotations

import dataclasses
import io
import json
import warnings

import pytest
import torch

from snnc.errors import SnncError
from snnc.neurons import (
    NEURON_TYPES,
    Neuron,
    NeuronSpec,
    init_state,
    neuron_sequence,
    neuron_step,
    spike_fn,
    surrogate_derivative,
)

F64 = torch.float64
State = tuple[torch.Tensor, ...]


def run(spec: NeuronSpec, currents: list[float]) -> tuple[list[float], list[float], list[State]]:
    """Step a single neuron through scalar currents; return spikes, potentials, states."""
    state = init_state(spec, torch.zeros(1, dtype=F64))
    ys, us, states = [], [], []
    for i in currents:
        y, state = neuron_step(spec, torch.tensor([i], dtype=F64), state)
        ys.append(y.item())
        us.append(state[0].item())
        states.append(state)
    return ys, us, states


SEQ = [0.45, 0.45, 0.45, 0.3, 0.6, 0.5]


# ---------------------------------------------------------------- dynamics
def test_lif_hand_computed() -> None:
    ys, us, _ = run(NeuronSpec(type="lif", decay=0.2, vth=0.5), SEQ)
    # u = 0.2*u*(1-y) + I
    assert us == pytest.approx([0.45, 0.54, 0.45, 0.39, 0.678, 0.5])
    # last step: u == vth exactly -> no spike (strictly greater)
    assert ys == [0, 1, 0, 0, 1, 0]


def test_if_hand_computed_ignores_tau() -> None:
    for tau in (0.2, 0.9):  # "if" means tau = 1 whatever the spec says
        ys, us, _ = run(NeuronSpec(type="if", decay=tau), SEQ)
        assert us == pytest.approx([0.45, 0.9, 0.45, 0.75, 0.6, 0.5])
        assert ys == [0, 1, 0, 1, 1, 0]


def test_binary_hand_computed_ignores_tau() -> None:
    for tau in (0.2, 1.0):  # "binary" means tau = 0: no memory, so no state at all
        spec = NeuronSpec(type="binary", decay=tau)
        state = init_state(spec, torch.zeros(1, dtype=F64))
        assert state == ()
        ys = []
        for i in SEQ:
            y, state = neuron_step(spec, torch.tensor([i], dtype=F64), state)
            ys.append(y.item())
            assert state == ()
        assert ys == [0, 0, 0, 0, 1, 0]


def test_state_fields_are_named_in_one_place() -> None:
    from snnc.neurons import STATE_FIELDS, leak_factor, state_fields, state_size

    for kind, names in STATE_FIELDS.items():
        spec = NeuronSpec(type=kind)
        assert state_fields(spec) == names and state_size(spec) == len(names)
        assert len(init_state(spec, torch.zeros(2))) == len(names)
    assert leak_factor(NeuronSpec(type="if", decay=0.3)) == 1.0
    assert leak_factor(NeuronSpec(type="binary", decay=0.3)) == 0.0
    assert leak_factor(NeuronSpec(type="lif", decay=0.3)) == pytest.approx(0.3)


def test_lif_tau_one_equals_if_and_tau_zero_equals_binary() -> None:
    x = torch.rand(7, 3, 5, generator=torch.Generator().manual_seed(0), dtype=F64)
    assert torch.equal(
        neuron_sequence(NeuronSpec(type="lif", decay=1.0), x)[0], neuron_sequence(NeuronSpec(type="if"), x)[0]
    )
    assert torch.equal(
        neuron_sequence(NeuronSpec(type="lif", decay=0.0), x)[0], neuron_sequence(NeuronSpec(type="binary"), x)[0]
    )


def test_alif_hand_computed_threshold_adaptation() -> None:
    spec = NeuronSpec(type="alif", decay=0.2, decay_a=0.2, vth=0.5, beta_a=0.2)
    ys, us, states = run(spec, [0.6] * 5)
    a = [s[2].item() for s in states]
    thresholds = [spec.vth + spec.beta_a * ai for ai in a]
    # a' = 0.2 a + y_prev ; A = 0.5 + 0.2 a' ; u' = 0.2 u (1 - y_prev) + 0.6
    assert a == pytest.approx([0.0, 1.0, 0.2, 1.04, 0.208])
    assert thresholds == pytest.approx([0.5, 0.7, 0.54, 0.708, 0.5416])
    assert us == pytest.approx([0.6, 0.6, 0.72, 0.6, 0.72])
    assert ys == [1, 0, 1, 0, 1]
    assert thresholds[1] > thresholds[0]  # the threshold rises after a spike


def test_alif_fires_less_than_lif_under_constant_drive() -> None:
    currents = torch.full((40, 1), 0.6, dtype=F64)
    lif = neuron_sequence(NeuronSpec(type="lif"), currents)[0]
    alif = neuron_sequence(NeuronSpec(type="alif"), currents)[0]
    assert lif.sum().item() == 40  # LIF fires at every step
    assert alif.sum().item() == 20  # ALIF alternates: 1, 0, 1, 0, ...
    assert torch.all(alif <= lif)


def test_alif_with_zero_beta_equals_lif() -> None:
    x = torch.rand(9, 4, 3, generator=torch.Generator().manual_seed(1), dtype=F64)
    alif = neuron_sequence(NeuronSpec(type="alif", beta_a=0.0), x)[0]
    lif = neuron_sequence(NeuronSpec(type="lif"), x)[0]
    assert torch.equal(alif, lif)


def test_relu_neuron() -> None:
    spec = NeuronSpec(type="relu")
    x = torch.tensor([[-1.0, 0.0, 0.3, 2.5]])
    y, state = neuron_step(spec, x, init_state(spec, x))
    assert state == ()
    assert torch.equal(y, torch.tensor([[0.0, 0.0, 0.3, 2.5]]))
    ys, state = neuron_sequence(spec, x.expand(3, 4))
    assert state == () and torch.equal(ys, torch.relu(x.expand(3, 4)))


@pytest.mark.parametrize("kind", NEURON_TYPES)
def test_sequence_equals_repeated_steps(kind: str) -> None:
    spec = NeuronSpec(type=kind)
    gen = torch.Generator().manual_seed(2)
    x = (torch.rand(6, 2, 3, 4, generator=gen) * 1.2 - 0.1).requires_grad_(True)
    outs, final = neuron_sequence(spec, x)
    state = init_state(spec, x[0])
    manual = []
    x2 = x.detach().clone().requires_grad_(True)
    for t in range(6):
        y, state = neuron_step(spec, x2[t], state)
        manual.append(y)
    assert torch.equal(outs, torch.stack(manual))
    assert len(final) == len(state) and all(torch.equal(a, b) for a, b in zip(final, state, strict=False))
    # gradients flow identically through time (BPTT)
    w = torch.rand(outs.shape, generator=gen)
    (outs * w).sum().backward()
    (torch.stack(manual) * w).sum().backward()
    assert torch.equal(x.grad, x2.grad)
    assert x.grad.abs().sum() > 0


def test_sequence_continues_from_given_state() -> None:
    spec = NeuronSpec(type="alif")
    x = torch.rand(8, 5, generator=torch.Generator().manual_seed(3))
    whole, s_whole = neuron_sequence(spec, x)
    first, s_mid = neuron_sequence(spec, x[:3])
    second, s_end = neuron_sequence(spec, x[3:], s_mid)
    assert torch.equal(whole, torch.cat([first, second]))
    assert all(torch.equal(a, b) for a, b in zip(s_whole, s_end, strict=False))


def test_gradient_reaches_earlier_steps_through_membrane() -> None:
    spec = NeuronSpec(type="lif")
    x = torch.tensor([[0.3], [0.3]], requires_grad=True)
    outs, _ = neuron_sequence(spec, x)
    outs[1].sum().backward()
    # u2 = 0.2 u1 (1 - y1) + I2 with y1 = 0 and the reset gate kept in the graph:
    # dL/dI1 = dL/dI2 * (0.2 (1 - y1) - 0.2 u1 dy1/du1), dy/du = g'(u / 2vth) / (2 vth) = g'(u)
    g = lambda u: surrogate_derivative("dspike", torch.tensor(u), 3.0).item()  # noqa: E731
    assert x.grad[1].item() == pytest.approx(g(0.36))
    assert x.grad[0].item() == pytest.approx(g(0.36) * (0.2 - 0.2 * 0.3 * g(0.3)))


# ---------------------------------------------------------------- state
@pytest.mark.parametrize("kind,size", [("lif", 2), ("if", 2), ("binary", 0), ("alif", 3), ("relu", 0)])
def test_state_shapes_and_dtypes(kind: str, size: int) -> None:
    spec = NeuronSpec(type=kind)
    for dtype in (torch.float32, torch.float64):
        like = torch.randn(2, 3, 4, 5, dtype=dtype)
        state = init_state(spec, like)
        assert isinstance(state, tuple) and len(state) == size
        for s in state:
            assert s.shape == like.shape and s.dtype == dtype and not s.any()
        y, new = neuron_step(spec, like, state)
        assert y.shape == like.shape and y.dtype == dtype
        assert len(new) == size and all(s.shape == like.shape and s.dtype == dtype for s in new)
        if kind != "relu":
            assert set(y.unique().tolist()) <= {0.0, 1.0}


def test_wrong_state_size_raises() -> None:
    x = torch.zeros(3)
    with pytest.raises(SnncError, match="'alif' must hold 3 tensors, got 2"):
        neuron_step(NeuronSpec(type="alif"), x, init_state(NeuronSpec(type="lif"), x))
    with pytest.raises(SnncError, match="'lif' must hold 2 tensors, got 0"):
        neuron_step(NeuronSpec(), x, ())
    with pytest.raises(SnncError, match=r"\(T, \.\.\.\)"):
        neuron_sequence(NeuronSpec(), torch.tensor(1.0))


# ---------------------------------------------------------------- module
@pytest.mark.parametrize("kind", NEURON_TYPES)
def test_module_equals_pure_function(kind: str) -> None:
    spec = NeuronSpec(type=kind, decay=0.3, b=4.0)
    mod = Neuron(spec)
    x = torch.rand(4, 6, generator=torch.Generator().manual_seed(4))
    s_mod, s_fn = mod.init_state(x[0]), init_state(spec, x[0])
    for t in range(4):
        y_mod, s_mod = mod(x[t], s_mod)
        y_fn, s_fn = neuron_step(spec, x[t], s_fn)
        assert torch.equal(y_mod, y_fn)
        assert all(torch.equal(a, b) for a, b in zip(s_mod, s_fn, strict=False))
    y0, _ = mod(x[0])  # state None = resting
    assert torch.equal(y0, neuron_step(spec, x[0], init_state(spec, x[0]))[0])
    assert list(mod.parameters()) == [] and list(mod.buffers()) == []


def test_module_spec_is_replaceable() -> None:
    mod = Neuron()
    assert mod.spec == NeuronSpec()
    x = torch.full((1,), 0.45)
    state = mod.init_state(x)
    _, state = mod(x, state)
    y, _ = mod(x, state)  # LIF: 0.2*0.45 + 0.45 = 0.54 > 0.5
    assert y.item() == 1.0
    mod.spec = dataclasses.replace(mod.spec, type="binary")
    y, _ = mod(x, mod.init_state(x))
    assert y.item() == 0.0
    assert "type='binary'" in repr(mod)


def test_onnx_export_of_neuron_step_in_eval() -> None:
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(4, 4)
            self.neuron = Neuron(NeuronSpec(type="alif"))

        def forward(self, x, u, y, a):  # type: ignore[no-untyped-def]
            out, (u2, _y2, a2) = self.neuron(self.fc(x), (u, y, a))
            return out, u2, a2

    torch.manual_seed(0)
    model = Tiny().eval()
    args = (torch.randn(3, 4), torch.rand(3, 4), (torch.rand(3, 4) > 0.5).float(), torch.rand(3, 4))
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # legacy exporter notice
        torch.onnx.export(model, args, buf, dynamo=False, opset_version=17)
    proto = onnx.load_from_string(buf.getvalue())
    ops = {n.op_type for n in proto.graph.node}
    assert "Greater" in ops and "Cast" in ops
    sess = ort.InferenceSession(buf.getvalue())
    got = sess.run(None, {i.name: t.numpy() for i, t in zip(sess.get_inputs(), args, strict=False)})
    want = model(*args)
    for g, w in zip(got, want, strict=False):
        assert torch.allclose(torch.from_numpy(g), w.detach(), atol=1e-6)


def test_spike_fn_used_by_dynamics_has_surrogate_gradient() -> None:
    spec = NeuronSpec(type="lif", surrogate="triangle", b=2.0)
    x = torch.tensor([0.5], requires_grad=True)  # u = vth: triangle peak b / (2 vth)
    y, _ = neuron_step(spec, x, init_state(spec, x))
    y.sum().backward()
    assert x.grad.item() == pytest.approx(2.0 / (2 * 0.5))
    assert torch.equal(y, spike_fn(x.detach(), 0.5))


# ---------------------------------------------------------------- spec
def test_spec_defaults() -> None:
    s = NeuronSpec()
    assert (s.type, s.decay, s.vth, s.decay_a, s.beta_a, s.surrogate, s.b) == ("lif", 0.2, 0.5, 0.2, 0.2, "dspike", 3.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.decay = 0.5  # type: ignore[misc]


def test_spec_round_trip() -> None:
    for kind in NEURON_TYPES:
        s = NeuronSpec(type=kind, decay=0.7, vth=1.0, decay_a=0.9, beta_a=1.8, surrogate="arctan", b=2.5)
        d = s.to_dict()
        assert set(d) == {"type", "decay", "vth", "decay_a", "beta_a", "surrogate", "b"}
        assert NeuronSpec.from_dict(d) == s
        assert NeuronSpec.from_dict(json.loads(json.dumps(d))) == s
    assert NeuronSpec.from_dict({}) == NeuronSpec()
    partial = NeuronSpec.from_dict({"type": "alif", "vth": 1})
    assert partial.vth == 1.0 and isinstance(partial.vth, float) and partial.decay == 0.2
    assert NeuronSpec.from_dict({"decay": 0, "b": 5}).to_dict()["decay"] == 0.0


@pytest.mark.parametrize(
    "bad,message",
    [
        ({"type": "izhikevich"}, "unknown neuron type 'izhikevich' (expected one of lif, if, binary, alif, relu)"),
        (
            {"surrogate": "sigmoid"},
            "unknown surrogate 'sigmoid' (expected one of dspike, triangle, superspike, arctan)",
        ),
        ({"taus": 0.3}, "unknown key(s) 'taus'"),
        ({"vth": 0.0}, "vth must be positive, got 0.0"),
        ({"vth": -0.5}, "vth must be positive, got -0.5"),
        ({"decay": 1.5}, "decay must be in [0, 1], got 1.5"),
        ({"tau": -0.1}, "decay must be in [0, 1], got -0.1"),
        ({"decay_a": 2}, "decay_a must be in [0, 1], got 2.0"),
        ({"b": 0}, "b must be positive, got 0.0"),
        ({"beta_a": -1}, "beta_a must be >= 0, got -1.0"),
        ({"vth": "0.5"}, "vth must be a finite number, got '0.5'"),
        ({"decay": True}, "decay must be a finite number, got True"),
        ({"tau": 0.3, "decay": 0.3}, "both 'tau' (the old name) and 'decay' given"),
        ({"b": float("nan")}, "b must be a finite number, got nan"),
    ],
)
def test_spec_from_dict_errors(bad: dict, message: str) -> None:
    with pytest.raises(SnncError) as err:
        NeuronSpec.from_dict(bad, path="arch.json")
    text = str(err.value)
    assert text.startswith("arch.json: neuron spec: ")
    assert message in text
    assert "\n" not in text


def test_spec_validated_on_construction_and_replace() -> None:
    with pytest.raises(SnncError, match="decay must be in"):
        NeuronSpec(decay=3.0)
    with pytest.raises(SnncError, match="unknown neuron type"):
        dataclasses.replace(NeuronSpec(), type="LIF")
    with pytest.raises(SnncError, match="must be a mapping, got list"):
        NeuronSpec.from_dict([("type", "lif")])  # type: ignore[arg-type]
    with pytest.raises(SnncError) as err:
        NeuronSpec.from_dict({"b": -1})
    assert str(err.value) == "neuron spec: b must be positive, got -1.0"


def test_old_tau_names_read_as_decay() -> None:
    """snnc 0.1 files spell the decay factor ``tau`` / ``tau_a``: they read as ``decay`` / ``decay_a``."""
    old = NeuronSpec.from_dict({"type": "alif", "tau": 0.3, "tau_a": 0.7, "vth": 1.0})
    assert old == NeuronSpec(type="alif", decay=0.3, decay_a=0.7, vth=1.0)
    assert "tau" not in old.to_dict() and old.to_dict()["decay"] == 0.3
