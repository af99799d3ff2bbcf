"""Torch backend options: static-buffer step (what a CUDA graph records), autocast dtypes, device refusals."""

from __future__ import annotations

import pytest
import torch

from snnc.data.synth import synthesize
from snnc.errors import SnncError
from snnc.runtime.cuda_graph import CudaGraphStep, StaticStep
from snnc.runtime.torch_backend import TorchBackend, torch_state_names

from _export_util import SMALL_STEREO, folded_small
from _stream_util import active_checkpoint
from cli_helpers import assert_user_error, run_snnc

CPU = torch.device("cpu")
STEPS = 4
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(scope="module")
def stereo():
    return folded_small("spikedhs-stereo", (1, 2, 5, 32, 48), STEPS, **SMALL_STEREO)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("torch_backend")
    data, _ = synthesize(tmp / "tiny_data.hdf5", frames=2, height=48, width=64, progress=False)
    return {"data": data, "ckpt": active_checkpoint(tmp)}


def eager(net, x):
    with torch.no_grad():
        state = net.init_state(x[0])
        costs, states = [], []
        for t in range(x.shape[0]):
            cost, state = net.step(x[t], state)
            costs.append(cost)
            states.append(state)
    return costs, states


def test_static_step_equals_eager_steps_in_place(stereo):
    """The static-buffer step gives model.step's cost and state bit for bit, writing state at fixed addresses."""
    net, x = stereo
    costs, states = eager(net, x)
    static = StaticStep(net, x[0], net.init_state(x[0]))
    names = torch_state_names(net)
    addresses = [s.data_ptr() for s in static.state] + [static.x.data_ptr()]
    spikes = 0
    for t in range(STEPS):
        cost = static(x[t])
        assert torch.equal(cost, costs[t])
        for a, b in zip(static.state, states[t], strict=True):
            assert torch.equal(a, b)
        for name, s in zip(names, static.state, strict=True):
            if name.endswith(".y"):  # torch_state_names labels the spike tensors
                assert set(torch.unique(s).tolist()) <= {0.0, 1.0}, name
                spikes += int(s.sum())
    assert [s.data_ptr() for s in static.state] + [static.x.data_ptr()] == addresses
    assert spikes > 1000, "the test net must fire"


class _Swap(torch.nn.Module):
    """A step whose new state reuses old state tensors (a carried value): (a, b) -> (b, a + x)."""

    def step(self, x, state):
        a, b = state
        return a + b, (b, a + x)


def test_static_step_stages_state_that_aliases_old_state():
    x = torch.ones(3)
    static = StaticStep(_Swap(), x, (torch.zeros(3), torch.full((3,), 5.0)))
    static(x)  # eager: (0, 5) -> (5, 1)
    assert static.state[0].tolist() == [5.0] * 3 and static.state[1].tolist() == [1.0] * 3
    static(x)  # (5, 1) -> (1, 6)
    assert static.state[0].tolist() == [1.0] * 3 and static.state[1].tolist() == [6.0] * 3


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_autocast_runs_synaptic_layers_in_half_and_keeps_fp32_state(stereo, dtype):
    net, x = stereo
    want = {"bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    seen: list[torch.dtype] = []
    # CPU autocast lowers 2-D convs (the feature net); CUDA autocast lowers the 3-D ones too
    conv = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    hook = conv.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    try:
        be = TorchBackend(net, CPU, dtype=dtype)
        be.reset(x[0])
        cost = be.step(x[0])
        cost = be.step(x[1])
    finally:
        hook.remove()
    assert seen and set(seen) == {want}
    assert cost.dtype == torch.float32 and torch.isfinite(cost).all()
    assert all(s.dtype == torch.float32 for s in be.state)  # membranes and spikes stay float32
    assert "autocast" in be.placement()[0]["runs_on"]
    ref, _ = eager(net, x[:2])
    assert not torch.equal(cost, ref[1])  # the synaptic sums were rounded (spikes may then flip)


def test_cuda_graph_needs_a_cuda_device(stereo):
    net, x = stereo
    with pytest.raises(SnncError, match="--cuda-graph needs --device cuda"):
        TorchBackend(net, CPU, cuda_graph=True)
    with pytest.raises(SnncError, match="needs a CUDA device"):
        CudaGraphStep(net, x[0], net.init_state(x[0]))
    with pytest.raises(SnncError, match="unknown --dtype"):
        TorchBackend(net, CPU, dtype="fp8")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--device", "cuda"] if not torch.cuda.is_available() else ["--device", "nope"], "--device"),
        (["--cuda-graph"], "add --no-energy"),
        (["--cuda-graph", "--no-energy"], "--cuda-graph needs --device cuda"),
        (["--backend", "onnx", "--dtype", "fp16"], "--dtype fp16 applies to --backend torch only"),
        (["--backend", "openvino", "--cuda-graph", "--no-energy"], "--cuda-graph applies to --backend torch only"),
    ],
)
def test_cli_refuses_gpu_options_in_one_line(files, args, fragment):
    if torch.cuda.is_available() and "--cuda-graph" in args and "--no-energy" in args and len(args) == 2:
        pytest.skip("a CUDA device is present")
    assert_user_error(run_snnc("stream", files["data"], "--model", files["ckpt"], "--frames", "1", *args), fragment)


@CUDA
def test_cuda_graph_replays_eager_steps(stereo):
    """On a GPU: replaying the captured step equals eager CUDA steps spike for spike."""
    net, x = stereo
    dev = torch.device("cuda")
    net = net.to(dev)
    xs = x.to(dev)
    costs, states = eager(net, xs)
    names = torch_state_names(net)
    be = TorchBackend(net, dev, cuda_graph=True)
    for _ in range(2):  # a reset replays from rest again
        be.reset(xs[0])
        for t in range(STEPS):
            cost = be.step(xs[t])
            torch.testing.assert_close(cost, costs[t], rtol=0, atol=1e-5)
            for name, a, b in zip(names, be.state, states[t], strict=True):
                if name.endswith(".y"):
                    assert torch.equal(a, b), name
    net.to(CPU)
