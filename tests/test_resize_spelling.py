"""Nearest resampling as the export spells it (GraphModule, traced to ONNX): F.interpolate's result exactly.

Spike-valued maps resample their innermost axis by a 0/1-matrix MatMul and the other axes by Gathers of
whole rows (no element-wise Expand); a narrow 3x3x3 convolution reading a nearest x2 up-sampling runs on
the source (``upsampled_conv3d``), so the up-sampled map is not in the ONNX file. Checked in torch and in
stock onnxruntime, for even and odd (2m - 1) sizes.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F

from snnc.export.graph import Graph
from snnc.export.onnx_writer import export_graph_stream
from snnc.export.runtime import GraphModule
from snnc.neurons import NeuronSpec


def _session(path):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _spiking_resize_graph(channels, src, dst, conv_weight=None):
    """``x -> LIF -> resize(dst) [-> conv 3x3x3] -> y`` and the LIF spikes as a second output ``s``."""
    g = Graph()
    g.add("x", "input", shape=(channels, *src))
    spikes = g.add("lif", "neuron", ["x"], spec=NeuronSpec(type="lif", decay=0.5, vth=0.5))
    g.add("s", "output", [spikes])
    out = g.add("up", "resize", [spikes], size=dst)
    if conv_weight is not None:
        out = g.add(
            "conv",
            "conv",
            [out],
            weight=conv_weight,
            bias=np.array([0.25] * conv_weight.shape[0], dtype=np.float32),
            stride=(1, 1, 1),
            padding=(1, 1, 1),
            dilation=(1, 1, 1),
            groups=1,
        )
    g.add("y", "output", [out])
    return g


def _run_both(gm, xs, path):
    """Per step ``(GraphModule outputs, onnxruntime outputs)`` over the inputs ``xs`` (state fed back)."""
    export_graph_stream(gm, {"x": xs[0]}, path)
    sess = _session(path)
    state, ort_state = gm.init_state(xs[0]), [s.numpy() for s in gm.init_state(xs[0])]
    out = []
    for x in xs:
        values, state = gm.step_all(x, state)
        got = sess.run(None, {"x": x.numpy(), **{f"state_in_{k}": s for k, s in enumerate(ort_state)}})
        ort_state = got[2:]
        out.append((values, got[:2]))
    return out


@pytest.mark.parametrize(
    ("src", "dst"),
    [
        ((5, 6, 7), (10, 12, 14)),  # x2 up
        ((5, 6, 7), (9, 11, 13)),  # x2 up, odd 2m - 1 on every axis
        ((9, 22, 29), (17, 44, 58)),  # the matching trellis' level 2 -> 1 (odd depth)
        ((17, 44, 58), (9, 22, 29)),  # and back down (odd index patterns)
        ((44, 58), (87, 116)),  # the feature net (2-D, odd rows)
        ((26, 35), (5, 6)),  # a general down-sampling (index patterns on both axes)
        ((6, 8), (3, 4)),  # every 2
    ],
)
def test_spike_resize_is_interpolate_in_torch_and_onnxruntime(src, dst, tmp_path):
    torch.manual_seed(len(src) + src[-1])
    gm = GraphModule(_spiking_resize_graph(3, src, dst))
    kinds = [kind for _, kind, _ in gm._nearest["up"]]
    assert kinds.count("select") == int(src[-1] != dst[-1])  # innermost axis: the 0/1 MatMul
    xs = [torch.rand(2, 3, *src) for _ in range(3)]
    fired = 0
    for values, (s_ort, y_ort) in _run_both(gm, xs, tmp_path / "r.onnx"):
        want = F.interpolate(values["s"], size=dst, mode="nearest")
        assert torch.equal(values["y"], want)
        assert np.array_equal(y_ort, want.numpy()) and np.array_equal(s_ort, values["s"].numpy())
        fired += int(values["s"].sum())
    assert fired > 50
    ops = {n.op_type for n in onnx.load(str(tmp_path / "r.onnx")).graph.node}
    assert "Expand" not in ops and "Resize" not in ops


def test_non_spike_maps_keep_gathers_exactly():
    """A resize of arbitrary values (no 0/1 guarantee) gathers every axis: exact for any float, inf included."""
    g = Graph()
    g.add("x", "input", shape=(2, 5, 7))
    g.add("y", "output", [g.add("r", "resize", ["x"], size=(9, 13))])
    gm = GraphModule(g)
    assert [kind for _, kind, _ in gm._nearest["r"]] == ["index", "index"]
    x = torch.randn(1, 2, 5, 7)
    x[0, 0, 1, 2] = float("inf")
    assert torch.equal(gm.step(x, ())[0], F.interpolate(x, size=(9, 13), mode="nearest"))


def _cost_layer(odd, channels=4, outputs=1):
    """A firing LIF at (3, 4, 5), nearest x2 up (``odd``: 2m - 1 on that axis), a 3x3x3 conv to ``outputs``."""
    low = (3, 4, 5)
    dst = tuple(2 * m - o for m, o in zip(low, odd, strict=True))
    g = torch.Generator().manual_seed(sum(odd))
    shape = (outputs, channels, 3, 3, 3)
    weight = (torch.randint(-64, 65, shape, generator=g).float() / 64).numpy()  # dyadic: exact sums in any order
    xs = [torch.rand(1, channels, *low, generator=g) for _ in range(3)]
    return GraphModule(_spiking_resize_graph(channels, low, dst, weight)), xs, dst, torch.from_numpy(weight)


def _conv_of_interpolate(values, dst, weight):
    up = F.interpolate(values["s"], size=dst, mode="nearest")
    return F.conv3d(up, weight, torch.full((weight.shape[0],), 0.25), padding=1)


@pytest.mark.parametrize("odd", [(0, 0, 0), (1, 0, 1), (1, 1, 1), (0, 1, 0)])
def test_narrow_conv_after_x2_upsampling_runs_on_the_source(odd):
    """The cost layer's pattern: conv3d(C -> 1) of nearest x2 spikes runs as upsampled_conv3d on the spikes."""
    gm, xs, dst, weight = _cost_layer(odd)
    assert gm._upsampled == {"conv": "lif"}
    state = gm.init_state(xs[0])
    for x in xs:
        values, state = gm.step_all(x, state)
        assert torch.equal(values["y"], _conv_of_interpolate(values, dst, weight))
    wide, _, _, _ = _cost_layer(odd, outputs=5)  # a wide convolution keeps its resize
    assert wide._upsampled == {}


def test_onnx_of_the_folded_cost_layer_never_builds_the_upsampled_map(tmp_path):
    """onnxruntime equals GraphModule (and conv3d of F.interpolate); no tensor of the up-sampled shape exists."""
    gm, xs, dst, weight = _cost_layer((1, 0, 1))
    for values, (_, y_ort) in _run_both(gm, xs, tmp_path / "c.onnx"):
        assert np.array_equal(y_ort, _conv_of_interpolate(values, dst, weight).numpy())
    proto = onnx.shape_inference.infer_shapes(onnx.load(str(tmp_path / "c.onnx")))
    shapes = [[d.dim_value for d in v.type.tensor_type.shape.dim] for v in proto.graph.value_info]
    assert [1, 4, *dst] not in shapes and [1, 4, 3, 4, 5] in shapes


def test_selecting_the_only_channel_is_a_squeeze(tmp_path):
    """The stereo cost's ``select`` of its one channel: a view (Squeeze in ONNX), not a Gather copy."""
    g = Graph()
    g.add("x", "input", shape=(1, 3, 4, 5))
    g.add("y", "output", [g.add("s", "select", ["x"], index=0)])
    gm = GraphModule(g)
    x = torch.randn(2, 1, 3, 4, 5)
    assert torch.equal(gm.step(x, ())[0], x[:, 0])
    export_graph_stream(gm, {"x": x}, tmp_path / "s.onnx")
    assert np.array_equal(_session(tmp_path / "s.onnx").run(None, {"x": x.numpy()})[0], x[:, 0].numpy())
    assert "Gather" not in {n.op_type for n in onnx.load(str(tmp_path / "s.onnx")).graph.node}
