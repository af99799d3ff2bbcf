"""ONNX export: onnxruntime streaming (explicit state) and fixed-window graphs equal torch."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from snnc.errors import SnncError
from snnc.export.onnx_writer import export_stream, export_window, state_names
from snnc.models.build import build_model
from snnc.models.fold import fold_bn

from _export_util import SMALL_CLASSIFIERS, SMALL_STEREO, folded_small, small_genotype, write_genotype
from cli_helpers import assert_user_error, expect_ok, run_snnc

FRAMES = 20


def session(path):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def torch_state_by_name(net, state):
    """The torch network's flat state keyed by the export Graph's names (``<neuron layer>.u`` / ``.y`` / ``.a``)."""
    from snnc.neurons import state_fields

    neurons = dict(net.neurons())
    out = {}
    for layer, tensors in net.split_state(state).items():
        if layer in neurons:
            out.update({f"{layer}.{f}": t for f, t in zip(state_fields(neurons[layer].spec), tensors, strict=True)})
    return out


def stream_and_compare(net, x, path):
    """Stream ``x`` through torch and onnxruntime side by side; returns (spike mismatches, spikes, max |dy|, max |du|).

    The ONNX state is the export Graph's (snnc-onnx/2); every neuron layer of the torch network is
    compared by name (its spikes ``<layer>.y`` and membrane ``<layer>.u``).
    """
    info = export_stream(net, tuple(x.shape[1:]), path)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert proto.opset_import[0].version == 17
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["snnc.format"] == "snnc-onnx/2"
    names = json.loads(meta["snnc.state_names"])
    assert names == info["state_names"] == state_names(net, x[0])
    assert [i.name for i in proto.graph.input] == ["x"] + [f"state_in_{k}" for k in range(len(names))]
    assert [o.name for o in proto.graph.output] == ["y"] + [f"state_out_{k}" for k in range(len(names))]
    modes = [a.s for n in proto.graph.node if n.op_type == "Resize" for a in n.attribute if a.name == "mode"]
    assert b"nearest" not in modes  # nearest resampling is spelled as Slice / Gather / Expand

    sess = session(path)
    ort_state = [np.zeros(s, dtype=np.float32) for s in json.loads(meta["snnc.state_shapes"])]
    state = net.init_state(x[0])
    compared = set(torch_state_by_name(net, state))
    assert compared <= set(names)  # every torch neuron tensor has its Graph namesake
    mismatches = spikes = 0
    dy = du = 0.0
    with torch.no_grad():
        for t in range(x.shape[0]):
            y, state = net.step(x[t], state)
            out = sess.run(None, {"x": x[t].numpy(), **{f"state_in_{k}": s for k, s in enumerate(ort_state)}})
            ort_y, ort_state = out[0], out[1:]
            dy = max(dy, float(np.abs(ort_y - y.numpy()).max()))
            ref = torch_state_by_name(net, state)
            for name, a in zip(names, ort_state, strict=True):
                if name not in ref:
                    continue
                b = ref[name].numpy()
                if name.endswith(".y"):
                    mismatches += int((a != b).sum())
                    spikes += int(b.sum())
                else:
                    du = max(du, float(np.abs(a - b).max()))
    return mismatches, spikes, dy, du


@pytest.mark.parametrize("preset", ["spikedhs-cla", "snasnet-cifar10"])
def test_classifier_streams_like_torch(preset, tmp_path):
    overrides, shape = SMALL_CLASSIFIERS[preset]
    net, x = folded_small(preset, shape, FRAMES, **overrides)
    mismatches, spikes, dy, du = stream_and_compare(net, x, tmp_path / "net.onnx")
    assert spikes > 100 and mismatches == 0
    assert dy < 1e-5 and du < 1e-5


@pytest.mark.parametrize("geometry", [{}, {"feature_stride": 1, "volume_disparities": 3}], ids=["paper", "stride1"])
def test_full_stereo_net_streams_like_torch(tmp_path, geometry):
    shape = (1, 2, 5, 48, 64) if not geometry else (1, 2, 5, 24, 32)
    net, x = folded_small("spikedhs-stereo", shape, FRAMES, **SMALL_STEREO, **geometry)
    mismatches, spikes, dy, du = stream_and_compare(net, x, tmp_path / "stereo.onnx")
    assert spikes > 1000 and mismatches == 0
    assert dy < 1e-5 and du < 1e-5


def test_fixed_window_classification_graph(tmp_path):
    overrides, shape = SMALL_CLASSIFIERS["spikedhs-cla"]
    net, x = folded_small("spikedhs-cla", shape, 1, **overrides)
    export_window(net, shape, 4, tmp_path / "win.onnx")
    proto = onnx.load(str(tmp_path / "win.onnx"))
    assert [i.name for i in proto.graph.input] == ["x"] and [o.name for o in proto.graph.output] == ["y_mean"]
    got = session(tmp_path / "win.onnx").run(None, {"x": x[0].numpy()})[0]
    with torch.no_grad():
        want = net.classify(x[0], time_steps=4)
    assert np.abs(got - want.numpy()).max() < 1e-5
    stereo = fold_bn(build_model(small_genotype("spikedhs-stereo", **SMALL_STEREO)).eval())
    with pytest.raises(SnncError, match="classification"):
        export_window(stereo, (1, 2, 5, 24, 36), 4, tmp_path / "no.onnx")


def test_cli_onnx_export(tmp_path):
    genotype = write_genotype(small_genotype("sequential-dvs", image_size=16), tmp_path / "seq.json")
    out = expect_ok(run_snnc("export", genotype, "--to", "onnx", "--out", tmp_path / "seq.onnx"))
    assert "state_in_0..7" in out and "state_out_0..7" in out
    sess = session(tmp_path / "seq.onnx")
    assert [i.name for i in sess.get_inputs()][:2] == ["x", "state_in_0"]
    assert sess.get_inputs()[0].shape == [1, 2, 16, 16]
    assert_user_error(
        run_snnc("export", genotype, "--to", "nir", "--window", "4", "--out", tmp_path / "w.nir"), "--window"
    )


@pytest.mark.parametrize(
    ("src", "dst"), [((4, 6), (8, 12)), ((8, 12), (4, 6)), ((33, 7), (65, 3)), ((5, 9), (5, 9)), ((3, 4, 5), (6, 7, 5))]
)
def test_nearest_resize_is_torch_interpolate_in_torch_and_onnxruntime(src, dst, tmp_path):
    """GraphModule spells nearest resampling as slices / repeats / gathers: the result is F.interpolate's exactly."""
    from snnc.export.graph import Graph
    from snnc.export.onnx_writer import export_graph_stream
    from snnc.export.runtime import GraphModule

    g = Graph()
    g.add("x", "input", shape=(3, *src))
    g.add("y", "output", [g.add("r", "resize", ["x"], size=dst)])
    gm = GraphModule(g)
    x = torch.randn(2, 3, *src)
    want = torch.nn.functional.interpolate(x, size=dst, mode="nearest")
    got, _ = gm.step(x, ())
    assert torch.equal(got, want)
    export_graph_stream(gm, {"x": x}, tmp_path / "r.onnx")
    assert np.array_equal(session(tmp_path / "r.onnx").run(None, {"x": x.numpy()})[0], want.numpy())


def test_other_format_versions_are_refused_in_one_line(tmp_path):
    """A snnc-onnx/1 file (the traced network's own state order) is refused, naming the file and the version."""
    from snnc.export.onnx_writer import ONNX_FORMAT, check_format

    overrides, shape = SMALL_CLASSIFIERS["spikedhs-cla"]
    net, _ = folded_small("spikedhs-cla", shape, 1, **overrides)
    path = tmp_path / "net.onnx"
    export_stream(net, shape, path)
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert meta["snnc.format"] == ONNX_FORMAT
    check_format(meta, path)
    with pytest.raises(SnncError) as err:
        check_format({**meta, "snnc.format": "snnc-onnx/1"}, path)
    assert "snnc-onnx/1" in str(err.value) and "net.onnx" in str(err.value) and "\n" not in str(err.value)
